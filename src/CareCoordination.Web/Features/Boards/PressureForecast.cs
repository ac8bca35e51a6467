using System.Data.Common;
using CareCoordination.Auth;
using CareCoordination.Domain;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Mediator;
using Microsoft.Extensions.Options;

namespace CareCoordination.Features.Boards;

/// <summary>
/// The pressure forecast on the capacity board: for each of the next 7 London days, the referrals expected, the demand
/// for reablement slots and for each bed type (low, likely, high), and the day each is expected to run out.
/// Plain on purpose, so a manager can check it by hand (docs/forecast.md):
/// <list type="bullet">
/// <item>Referrals: the same weekday over the last weeks of complete days (seasonal naive): likely the mean, low the
/// quietest, high the busiest.</item>
/// <item>Demand (a slot or a bed taken, i.e. an acceptance): each expected referral times the share of recent referrals that
/// ended in that slot or bed type, spread over the day it arrives and the days after as recent acceptances were; plus each referral already with us (in triage, awaiting
/// information, in the bed bureau's queue) times the share of recent referrals of its pathway (and queue) that did,
/// on the first day or, when sent early, on its expected discharge date. Low and high: the 10th and 90th percentile of a
/// Poisson count (people arrive one by one) around the quietest and the busiest weekday's figure.</item>
/// <item>Running out: reablement has its confirmed slots each day; a bed type has its free and cleaning beds now, plus
/// the beds that ended on the same weekday lately (mean; the fewest for "may run out"), less the demand.</item>
/// </list>
/// </summary>
public static class PressureForecast
{
    public const int Horizon = 7;
    public const string Reablement = "reablement";

    /// <summary>The bed types, in the board's order.</summary>
    public static readonly IReadOnlyList<string> BedTypes = ["rehabilitation", "step-down-nursing", "residential", "nursing", "dementia"];

    [AllowRoles(Roles.Manager, Roles.Coordinator, Roles.BedBureau, Roles.Admin)]
    public sealed record Query : IQuery<Result>;

    /// <param name="WeeksUsed">Complete weeks of history the weekday figures came from (fewer than asked on a young store).</param>
    public sealed record Result(DateTimeOffset MadeAt, int WeeksUsed, PipelineNow Pipeline, IReadOnlyList<Day> Days, IReadOnlyList<Outlook> Outlooks);

    public sealed record Band(double Low, double Likely, double High)
    {
        public static Band Zero { get; } = new(0, 0, 0);
    }

    /// <param name="Demand">Keyed by measure: "reablement" or a bed type.</param>
    public sealed record Day(DateOnly Date, Band Referrals, IReadOnlyDictionary<string, Band> Demand)
    {
        public string Label => Date.ToString("ddd d MMM", System.Globalization.CultureInfo.GetCultureInfo("en-GB"));
    }

    /// <summary>What a measure has now and when it is expected to run out (null: not within the 7 days).</summary>
    /// <param name="PerDay">Reablement's confirmed slots a day; null for beds, which are a stock.</param>
    /// <param name="MayRunOutOn">The same with the busy end of the band (high demand, fewest beds freed).</param>
    public sealed record Outlook(string Measure, int FreeNow, int? PerDay, DateOnly? RunsOutOn, DateOnly? MayRunOutOn);

    public sealed record PipelineNow(int InTriage, int AwaitingInformation, int BedBureauQueue)
    {
        public int Total => InTriage + AwaitingInformation + BedBureauQueue;
    }

    // ---- What the forecast is made from (read from the store as known at one instant) ----

    /// <summary>One complete London day of history.</summary>
    public sealed record HistoryDay(DateOnly Date, int Referrals, IReadOnlyDictionary<string, int> BedsFreed);

    /// <summary>A referral with us when the forecast is made.</summary>
    /// <param name="ExpectedOn">Its expected discharge date, else its discharge ready date.</param>
    public sealed record Open(string Pathway, bool InBedBureau, bool AwaitingInformation, DateOnly? ExpectedOn);

