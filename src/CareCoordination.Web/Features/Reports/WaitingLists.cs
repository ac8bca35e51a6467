using CareCoordination.Auth;
using CareCoordination.Domain;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using CsvHelper;
using Dapper;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Reports;

/// <summary>
/// Report 4, waiting lists: who is waiting for triage, for a service to start and for a bed, by how long, as at the
/// end of the period (or now, for a period that has not ended), in the ADASS snapshot's bands; and the median days
/// from request to decision and from request to service start for the decisions and starts in the period.
/// </summary>
public static partial class WaitingLists
{
    public const string Slug = "waiting-lists";

    [AllowRoles(Roles.Manager, Roles.Admin)]
    public sealed record Query(ReportFilter Filter) : IQuery<Result>;

    public sealed class Validator : AbstractValidator<Query>
    {
        public Validator() => RuleFor(q => q.Filter).SetValidator(new ReportFilter.Rules());
    }

    /// <summary>
    /// The bands of the ADASS snapshot surveys of people waiting (whole calendar months waited): each from its months
    /// up to the next band's. One list, so a change to the survey is a change here.
    /// </summary>
    public static IReadOnlyList<(string Label, int FromMonths)> Bands { get; } =
    [
        ("Under 1 month", 0),
        ("1 to 3 months", 1),
        ("3 to 6 months", 3),
        ("6 months or more", 6),
    ];

    public const string ForTriage = "Waiting for triage";
    public const string ForService = "Waiting for a service to start";
    public const string ForBed = "Waiting for a bed";

    public static IReadOnlyList<string> Lists { get; } = [ForTriage, ForService, ForBed];

    /// <summary>One list's people by band, in the order of Bands.</summary>
    public sealed record WaitingList(string WaitingFor, IReadOnlyList<int> ByBand)
    {
        public int Total => ByBand.Sum();
    }

    /// <summary>A median of whole days over Count referrals; null when there were none.</summary>
    public sealed record Median(double? Days, int Count);

    public sealed record Result(DateOnly AsAt, IReadOnlyList<WaitingList> Waiting, Median RequestToDecision, Median RequestToStart)
    {
        /// <summary>Every figure as one row each: the CSV, and what the page's table shows.</summary>
        public IEnumerable<Row> Rows()
        {
            foreach (var list in Waiting)
            {
                for (var band = 0; band < Bands.Count; band++)
                {
                    yield return new Row(list.WaitingFor, Bands[band].Label, list.ByBand[band]);
                }
                yield return new Row(list.WaitingFor, "All", list.Total);
            }
            yield return new Row("Median days from request to decision", "", RequestToDecision.Days);
            yield return new Row("Decisions in the period", "", RequestToDecision.Count);
            yield return new Row("Median days from request to service start", "", RequestToStart.Days);
            yield return new Row("Services started in the period", "", RequestToStart.Count);
        }
    }

    [CsvRecord]
    public sealed partial record Row(
        [property: CsvColumn("Figure")] string Figure,
        [property: CsvColumn("Wait")] string Wait,
        [property: CsvColumn("Value")] double? Value);

    public static IReadOnlyList<ReportDefinition> Definitions { get; } =
    [
        new("As at", "The waiting lists are counted as they stood at the end of the period's last day (UK time), or now if that day has not ended."),
        new(ForTriage, "Referrals sent (submitted) and not yet decided: no accept or decline by the coordination centre or the bed bureau. A referral passed between the two teams is still waiting. Waiting since the referral was sent."),
        new(ForService, "Referrals the coordination centre accepted into a community service (reablement, home care, therapy, voluntary sector) whose placement has not started. Waiting since that decision."),
        new(ForBed, "Referrals the bed bureau accepted for a bed (a bed reserved) where the person has not been admitted. Waiting since that decision."),
        new("Not waiting", "Referrals cancelled before the as-at time, declined, or whose service or bed has started, are on no list."),
        new("Wait bands", "Whole calendar months waited, as the ADASS snapshot surveys count them: under 1 month, 1 to 3 months, 3 to 6 months, 6 months or more (from the day it began, in UK days). See docs/reports.md for the source."),
        new("Median days from request to decision", "For each referral whose first accept or decline fell in the period: UK days from the day it was sent to the day of that decision. The median of those (the middle one, or the mean of the middle two)."),
        new("Median days from request to service start", "For each referral whose first service or bed started in the period: UK days from the day it was sent to the day it started. The median of those."),
        new("Filters", "Referring organisation: the organisation that sent the referral. Locality: the person's locality, from their postcode."),
    ];

