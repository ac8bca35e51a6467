using CareCoordination.Auth;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Admin;

/// <summary>A new ward, unit or wing on an open site; beds are added to it next.</summary>
public static class AddWard
{
    [AllowRoles(Roles.Admin)]
    public sealed record Command(long SiteId, string Name) : ICommand<long>;

    public sealed class Validator : AbstractValidator<Command>
    {
        public Validator()
        {
            RuleFor(c => c.SiteId).GreaterThan(0).WithMessage("Choose the site.");
            RuleFor(c => c.Name).NotEmpty().WithMessage("Name the ward.").MaximumLength(AdminCodes.NameLength);
        }
    }

    private sealed record Site
    {
        public string Name { get; init; } = "";
        public bool Active { get; init; }
    }

    public sealed class Handler(Work work, Database database) : ICommandHandler<Command, long>
    {
        public async ValueTask<long> Handle(Command command, CancellationToken cancellationToken)
        {
            var site = await work.Connection.QuerySingleOrDefaultAsync<Site>(
                "SELECT name AS Name, active AS Active FROM site WHERE id = @SiteId", new { command.SiteId }, work.Transaction)
                ?? throw new NotFound($"Site {command.SiteId}");
            if (!site.Active)
            {
                throw new RuleBroken($"{site.Name} is closed: it takes no new wards.");
            }
            var name = command.Name.Trim();
            long wardId;
            try
            {
                wardId = await work.Connection.ExecuteScalarAsync<long>(
                    "INSERT INTO ward (site_id, name) VALUES (@SiteId, @name) RETURNING id", new { command.SiteId, name }, work.Transaction);
            }
            catch (Exception ex) when (database.IsUniqueViolation(ex))
            {
                throw new Conflict($"{site.Name} already has a ward called {name}.");
            }
            work.Scope.Touch("ward", wardId);
            work.Scope.RecordChange("ward.added", "ward", wardId, null, new { siteId = command.SiteId, site = site.Name, name });
            return wardId;
        }
    }
}
