namespace CareCoordination.Components;

/// <summary>
/// How a slow-moving panel (the pressure forecast) reloads on changes: at most once per <c>atMostEvery</c>, and a change
/// inside that time is not dropped but loads once when the time is up. Before, such a change was ignored, and the panel
/// showed figures older than its last change until another change came after the minute.
/// </summary>
/// <param name="load">One load, on the page's dispatcher (the trailing one starts from a timer's thread).</param>
/// <param name="atMostEvery">The shortest time between two loads' starts.</param>
/// <param name="clock">The clock the time between loads is measured on.</param>
public sealed class ThrottledLoad(Func<Task> load, TimeSpan atMostEvery, TimeProvider clock) : IDisposable
{
    private readonly Lock _lock = new();
    private DateTimeOffset? _lastStarted;
    private ITimer? _trailing;
    private bool _disposed;

    /// <summary>Loads now, whatever the time since the last load (the panel's first load).</summary>
    public Task RunAsync()
    {
        lock (_lock)
        {
            _lastStarted = clock.GetUtcNow();
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
            var now = clock.GetUtcNow();
            var wait = _lastStarted is { } last ? last + atMostEvery - now : TimeSpan.Zero;
            if (wait > TimeSpan.Zero)
            {
                _trailing = clock.CreateTimer(_ => Trail(), null, wait, Timeout.InfiniteTimeSpan);
                return;
            }
            _lastStarted = now;
        }
        Observe(load());
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
            _lastStarted = clock.GetUtcNow();
        }
        Observe(load());
    }

    // The load's own failure is the load's to show (SerialLoad); a change's reload has no one waiting on it.
    private static void Observe(Task loading) => _ = loading.ContinueWith(static t => _ = t.Exception, TaskContinuationOptions.OnlyOnFaulted);

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
