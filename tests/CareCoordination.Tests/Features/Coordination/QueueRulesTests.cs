using CareCoordination.Features.Coordination;

namespace CareCoordination.Tests.Features.Coordination;

/// <summary>The priority rule and the triage clock are pure: each rule shown on its own.</summary>
public sealed class QueueRulesTests
{
    private static readonly DateOnly Today = new(2026, 11, 23);
    private static readonly DateTimeOffset Queued = new(2026, 11, 23, 9, 0, 0, TimeSpan.Zero);
    private static readonly CoordinationTargets Targets = new();

    [Fact]
    public void Urgency_OutranksEverythingElse_InTheCommonRange()
    {
        var immediate = Priority.Of("immediate", Today, Today, TimeSpan.FromMinutes(5), []);
        var urgentDelayedAndRisky = Priority.Of("urgent", Today.AddDays(-1), Today, TimeSpan.FromMinutes(60), ["falls"]);
        var routineLongWait = Priority.Of("routine", null, Today, TimeSpan.FromHours(12), ["falls", "cognition"]);

        Assert.True(immediate.Score > urgentDelayedAndRisky.Score, $"{immediate.Explanation} vs {urgentDelayedAndRisky.Explanation}");
        Assert.True(urgentDelayedAndRisky.Score > routineLongWait.Score, $"{urgentDelayedAndRisky.Explanation} vs {routineLongWait.Explanation}");
    }

    [Theory]
    [InlineData(0, 0)]
    [InlineData(1, 40)]
    [InlineData(3, 120)]
    [InlineData(30, 400)]
    public void EachDayPastMedicallyOptimised_AddsPoints_UpToTenDays(int daysAgo, int points)
    {
        var priority = Priority.Of("routine", Today.AddDays(-daysAgo), Today, TimeSpan.Zero, []);

        Assert.Equal(points, priority.Score);
    }

    [Fact]
    public void AnEarlyRequest_NotYetOptimised_GetsNoDelayPoints()
    {
        Assert.Equal(0, Priority.Of("routine", Today.AddDays(2), Today, TimeSpan.Zero, []).Score);
    }

    [Fact]
    public void Waiting_AndRisks_AddPoints_AndTheExplanationListsEveryPart()
    {
        var priority = Priority.Of("urgent", Today.AddDays(-2), Today, TimeSpan.FromMinutes(45), ["safeguarding", "falls"]);

        Assert.Equal(150 + 80 + 4 + 30, priority.Score);
        Assert.Equal("Urgent +150 · 2 days since medically optimised +80 · waiting 45 min +4 · safeguarding, falls +30", priority.Explanation);
    }

    [Fact]
    public void Clock_IsGreen_ThenAmber_ThenRed_AgainstTheTakenTarget()
    {
        Assert.Equal(Rag.Green, TriageClock.Of(Queued, null, null, 0, Queued.AddMinutes(10), Targets).Rag);
        Assert.Equal(Rag.Amber, TriageClock.Of(Queued, null, null, 0, Queued.AddMinutes(12), Targets).Rag);
        var late = TriageClock.Of(Queued, null, null, 0, Queued.AddMinutes(16), Targets);
        Assert.Equal((Rag.Red, "taken", TimeSpan.FromMinutes(1)), (late.Rag, late.Target, late.Over));
    }

    [Fact]
    public void Clock_OnceTaken_RunsAgainstTheTriagedTarget_AndATakeLateStaysRed()
    {
        var takenInTime = TriageClock.Of(Queued, Queued.AddMinutes(5), null, 0, Queued.AddMinutes(20), Targets);
        Assert.Equal((Rag.Green, "triaged"), (takenInTime.Rag, takenInTime.Target));
        Assert.Equal(Rag.Red, TriageClock.Of(Queued, Queued.AddMinutes(5), null, 0, Queued.AddMinutes(31), Targets).Rag);
        Assert.Equal(Rag.Red, TriageClock.Of(Queued, Queued.AddMinutes(20), null, 0, Queued.AddMinutes(21), Targets).Rag);
    }

    [Fact]
    public void Clock_StandsStillWhileOnHold_AndEarlierPausesDoNotCount()
    {
        var paused = TriageClock.Of(Queued, Queued.AddMinutes(5), Queued.AddMinutes(10), 0, Queued.AddHours(5), Targets);
        Assert.Equal((TimeSpan.FromMinutes(10), true, Rag.Green), (paused.Waited, paused.Paused, paused.Rag));

        var resumed = TriageClock.Of(Queued, Queued.AddMinutes(5), null, (int)TimeSpan.FromHours(2).TotalSeconds, Queued.AddHours(2).AddMinutes(20), Targets);
        Assert.Equal(TimeSpan.FromMinutes(20), resumed.Waited);
    }

    [Fact]
    public void Targets_ComeFromConfiguration()
    {
        var tight = new CoordinationTargets { TakenWithinMinutes = 5, TriagedWithinMinutes = 10 };

        Assert.Equal(Rag.Red, TriageClock.Of(Queued, null, null, 0, Queued.AddMinutes(6), tight).Rag);
    }
}
