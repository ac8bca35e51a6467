using CareCoordination.Auth;
using CareCoordination.Domain;
using CareCoordination.Features.BedBureau;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using CsvHelper;
using Dapper;
using FluentValidation;
using Mediator;
using Microsoft.Extensions.Options;

namespace CareCoordination.Features.Reports;

/// <summary>
/// Report 3, the Capacity Tracker view: per site and bed type, the states providers report to the national Capacity
/// Tracker, counted from our beds as they stand now (with how fresh each row's figures are) or as they stood at the end of a
/// past day (from bed_state). Our five bed statuses map
/// to its states as Map says; closed and cleaning beds are vacant but not accepting admissions, a column of their
/// own so that every row adds up to its maximum capacity.
/// </summary>
public static partial class CapacityTracker
{
    public const string Slug = "capacity-tracker";

    [AllowRoles(Roles.Manager, Roles.Admin)]
    public sealed record Query(ReportFilter Filter) : IQuery<Result>;

    public sealed class Validator : AbstractValidator<Query>
    {
        public Validator(TimeProvider clock)
        {
            RuleFor(q => q.Filter).SetValidator(new ReportFilter.Rules());
            RuleFor(q => q.Filter.AsAt).LessThanOrEqualTo(_ => LondonTime.Today(clock))
                .WithMessage("The day must be today or earlier: a day not yet lived has no beds to count.");
        }
    }

    /// <summary>One row as the Capacity Tracker asks for it; the CSV's columns are these, in this order.</summary>
    [CsvRecord]
    public sealed partial record Row(
        [property: CsvColumn("Site")] string Site,
        [property: CsvColumn("Locality")] string Locality,
        [property: CsvColumn("Provider")] string Provider,
        [property: CsvColumn("Bed type")] string BedType,
        [property: CsvColumn("Maximum capacity")] int MaximumCapacity,
        [property: CsvColumn("Occupied")] int Occupied,
        [property: CsvColumn("Vacant reserved")] int VacantReserved,
        [property: CsvColumn("Vacant accepting admissions")] int VacantAccepting,
        [property: CsvColumn("Vacant not accepting admissions")] int VacantNotAccepting,
        [property: CsvColumn("Oldest confirmation")] DateTimeOffset? OldestConfirmation,
        [property: CsvColumn("Stale beds")] int? StaleBeds)
    {
        /// <summary>A row is stale when any of its beds has gone unconfirmed longer than the bed bureau allows.</summary>
        public bool Stale => StaleBeds > 0;
    }

    public sealed record Totals(int MaximumCapacity, int Occupied, int VacantReserved, int VacantAccepting, int VacantNotAccepting, int? StaleBeds);

    /// <param name="AsOf">The moment counted: now, or the end of the day asked for.</param>
    /// <param name="Past">True when that is a past day: the beds as bed_state recorded them then, with no freshness (confirmations are kept only as they stand).</param>
    /// <param name="NotYetRecorded">On a past day, the beds of the filter that bed_state had no state for yet (added later, or there before 0038 recorded them): not counted.</param>
    public sealed record Result(DateTimeOffset AsOf, int StaleAfterHours, IReadOnlyList<Row> Rows, Totals Total,
        bool Past = false, int NotYetRecorded = 0);

    /// <summary>Which Capacity Tracker state each of our bed statuses counts as.</summary>
    public static string Map(string status) => status switch
    {
        "occupied" => "Occupied",
        "reserved" => "Vacant reserved",
        "available" => "Vacant accepting admissions",
        // Closed (infection, staffing, repairs) and being cleaned: empty, but nobody can be admitted today.
        "closed" or "cleaning" => "Vacant not accepting admissions",
        _ => throw new ArgumentOutOfRangeException(nameof(status), status, "Not a bed status."),
    };

    public static IReadOnlyList<ReportDefinition> Definitions(int staleAfterHours) =>
    [
        new("Maximum capacity", "Every bed on the site's wards of that type, whatever its state: the beds the site could staff and fill. Sites made inactive are left out (on a past day, those made inactive after it are counted)."),
        new("Occupied", "Beds with a person in them (status occupied), now or at the end of the day asked for."),
        new("Vacant reserved", "Empty beds held for a person who has been accepted and is on the way (status reserved)."),
        new("Vacant accepting admissions", "Empty beds open to a new admission (status available)."),
        new("Vacant not accepting admissions", "Empty beds that cannot take anyone: closed (infection, staffing, repairs) or being cleaned. Maximum capacity = occupied + vacant reserved + vacant accepting + vacant not accepting."),
        new("Oldest confirmation", "The longest since anyone confirmed a bed of the row (a move of its state, or the bed bureau confirming the board): the row's figures are as fresh as that, UK time."),
        new("Stale", $"Beds not confirmed for more than {staleAfterHours} hours (BedBureau:StaleAfterHours, the bed board's own rule); a row with any is flagged."),
        new("As at the end of", "Unset (or today): the beds as they stand when the report is produced. A past day: each bed in the state it held at the end of that day (UK time), as recorded each time a bed is added, moves or changes type; beds first recorded later are not counted, and the page says how many. Sites' names, localities and providers are as they are now. Freshness (oldest confirmation, stale) is known only for now, so a past day leaves it blank."),
        new("Filters", "Bed provider is the organisation running the site, so that each provider can copy its own return; locality is the site's locality. Referring organisation does not apply: these are beds, not referrals."),
    ];

