namespace CareCoordination.Components;

/// <summary>
/// How a slow-moving panel (the pressure forecast) reloads on changes: at most once per <c>atMostEvery</c>, and a change
/// inside that time is not dropped but loads once when the time is up. Before, such a change was ignored, and the panel
/// showed figures older than its last change until another change came after the minute.
/// </summary>
/// <param name="load">One load, on the page's dispatcher (the trailing one starts from a timer's thread).</param>
/// <param name="atMostEvery">The shortest time between two loads' starts.</param>
/// <param name="clock">The clock the time between loads is measured on.</param>
/// <param name="failed">Told of a change's load that failed, which has no one else waiting on it.</param>
public sealed class ThrottledLoad(Func<Task> load, TimeSpan atMostEvery, TimeProvider clock, Action<Exception>? failed = null) : IDisposable
{
    private readonly Lock _lock = new();
    // A timestamp, not the time of day: a clock set back must not hold the next load off for longer than the throttle.
    private long? _lastStarted;
    private ITimer? _trailing;
    private bool _disposed;

    /// <summary>Loads now, whatever the time since the last load (the panel's first load).</summary>
    public Task RunAsync()
    {
        lock (_lock)
        {
            _lastStarted = clock.GetTimestamp();
        }
        return load();
    }

    /// <summary>A change the panel shows: loads now if the last load started long enough ago, else once when it has.</summary>
    public void Ask()
    {
        lock (_lock)
        {
            if (_disposed || _trailing is not null)
            {
                return;
            }
            var wait = _lastStarted is { } last ? atMostEvery - clock.GetElapsedTime(last) : TimeSpan.Zero;
            if (wait > TimeSpan.Zero)
            {
                _trailing = clock.CreateTimer(_ => Trail(), null, wait, Timeout.InfiniteTimeSpan);
                return;
            }
            _lastStarted = clock.GetTimestamp();
        }
        Observe(load);
    }

    private void Trail()
    {
        lock (_lock)
        {
            _trailing?.Dispose();
            _trailing = null;
            if (_disposed)
            {
                return;
            }
            _lastStarted = clock.GetTimestamp();
        }
        Observe(load);
    }

    // A change's reload has no one waiting on it, and the trailing one runs on a timer's thread, where a throw would end the
    // process: a failure goes to whoever asked to be told, and no further; the panel keeps what it showed.
    private void Observe(Func<Task> start)
    {
        Task loading;
        try
        {
            loading = start();
        }
        catch (Exception failure)
        {
            loading = Task.FromException(failure);
        }
        _ = loading.ContinueWith(t => failed?.Invoke(t.Exception!.GetBaseException()), CancellationToken.None,
            TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            _trailing?.Dispose();
            _trailing = null;
        }
    }
}