    /// <summary>A recent referral that has left the pipeline, the slot or bed type it took (null: none), and how many London days after it was sent.</summary>
    public sealed record Outcome(string Pathway, bool ViaBedBureau, string? Measure, int LagDays = 0);

    public sealed record Capacity(int ReablementPerDay, IReadOnlyDictionary<string, int> BedsFreeNow);

    public sealed record Inputs(DateOnly FirstDay, int Weeks, IReadOnlyList<HistoryDay> History, IReadOnlyList<Open> Pipeline,
        IReadOnlyList<Outcome> Outcomes, Capacity Capacity);

    public static IEnumerable<string> Measures => [Reablement, .. BedTypes];

    public sealed class Handler(Database database, TimeProvider clock, IOptionsMonitor<BoardSettings> boards) : IQueryHandler<Query, Result>
    {
        public async ValueTask<Result> Handle(Query query, CancellationToken cancellationToken)
        {
            var now = clock.GetUtcNow();
            await using var connection = await database.OpenAsync(cancellationToken);
            var inputs = await ReadAsync(connection, now, LondonTime.DateOf(now).AddDays(1), boards.CurrentValue.ForecastWeeks, cancellationToken);
            inputs = inputs with { Capacity = await CapacityNowAsync(connection, cancellationToken) };
            return Make(inputs, now);
        }
    }

    /// <summary>
    /// Everything the forecast needs as it was known at <paramref name="asOf"/>: history of the complete London days
    /// before it, the referrals open at that instant and the outcomes of the recent ones. Capacity is left empty: the
    /// store keeps it as it is now, so only the board (made now) reads it (<see cref="CapacityNowAsync"/>).
    /// </summary>
    public static async Task<Inputs> ReadAsync(DbConnection connection, DateTimeOffset asOf, DateOnly firstDay, int weeks,
        CancellationToken cancellationToken = default)
    {
        var lastComplete = LondonTime.DateOf(asOf).AddDays(-1);
        var firstHistory = lastComplete.AddDays(1 - 7 * weeks);
        // Days before the store's first referral are not quiet days: they are before it was used.
        var firstEver = await connection.ExecuteScalarAsync<DateTimeOffset?>(new CommandDefinition(
            "SELECT MIN(submitted_at) FROM referral WHERE submitted_at IS NOT NULL", cancellationToken: cancellationToken));
        if (firstEver is { } first && LondonTime.DateOf(first) > firstHistory)
        {
            firstHistory = LondonTime.DateOf(first);
        }
        var from = LondonTime.StartOf(firstHistory);
        var window = new { from, asOf };

        var submitted = (await connection.QueryAsync<DateTimeOffset>(new CommandDefinition(
            "SELECT submitted_at FROM referral WHERE submitted_at >= @from AND submitted_at < @asOf", window, cancellationToken: cancellationToken)))
            .Select(LondonTime.DateOf).ToLookup(d => d);
        var ended = (await connection.QueryAsync<Ended>(new CommandDefinition(
            """
            SELECT pl.ended_at AS At, b.bed_type AS BedType FROM placement pl JOIN bed b ON b.id = pl.bed_id
            WHERE pl.status = 'ended' AND pl.ended_at >= @from AND pl.ended_at < @asOf
            """, window, cancellationToken: cancellationToken))).ToLookup(e => LondonTime.DateOf(e.At));
        var history = new List<HistoryDay>();
        for (var date = firstHistory; date <= lastComplete; date = date.AddDays(1))
        {
            history.Add(new HistoryDay(date, submitted[date].Count(),
                ended[date].GroupBy(e => e.BedType).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal)));
        }

