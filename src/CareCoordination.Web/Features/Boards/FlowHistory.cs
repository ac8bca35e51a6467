using CareCoordination.Auth;
using CareCoordination.Domain;
using CareCoordination.Features.Reports;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Mediator;

namespace CareCoordination.Features.Boards;

/// <summary>
/// The last fortnight, day by day (London days): bed occupancy at the end of each day, referrals in and
/// placements started, and how long triage and placement took (median and 90th percentile).
/// </summary>
public static class FlowHistory
{
    [AllowRoles(Roles.Manager, Roles.Coordinator, Roles.BedBureau, Roles.Admin)]
    public sealed record Query : IQuery<Result>;

    /// <summary>The board's history: a fortnight, today the last of its days.</summary>
    public const int Days = 14;

    public sealed record Result(IReadOnlyList<Day> Days);

    public sealed record Day(DateOnly Date, int OccupancyPercent, int ReferralsIn, int PlacementsStarted,
        double? TriageMedianMinutes, double? TriageP90Minutes, double? PlacementMedianHours, double? PlacementP90Hours)
    {
        public string Label => Date.ToString("ddd d MMM", System.Globalization.CultureInfo.GetCultureInfo("en-GB"));
    }

    private sealed record BedNow(long Id, string Status);

    private readonly record struct Stay(DateTimeOffset From, DateTimeOffset? To);

    private readonly record struct Span(DateTimeOffset From, DateTimeOffset To);

    /// <summary>The nearest-rank percentile: a value that happened, never an interpolated one.</summary>
    public static double? Percentile(IReadOnlyList<double> values, double p) => OfSorted(Sorted(values), p);

    private static double[] Sorted(IEnumerable<double> values)
    {
        var sorted = values.ToArray();
        Array.Sort(sorted);
        return sorted;
    }

    /// <summary>The same of values already in order: a day's median and 90th percentile from one sort.</summary>
    private static double? OfSorted(double[] sorted, double p)
    {
        if (sorted.Length == 0)
        {
            return null;
        }
        var rank = (int)Math.Ceiling(p * sorted.Length);
        return sorted[Math.Clamp(rank, 1, sorted.Length) - 1];
    }

    // Each of the fortnight's reads hands its rows back as one text (PackedRow): about 40,000 times and the beds at 1M referrals,
    // where reading them column by column was a third of the fortnight's time (issue 14).

    /// <summary>
    /// The beds' stays still running or ended since the fortnight began (@from): two ranges of ix_placement_bed_stays (0031),
    /// written as two halves because one OR read every placement still running, services included (issue 14).
    /// </summary>
    internal static string BedStays(StoreProvider provider) => $"""
        SELECT {PackedRow.Select(provider, ["bed_id", "started_at", "ended_at"])} FROM placement
        WHERE bed_id IS NOT NULL AND started_at IS NOT NULL AND ended_at IS NULL
        UNION ALL
        SELECT {PackedRow.Select(provider, ["bed_id", "started_at", "ended_at"])} FROM placement
        WHERE bed_id IS NOT NULL AND started_at IS NOT NULL AND ended_at >= @from
        """;

    /// <summary>
    /// The placements started since @from with their referral's submission, kept on the placement (ReserveBed, AcceptIntoService):
    /// one range of ix_placement_started_submitted, not a lookup in the referral table for each (about 11,400 at 1M referrals,
    /// 25-31 ms, issue 14). A placement written without it (by hand, or a test's own row) still reads its referral.
    /// </summary>
    internal static string PlacementsStarted(StoreProvider provider) => $"""
        SELECT {PackedRow.Select(provider, ["submitted_at", "started_at"])} FROM (
            SELECT COALESCE(pl.referral_submitted_at, (SELECT r.submitted_at FROM referral r WHERE r.id = pl.referral_id)) AS submitted_at, pl.started_at
            FROM placement pl
            WHERE pl.started_at >= @from) started
        """;

    /// <summary>
    /// The fortnight last worked out on this node, shared by every open capacity board (SharedAtChange): the answer is the same
    /// for every viewer, and at 1M referrals it is about 30-45 ms of the server's CPU each time (issue 14). A change made without
    /// the change log shows to a board opened or reloaded a minute later.
    /// </summary>
    public sealed class Latest(Database database, TimeProvider clock) : SharedAtChange<Result>(database, clock, MaxAge)
    {
        internal static readonly TimeSpan MaxAge = TimeSpan.FromMinutes(1);

        protected override Task<Result> WorkOutAsync(System.Data.Common.DbConnection connection, long asOfSeq, DateTimeOffset now, DateOnly today) =>
            Fortnight(connection, Provider, today, now, CancellationToken.None);
    }

    public sealed class Handler(Latest latest) : IQueryHandler<Query, Result>
    {
        public async ValueTask<Result> Handle(Query query, CancellationToken cancellationToken) => await latest.GetAsync(cancellationToken);
    }

