using CareCoordination.Domain;
using CareCoordination.Features.Boards;
using CareCoordination.Tests.Support;
using Dapper;
using Microsoft.Extensions.DependencyInjection;

namespace CareCoordination.Tests.Features.Boards;

/// <summary>
/// Every open capacity board reloads the fortnight at each change: it is worked out once per change and shared by all of
/// them, and never outlives the change, the day or the minute it was worked out in. A store of its own: the test moves the
/// clock to midnight.
/// </summary>
public abstract class SharedFortnightTests(AppFactory app)
{
    private FlowHistory.Latest Latest => app.Services.GetRequiredService<FlowHistory.Latest>();

    private Task<FlowHistory.Result[]> BoardsAsync(int boards) => OpenBoards.AskAsync<FlowHistory.Result>(app, new FlowHistory.Query(), boards);

    protected void NextMorning() => OpenBoards.NextMorning(app);

    protected async Task<long> SubmitAsync()
    {
        var referral = await OpenBoards.SubmitAsync(app);
        // Today runs to now, not including it: a second on, the referral is in it.
        app.Clock.Advance(TimeSpan.FromSeconds(1));
        return referral;
    }

    [Fact]
    public async Task EightBoards_ShareOneFortnight_WorkedOutOncePerChange_AndEachChangeIsInIt()
    {
        NextMorning();
        var first = (await BoardsAsync(1))[0];
        var worked = Latest.TimesWorkedOut;

        // Nothing changed: every board, whoever watches it, is given the fortnight already worked out.
        var unchanged = await BoardsAsync(8);
        Assert.All(unchanged, board => Assert.Same(first, board));
        Assert.Equal(worked, Latest.TimesWorkedOut);

        // A referral in: the eight boards that reload for it share one new fortnight, and it counts the referral.
        await SubmitAsync();
        var changed = await BoardsAsync(8);
        Assert.Equal(worked + 1, Latest.TimesWorkedOut);
        Assert.All(changed, board => Assert.Same(changed[0], board));
        Assert.Equal(first.Days[^1].ReferralsIn + 1, changed[0].Days[^1].ReferralsIn);
    }

    [Fact]
    public async Task AChangeMadeWithoutTheChangeLog_ShowsWithinAMinute_AndANewDay_AtOnce()
    {
        NextMorning();
        var referral = await SubmitAsync();
        var before = (await BoardsAsync(1))[0];
        // Moved to yesterday by hand, as a restore or an operator's edit would: no change is recorded.
        await using (var connection = await app.OpenAsync())
        {
            await connection.ExecuteAsync("UPDATE referral SET submitted_at = @at WHERE id = @referral",
                new { at = app.Clock.GetUtcNow().AddDays(-1), referral });
        }
        Assert.Same(before, (await BoardsAsync(1))[0]);
        app.Clock.Advance(FlowHistory.Latest.MaxAge);
        var after = (await BoardsAsync(1))[0];
        Assert.Equal(before.Days[^1].ReferralsIn - 1, after.Days[^1].ReferralsIn);
        Assert.Equal(before.Days[^2].ReferralsIn + 1, after.Days[^2].ReferralsIn);

        // Half a minute before midnight, then ten seconds after it (the fortnight worked out before it is still under a minute
        // old): the fortnight ends on the new day.
        var today = LondonTime.Today(app.Clock);
        app.Clock.Advance(LondonTime.StartOf(today.AddDays(1)) - app.Clock.GetUtcNow() - TimeSpan.FromSeconds(30));
        var lastThing = (await BoardsAsync(1))[0];
        Assert.Equal(today, lastThing.Days[^1].Date);
        app.Clock.Advance(TimeSpan.FromSeconds(40));
        var firstThing = (await BoardsAsync(1))[0];
        Assert.Equal(today.AddDays(1), firstThing.Days[^1].Date);
        Assert.Equal(lastThing.Days.Skip(1).Select(d => d.Date), firstThing.Days.SkipLast(1).Select(d => d.Date));
    }
}

