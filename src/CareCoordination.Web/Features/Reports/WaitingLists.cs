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

    /// <summary>A relevant referral; CancelledAt is when a cancelled one last changed (taken as when it was withdrawn), else null.</summary>
    private readonly record struct Referral(long Id, DateTimeOffset RequestedAt, DateTimeOffset? CancelledAt);

    private sealed record Decided(string Queue, string Decision, DateTimeOffset CompletedAt);

    public sealed class Handler(Database database, TimeProvider clock) : IQueryHandler<Query, Result>
    {
        // Referrals that can be on a list at the as-at time or have a decision or a start in the period: sent before the
        // period ended, and still open or touched (updated, or a placement started) since it began. A referral whose last
        // change came before the period cannot be either. The three ways in are a union, each reached by its own index
        // (status; updated_at, 0026; placement started_at with its referral, 0027): an OR of them read every referral ever sent (issue 13, 1M referrals).
        // Each part's referrals are those whose id leaves its number when divided by the number of parts. The trust and
        // locality narrow them (ReportFilter.Narrowing): no person is read unless a locality is asked for.
        private static string Relevant(string narrowing) => $"""
            FROM referral r
            WHERE r.id IN (SELECT o.id FROM referral o WHERE o.status IN ('submitted', 'in-triage', 'awaiting-information', 'accepted', 'redirected') AND o.id % @Parts = @Part
                           UNION SELECT u.id FROM referral u WHERE u.updated_at >= @StartUtc AND u.id % @Parts = @Part
                           UNION SELECT s.referral_id FROM placement s WHERE s.started_at >= @StartUtc AND s.referral_id % @Parts = @Part)
              AND r.submitted_at IS NOT NULL AND r.submitted_at < @EndUtc{narrowing}
            """;

        public async ValueTask<Result> Handle(Query query, CancellationToken cancellationToken)
        {
            var filter = query.Filter;
            var now = clock.GetUtcNow();
            var asAt = filter.EndUtc < now ? filter.EndUtc : now;
            var asAtDay = filter.EndUtc < now ? filter.To : LondonTime.Today(clock);
            // The referrals read in parts by id, at once: a year is 900,000 rows, over 2 s on one core (issue 13). A referral's
            // facts are all in its part, so the parts' counts add up and their days make one median.
            var parts = await ReportFilter.ReadAtOnceAsync(Enumerable.Range(0, ReportFilter.ReadParts),
                part => CountPartAsync(filter, asAt, asAtDay, part, ReportFilter.ReadParts, cancellationToken), cancellationToken);
            var toDecision = parts.SelectMany(p => p.ToDecision).ToList();
            var toStart = parts.SelectMany(p => p.ToStart).ToList();
            return new Result(asAtDay,
                [.. Lists.Select((l, i) => new WaitingList(l, [.. Enumerable.Range(0, Bands.Count).Select(b => parts.Sum(p => p.Waiting[i][b]))]))],
                new Median(MedianOf(toDecision), toDecision.Count), new Median(MedianOf(toStart), toStart.Count));
        }

        private sealed record Part(int[][] Waiting, List<int> ToDecision, List<int> ToStart);

        private async Task<Part> CountPartAsync(ReportFilter filter, DateTimeOffset asAt, DateOnly asAtDay, int part, int partCount,
            CancellationToken cancellationToken)
        {
            var parameters = new { filter.StartUtc, filter.EndUtc, filter.Trust, filter.Locality, Part = part, Parts = partCount };
            await using var connection = await database.OpenAsync(cancellationToken);
            // The relevant referrals once (a CTE used three times is read once, on both stores), with their decisions and starts.
            // The first accept or decline decides; a redirect between the teams is not a decision.
            // One row per referral (kind 0), per decision of one (1) and per referral's first start (2), read straight off the
            // reader: a year is 900,000 rows, and mapping each to an object first cost as much as the query (issue 13).
            await using var reader = await connection.ExecuteReaderAsync(new CommandDefinition(
                $"""
                WITH relevant AS (SELECT r.id AS id, r.submitted_at AS requested_at,
                                         CASE WHEN r.status = 'cancelled' THEN r.updated_at END AS cancelled_at
                                  {Relevant(filter.Narrowing(database.Provider))})
                SELECT 0 AS kind, x.id, x.requested_at, NULL AS queue, x.cancelled_at, NULL AS decision
                FROM relevant x
                UNION ALL
                SELECT 1, t.referral_id, t.completed_at, t.queue, NULL, t.decision
                FROM relevant x JOIN triage_task t ON t.referral_id = x.id
                WHERE t.completed_at IS NOT NULL AND (t.decision LIKE 'accepted%' OR t.decision LIKE 'declined%')
                UNION ALL
                SELECT 2, p.referral_id, MIN(p.started_at), NULL, NULL, NULL
                FROM relevant x JOIN placement p ON p.referral_id = x.id
                WHERE p.started_at IS NOT NULL GROUP BY p.referral_id
                """, parameters, cancellationToken: cancellationToken));
            var referrals = new List<Referral>();
            var decisions = new Dictionary<long, Decided>();
            var starts = new Dictionary<long, DateTimeOffset>();
            while (await reader.ReadAsync(cancellationToken))
            {
                var id = reader.GetInt64(1);
                var at = StoredTimes.Read(reader.GetValue(2));
                switch (reader.GetInt32(0))
                {
                    case 0:
                        referrals.Add(new Referral(id, at, reader.IsDBNull(4) ? null : StoredTimes.Read(reader.GetValue(4))));
                        break;
                    case 1:
                        // The first accept or decline decides (the earliest; of equal times, the first read).
                        if (!decisions.TryGetValue(id, out var earlier) || at < earlier.CompletedAt)
                        {
                            decisions[id] = new Decided(reader.GetString(3), reader.GetString(5), at);
                        }
                        break;
                    default:
                        starts[id] = at;
                        break;
                }
            }

            var days = new StoredTimes();
            const int Triage = 0, Service = 1, Bed = 2; // in the order of Lists
            var waiting = Lists.Select(_ => new int[Bands.Count]).ToArray();
            var toDecision = new List<int>();
            var toStart = new List<int>();
            foreach (var referral in referrals)
            {
                var decision = decisions.GetValueOrDefault(referral.Id);
                DateTimeOffset? started = starts.TryGetValue(referral.Id, out var s) ? s : null;
                var requestDay = days.DayOf(referral.RequestedAt);
                if (decision is not null && decision.CompletedAt >= filter.StartUtc && decision.CompletedAt < filter.EndUtc)
                {
                    toDecision.Add(days.DayOf(decision.CompletedAt).DayNumber - requestDay.DayNumber);
                }
                if (started is { } start && start >= filter.StartUtc && start < filter.EndUtc)
                {
                    toStart.Add(days.DayOf(start).DayNumber - requestDay.DayNumber);
                }

                // Where the referral stood at the as-at time.
                var withdrawn = referral.CancelledAt < asAt;
                if (withdrawn || referral.RequestedAt >= asAt || (started is { } st && st < asAt))
                {
                    continue;
                }
                if (decision is null || decision.CompletedAt >= asAt)
                {
                    waiting[Triage][BandOf(requestDay, asAtDay)]++;
                }
                else if (decision.Decision.StartsWith("accepted", StringComparison.Ordinal))
                {
                    waiting[decision.Queue == "bed-bureau" ? Bed : Service][BandOf(days.DayOf(decision.CompletedAt), asAtDay)]++;
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