    private static async Task<Result> Fortnight(System.Data.Common.DbConnection connection, StoreProvider provider, DateOnly today,
        DateTimeOffset now, CancellationToken cancellationToken)
    {
        var first = today.AddDays(1 - Days);
        var from = LondonTime.StartOf(first);

        var beds = new List<BedNow>();
        await using (var rows = await connection.ReadRowsAsync(new CommandDefinition(
            $"SELECT {PackedRow.Select(provider, ["b.id", "b.status"])} FROM bed b JOIN ward w ON w.id = b.ward_id JOIN site s ON s.id = w.site_id WHERE s.active",
            cancellationToken: cancellationToken)))
        {
            var reader = rows.Reader;
            while (await reader.ReadAsync(cancellationToken))
            {
                var row = new PackedRow.Fields(reader, provider);
                beds.Add(new BedNow(row.Number(), row.Next().ToString()));
            }
        }
        var openBeds = beds.Count(b => b.Status != "closed");
        var stays = new Dictionary<long, List<Stay>>();
        await using (var rows = await connection.ReadRowsAsync(new CommandDefinition(BedStays(provider), new { from }, cancellationToken: cancellationToken)))
        {
            var reader = rows.Reader;
            while (await reader.ReadAsync(cancellationToken))
            {
                var row = new PackedRow.Fields(reader, provider);
                var bedId = row.Number();
                if (!stays.TryGetValue(bedId, out var bedStays))
                {
                    stays[bedId] = bedStays = [];
                }
                bedStays.Add(new Stay(row.Time(), row.TimeOrNone()));
            }
        }
        var placements = await SpansAsync(connection, provider, PlacementsStarted(provider), from, cancellationToken);
        // Triage ends with the coordination centre's first decision on the referral, kept on it (TriageTasks.KeepTriagedAsync):
        // the referrals decided in the fortnight are read from one index (triaged_at, submitted_at), not from each one's tasks
        // (issue 14, scale of history; EXPLAIN QUERY PLAN in bench history).
        var triage = await SpansAsync(connection, provider,
            $"SELECT {PackedRow.Select(provider, ["submitted_at", "triaged_at"])} FROM referral WHERE triaged_at >= @from", from, cancellationToken);

        // Each time is put in its day once (a fortnight at 1M referrals is about 35,000 of them), not looked for in every day.
        var bounds = new List<(DateOnly Date, DateTimeOffset Start, DateTimeOffset End)>();
        for (var date = first; date <= today; date = date.AddDays(1))
        {
            bounds.Add((date, LondonTime.StartOf(date), date == today ? now : LondonTime.StartOf(date.AddDays(1))));
        }
        int DayOf(DateTimeOffset at)
        {
            var (low, high) = (0, bounds.Count - 1);
            while (low <= high)
            {
                var middle = (low + high) / 2;
                if (at < bounds[middle].Start)
                {
                    high = middle - 1;
                }
                else if (at >= bounds[middle].End)
                {
                    low = middle + 1;
                }
                else
                {
                    return middle;
                }
            }
            return -1;
        }
        // Referrals in are only counted: each day's count is a range of ix_referral_submitted, not its times brought here.
        var counts = new DynamicParameters();
        var perDay = new List<string>();
        for (var i = 0; i < bounds.Count; i++)
        {
            counts.Add($"start{i}", bounds[i].Start);
            counts.Add($"end{i}", bounds[i].End);
            perDay.Add($"(SELECT COUNT(*) FROM referral WHERE submitted_at >= @start{i} AND submitted_at < @end{i}) AS day{i}");
        }
        var sent = ((IDictionary<string, object>)await connection.QuerySingleAsync("SELECT " + string.Join(", ", perDay), counts))
            .Values.Select(Convert.ToInt32).ToArray();
        // Each day's times in order, sorted once for both of its percentiles.
        double[][] ByDay(List<Span> spans, Func<TimeSpan, double> unit)
        {
            var byDay = bounds.Select(_ => new List<double>()).ToArray();
            foreach (var span in spans)
            {
                if (DayOf(span.To) is var day and >= 0)
                {
                    byDay[day].Add(unit(span.To - span.From));
                }
            }
            return [.. byDay.Select(Sorted)];
        }
        var triaged = ByDay(triage, taken => taken.TotalMinutes);
        var placed = ByDay(placements, taken => taken.TotalHours);

        var days = new List<Day>();
        for (var i = 0; i < bounds.Count; i++)
        {
            var end = bounds[i].End;
            var occupied = beds.Count(b => OccupiedAt(b, stays.GetValueOrDefault(b.Id, NoStays), end));
            days.Add(new Day(bounds[i].Date,
                openBeds == 0 ? 0 : Math.Min(100, (int)Math.Round(100.0 * occupied / openBeds, MidpointRounding.AwayFromZero)),
                sent[i],
                placed[i].Length,
                Round(OfSorted(triaged[i], 0.5)), Round(OfSorted(triaged[i], 0.9)),
                Round(OfSorted(placed[i], 0.5)), Round(OfSorted(placed[i], 0.9))));
        }
        return new Result(days.ToArray());
    }

    private static readonly List<Stay> NoStays = [];

    /// <summary>
    /// A bed was occupied at a time if a placement made here covered it; or, when no placement here came
    /// later, if it is occupied now by someone admitted before this system knew of them (a long-stay resident).
    /// </summary>
    private static bool OccupiedAt(BedNow bed, List<Stay> stays, DateTimeOffset at)
    {
        // Plain loops, no closure per call: this runs for every bed on every day (70,000 times at 5,000 beds).
        var later = false;
        foreach (var stay in stays)
        {
            if (stay.From <= at && (stay.To is null || stay.To > at))
            {
                return true;
            }
            later |= stay.From > at || stay.To is null;
        }
        return bed.Status == "occupied" && !later;
    }

    private static async Task<List<Span>> SpansAsync(System.Data.Common.DbConnection connection, StoreProvider provider, string sql, DateTimeOffset from, CancellationToken cancellationToken)
    {
        var spans = new List<Span>();
        await using var rows = await connection.ReadRowsAsync(new CommandDefinition(sql, new { from }, cancellationToken: cancellationToken));
        var reader = rows.Reader;
        while (await reader.ReadAsync(cancellationToken))
        {
            var row = new PackedRow.Fields(reader, provider);
            spans.Add(new Span(row.Time(), row.Time()));
        }
        return spans;
    }

    private static double? Round(double? value) => value is { } v ? Math.Round(v, 1) : null;
}
