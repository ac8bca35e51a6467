using CareCoordination.Domain;
using CareCoordination.Features.BedBureau;
using CareCoordination.Features.Boards;
using CareCoordination.Features.Coordination;
using CareCoordination.Features.Referrals;
using CareCoordination.Tests.Support;
using Dapper;

namespace CareCoordination.Tests.Features.Boards;

/// <summary>Every figure on the board equals the same figure counted straight from the store, on the seeded demo county.</summary>
public abstract class CapacityBoardTests(AppFactory app)
{
    private sealed record SiteCount
    {
        public string Site { get; init; } = "";
        public string Status { get; init; } = "";
        public long N { get; init; }
    }

    private sealed record Free
    {
        public string Kind { get; init; } = "";
        public long FreeToday { get; init; }
        public long PerDay { get; init; }
    }

    [Fact]
    public async Task BoardFigures_EqualTheStore_CountedDirectly()
    {
        var board = await app.SendAsync<CapacityBoard.Result>(new CapacityBoard.Query(), await app.StaffAsync("manager"));
        var today = LondonTime.Today(app.Clock);
        await using var connection = await app.OpenAsync();

        var bySite = (await connection.QueryAsync<SiteCount>(
            "SELECT s.name AS Site, b.status AS Status, COUNT(*) AS N FROM bed b JOIN ward w ON w.id = b.ward_id JOIN site s ON s.id = w.site_id WHERE s.active GROUP BY s.name, b.status")).ToList();
        long Count(string status, string? site = null) => bySite.Where(c => c.Status == status && (site is null || c.Site == site)).Sum(c => c.N);
        Assert.Equal(
            (Count("available"), Count("reserved"), Count("occupied"), Count("closed"), Count("cleaning")),
            ((long)board.Total.Available, (long)board.Total.Reserved, (long)board.Total.Occupied, (long)board.Total.Closed, (long)board.Total.Cleaning));
        Assert.Equal(bySite.Select(c => c.Site).Distinct().Order(StringComparer.Ordinal), board.Sites.Select(s => s.Site));
        foreach (var site in board.Sites)
        {
            Assert.Equal((Count("available", site.Site), Count("occupied", site.Site), Count("closed", site.Site)),
                ((long)site.Beds.Available, (long)site.Beds.Occupied, (long)site.Beds.Closed));
        }
        var open = bySite.Where(c => c.Status != "closed").Sum(c => c.N);
        Assert.Equal((int)Math.Round(100.0 * Count("occupied") / open, MidpointRounding.AwayFromZero), board.Total.OccupancyPercent);
        var stale = await connection.ExecuteScalarAsync<long>(
            "SELECT COUNT(*) FROM bed b JOIN ward w ON w.id = b.ward_id JOIN site s ON s.id = w.site_id WHERE s.active AND b.confirmed_at < @cutoff",
            new { cutoff = app.Clock.GetUtcNow().AddHours(-new BedBureauSettings().StaleAfterHours) });
        Assert.Equal(stale, board.Total.Stale);
        Assert.True(stale > 0, "the demo county has stale beds to show");
        // Stale as the bed board marks each bed (BedRow.IsStale), by site as well as in all.
        var bedBoard = await app.SendAsync<BedBoard.Result>(new BedBoard.Query(), await app.StaffAsync("manager"));
        Assert.Equal(bedBoard.Sites.GroupBy(s => s.Name).OrderBy(g => g.Key, StringComparer.Ordinal)
                .Select(g => (g.Key, g.Sum(s => s.Wards.Sum(w => w.Beds.Count(b => b.Stale))))),
            board.Sites.Select(s => (s.Site, s.Beds.Stale)));
        Assert.Equal(bedBoard.Counts.Stale, board.Total.Stale);
        var byType = (await connection.QueryAsync<(string BedType, long N)>(
            "SELECT b.bed_type, COUNT(*) FROM bed b JOIN ward w ON w.id = b.ward_id JOIN site s ON s.id = w.site_id WHERE s.active AND b.status = 'occupied' GROUP BY b.bed_type")).ToList();
        Assert.Equal(byType.OrderBy(t => t.BedType, StringComparer.Ordinal).Select(t => (t.BedType, t.N)),
            board.Types.Where(t => t.Beds.Occupied > 0).Select(t => (t.BedType, (long)t.Beds.Occupied)));

        var free = (await connection.QueryAsync<Free>(
            "SELECT kind AS Kind, SUM(available_today) AS FreeToday, SUM(capacity_per_day) AS PerDay FROM service WHERE active AND kind NOT IN ('community-hospital', 'care-home') GROUP BY kind")).ToList();
        Assert.Equal(free.OrderBy(f => f.Kind, StringComparer.Ordinal).Select(f => (f.Kind, f.FreeToday, f.PerDay)),
            board.Services.Select(s => (s.Kind, (long)s.FreeToday, (long)s.PerDay)));

        foreach (var queue in board.Queues)
        {
            Assert.Equal(await connection.ExecuteScalarAsync<long>(
                "SELECT COUNT(*) FROM triage_task WHERE queue = @Queue AND status IN ('requested', 'in-progress', 'on-hold')", new { queue.Queue }), queue.Open);
            Assert.Equal(await connection.ExecuteScalarAsync<long>(
                "SELECT COUNT(*) FROM triage_task WHERE queue = @Queue AND status = 'requested' AND owner_user_id IS NULL", new { queue.Queue }), queue.Waiting);
        }

        Assert.Equal(await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM referral WHERE submitted_at >= @since",
            new { since = LondonTime.StartOfToday(app.Clock) }), board.ReferralsToday);

