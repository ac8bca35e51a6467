using CareCoordination.Auth;
using CareCoordination.Domain;
using CareCoordination.Features.BedBureau;
using CareCoordination.Features.Boards;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Mediator;

namespace CareCoordination.Features.Fhir;

/// <summary>One active site's beds by status as they stand, counted as the capacity board counts them.</summary>
public sealed record SiteCapacity(FhirSite Site, CapacityBoard.BedCounts Beds, DateTimeOffset AsOf, DateTimeOffset Since);

/// <summary>
/// The SANER-style capacity summaries behind /fhir/MeasureReport: one per active site, from the same bed
/// read (Beds.Columns/From, active sites) and the same counting (CapacityBoard.BedCounts) as the board.
/// </summary>
public static class CapacityReports
{
    public static async Task<List<SiteCapacity>> LoadAsync(Database database, TimeProvider clock, long? siteId, CancellationToken cancellationToken)
    {
        var now = clock.GetUtcNow();
        var since = LondonTime.StartOfToday(clock);
        await using var connection = await database.OpenAsync(cancellationToken);
        var filter = siteId is null ? "" : " AND s.id = @siteId";
        var sites = await connection.QueryAsync<FhirSite>(FhirSite.Select + " WHERE s.active" + filter + " ORDER BY s.id", new { siteId });
        // Counted by the store, not read bed by bed: 5,000 beds made into rows of 21 columns each to count them was most of the
        // answer's time (issue 14). The same beds as the board's read (Beds.From, active sites).
        var counts = (await connection.QueryAsync<StatusCount>(
                $"SELECT s.id AS SiteId, b.status AS Status, COUNT(*) AS N {Beds.From} WHERE s.active" + filter + " GROUP BY s.id, b.status", new { siteId }))
            .ToLookup(c => c.SiteId);
        // Staleness is not reported here; the board's Stale figure is not part of these counts.
        return sites.Select(s => new SiteCapacity(s, CapacityBoard.BedCounts.Tallied(counts[s.Id].ToDictionary(c => c.Status, c => (int)c.N), 0), now, since))
            .ToList();
    }

    private sealed record StatusCount
    {
        public long SiteId { get; init; }
        public string Status { get; init; } = "";
        public long N { get; init; }
    }
}

/// <summary>GET /fhir/MeasureReport/site-{id}: the current capacity summary of one active site.</summary>
public static class ReadCapacityReport
{
    [AllowRoles(Roles.Manager, Roles.Coordinator, Roles.BedBureau, Roles.Admin)]
    [AllowPartnerScope("system/MeasureReport.r")]
    public sealed record Query(long SiteId) : IQuery<SiteCapacity>;

    public sealed class Handler(Database database, TimeProvider clock) : IQueryHandler<Query, SiteCapacity>
    {
        public async ValueTask<SiteCapacity> Handle(Query query, CancellationToken cancellationToken) =>
            (await CapacityReports.LoadAsync(database, clock, query.SiteId, cancellationToken)).SingleOrDefault()
            ?? throw new NotFound($"MeasureReport/{FhirPlace.SiteId(query.SiteId)}");
    }
}

/// <summary>GET /fhir/MeasureReport?subject=Location/site-{id}: the current capacity summary of one active site, or of every one.</summary>
public static class SearchCapacityReports
{
    [AllowRoles(Roles.Manager, Roles.Coordinator, Roles.BedBureau, Roles.Admin)]
    [AllowPartnerScope("system/MeasureReport.s")]
    public sealed record Query(long? SiteId, int Count, int Offset) : IQuery<Page<SiteCapacity>>;

    public sealed class Handler(Database database, TimeProvider clock) : IQueryHandler<Query, Page<SiteCapacity>>
    {
        public async ValueTask<Page<SiteCapacity>> Handle(Query query, CancellationToken cancellationToken)
        {
            var reports = await CapacityReports.LoadAsync(database, clock, query.SiteId, cancellationToken);
            return new Page<SiteCapacity>(reports.Count, reports.Skip(query.Offset).Take(query.Count).ToList());
        }
    }
}
