using CareCoordination.Auth;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Admin;

/// <summary>A hospital site of a referring trust, known by its ODS site code: its referrers can then say a person is there.</summary>
public static class AddHospitalSite
{
    [AllowRoles(Roles.Admin)]
    public sealed record Command(long OrganisationId, string Code, string Name) : ICommand<long>;

    public sealed class Validator : AbstractValidator<Command>
    {
        public Validator()
        {
            RuleFor(c => c.OrganisationId).GreaterThan(0).WithMessage("Choose the trust the site belongs to.");
            RuleFor(c => c.Code).Matches("^[A-Za-z0-9]{3,10}$").WithMessage("Enter the site's ODS code: letters and digits, like RWM01.");
            RuleFor(c => c.Name).NotEmpty().WithMessage("Name the site.").MaximumLength(AdminCodes.NameLength);
        }
    }

    public sealed class Handler(Work work, Database database) : ICommandHandler<Command, long>
    {
        public async ValueTask<long> Handle(Command command, CancellationToken cancellationToken)
        {
            var trust = await work.Connection.QuerySingleOrDefaultAsync<string>(
                $"SELECT name FROM organisation WHERE id = @OrganisationId AND kind IN {HospitalSitesAdmin.HospitalKinds}",
                new { command.OrganisationId }, work.Transaction)
                ?? throw new RuleBroken("Only an acute trust, a community trust or a community hospital refers from a hospital site.");
            var site = new { command.OrganisationId, Code = command.Code.Trim().ToUpperInvariant(), Name = command.Name.Trim() };
            long id;
            try
            {
                id = await work.Connection.ExecuteScalarAsync<long>(
                    "INSERT INTO hospital_site (organisation_id, code, name, active) VALUES (@OrganisationId, @Code, @Name, TRUE) RETURNING id",
                    site, work.Transaction);
            }
            catch (Exception ex) when (database.IsUniqueViolation(ex))
            {
                throw new Conflict($"There is already a site with the code {site.Code}, or a site of {trust} called {site.Name}.");
            }
            work.Scope.Touch("hospital_site", id);
            return id;
        }
    }
}
