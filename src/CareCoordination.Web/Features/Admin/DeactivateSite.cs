using CareCoordination.Auth;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using Dapper;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Admin;

/// <summary>
/// Takes a site off the bed board and out of bed matching (it has closed, or left the framework). Its wards
/// and beds stay, for the history of who was placed there. Refused while anyone is in one of its beds or has
/// one held: the bed bureau moves them first.
/// </summary>
public static class DeactivateSite
{
    [AllowRoles(Roles.Admin)]
    public sealed record Command(long SiteId, string Reason) : ICommand;

    public sealed class Validator : AbstractValidator<Command>
    {
        public Validator()
        {
            RuleFor(c => c.Reason).NotEmpty().WithMessage("Say why the site is closing.").MaximumLength(ReferralForm.ShortText);
        }
    }

    private sealed record Site
    {
        public string Name { get; init; } = "";
        public bool Active { get; init; }
        public long InUse { get; init; }
    }

    public sealed class Handler(Work work, Store.Database database) : ICommandHandler<Command>
    {
        public async ValueTask<Unit> Handle(Command command, CancellationToken cancellationToken)
        {
            // Its beds in use are counted under the site's lock, which a reservation takes to read whether the site is open.
            await database.LockAsync(work.Connection, work.Transaction, BedBureau.Beds.SiteLock(command.SiteId));
            var site = await work.Connection.QuerySingleOrDefaultAsync<Site>(
                """
                SELECT s.name AS Name, s.active AS Active,
                       (SELECT COUNT(*) FROM bed b JOIN ward w ON w.id = b.ward_id WHERE w.site_id = s.id AND b.status IN ('reserved', 'occupied')) AS InUse
                FROM site s WHERE s.id = @SiteId
                """, new { command.SiteId }, work.Transaction)
                ?? throw new NotFound($"Site {command.SiteId}");
            if (!site.Active)
            {
                throw new RuleBroken($"{site.Name} is already closed.");
            }
            if (site.InUse > 0)
            {
                throw new RuleBroken($"{site.Name} has {site.InUse} {(site.InUse == 1 ? "bed" : "beds")} reserved or occupied. The bed bureau moves those people first.");
            }
            // Each bed's FHIR Location says whether its site is open: closing it is a new version of each, so the open one is
            // kept as it was served (read before the site changes) and the version moves, with its time (lastUpdated).
            var beds = (await work.Connection.QueryAsync<(long Id, long Version)>(
                "SELECT b.id, b.version FROM bed b JOIN ward w ON w.id = b.ward_id WHERE w.site_id = @SiteId", new { command.SiteId }, work.Transaction)).ToList();
            if (beds.Count > 0)
            {
                await Fhir.FhirVersions.KeepSupersededAsync(work, "bed", beds.Select(b => b.Id).ToList());
            }
            var closed = await work.Connection.ExecuteAsync(
                "UPDATE site SET active = FALSE WHERE id = @SiteId AND active", new { command.SiteId }, work.Transaction);
            if (closed == 0)
            {
                var last = await AdminLookups.LastActorAsync(work, "site", command.SiteId);
                throw new Conflict($"{last ?? "Someone"} closed {site.Name} a moment ago.");
            }
            if (beds.Count > 0)
            {
                // Each from the version kept: a bed moved meanwhile (PostgreSQL, transactions at once) would lose the version
                // its move made from the history, so the closing is refused instead (its transaction undoes every bed), and
                // asked again. Never earlier than the bed's own last confirmation: a command's time is taken before its turn
                // to write.
                var parameters = new DynamicParameters(new { work.Scope.Now });
                var moved = (await work.Connection.QueryAsync<(long Id, long Version)>(
                    $"""
                    UPDATE bed SET version = version + 1, confirmed_at = CASE WHEN confirmed_at > @Now THEN confirmed_at ELSE @Now END
                    WHERE id IN ({Store.Sql.IdList(beds.Select(b => b.Id), parameters)}) RETURNING id, version
                    """, parameters, work.Transaction)).ToDictionary(b => b.Id, b => b.Version);
                if (beds.Any(bed => !moved.TryGetValue(bed.Id, out var version) || version != bed.Version + 1))
                {
                    throw new Conflict($"A bed of {site.Name} changed a moment ago. Close the site again.");
                }
            }
            work.Scope.Touch("site", command.SiteId);
            work.Scope.RecordChange("site.deactivated", "site", command.SiteId, null,
                new { name = site.Name, active = false, reason = command.Reason.Trim(), by = work.Scope.Actor.Name });
            return Unit.Value;
        }
    }
}
