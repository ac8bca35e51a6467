using CareCoordination.Auth;
using CareCoordination.Domain;
using CareCoordination.Features.BedBureau;
using CareCoordination.Features.Coordination;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Mediator;
using Microsoft.Extensions.Options;

namespace CareCoordination.Features.Boards;

/// <summary>
/// The capacity board's figures as they stand: beds by status per site and type, occupancy, service
/// capacity free today, the queues, today's referrals, and the people medically optimised but not yet
/// placed with what their wait costs; and the escalation level those figures reach.
/// </summary>
public static class CapacityBoard
{
    [AllowRoles(Roles.Manager, Roles.Coordinator, Roles.BedBureau, Roles.Admin)]
    public sealed record Query : IQuery<Result>;

    public sealed record Result(
        DateTimeOffset AsOf,
        long AsOfSeq,
        BedCounts Total,
        IReadOnlyList<SiteBeds> Sites,
        IReadOnlyList<TypeBeds> Types,
        IReadOnlyList<ServiceCapacity> Services,
        IReadOnlyList<QueueFigures> Queues,
        int ReferralsToday,
        Delay Delayed,
        Escalation Escalation);

    public sealed record BedCounts(int Available, int Reserved, int Occupied, int Closed, int Cleaning, int Stale)
    {
        public int Total => Available + Reserved + Occupied + Closed + Cleaning;

        public int Open => Total - Closed;

        /// <summary>Occupied beds as a share of the beds open to admissions.</summary>
        public int OccupancyPercent => Open == 0 ? 0 : (int)Math.Round(100.0 * Occupied / Open, MidpointRounding.AwayFromZero);

        /// <summary>The figures from beds the store counted by status (a GROUP BY), so each status is named once.</summary>
        public static BedCounts Tallied(IReadOnlyDictionary<string, int> byStatus, int stale) => new(
            byStatus.GetValueOrDefault("available"), byStatus.GetValueOrDefault("reserved"), byStatus.GetValueOrDefault("occupied"),
            byStatus.GetValueOrDefault("closed"), byStatus.GetValueOrDefault("cleaning"), stale);
    }

    public sealed record SiteBeds(string Site, string Locality, BedCounts Beds);

    public sealed record TypeBeds(string BedType, BedCounts Beds);

    public sealed record ServiceCapacity(string Kind, string Unit, int FreeToday, int PerDay, int Services, int Stale);

    public sealed record QueueFigures(string Queue, int Open, int Waiting, TimeSpan? OldestWaiting);

    /// <summary>People still in hospital after being medically optimised, and what those days cost.</summary>
    public sealed record Delay(int People, int BedDays, decimal Cost);

    public sealed record Escalation(int Level, IReadOnlyList<string> Triggers);

    /// <summary>The beds of one site, type and status, as the store counted them.</summary>
    private sealed record BedTally
    {
        public string SiteName { get; init; } = "";
        public string Locality { get; init; } = "";
        public string BedType { get; init; } = "";
        public string Status { get; init; } = "";
        public long Beds { get; init; }
        public long Stale { get; init; }

        /// <summary>The figures of some tallies (a list, or one of its groups: each read twice).</summary>
        public static BedCounts Counts(IEnumerable<BedTally> tallies) =>
            BedCounts.Tallied(tallies.GroupBy(t => t.Status).ToDictionary(g => g.Key, g => (int)g.Sum(t => t.Beds)), (int)tallies.Sum(t => t.Stale));
    }

    private sealed record ServiceRow
    {
        public string Kind { get; init; } = "";
        public string CapacityUnit { get; init; } = "";
        public int AvailableToday { get; init; }
        public int CapacityPerDay { get; init; }
        public DateTimeOffset ConfirmedAt { get; init; }
    }

    private sealed record TaskClockRow
    {
        public string Queue { get; init; } = "";
        public long? OwnerUserId { get; init; }
        public string Status { get; init; } = "";
        public DateTimeOffset CreatedAt { get; init; }
        public DateTimeOffset? TakenAt { get; init; }
        public DateTimeOffset? OnHoldSince { get; init; }
        public int PausedSeconds { get; init; }
    }

    /// <summary>Referrals still open: the ones whose person may be waiting in a hospital bed.</summary>
    public static readonly string Waiting = Sql.Literals(["submitted", "in-triage", "awaiting-information", "accepted", "redirected"]);