    public sealed class Handler(Database database, TimeProvider clock) : IQueryHandler<Query, Result>
    {
        // Referrals that can be on a list at the as-at time or have a decision or a start in the period: sent before the
        // period ended, and still open or touched (updated, first decided or first started) since it began. A referral whose
        // last change came before the period cannot be either. Each part's referrals are those whose id leaves its number
        // when divided by the number of parts. The trust and locality narrow them (ReportFilter.Narrowing): no person is read
        // unless a locality is asked for.
        // On SQLite the ways in are a union, each reached by its own index (status; updated_at, 0026; first_decided_at and
        // first_started_at, 0028): an OR of them read every referral ever sent (issue 13, 1M referrals), and with UNION
        // rather than UNION ALL (the IN removing the repeats) SQLite 3.53 merged the parts in id order and so read each whole
        // table instead of its index (1.5 s for a month). PostgreSQL takes the OR as one bitmap of the four indexes, or
        // for a long period one scan of the table, each row read once: the union found every id through the heap and then
        // read its row again by key (a part of a year 1.6 s against 0.5 s, a month 110-190 ms against 38 ms, at 1M).
        private static string Relevant(StoreProvider provider, string narrowing) => provider == StoreProvider.PostgreSQL
            ? $"""
              FROM referral r
              WHERE (r.status IN ('submitted', 'in-triage', 'awaiting-information', 'accepted', 'redirected') OR r.updated_at >= @StartUtc
                     OR r.first_decided_at >= @StartUtc OR r.first_started_at >= @StartUtc)
                AND r.id % @Parts = @Part AND r.submitted_at IS NOT NULL AND r.submitted_at < @EndUtc{narrowing}
              """
            : $"""
              FROM referral r
              WHERE r.id IN (SELECT o.id FROM referral o WHERE o.status IN ('submitted', 'in-triage', 'awaiting-information', 'accepted', 'redirected') AND o.id % @Parts = @Part
                             UNION ALL SELECT u.id FROM referral u WHERE u.updated_at >= @StartUtc AND u.id % @Parts = @Part
                             UNION ALL SELECT d.id FROM referral d WHERE d.first_decided_at >= @StartUtc AND d.id % @Parts = @Part
                             UNION ALL SELECT s.id FROM referral s WHERE s.first_started_at >= @StartUtc AND s.id % @Parts = @Part)
                AND r.submitted_at IS NOT NULL AND r.submitted_at < @EndUtc{narrowing}
              """;

        public async ValueTask<Result> Handle(Query query, CancellationToken cancellationToken)
        {
            var filter = query.Filter;
            var now = clock.GetUtcNow();
            var asAt = filter.EndUtc < now ? filter.EndUtc : now;
            var asAtDay = filter.EndUtc < now ? filter.To : LondonTime.Today(clock);
            // The referrals read in parts by id, at once: a year at 1M referrals was over 2 s on one core (issue 13). A referral's
            // facts are all on its row, so the parts' counts add up and their days make one median.
            var parts = await ReportFilter.ReadAtOnceAsync(Enumerable.Range(0, ReportFilter.ReadParts),
                part => CountPartAsync(filter, asAt, asAtDay, part, ReportFilter.ReadParts, cancellationToken), cancellationToken);
            var toDecision = parts.SelectMany(p => p.ToDecision).ToList();
            var toStart = parts.SelectMany(p => p.ToStart).ToList();
            return new Result(asAtDay,
                [.. Lists.Select((l, i) => new WaitingList(l, [.. Enumerable.Range(0, Bands.Count).Select(b => parts.Sum(p => p.Waiting[i][b]))]))],
                new Median(MedianOf(toDecision), toDecision.Count), new Median(MedianOf(toStart), toStart.Count));
        }

        private sealed record Part(int[][] Waiting, List<int> ToDecision, List<int> ToStart);

