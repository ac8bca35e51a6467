using CareCoordination.Auth;
using CareCoordination.Domain;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Admin;

/// <summary>
/// A new community hospital, care home or step-down unit, owned by a provider. It has no wards yet; once it
/// has beds they appear on the bed board and in bed matching.
/// </summary>
public static class AddSite
{
    [AllowRoles(Roles.Admin)]
    public sealed record Command(string Name, string Kind, string Locality, string Postcode, long OrganisationId) : ICommand<long>;

    public sealed class Validator : AbstractValidator<Command>
    {
        public Validator()
        {
            RuleFor(c => c.Name).NotEmpty().WithMessage("Name the site.").MaximumLength(AdminCodes.NameLength);
            RuleFor(c => c.Kind).Must(k => AdminCodes.SiteKinds.Has(k)).WithMessage("Choose community hospital, care home or step-down unit.");
            RuleFor(c => c.Locality).NotEmpty().WithMessage("Choose the locality the site is in.").MaximumLength(AdminCodes.NameLength);
            RuleFor(c => c.Postcode).Must(Domain.Postcode.IsValid).WithMessage("Enter the site's postcode, like WM2 6HT.");
            RuleFor(c => c.OrganisationId).GreaterThan(0).WithMessage("Choose the provider that runs the site.");
        }
    }

    public sealed class Handler(Work work, Database database) : ICommandHandler<Command, long>
    {
        public async ValueTask<long> Handle(Command command, CancellationToken cancellationToken)
        {
            var provider = await AdminLookups.RequireProviderAsync(work, command.OrganisationId);
            var site = new
            {
                Name = command.Name.Trim(), command.Kind, Locality = command.Locality.Trim(), Postcode = Postcode.Normalise(command.Postcode)!,
                command.OrganisationId,
            };
            long siteId;
            try
            {
                siteId = await work.Connection.ExecuteScalarAsync<long>(
                    """
                    INSERT INTO site (organisation_id, name, kind, locality, postcode, active)
                    VALUES (@OrganisationId, @Name, @Kind, @Locality, @Postcode, TRUE) RETURNING id
                    """, site, work.Transaction);
            }
            catch (Exception ex) when (database.IsUniqueViolation(ex))
            {
                throw new Conflict($"There is already a site called {site.Name}. Give this one a name people can tell apart.");
            }
            work.Scope.Touch("site", siteId);
            work.Scope.RecordChange("site.added", "site", siteId, null,
                new { site.Name, site.Kind, site.Locality, site.Postcode, providerId = provider.Id, provider = provider.Name, active = true });
            return siteId;
        }
    }
}