    public sealed class Handler(Database database, TimeProvider clock, IOptionsMonitor<BedBureauSettings> settings) : IQueryHandler<Query, Result>
    {
        /// <summary>
        /// A bed in the state counted: now, from the bed itself, with when it was last confirmed; or at a past moment, from
        /// bed_state, with no confirmation (null type and status where it was not yet recorded).
        /// </summary>
        private sealed record BedState
        {
            public string Site { get; init; } = "";
            public string Locality { get; init; } = "";
            public string Provider { get; init; } = "";
            public string? BedType { get; init; }
            public string? Status { get; init; }
            public DateTimeOffset? ConfirmedAt { get; init; }
        }

        public async ValueTask<Result> Handle(Query query, CancellationToken cancellationToken)
        {
            var now = clock.GetUtcNow();
            var staleAfter = settings.CurrentValue.StaleAfterHours;
            await using var connection = await database.OpenForReportAsync(cancellationToken);
            var filter = query.Filter;
            if (filter.AsAt is { } day && day < LondonTime.Today(clock))
            {
                // Each bed of a site open then (active now, or closed since: a site is closed once, by DeactivateSite, which records
                // when) in the last state bed_state recorded before the end of that day: one seek of its key per bed.
                var end = LondonTime.StartOf(day.AddDays(1));
                var then = (await connection.QueryAsync<BedState>(
                    """
                    SELECT s.name AS Site, s.locality AS Locality, o.name AS Provider, st.bed_type AS BedType, st.status AS Status
                    FROM bed b JOIN ward w ON w.id = b.ward_id JOIN site s ON s.id = w.site_id JOIN organisation o ON o.id = s.organisation_id
                    LEFT JOIN bed_state st ON st.bed_id = b.id AND st.from_at = (SELECT MAX(x.from_at) FROM bed_state x WHERE x.bed_id = b.id AND x.from_at < @end)
                        AND st.version = (SELECT MAX(y.version) FROM bed_state y WHERE y.bed_id = b.id AND y.from_at = st.from_at)
                    WHERE (s.active OR EXISTS (SELECT 1 FROM change c WHERE c.entity_type = 'site' AND c.entity_id = s.id AND c.kind = 'site.deactivated' AND c.at >= @end))
                      AND (@Locality IS NULL OR s.locality = @Locality) AND (@Provider IS NULL OR s.organisation_id = @Provider)
                    """, new { end, filter.Locality, filter.Provider })).ToList();
                var (pastRows, pastTotal) = Count(then.Where(b => b.Status is not null), staleBefore: null);
                return new Result(end, staleAfter, pastRows, pastTotal, Past: true, then.Count(b => b.Status is null));
            }
            // One row per bed: a county has thousands, not millions, and the grouping and staleness read plainer here than in SQL.
            var beds = await connection.QueryAsync<BedState>(
                """
                SELECT s.name AS Site, s.locality AS Locality, o.name AS Provider, b.bed_type AS BedType, b.status AS Status, b.confirmed_at AS ConfirmedAt
                FROM bed b JOIN ward w ON w.id = b.ward_id JOIN site s ON s.id = w.site_id JOIN organisation o ON o.id = s.organisation_id
                WHERE s.active AND (@Locality IS NULL OR s.locality = @Locality) AND (@Provider IS NULL OR s.organisation_id = @Provider)
                """, new { filter.Locality, filter.Provider });
            var (rows, total) = Count(beds, staleBefore: now.AddHours(-staleAfter));
            return new Result(now, staleAfter, rows, total);
        }

        /// <summary>
        /// The rows per site and bed type, and their totals. Freshness (oldest confirmation, stale beds) only where the beds'
        /// confirmations are known (<paramref name="staleBefore"/> given): a past day has none.
        /// </summary>
        private static (IReadOnlyList<Row> Rows, Totals Total) Count(IEnumerable<BedState> beds, DateTimeOffset? staleBefore)
        {
            var rows = beds
                .GroupBy(b => (b.Site, b.Locality, b.Provider, BedType: b.BedType!))
                .Select(g =>
                {
                    var states = g.Select(b => Map(b.Status!)).ToList();
                    return new Row(g.Key.Site, g.Key.Locality, g.Key.Provider, g.Key.BedType,
                        states.Count,
                        states.Count(s => s == "Occupied"),
                        states.Count(s => s == "Vacant reserved"),
                        states.Count(s => s == "Vacant accepting admissions"),
                        states.Count(s => s == "Vacant not accepting admissions"),
                        staleBefore is null ? null : LondonTime.ToLocal(g.Min(b => b.ConfirmedAt!.Value)),
                        staleBefore is { } cutoff ? g.Count(b => b.ConfirmedAt < cutoff) : null);
                })
                .OrderBy(r => r.Site, StringComparer.Ordinal).ThenBy(r => r.BedType, StringComparer.Ordinal)
                .ToList();
            var total = new Totals(rows.Sum(r => r.MaximumCapacity), rows.Sum(r => r.Occupied), rows.Sum(r => r.VacantReserved),
                rows.Sum(r => r.VacantAccepting), rows.Sum(r => r.VacantNotAccepting), staleBefore is null ? null : rows.Sum(r => r.StaleBeds));
            return (rows, total);
        }
    }

    public static void MapCsv(IEndpointRouteBuilder app) =>
        app.MapReportCsv<Result, Row>(Slug, filter => new Query(filter), result => result.Rows);
}