    /// <summary>
    /// The figures last worked out on this node, shared by every open capacity board and wall board (SharedAtChange): each
    /// reloads them at every change of a bed, ward, site, service, referral, task or placement, and the answer is the same for
    /// every viewer. Worked out by each board for itself, N open boards cost N workings out a change, each reading every open
    /// triage task and counting every bed (issue 14). Those that depend on the time (a queue's oldest wait, a confirmation gone
    /// stale, today's referrals) are at most <see cref="MaxAge"/> older than a board's ask, as a board's own were until its
    /// next change.
    /// </summary>
    public sealed class Latest(Database database, TimeProvider clock, IOptionsMonitor<BoardSettings> boards,
        IOptionsMonitor<BedBureauSettings> beds, IOptionsMonitor<CoordinationTargets> targets) : SharedAtChange<Result>(database, clock, MaxAge)
    {
        internal static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(15);

        protected override async Task<Result> WorkOutAsync(System.Data.Common.DbConnection connection, long asOfSeq, DateTimeOffset now, DateOnly today)
        {
            var settings = boards.CurrentValue;

            // Counted by the store, not read bed by bed: 5,000 beds made into rows of 21 columns each to count them were most of
            // the board's time at 1M referrals (issue 14), as they were the MeasureReport's (CapacityReports). The same beds as the
            // bed board's read (Beds.From, active sites); stale as BedRow.IsStale says, confirmed before the cut-off.
            var tallies = (await connection.QueryAsync<BedTally>(
                $"""
                SELECT s.name AS SiteName, s.locality AS Locality, b.bed_type AS BedType, b.status AS Status, COUNT(*) AS Beds,
                       SUM(CASE WHEN b.confirmed_at < @staleBefore THEN 1 ELSE 0 END) AS Stale
                {Beds.From} WHERE s.active
                GROUP BY s.name, s.locality, b.bed_type, b.status
                """, new { staleBefore = now - TimeSpan.FromHours(beds.CurrentValue.StaleAfterHours) })).ToList();
            var sites = tallies.GroupBy(t => (t.SiteName, t.Locality)).OrderBy(g => g.Key.SiteName, StringComparer.Ordinal)
                .Select(g => new SiteBeds(g.Key.SiteName, g.Key.Locality, BedTally.Counts(g))).ToList();
            var types = tallies.GroupBy(t => t.BedType).OrderBy(g => g.Key, StringComparer.Ordinal)
                .Select(g => new TypeBeds(g.Key, BedTally.Counts(g))).ToList();
            var total = BedTally.Counts(tallies);

            var serviceRows = await connection.QueryAsync<ServiceRow>(
                """
                SELECT kind AS Kind, capacity_unit AS CapacityUnit, available_today AS AvailableToday, capacity_per_day AS CapacityPerDay, confirmed_at AS ConfirmedAt
                FROM service WHERE active AND kind NOT IN ('community-hospital', 'care-home')
                """);
            var staleService = TimeSpan.FromHours(settings.ServiceStaleAfterHours);
            var services = serviceRows.GroupBy(s => (s.Kind, s.CapacityUnit)).OrderBy(g => g.Key.Kind, StringComparer.Ordinal)
                .Select(g => new ServiceCapacity(g.Key.Kind, g.Key.CapacityUnit, g.Sum(s => s.AvailableToday), g.Sum(s => s.CapacityPerDay), g.Count(),
                    g.Count(s => now - s.ConfirmedAt > staleService)))
                .ToList();

            var tasks = (await connection.QueryAsync<TaskClockRow>(
                """
                SELECT queue AS Queue, owner_user_id AS OwnerUserId, status AS Status, created_at AS CreatedAt, taken_at AS TakenAt,
                       on_hold_since AS OnHoldSince, paused_seconds AS PausedSeconds
                FROM triage_task WHERE status IN ('requested', 'in-progress', 'on-hold')
                """)).ToList();
            var queues = new[] { "coordination", "bed-bureau" }.Select(queue =>
            {
                var open = tasks.Where(t => t.Queue == queue).ToList();
                TimeSpan? oldest = open.Count == 0 ? null
                    : open.Max(t => TriageClock.Of(t.CreatedAt, t.TakenAt, t.OnHoldSince, t.PausedSeconds, now, targets.CurrentValue).Waited);
                return new QueueFigures(queue, open.Count, open.Count(t => t.OwnerUserId is null && t.Status == "requested"), oldest);
            }).ToList();

            var referralsToday = await connection.ExecuteScalarAsync<int>(
                "SELECT COUNT(*) FROM referral WHERE submitted_at >= @since", new { since = LondonTime.StartOf(today) });
            // Still in hospital: a person discharged before their placement starts (the referral stays accepted) waits at home,
            // costing no bed day, as the discharge sitrep counts them too.
            var optimisedOn = (await connection.QueryAsync<DateOnly>(
                $"SELECT medically_optimised_on FROM referral WHERE status IN ({Waiting}) AND medically_optimised_on IS NOT NULL AND medically_optimised_on <= @today AND discharged_at IS NULL",
                new { today })).ToList();
            var bedDays = optimisedOn.Sum(d => today.DayNumber - d.DayNumber);
            var delayed = new Delay(optimisedOn.Count, bedDays, bedDays * settings.CostPerBedDay);

            var coordination = queues[0].OldestWaiting ?? TimeSpan.Zero;
            var escalation = Escalate(settings.Escalation, total.OccupancyPercent, delayed.People, (int)coordination.TotalMinutes);
            return new Result(now, asOfSeq, total, sites, types, services, queues, referralsToday, delayed, escalation);
        }
    }

    public sealed class Handler(Latest latest) : IQueryHandler<Query, Result>
    {
        public async ValueTask<Result> Handle(Query query, CancellationToken cancellationToken) => await latest.GetAsync(cancellationToken);
    }

    /// <summary>The highest level any measure reaches, with the measures that reach it.</summary>
    public static Escalation Escalate(EscalationThresholds thresholds, int occupancyPercent, int medicallyOptimisedWaiting, int oldestWaitingMinutes)
    {
        (string Name, int Value, Levels At, string Unit)[] measures =
        [
            ("Bed occupancy", occupancyPercent, thresholds.OccupancyPercent, "%"),
            ("Medically optimised, not placed", medicallyOptimisedWaiting, thresholds.MedicallyOptimisedWaiting, " people"),
            ("Oldest wait for triage", oldestWaitingMinutes, thresholds.OldestWaitingMinutes, " min"),
        ];
        var level = measures.Max(m => m.At.LevelOf(m.Value));
        var triggers = level == 1 ? [] : measures
            .Where(m => m.At.LevelOf(m.Value) == level)
            .Select(m => $"{m.Name} {m.Value}{m.Unit} (level {level} from {m.At.From(level)}{m.Unit})")
            .ToList();
        return new Escalation(level, triggers);
    }
}
