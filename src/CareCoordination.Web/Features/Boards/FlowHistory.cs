using CareCoordination.Auth;
using CareCoordination.Domain;
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
    public sealed record Query(int Days = 14) : IQuery<Result>;

    public sealed record Result(IReadOnlyList<Day> Days);

    public sealed record Day(DateOnly Date, int OccupancyPercent, int ReferralsIn, int PlacementsStarted,
        double? TriageMedianMinutes, double? TriageP90Minutes, double? PlacementMedianHours, double? PlacementP90Hours)
    {
        public string Label => Date.ToString("ddd d MMM", System.Globalization.CultureInfo.GetCultureInfo("en-GB"));
    }

    private sealed record BedNow
    {
        public long Id { get; init; }
        public string Status { get; init; } = "";
    }

    private sealed record Stay
    {
        public long BedId { get; init; }
        public DateTimeOffset From { get; init; }
        public DateTimeOffset? To { get; init; }
    }

    private sealed record Span
    {
        public DateTimeOffset From { get; init; }
        public DateTimeOffset? To { get; init; }
    }

    /// <summary>The nearest-rank percentile: a value that happened, never an interpolated one.</summary>
    public static double? Percentile(IReadOnlyList<double> values, double p)
    {
        if (values.Count == 0)
        {
            return null;
        }
        var sorted = values.Order().ToList();
        var rank = (int)Math.Ceiling(p * sorted.Count);
        return sorted[Math.Clamp(rank, 1, sorted.Count) - 1];
    }

    /// <summary>
    /// The beds' stays still running or ended since the fortnight began (@from): two ranges of ix_placement_bed_stays (0031),
    /// written as two halves because one OR read every placement still running, services included (issue 14).
    /// </summary>
    internal const string BedStays = """
        SELECT bed_id AS BedId, started_at AS "From", ended_at AS "To" FROM placement
        WHERE bed_id IS NOT NULL AND started_at IS NOT NULL AND ended_at IS NULL
        UNION ALL
        SELECT bed_id AS BedId, started_at AS "From", ended_at AS "To" FROM placement
        WHERE bed_id IS NOT NULL AND started_at IS NOT NULL AND ended_at >= @from
        """;

    public sealed class Handler(Database database, TimeProvider clock) : IQueryHandler<Query, Result>
    {
        public async ValueTask<Result> Handle(Query query, CancellationToken cancellationToken)
        {
            var now = clock.GetUtcNow();
            var today = LondonTime.Today(clock);
            var first = today.AddDays(1 - query.Days);
            var from = LondonTime.StartOf(first);
            await using var connection = await database.OpenAsync(cancellationToken);

            var beds = (await connection.QueryAsync<BedNow>(
                "SELECT b.id AS Id, b.status AS Status FROM bed b JOIN ward w ON w.id = b.ward_id JOIN site s ON s.id = w.site_id WHERE s.active")).ToList();
            var openBeds = beds.Count(b => b.Status != "closed");
            var stays = (await connection.QueryAsync<Stay>(BedStays, new { from })).GroupBy(s => s.BedId).ToDictionary(g => g.Key, g => g.ToArray());
            var submitted = (await connection.QueryAsync<DateTimeOffset>(
                "SELECT submitted_at FROM referral WHERE submitted_at >= @from", new { from })).ToList();
            var placements = (await connection.QueryAsync<Span>(
                """
                SELECT r.submitted_at AS "From", pl.started_at AS "To" FROM placement pl JOIN referral r ON r.id = pl.referral_id
                WHERE pl.started_at >= @from
                """, new { from })).ToList();
            // Triage ends with the coordination centre's first decision on the referral, kept on it (TriageTasks.KeepTriagedAsync):
            // the referrals decided in the fortnight are read from one index (triaged_at, submitted_at), not from each one's tasks
            // (issue 14, scale of history; EXPLAIN QUERY PLAN in bench history).
            var triage = (await connection.QueryAsync<Span>(
                """SELECT submitted_at AS "From", triaged_at AS "To" FROM referral WHERE triaged_at >= @from""", new { from })).ToList();

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
            var sent = new int[bounds.Count];
            foreach (var at in submitted)
            {
                if (DayOf(at) is var day and >= 0)
                {
                    sent[day]++;
                }
            }
            List<double>[] ByDay(List<Span> spans, Func<TimeSpan, double> unit)
            {
                var byDay = bounds.Select(_ => new List<double>()).ToArray();
                foreach (var span in spans)
                {
                    if (DayOf(span.To!.Value) is var day and >= 0)
                    {
                        byDay[day].Add(unit(span.To.Value - span.From));
                    }
                }
                return byDay;
            }
            var triaged = ByDay(triage, taken => taken.TotalMinutes);
            var placed = ByDay(placements, taken => taken.TotalHours);

            var days = new List<Day>();
            for (var i = 0; i < bounds.Count; i++)
            {
                var end = bounds[i].End;
                var occupied = beds.Count(b => OccupiedAt(b, stays.GetValueOrDefault(b.Id, []), end));
                days.Add(new Day(bounds[i].Date,
                    openBeds == 0 ? 0 : Math.Min(100, (int)Math.Round(100.0 * occupied / openBeds, MidpointRounding.AwayFromZero)),
                    sent[i],
                    placed[i].Count,
                    Round(Percentile(triaged[i], 0.5)), Round(Percentile(triaged[i], 0.9)),
                    Round(Percentile(placed[i], 0.5)), Round(Percentile(placed[i], 0.9))));
            }
            return new Result(days);
        }

        /// <summary>
        /// A bed was occupied at a time if a placement made here covered it; or, when no placement here came
        /// later, if it is occupied now by someone admitted before this system knew of them (a long-stay resident).
        /// </summary>
        private static bool OccupiedAt(BedNow bed, Stay[] stays, DateTimeOffset at)
        {
            if (stays.Any(s => s.From <= at && (s.To is null || s.To > at)))
            {
                return true;
            }
            return bed.Status == "occupied" && !stays.Any(s => s.From > at || s.To is null);
        }

        private static double? Round(double? value) => value is { } v ? Math.Round(v, 1) : null;
    }
}
