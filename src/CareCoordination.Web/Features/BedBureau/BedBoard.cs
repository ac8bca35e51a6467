using CareCoordination.Auth;
using CareCoordination.Changes;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Mediator;
using Microsoft.Extensions.Options;

namespace CareCoordination.Features.BedBureau;

/// <summary>
/// Every site, ward and bed with its state, who is in or expected in it, and whether anyone has confirmed
/// it lately; filtered by locality, type and status. The page keeps it current from the change feed.
/// </summary>
public static class BedBoard
{
    [AllowRoles(Roles.BedBureau, Roles.Coordinator, Roles.Manager, Roles.Admin)]
    public sealed record Query(string? Locality = null, string? BedType = null, string? Status = null, bool StaleOnly = false) : IQuery<Result>;

    public sealed record Result(IReadOnlyList<Site> Sites, Counts Counts, IReadOnlyList<string> Localities, long AsOfSeq);

    public sealed record Counts(int Available, int Reserved, int Occupied, int Closed, int Cleaning, int Stale)
    {
        public int Total => Available + Reserved + Occupied + Closed + Cleaning;
    }

    public sealed record Site(long Id, string Name, string Locality, string Provider, string? CqcRating, string Caution, string? CautionNote,
        IReadOnlyList<Ward> Wards);

    public sealed record Ward(long Id, string Name, IReadOnlyList<Bed> Beds);

    public sealed record Bed
    {
        public BedRow Row { get; init; } = null!;
        public bool Stale { get; init; }
        public long? PlacementId { get; init; }
        public string? PlacementStatus { get; init; }
        public long? ReferralId { get; init; }
        public string? PersonName { get; init; }
        public DateTimeOffset? ReservedUntil { get; init; }
    }

    private sealed record Live
    {
        public long BedId { get; init; }
        public long PlacementId { get; init; }
        public string Status { get; init; } = "";
        public long ReferralId { get; init; }
        public string PersonName { get; init; } = "";
        public DateTimeOffset? ReservedUntil { get; init; }
    }

    public sealed class Handler(Database database, TimeProvider clock, IOptionsMonitor<BedBureauSettings> settings, ChangeFeed feed, Work work)
        : IQueryHandler<Query, Result>
    {
        public async ValueTask<Result> Handle(Query query, CancellationToken cancellationToken)
        {
            var asOf = feed.Published;
            await using var connection = await database.OpenAsync(cancellationToken);
            var rows = (await connection.QueryAsync<BedRow>($"SELECT {Beds.Columns} {Beds.From} WHERE s.active ORDER BY s.name, w.name, b.label")).ToList();
            var live = (await connection.QueryAsync<Live>(
                """
                SELECT pl.bed_id AS BedId, pl.id AS PlacementId, pl.status AS Status, pl.referral_id AS ReferralId,
                       p.given_name || ' ' || p.family_name AS PersonName, pl.reserved_until AS ReservedUntil
                FROM placement pl JOIN referral r ON r.id = pl.referral_id JOIN person p ON p.id = r.person_id
                WHERE pl.bed_id IS NOT NULL AND pl.status IN ('reserved', 'active')
                """)).ToDictionary(l => l.BedId);
            var now = clock.GetUtcNow();
            var beds = rows.Select(b =>
            {
                live.TryGetValue(b.Id, out var placement);
                // Administrators keep the estate, not people's care: they see that a bed is taken, not by whom, nor a closure's detail.
                var named = work.Scope.Actor.Role != Roles.Admin;
                return new Bed
                {
                    Row = named ? b : b with { ClosedDetail = null }, Stale = b.IsStale(now, settings.CurrentValue), PlacementId = placement?.PlacementId, PlacementStatus = placement?.Status,
                    ReferralId = named ? placement?.ReferralId : null, PersonName = named ? placement?.PersonName : null,
                    ReservedUntil = placement?.ReservedUntil,
                };
            }).ToList();
            var localities = beds.Select(b => b.Row.Locality).Distinct().Order(StringComparer.Ordinal).ToList();

            // Counts follow locality and type, not the status filter, so each count says what its filter would show.
            var scoped = beds.Where(b => (query.Locality is null || b.Row.Locality == query.Locality) && (query.BedType is null || b.Row.BedType == query.BedType)).ToList();
            var counts = new Counts(
                scoped.Count(b => b.Row.Status == "available"), scoped.Count(b => b.Row.Status == "reserved"), scoped.Count(b => b.Row.Status == "occupied"),
                scoped.Count(b => b.Row.Status == "closed"), scoped.Count(b => b.Row.Status == "cleaning"), scoped.Count(b => b.Stale));
            var shown = scoped.Where(b => (query.Status is null || b.Row.Status == query.Status) && (!query.StaleOnly || b.Stale));
            var sites = shown
                .GroupBy(b => b.Row.SiteId)
                .Select(site =>
                {
                    var first = site.First().Row;
                    return new Site(first.SiteId, first.SiteName, first.Locality, first.Provider, first.CqcRating, first.Caution, first.CautionNote,
                        site.GroupBy(b => b.Row.WardId).Select(w => new Ward(w.Key, w.First().Row.WardName, w.ToList())).ToList());
                })
                .ToList();
            return new Result(sites, counts, localities, asOf);
        }
    }
}
