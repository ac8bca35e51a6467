using CareCoordination.Components;
using Microsoft.Extensions.Time.Testing;

namespace CareCoordination.Tests.Components;

/// <summary>The pressure forecast's reloads: at most one a minute, and a change inside the minute loaded when it is up, not dropped.</summary>
public sealed class ThrottledLoadTests
{
    private static readonly TimeSpan Minute = TimeSpan.FromMinutes(1);

    [Fact]
    public async Task AChangeInsideTheMinute_LoadsOnceWhenTheMinuteIsUp_HoweverManyCame()
    {
        var clock = new FakeTimeProvider();
        var loads = 0;
        using var throttle = new ThrottledLoad(() => { loads++; return Task.CompletedTask; }, Minute, clock);

        await throttle.RunAsync();
        clock.Advance(TimeSpan.FromSeconds(10));
        throttle.Ask();
        clock.Advance(TimeSpan.FromSeconds(20));
        throttle.Ask();
        throttle.Ask();
        Assert.Equal(1, loads);

        clock.Advance(TimeSpan.FromSeconds(29));
        Assert.Equal(1, loads);
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(2, loads);

        // Nothing more came: nothing more is loaded.
        clock.Advance(TimeSpan.FromMinutes(5));
        Assert.Equal(2, loads);
    }

    [Fact]
    public async Task AChangeAfterTheMinute_LoadsAtOnce_AndTheNextMinuteRunsFromThatLoad()
    {
        var clock = new FakeTimeProvider();
        var loads = 0;
        using var throttle = new ThrottledLoad(() => { loads++; return Task.CompletedTask; }, Minute, clock);

        await throttle.RunAsync();
        clock.Advance(TimeSpan.FromSeconds(90));
        throttle.Ask();
        Assert.Equal(2, loads);

        clock.Advance(TimeSpan.FromSeconds(30));
        throttle.Ask();
        Assert.Equal(2, loads);
        clock.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(3, loads);

        // The trailing load started a minute of its own.
        clock.Advance(TimeSpan.FromSeconds(59));
        throttle.Ask();
        Assert.Equal(3, loads);
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(4, loads);
    }

    [Fact]
    public async Task APanelClosedInsideTheMinute_LoadsNothingMore()
    {
        var clock = new FakeTimeProvider();
        var loads = 0;
        var throttle = new ThrottledLoad(() => { loads++; return Task.CompletedTask; }, Minute, clock);

        await throttle.RunAsync();
        throttle.Ask();
        throttle.Dispose();
        clock.Advance(TimeSpan.FromMinutes(2));
        throttle.Ask();

        Assert.Equal(1, loads);
    }

    [Fact]
    public async Task ATrailingLoadThatFails_DoesNotStopTheNext()
    {
        var clock = new FakeTimeProvider();
        var loads = 0;
        var told = new TaskCompletionSource<Exception>(TaskCreationOptions.RunContinuationsAsynchronously);
        // The second load throws before it returns a task, as a load started from the timer's thread could.
        using var throttle = new ThrottledLoad(() => ++loads == 2 ? throw new TimeoutException("The store did not answer.") : Task.CompletedTask, Minute, clock,
            failure => told.TrySetResult(failure));

        await throttle.RunAsync();
        throttle.Ask();
        clock.Advance(Minute);
        Assert.Equal(2, loads);
        Assert.Equal("The store did not answer.", (await told.Task.WaitAsync(TimeSpan.FromSeconds(10))).Message);

        throttle.Ask();
        clock.Advance(Minute);
        Assert.Equal(3, loads);
    }
}
