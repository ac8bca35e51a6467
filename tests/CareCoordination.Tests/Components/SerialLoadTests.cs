using CareCoordination.Components;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;

namespace CareCoordination.Tests.Components;

/// <summary>How every live page reloads: one load at a time, a burst of asks costing one more, and a failed load not the last.</summary>
public sealed class SerialLoadTests
{
    [Fact]
    public async Task ABurstOfAsksDuringALoad_CostsOneMoreLoad_NeverTwoAtOnce()
    {
        var (loads, inFlight, most) = (0, 0, 0);
        var first = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var serial = new SerialLoad(async () =>
        {
            most = Math.Max(most, Interlocked.Increment(ref inFlight));
            if (Interlocked.Increment(ref loads) == 1)
            {
                await first.Task;
            }
            Interlocked.Decrement(ref inFlight);
        });

        var running = serial.RunAsync();
        var asked = Enumerable.Range(0, 50).Select(_ => serial.RunAsync()).ToList();
        Assert.All(asked, ask => Assert.True(ask.IsCompleted));
        first.SetResult();
        await running;

        Assert.Equal(2, loads);
        Assert.Equal(1, most);
    }

    [Fact]
    public async Task ALoadThatFails_FailsItsAsk_AndTheNextAskLoadsAgain()
    {
        var loads = 0;
        var serial = new SerialLoad(() => ++loads == 1 ? Task.FromException(new InvalidOperationException("The store is down.")) : Task.CompletedTask);

        await Assert.ThrowsAsync<InvalidOperationException>(serial.RunAsync);
        await serial.RunAsync();

        Assert.Equal(2, loads);
    }

    [Fact]
    public async Task ALoadThatFailsWhileAnotherAskWaits_GivesWayToIt_AndThePageIsNotBehind()
    {
        var (loads, told) = (0, 0);
        var first = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        SerialLoad? serial = null;
        serial = new SerialLoad(async () =>
        {
            if (++loads == 1)
            {
                await first.Task;
                throw new InvalidOperationException("The store is down.");
            }
        }, () => told++);

        var running = serial.RunAsync();
        await serial.RunAsync();
        first.SetResult();
        await running;

        Assert.Equal(2, loads);
        Assert.False(serial.Behind);
        Assert.Equal(0, told);
    }

    [Fact]
    public async Task ALoadThatFailsWithNoAskWaiting_LeavesThePageBehind_UntilALoadSucceeds()
    {
        var (loads, told) = (0, 0);
        var serial = new SerialLoad(() => ++loads == 1 ? Task.FromException(new InvalidOperationException("The store is down.")) : Task.CompletedTask, () => told++);

        await Assert.ThrowsAsync<InvalidOperationException>(serial.RunAsync);
        Assert.True(serial.Behind);
        Assert.Equal("The store is down.", serial.Failure?.Message);
        Assert.Equal(1, told);

        await serial.RunAsync();
        Assert.False(serial.Behind);
        Assert.Null(serial.Failure);
        Assert.Equal(2, told);
    }

    [Fact]
    public async Task CatchingUpAfterAReconnect_ThatFails_KeepsTheFailureForTheBadge_AndRedrawsForEachNewOne()
    {
        var (loads, told, dispatched) = (0, 0, 0);
        var serial = new SerialLoad(() => Task.FromException(new TimeoutException($"The store did not answer ({++loads}).")), () => told++);
        Task OnDispatcher(Func<Task> work)
        {
            dispatched++;
            return work();
        }

        await serial.CatchUpAsync(() => Task.FromResult(false), OnDispatcher);
        Assert.Equal((0, 0), (loads, dispatched));

        // Thrown at the circuit's handler, the failure was logged there as well as by the badge.
        await serial.CatchUpAsync(() => Task.FromResult(true), OnDispatcher);
        Assert.True(serial.Behind);
        Assert.Equal("The store did not answer (1).", serial.Failure?.Message);
        Assert.Equal(1, told);

        // Behind, it loads again whatever the feed says, and a new failure redraws the page so the badge logs it too.
        await serial.CatchUpAsync(() => Task.FromResult(false), OnDispatcher);
        Assert.Equal("The store did not answer (2).", serial.Failure?.Message);
        Assert.Equal((2, 2, 2), (loads, dispatched, told));
    }

    /// <summary>
    /// An open wall board reads again every 30 s while the store is down: one error for the outage, not one a read, and a
    /// line when it reads again. Its badge is swapped at the recovery (the "could not be read" notice for the board's own),
    /// so what was logged is kept by the load, not by whichever badge asks.
    /// </summary>
    [Fact]
    public async Task AnOutage_LogsItsFirstFailureAsAnError_TheRestAtDebug_AndTheRecoveryWithHowManyFailed()
    {
        var (down, attempts) = (true, 0);
        var serial = new SerialLoad(() => down ? Task.FromException(new TimeoutException($"The store did not answer ({++attempts}).")) : Task.CompletedTask);
        var (notice, board) = (new FakeLogger(), new FakeLogger());

        for (var i = 0; i < 3; i++)
        {
            await serial.RetryAsync();
            serial.LogOutcome(notice);
            // Drawn again with nothing new: nothing more to tell.
            serial.LogOutcome(notice);
        }
        down = false;
        await serial.RetryAsync();
        serial.LogOutcome(board);
        serial.LogOutcome(notice);
        // A second outage is told as loudly as the first.
        down = true;
        await serial.RetryAsync();
        serial.LogOutcome(board);

        Assert.Equal([LogLevel.Error, LogLevel.Debug, LogLevel.Debug], notice.Collector.GetSnapshot().Select(log => log.Level));
        Assert.Equal(["The store did not answer (1).", "The store did not answer (2).", "The store did not answer (3)."],
            notice.Collector.GetSnapshot().Select(log => log.Exception?.Message));
        Assert.Equal("A live page still could not load its latest figures (failed reads in a row: 3)", notice.Collector.GetSnapshot()[2].Message);
        Assert.Equal([LogLevel.Information, LogLevel.Error], board.Collector.GetSnapshot().Select(log => log.Level));
        Assert.Equal("A live page read its latest figures again; failed reads before it: 3", board.Collector.GetSnapshot()[0].Message);
        Assert.Equal("The store did not answer (4).", board.Collector.GetSnapshot()[1].Exception?.Message);
    }
}
