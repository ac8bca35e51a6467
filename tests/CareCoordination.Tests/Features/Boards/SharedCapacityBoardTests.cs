using CareCoordination.Features.Boards;
using CareCoordination.Tests.Support;
using Microsoft.Extensions.DependencyInjection;

namespace CareCoordination.Tests.Features.Boards;

/// <summary>
/// Every open capacity board and wall board reloads its figures at each change of a bed, task, referral or placement: they are
/// worked out once per change and shared by all of them, and never outlive the change, or the seconds after which their
/// waits would show old (the day's turn and a working out under way are the fortnight's tests: SharedFortnightTests, the same
/// SharedAtChange). A store of its own: the test moves the clock.
/// </summary>
public abstract class SharedCapacityBoardTests(AppFactory app)
{
    private CapacityBoard.Latest Latest => app.Services.GetRequiredService<CapacityBoard.Latest>();

    private Task<CapacityBoard.Result[]> BoardsAsync(int boards) => OpenBoards.AskAsync<CapacityBoard.Result>(app, new CapacityBoard.Query(), boards);

    private void NextMorning() => OpenBoards.NextMorning(app);

    private Task SubmitAsync() => OpenBoards.SubmitAsync(app);

    [Fact]
    public async Task EightBoards_ShareOneWorkingOut_PerChange_AndEachChangeIsInIt()
    {
        NextMorning();
        var first = (await BoardsAsync(1))[0];
        var worked = Latest.TimesWorkedOut;

        // Nothing changed: every board, whoever watches it, is given the figures already worked out.
        var unchanged = await BoardsAsync(8);
        Assert.All(unchanged, board => Assert.Same(first, board));
        Assert.Equal(worked, Latest.TimesWorkedOut);

        // A referral in: the eight boards that reload for it share one new working out, and it counts the referral and its task.
        await SubmitAsync();
        var changed = await BoardsAsync(8);
        Assert.Equal(worked + 1, Latest.TimesWorkedOut);
        Assert.All(changed, board => Assert.Same(changed[0], board));
        Assert.Equal(first.ReferralsToday + 1, changed[0].ReferralsToday);
        Assert.Equal(first.Queues[0].Open + 1, changed[0].Queues[0].Open);
        Assert.True(changed[0].AsOfSeq > first.AsOfSeq, $"as of change {changed[0].AsOfSeq}, after {first.AsOfSeq}");
    }

    [Fact]
    public async Task Figures_AreWorkedOutAfresh_OnceTheirMaxAgeHasPassed()
    {
        NextMorning();
        await SubmitAsync();
        var before = (await BoardsAsync(1))[0];
        Assert.NotNull(before.Queues[0].OldestWaiting);

        // Within their age, with no change: the same figures.
        app.Clock.Advance(CapacityBoard.Latest.MaxAge - TimeSpan.FromSeconds(1));
        Assert.Same(before, (await BoardsAsync(1))[0]);

        // At it: worked out again, as at the clock's time. (The oldest wait moves on with it unless that task's clock is
        // paused: a demo task on hold may be the oldest.)
        app.Clock.Advance(TimeSpan.FromSeconds(1));
        var after = (await BoardsAsync(1))[0];
        Assert.NotSame(before, after);
        Assert.Equal(before.AsOfSeq, after.AsOfSeq);
        Assert.Equal(before.AsOf + CapacityBoard.Latest.MaxAge, after.AsOf);
        Assert.True(after.Queues[0].OldestWaiting >= before.Queues[0].OldestWaiting, $"{after.Queues[0].OldestWaiting} after {before.Queues[0].OldestWaiting}");
    }
}

public sealed class SharedCapacityBoardOnSqliteTests(AppFactory app) : SharedCapacityBoardTests(app), IClassFixture<AppFactory>;

public sealed class SharedCapacityBoardOnPostgresTests(PostgresAppFactory app) : SharedCapacityBoardTests(app), IClassFixture<PostgresAppFactory>;