        // The tasks open at that instant: still open now, or closed since. One live task per referral (ux_triage_task_open).
        var open = (await connection.QueryAsync<OpenRow>(new CommandDefinition(
            $"""
            SELECT t.queue AS Queue, t.status AS Status, t.on_hold_since AS OnHoldSince, r.pathway AS Pathway,
                   COALESCE(r.expected_discharge_on, r.medically_optimised_on) AS ExpectedOn
            FROM triage_task t JOIN referral r ON r.id = t.referral_id
            WHERE t.created_at < @asOf AND (t.status IN ({OpenTasks}) OR t.completed_at >= @asOf)
            """, window, cancellationToken: cancellationToken))).ToList();
        var pipeline = open.Select(o => new Open(o.Pathway, o.Queue == "bed-bureau", o.Status == "on-hold" && o.OnHoldSince < asOf, o.ExpectedOn)).ToList();

        // Outcomes: the referrals sent in the window that had left the pipeline by then, and what each took first.
        var outcomes = (await connection.QueryAsync<OutcomeRow>(new CommandDefinition(
            $"""
            SELECT r.pathway AS Pathway,
                   CASE WHEN EXISTS (SELECT 1 FROM triage_task b WHERE b.referral_id = r.id AND b.queue = 'bed-bureau' AND b.created_at < @asOf)
                        THEN 1 ELSE 0 END AS ViaBedBureau,
                   s.kind AS ServiceKind, bd.bed_type AS BedType, r.submitted_at AS SubmittedAt, pl.created_at AS TakenAt
            FROM referral r
            LEFT JOIN placement pl ON pl.id = (SELECT MIN(p.id) FROM placement p WHERE p.referral_id = r.id AND p.created_at < @asOf)
            LEFT JOIN service s ON s.id = pl.service_id
            LEFT JOIN bed bd ON bd.id = pl.bed_id
            WHERE r.submitted_at >= @from AND r.submitted_at < @asOf
              AND NOT EXISTS (SELECT 1 FROM triage_task t WHERE t.referral_id = r.id AND t.created_at < @asOf
                              AND (t.status IN ({OpenTasks}) OR t.completed_at >= @asOf))
            """, window, cancellationToken: cancellationToken)))
            .Select(o => new Outcome(o.Pathway, o.ViaBedBureau == 1, o.ServiceKind == Reablement ? Reablement : o.BedType,
                o.TakenAt is { } at ? LondonTime.DateOf(at).DayNumber - LondonTime.DateOf(o.SubmittedAt).DayNumber : 0))
            .ToList();