public sealed class SharedFortnightOnSqliteTests(AppFactory app) : SharedFortnightTests(app), IClassFixture<AppFactory>;

public sealed class SharedFortnightOnPostgresTests(PostgresAppFactory app) : SharedFortnightTests(app), IClassFixture<PostgresAppFactory>
{
    // Only PostgreSQL lets a test hold the fortnight's reads (a lock on the beds) while boards ask for it.

    private FlowHistory.Latest Latest => app.Services.GetRequiredService<FlowHistory.Latest>();

    private Task<HeldChange> LockBedsAsync() => app.HoldAsync("LOCK TABLE bed IN ACCESS EXCLUSIVE MODE");

    private Task<FlowHistory.Result> BoardAsync(System.Security.Claims.ClaimsPrincipal caller) =>
        Task.Run(() => app.SendAsync<FlowHistory.Result>(new FlowHistory.Query(), caller));

    /// <summary>Until so many boards wait and the fortnight they wait for is held at the beds: past its read of the store's last change.</summary>
    private Task UntilWaitingAsync(int boards, HeldChange beds, Task[] asked) =>
        app.UntilBlockedByAsync(beds, asked, $"{boards} boards", () => Latest.BoardsWaiting >= boards);

    [Fact]
    public async Task BoardsAskingWhileItIsWorkedOut_WaitForThatOne()
    {
        NextMorning();
        var manager = await app.StaffAsync("manager");
        // A change, so that no fortnight is current, then the beds locked so that working the next one out waits.
        await SubmitAsync();
        await using var beds = await LockBedsAsync();
        var worked = Latest.TimesWorkedOut;
        var boards = Enumerable.Range(0, 8).Select(_ => BoardAsync(manager)).ToArray();
        // Hold the beds until every board is waiting for the one fortnight being worked out.
        await UntilWaitingAsync(8, beds, boards);
        await beds.CommitAsync();
        var answered = await Task.WhenAll(boards);

        Assert.Equal(worked + 1, Latest.TimesWorkedOut);
        Assert.All(answered, board => Assert.Same(answered[0], board));
    }

    [Fact]
    public async Task ABoardToldOfAChange_IsNotGivenTheFortnightBegunBeforeIt()
    {
        NextMorning();
        var manager = await app.StaffAsync("manager");
        await SubmitAsync();
        await using var beds = await LockBedsAsync();
        var worked = Latest.TimesWorkedOut;
        var early = BoardAsync(manager);
        await UntilWaitingAsync(1, beds, [early]);
        // A referral in while that fortnight is being worked out; a board told of it asks.
        await SubmitAsync();
        var late = BoardAsync(manager);
        await UntilWaitingAsync(2, beds, [early, late]);
        await beds.CommitAsync();
        var (before, after) = (await early, await late);

        Assert.Equal(before.Days[^1].ReferralsIn + 1, after.Days[^1].ReferralsIn);
        Assert.Equal(worked + 2, Latest.TimesWorkedOut);
    }

    [Fact]
    public async Task ABoardAskingJustAfterMidnight_IsNotGivenTheFortnightBegunBeforeIt()
    {
        NextMorning();
        var manager = await app.StaffAsync("manager");
        var today = LondonTime.Today(app.Clock);
        app.Clock.Advance(LondonTime.StartOf(today.AddDays(1)) - app.Clock.GetUtcNow() - TimeSpan.FromSeconds(10));
        await using var beds = await LockBedsAsync();
        var worked = Latest.TimesWorkedOut;
        var early = BoardAsync(manager);
        await UntilWaitingAsync(1, beds, [early]);
        app.Clock.Advance(TimeSpan.FromSeconds(20));
        var late = BoardAsync(manager);
        await UntilWaitingAsync(2, beds, [early, late]);
        await beds.CommitAsync();

        // The fortnight begun before midnight ended on the day before; both boards, answered after it, get the new day's.
        Assert.Equal([today.AddDays(1), today.AddDays(1)], [(await early).Days[^1].Date, (await late).Days[^1].Date]);
        Assert.Equal(worked + 2, Latest.TimesWorkedOut);
    }
}