        var optimised = (await connection.QueryAsync<DateOnly>(
            """
            SELECT medically_optimised_on FROM referral
            WHERE status IN ('submitted', 'in-triage', 'awaiting-information', 'accepted', 'redirected') AND medically_optimised_on <= @today
              AND discharged_at IS NULL
            """, new { today })).ToList();
        var bedDays = optimised.Sum(d => today.DayNumber - d.DayNumber);
        Assert.Equal((optimised.Count, bedDays, bedDays * 300m), (board.Delayed.People, board.Delayed.BedDays, board.Delayed.Cost));
        Assert.True(board.Delayed.People > 0, "the demo county has people waiting once medically optimised");
    }

    /// <summary>
    /// Someone ready for discharge three days ago and still on the ward adds one person and three bed days to the delay; once
    /// the ward records that they went home (their referral still open, its care not started), they add nothing.
    /// </summary>
    [Fact]
    public async Task MedicallyOptimisedWaiting_CountsOnlyThoseStillInHospital()
    {
        var today = LondonTime.Today(app.Clock);
        var (referrer, manager) = (await app.StaffAsync("referrer"), await app.StaffAsync("manager"));
        var before = (await app.SendAsync<CapacityBoard.Result>(new CapacityBoard.Query(), manager)).Delayed;
        var form = ReferralForms.Discharge(today, await app.NewNhsNumberAsync());
        form.MedicallyOptimisedOn = today.AddDays(-3);
        form.ExpectedDischargeOn = null;
        var referral = (await app.SendAsync<SubmitReferral.Result>(new SubmitReferral.Command(form, Guid.NewGuid().ToString("N")), referrer)).ReferralId!.Value;

        var waiting = (await app.SendAsync<CapacityBoard.Result>(new CapacityBoard.Query(), manager)).Delayed;
        Assert.Equal((before.People + 1, before.BedDays + 3), (waiting.People, waiting.BedDays));

        await app.SendAsync(new CareCoordination.Features.Discharges.RecordDischarge.Command(referral, app.Clock.GetUtcNow().AddHours(-1)), referrer);

        var home = (await app.SendAsync<CapacityBoard.Result>(new CapacityBoard.Query(), manager)).Delayed;
        Assert.Equal((before.People, before.BedDays), (home.People, home.BedDays));
    }

    [Fact]
    public async Task FlowHistory_EqualsTheStore_CountedDirectly()
    {
        var history = await app.SendAsync<FlowHistory.Result>(new FlowHistory.Query(), await app.StaffAsync("manager"));
        await using var connection = await app.OpenAsync();

        Assert.Equal(14, history.Days.Count);
        Assert.Equal(LondonTime.Today(app.Clock), history.Days[^1].Date);
        foreach (var day in history.Days)
        {
            var start = StartOf(day.Date);
            var end = day.Date == history.Days[^1].Date ? app.Clock.GetUtcNow() : StartOf(day.Date.AddDays(1));
            Assert.Equal(await connection.ExecuteScalarAsync<long>(
                "SELECT COUNT(*) FROM referral WHERE submitted_at >= @start AND submitted_at < @end", new { start, end }), day.ReferralsIn);
            Assert.Equal(await connection.ExecuteScalarAsync<long>(
                "SELECT COUNT(*) FROM placement WHERE started_at >= @start AND started_at < @end", new { start, end }), day.PlacementsStarted);
        }
        Assert.Contains(history.Days, d => d.ReferralsIn > 0);
        // Today's point is now: the board's occupancy, long-stay residents and all.
        var board = await app.SendAsync<CapacityBoard.Result>(new CapacityBoard.Query(), await app.StaffAsync("manager"));
        Assert.Equal(board.Total.OccupancyPercent, history.Days[^1].OccupancyPercent);
        Assert.Contains(history.Days, d => d.TriageMedianMinutes is not null);
        Assert.All(history.Days.Where(d => d.TriageMedianMinutes is not null), d => Assert.True(d.TriageMedianMinutes <= d.TriageP90Minutes));
    }

    [Fact]
    public async Task FlowHistory_TriageTimes_AreEachReferralsFirstCoordinationDecision_IncludingOneJustMade()
    {
        // A referral triaged now, through the commands: 95 minutes from submission to the decline.
        var form = ReferralForms.Discharge(LondonTime.Today(app.Clock), await app.NewNhsNumberAsync());
        var sent = await app.SendAsync<SubmitReferral.Result>(new SubmitReferral.Command(form, Guid.NewGuid().ToString("N")), await app.StaffAsync("referrer"));
        long taskId;
        await using (var connection = await app.OpenAsync())
        {
            taskId = await connection.ExecuteScalarAsync<long>("SELECT id FROM triage_task WHERE referral_id = @id", new { id = sent.ReferralId });
        }
        var coordinator = await app.StaffAsync("coordinator");
        await app.SendAsync(new TakeReferral.Command(taskId), coordinator);
        app.Clock.Advance(TimeSpan.FromMinutes(95));
        await app.SendAsync(new DeclineReferral.Command(taskId, "needs-met", "Family have arranged care."), coordinator);
        var decidedAt = app.Clock.GetUtcNow();
        app.Clock.Advance(TimeSpan.FromMinutes(1));

        var history = await app.SendAsync<FlowHistory.Result>(new FlowHistory.Query(), await app.StaffAsync("manager"));

        await using var store = await app.OpenAsync();
        // Straight from the tasks: each referral's earliest coordination task completed or rejected.
        var decided = (await store.QueryAsync<(DateTimeOffset From, DateTimeOffset To)>(
            """
            SELECT r.submitted_at, MIN(t.completed_at) FROM referral r JOIN triage_task t ON t.referral_id = r.id
            WHERE t.queue = 'coordination' AND t.status IN ('completed', 'rejected')
            GROUP BY r.id, r.submitted_at
            """)).ToList();
        // PostgreSQL keeps microseconds, the test clock ticks.
        static bool Near(DateTimeOffset? a, DateTimeOffset b) => a is { } at && Math.Abs((at - b).TotalMilliseconds) < 0.01;
        Assert.Contains(decided, d => Near(d.To, decidedAt) && Near(d.From, decidedAt.AddMinutes(-95)));
        Assert.True(Near(await store.ExecuteScalarAsync<DateTimeOffset?>("SELECT triaged_at FROM referral WHERE id = @id", new { id = sent.ReferralId }), decidedAt));
        foreach (var day in history.Days)
        {
            var start = StartOf(day.Date);
            var end = day.Date == history.Days[^1].Date ? app.Clock.GetUtcNow() : StartOf(day.Date.AddDays(1));
            var minutes = decided.Where(d => d.To >= start && d.To < end).Select(d => (d.To - d.From).TotalMinutes).ToList();
            Assert.Equal(Round(FlowHistory.Percentile(minutes, 0.5)), day.TriageMedianMinutes);
            Assert.Equal(Round(FlowHistory.Percentile(minutes, 0.9)), day.TriageP90Minutes);
        }
    }

    [Fact]
    public async Task FlowHistory_PlacementTimes_RunFromEachReferralsSubmission_KeptOnThePlacementByTheCommandsAndTheSeed()
    {
        // Two placements made now through the commands: a service started 7 hours after its referral was sent, a bed 9 hours after.
        var coordinator = await app.StaffAsync("coordinator");
        var bureau = await app.StaffAsync("bedbureau");
        var intoService = await SendAsync();
        var toBed = await SendAsync();
        long serviceId, bedId;
        await using (var connection = await app.OpenAsync())
        {
            serviceId = await connection.ExecuteScalarAsync<long>(
                """
                SELECT s.id FROM service s JOIN organisation o ON o.id = s.organisation_id
                WHERE s.kind = 'reablement' AND s.active AND o.caution = 'none' ORDER BY s.id LIMIT 1
                """);
        }
        bedId = await app.FreeBedAsync();
        var serviceTask = await app.OpenTaskAsync(intoService);
        await app.SendAsync(new TakeReferral.Command(serviceTask), coordinator);
        var accepted = await app.SendAsync<AcceptIntoService.Result>(new AcceptIntoService.Command(serviceTask, serviceId, LondonTime.Today(app.Clock),
            HoursPerDay: 1, OverrideFullService: true, OverrideReason: "Test: the person needs it today."), coordinator);
        var bedTask = await app.OpenTaskAsync(toBed);
        await app.SendAsync(new TakeReferral.Command(bedTask), coordinator);
        await app.SendAsync(new RedirectToBedBureau.Command(bedTask, "Not yet safe at home even with reablement."), coordinator);
        bedTask = await app.OpenTaskAsync(toBed);
        await app.SendAsync(new TakeReferral.Command(bedTask), bureau);
        var reserved = await app.SendAsync<ReserveBed.Result>(new ReserveBed.Command(bedTask, bedId, LondonTime.Today(app.Clock)), bureau);
        // Odd seconds too: whole hours put the seed's beds exactly on the staleness boundary for the other tests of this store.
        app.Clock.Advance(TimeSpan.FromHours(7) + TimeSpan.FromSeconds(7));
        await app.SendAsync(new StartServicePlacement.Command(accepted.PlacementId), coordinator);
        app.Clock.Advance(TimeSpan.FromHours(2) + TimeSpan.FromSeconds(11));
        await app.SendAsync(new ConfirmAdmission.Command(reserved.PlacementId), bureau);

        var history = await app.SendAsync<FlowHistory.Result>(new FlowHistory.Query(), await app.StaffAsync("manager"));

        await using var store = await app.OpenAsync();
        // Every placement, the seed's and the commands', keeps its referral's submission.
        Assert.Equal(0, await store.ExecuteScalarAsync<long>(
            "SELECT COUNT(*) FROM placement pl JOIN referral r ON r.id = pl.referral_id WHERE pl.referral_submitted_at IS NULL OR pl.referral_submitted_at <> r.submitted_at"));
        Assert.True(await store.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM placement WHERE started_at IS NOT NULL") > 2, "the demo county has started placements");
        // Straight from each placement's referral.
        var placed = (await store.QueryAsync<(long Placement, DateTimeOffset From, DateTimeOffset To)>(
            "SELECT pl.id, r.submitted_at, pl.started_at FROM placement pl JOIN referral r ON r.id = pl.referral_id WHERE pl.started_at IS NOT NULL")).ToList();
        double HoursOf(long placement) => placed.Single(p => p.Placement == placement) is var p ? Math.Round((p.To - p.From).TotalHours, 1) : 0;
        Assert.Equal((7, 9), (HoursOf(accepted.PlacementId), HoursOf(reserved.PlacementId)));
        foreach (var day in history.Days)
        {
            var start = StartOf(day.Date);
            var end = day.Date == history.Days[^1].Date ? app.Clock.GetUtcNow() : StartOf(day.Date.AddDays(1));
            var hours = placed.Where(p => p.To >= start && p.To < end).Select(p => (p.To - p.From).TotalHours).ToList();
            Assert.Equal(hours.Count, day.PlacementsStarted);
            Assert.Equal(Round(FlowHistory.Percentile(hours, 0.5)), day.PlacementMedianHours);
            Assert.Equal(Round(FlowHistory.Percentile(hours, 0.9)), day.PlacementP90Hours);
        }
    }

    private async Task<long> SendAsync()
    {
        var form = ReferralForms.Discharge(LondonTime.Today(app.Clock), await app.NewNhsNumberAsync());
        var sent = await app.SendAsync<SubmitReferral.Result>(new SubmitReferral.Command(form, Guid.NewGuid().ToString("N")), await app.StaffAsync("referrer"));
        return sent.ReferralId!.Value;
    }

    private static double? Round(double? value) => value is { } v ? Math.Round(v, 1) : null;

    private static DateTimeOffset StartOf(DateOnly date)
    {
        var local = date.ToDateTime(TimeOnly.MinValue);
        return new DateTimeOffset(local, LondonTime.Zone.GetUtcOffset(local)).ToUniversalTime();
    }
}