        /// <summary>
        /// When referral r was cancelled: its change, kept for good. Not r.updated_at, which a note or a discharge recorded on the
        /// cancelled referral later moves on, putting it back on every list as at a day between. A referral cancelled with no
        /// change kept (written by hand) has only its last update to go by.
        /// </summary>
        private const string CancelledAt =
            "COALESCE((SELECT MIN(c.at) FROM change c WHERE c.entity_type = 'referral' AND c.entity_id = r.id AND c.kind = 'referral.cancelled'), r.updated_at)";

        private async Task<Part> CountPartAsync(ReportFilter filter, DateTimeOffset asAt, DateOnly asAtDay, int part, int partCount,
            CancellationToken cancellationToken)
        {
            var parameters = new { filter.StartUtc, filter.EndUtc, filter.Trust, filter.Locality, Part = part, Parts = partCount };
            await using var connection = await database.OpenForReportAsync(cancellationToken);
            // Each relevant referral with its first counted decision and first start, kept on it (ReferralFirsts: the first accept
            // or decline in either queue decides; a redirect between the teams is not a decision), read straight off the reader.
            await using var rows = await connection.ReadRowsAsync(new CommandDefinition(
                $"""
                SELECT r.submitted_at, CASE WHEN r.status = 'cancelled' THEN {CancelledAt} END,
                       r.first_decided_at, CASE WHEN r.first_decision LIKE 'accepted%' THEN r.first_decision_queue END, r.first_started_at
                {Relevant(database.Provider, filter.Narrowing(database.Provider))}
                """, parameters, cancellationToken: cancellationToken));
            var reader = rows.Reader;
            var days = new StoredTimes();
            const int Triage = 0, Service = 1, Bed = 2; // in the order of Lists
            var waiting = Lists.Select(_ => new int[Bands.Count]).ToArray();
            var toDecision = new List<int>();
            var toStart = new List<int>();
            while (await reader.ReadAsync(cancellationToken))
            {
                var requestedAt = StoredTimes.Read(reader.GetValue(0));
                DateTimeOffset? cancelledAt = StoredTimes.ReadOrNull(reader.GetValue(1));
                DateTimeOffset? decidedAt = StoredTimes.ReadOrNull(reader.GetValue(2));
                // The queue that accepted it; null when the first decision was a decline.
                var acceptedIn = reader.IsDBNull(3) ? null : reader.GetString(3);
                DateTimeOffset? started = StoredTimes.ReadOrNull(reader.GetValue(4));
                var requestDay = days.DayOf(requestedAt);
                if (decidedAt is { } decided && decided >= filter.StartUtc && decided < filter.EndUtc)
                {
                    toDecision.Add(days.DayOf(decided).DayNumber - requestDay.DayNumber);
                }
                if (started is { } start && start >= filter.StartUtc && start < filter.EndUtc)
                {
                    toStart.Add(days.DayOf(start).DayNumber - requestDay.DayNumber);
                }

                // Where the referral stood at the as-at time.
                var withdrawn = cancelledAt < asAt;
                if (withdrawn || requestedAt >= asAt || (started is { } st && st < asAt))
                {
                    continue;
                }
                if (decidedAt is not { } at || at >= asAt)
                {
                    waiting[Triage][BandOf(requestDay, asAtDay)]++;
                }
                else if (acceptedIn is not null)
                {
                    waiting[acceptedIn == "bed-bureau" ? Bed : Service][BandOf(days.DayOf(at), asAtDay)]++;
                }
            }
            return new Part(waiting, toDecision, toStart);
        }
    }

    /// <summary>The band of a wait that began on <paramref name="since"/>, counted in whole calendar months to <paramref name="asAt"/>.</summary>
    public static int BandOf(DateOnly since, DateOnly asAt)
    {
        var band = 0;
        for (var i = 1; i < Bands.Count; i++)
        {
            if (since.AddMonths(Bands[i].FromMonths) <= asAt)
            {
                band = i;
            }
        }
        return band;
    }

    public static double? MedianOf(List<int> days)
    {
        if (days.Count == 0)
        {
            return null;
        }
        days.Sort();
        var middle = days.Count / 2;
        return days.Count % 2 == 1 ? days[middle] : (days[middle - 1] + days[middle]) / 2.0;
    }

    public static void MapCsv(IEndpointRouteBuilder app) =>
        app.MapReportCsv<Result, Row>(Slug, filter => new Query(filter), result => result.Rows());
}