        return new Inputs(firstDay, weeks, history, pipeline, outcomes, new Capacity(0, new Dictionary<string, int>()));
    }

    /// <summary>Capacity as the board counts it: reablement's confirmed slots a day; free and cleaning beds per type at active sites.</summary>
    public static async Task<Capacity> CapacityNowAsync(DbConnection connection, CancellationToken cancellationToken = default)
    {
        var perDay = await connection.ExecuteScalarAsync<long>(new CommandDefinition(
            "SELECT COALESCE(SUM(capacity_per_day), 0) FROM service WHERE active AND kind = 'reablement'", cancellationToken: cancellationToken));
        var beds = (await connection.QueryAsync<(string BedType, long Free)>(new CommandDefinition(
            """
            SELECT b.bed_type, COUNT(*) FROM bed b JOIN ward w ON w.id = b.ward_id JOIN site s ON s.id = w.site_id
            WHERE s.active AND b.status IN ('available', 'cleaning') GROUP BY b.bed_type
            """, cancellationToken: cancellationToken))).ToDictionary(b => b.BedType, b => (int)b.Free, StringComparer.Ordinal);
        return new Capacity((int)perDay, beds);
    }

    /// <summary>The forecast itself, from its inputs alone: no store, no clock.</summary>
    public static Result Make(Inputs inputs, DateTimeOffset madeAt)
    {
        var lastComplete = inputs.History.Count == 0 ? inputs.FirstDay.AddDays(-1) : inputs.History.Max(h => h.Date);
        var byDate = inputs.History.ToDictionary(h => h.Date);
        // A week further back than the weeks asked for: the last forecast day's own weekday a week before it is the day the
        // forecast is made, which is not complete, and it still learns from as many weeks as every other day; the nearest kept.
        List<HistoryDay> SameWeekday(DateOnly date) =>
            Enumerable.Range(1, 7 * (inputs.Weeks + 1)).Select(back => date.AddDays(-back))
                .Where(d => d.DayOfWeek == date.DayOfWeek && d <= lastComplete && byDate.ContainsKey(d))
                .Select(d => byDate[d]).Take(inputs.Weeks).ToList();

        var share = Shares(inputs.Outcomes);
        var byPathway = inputs.Outcomes.GroupBy(o => o.Pathway).ToDictionary(g => g.Key, g => Shares(g.ToList()));
        var byPathwayViaBureau = inputs.Outcomes.Where(o => o.ViaBedBureau).GroupBy(o => o.Pathway).ToDictionary(g => g.Key, g => Shares(g.ToList()));

        // The pipeline, converted: each open referral's chance of each measure, on the day it is expected to land.
        var landing = new Dictionary<(DateOnly, string), double>();
        foreach (var referral in inputs.Pipeline)
        {
            var on = referral.ExpectedOn is { } expected && expected > inputs.FirstDay ? expected : inputs.FirstDay;
            var shares = (referral.InBedBureau ? byPathwayViaBureau : byPathway).GetValueOrDefault(referral.Pathway)
                ?? byPathway.GetValueOrDefault(referral.Pathway) ?? share;
            foreach (var (measure, p) in shares)
            {
                landing[(on, measure)] = landing.GetValueOrDefault((on, measure)) + p;
            }
        }

        // Not every referral is accepted the day it arrives (one sent in the evening is decided the next morning): an expected
        // referral's demand is spread over the days after it as recent acceptances were. Earlier arrivals are in the pipeline.
        var taken = inputs.Outcomes.Where(o => o.Measure is not null).ToList();
        var lag = Enumerable.Range(0, Horizon).Select(j => taken.Count == 0 ? (j == 0 ? 1.0 : 0.0) : taken.Count(o => Math.Max(0, o.LagDays) == j) / (double)taken.Count).ToArray();
        var expectedReferrals = new List<Band>();

        var days = new List<Day>();
        var freed = new Dictionary<DateOnly, Dictionary<string, (double Likely, double Fewest)>>();
        for (var date = inputs.FirstDay; date < inputs.FirstDay.AddDays(Horizon); date = date.AddDays(1))
        {
            var samples = SameWeekday(date);
            var referrals = samples.Count == 0 ? Band.Zero
                : new Band(samples.Min(s => s.Referrals), samples.Average(s => s.Referrals), samples.Max(s => s.Referrals));
            expectedReferrals.Add(referrals);
            // Referrals arriving today and on the forecast days before it that are accepted today.
            var arriving = new Band(
                expectedReferrals.Select((b, i) => b.Low * lag[expectedReferrals.Count - 1 - i]).Sum(),
                expectedReferrals.Select((b, i) => b.Likely * lag[expectedReferrals.Count - 1 - i]).Sum(),
                expectedReferrals.Select((b, i) => b.High * lag[expectedReferrals.Count - 1 - i]).Sum());
            var demand = new Dictionary<string, Band>(StringComparer.Ordinal);
            foreach (var measure in Measures)
            {
                var known = landing.GetValueOrDefault((date, measure));
                var p = share.GetValueOrDefault(measure);
                demand[measure] = new Band(
                    PoissonQuantile(arriving.Low * p + known, 0.1),
                    arriving.Likely * p + known,
                    PoissonQuantile(arriving.High * p + known, 0.9));
            }
            days.Add(new Day(date, Round(referrals), demand.ToDictionary(d => d.Key, d => Round(d.Value), StringComparer.Ordinal)));
            freed[date] = BedTypes.ToDictionary(t => t, t => samples.Count == 0 ? (0.0, 0.0)
                : (samples.Average(s => (double)s.BedsFreed.GetValueOrDefault(t)), (double)samples.Min(s => s.BedsFreed.GetValueOrDefault(t))), StringComparer.Ordinal);
        }

        var outlooks = new List<Outlook>
        {
            new(Reablement, inputs.Capacity.ReablementPerDay, inputs.Capacity.ReablementPerDay,
                days.FirstOrDefault(d => d.Demand[Reablement].Likely > inputs.Capacity.ReablementPerDay)?.Date,
                days.FirstOrDefault(d => d.Demand[Reablement].High > inputs.Capacity.ReablementPerDay)?.Date),
        };
        foreach (var type in BedTypes)
        {
            var freeNow = inputs.Capacity.BedsFreeNow.GetValueOrDefault(type);
            outlooks.Add(new Outlook(type, freeNow, null,
                RunsOut(freeNow, days, d => d.Demand[type].Likely, d => freed[d.Date][type].Likely),
                RunsOut(freeNow, days, d => d.Demand[type].High, d => freed[d.Date][type].Fewest)));
        }

        var pipelineNow = new PipelineNow(
            inputs.Pipeline.Count(o => !o.InBedBureau && !o.AwaitingInformation),
            inputs.Pipeline.Count(o => !o.InBedBureau && o.AwaitingInformation),
            inputs.Pipeline.Count(o => o.InBedBureau));
        return new Result(madeAt, Math.Min(inputs.History.Count / 7, inputs.Weeks), pipelineNow, days, outlooks);
    }

    /// <summary>A stock of beds runs out on the first day its free beds, plus those freed, less those taken, go below none.</summary>
    private static DateOnly? RunsOut(int freeNow, IEnumerable<Day> days, Func<Day, double> taken, Func<Day, double> freed)
    {
        double free = freeNow;
        foreach (var day in days)
        {
            free += freed(day) - taken(day);
            if (free < 0)
            {
                return day.Date;
            }
        }
        return null;
    }

    /// <summary>Of the outcomes, the share that took each measure.</summary>
    private static Dictionary<string, double> Shares(IReadOnlyCollection<Outcome> outcomes) =>
        outcomes.Count == 0 ? []
            : outcomes.Where(o => o.Measure is not null).GroupBy(o => o.Measure!)
                .ToDictionary(g => g.Key, g => (double)g.Count() / outcomes.Count, StringComparer.Ordinal);

    /// <summary>The smallest count whose Poisson probability of being reached or undercut is at least <paramref name="p"/>.</summary>
    public static int PoissonQuantile(double mean, double p)
    {
        if (mean <= 0)
        {
            return 0;
        }
        // Summed in logs so that a large mean (a county's referrals) does not underflow.
        var logTerm = -mean;
        var cumulative = Math.Exp(logTerm);
        var k = 0;
        while (cumulative < p && k < 100_000)
        {
            k++;
            logTerm += Math.Log(mean / k);
            cumulative += Math.Exp(logTerm);
        }
        return k;
    }

    private static Band Round(Band band) => new(Round(band.Low), Round(band.Likely), Round(band.High));

    private static double Round(double value) => Math.Round(value, 1, MidpointRounding.AwayFromZero);

    private static readonly string OpenTasks = Sql.Literals(["requested", "received", "accepted", "ready", "in-progress", "on-hold"]);

    private sealed record Ended
    {
        public DateTimeOffset At { get; init; }
        public string BedType { get; init; } = "";
    }

    private sealed record OpenRow
    {
        public string Queue { get; init; } = "";
        public string Status { get; init; } = "";
        public DateTimeOffset? OnHoldSince { get; init; }
        public string Pathway { get; init; } = "";
        public DateOnly? ExpectedOn { get; init; }
    }

    private sealed record OutcomeRow
    {
        public string Pathway { get; init; } = "";
        public long ViaBedBureau { get; init; }
        public string? ServiceKind { get; init; }
        public string? BedType { get; init; }
        public DateTimeOffset SubmittedAt { get; init; }
        public DateTimeOffset? TakenAt { get; init; }
    }
}