public sealed class CapacityBoardOnSqliteTests(AppFactory app) : CapacityBoardTests(app), IClassFixture<AppFactory>;

public sealed class CapacityBoardOnPostgresTests(PostgresAppFactory app) : CapacityBoardTests(app), IClassFixture<PostgresAppFactory>;

/// <summary>The escalation rule and the percentile, on their own.</summary>
public sealed class BoardRulesTests
{
    private static readonly EscalationThresholds Defaults = new();

    [Fact]
    public void Escalation_IsTheHighestLevelAnyMeasureReaches_AndNamesIt()
    {
        Assert.Equal((1, 0), (CapacityBoard.Escalate(Defaults, 80, 10, 30).Level, CapacityBoard.Escalate(Defaults, 80, 10, 30).Triggers.Count));
        var three = CapacityBoard.Escalate(Defaults, 93, 16, 30);
        Assert.Equal(3, three.Level);
        Assert.Equal(["Bed occupancy 93% (level 3 from 92%)"], three.Triggers);
        var four = CapacityBoard.Escalate(Defaults, 97, 45, 500);
        Assert.Equal(4, four.Level);
        Assert.Equal(3, four.Triggers.Count);
    }

    [Fact]
    public void Percentile_IsNearestRank()
    {
        double[] minutes = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100];
        Assert.Equal(50, FlowHistory.Percentile(minutes, 0.5));
        Assert.Equal(90, FlowHistory.Percentile(minutes, 0.9));
        Assert.Equal(7, FlowHistory.Percentile([7], 0.9));
        Assert.Null(FlowHistory.Percentile([], 0.5));
    }
}
