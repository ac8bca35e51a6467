namespace CareCoordination.Components;

/// <summary>
/// How a live page reloads: one load at a time, and a change that arrives during a load asks for exactly
/// one more. A burst of fifty changes costs two loads, and an older load never lands after a newer one.
/// A load that fails while a newer ask waits gives way to it; one that fails with none waiting leaves the page
/// <see cref="Behind"/> until a load succeeds, which the page's live badge says, with a way to load again, and logs
/// (<see cref="LogOutcome"/>).
/// </summary>
/// <remarks>
/// Asked only on a page's dispatcher, which runs one thing at a time: nothing runs between the runner's last look for an
/// ask and its standing down, so no ask is missed there. Asked from several threads at once, one could be.
/// </remarks>
/// <param name="load">One load of the page.</param>
/// <param name="behindChanged">Told when <see cref="Behind"/> or its <see cref="Failure"/> changes, to draw the page again (a change's reload is not an event of the page's own), so its badge shows and logs the failure.</param>
public sealed class SerialLoad(Func<Task> load, Action? behindChanged = null)
{
    private int _running;
    private int _pending;
    private int _failedInARow;
    private int _readAgainAfter;
    private Exception? _logged;

    /// <summary>The last load failed: what the page shows may be older than the store.</summary>
    public bool Behind => Failure is not null;

    /// <summary>Why the last load failed, while the page is <see cref="Behind"/>.</summary>
    public Exception? Failure { get; private set; }

    public async Task RunAsync()
    {
        if (Interlocked.Exchange(ref _running, 1) == 1)
        {
            Interlocked.Exchange(ref _pending, 1);
            return;
        }
        try
        {
            do
            {
                Interlocked.Exchange(ref _pending, 0);
                try
                {
                    await load();
                }
                catch when (Volatile.Read(ref _pending) == 1)
                {
                    // The ask that came during the failed load loads again; the page is behind only if that fails too.
                    continue;
                }
                catch (Exception failure)
                {
                    SetFailure(failure);
                    throw;
                }
                SetFailure(null);
            }
            while (Interlocked.Exchange(ref _pending, 0) == 1);
        }
        finally
        {
            Interlocked.Exchange(ref _running, 0);
        }
    }

    /// <summary>
    /// A load asked for again while the page is behind (the badge's button, a wall board's timer): a failure is kept as
    /// <see cref="Failure"/>, which the badge shows and logs, rather than thrown at whoever asked.
    /// </summary>
    public async Task RetryAsync()
    {
        try
        {
            await RunAsync();
        }
        catch (Exception) when (Behind)
        {
        }
    }

    /// <summary>
    /// Back from a dropped connection: loads again, on the page's dispatcher, if the page is behind or
    /// <paramref name="mayHaveMissed"/> a change it shows. A failure is kept as <see cref="Failure"/>, which the badge shows
    /// and logs, rather than thrown at the circuit's handler, which logged it a second time.
    /// </summary>
    public async Task CatchUpAsync(Func<Task<bool>> mayHaveMissed, Func<Func<Task>, Task> onDispatcher)
    {
        if (Behind || await mayHaveMissed())
        {
            await onDispatcher(RetryAsync);
        }
    }

    /// <summary>
    /// Logs, once each, what the loads came to since the last call: the first failure in a row as an error, the failures
    /// after it at debug, and the first load that works after them as information, with how many failed. Called by the
    /// page's badge as it draws; the count and what was logged are kept here, not in the badge, because a page can swap
    /// badges (the wall board's "could not be read" notice has its own), and the new badge would tell the old failure
    /// again and never the recovery.
    /// </summary>
    public void LogOutcome(ILogger logger)
    {
        if (_readAgainAfter > 0)
        {
            logger.LogInformation("A live page read its latest figures again; failed reads before it: {Failures}", _readAgainAfter);
            _readAgainAfter = 0;
        }
        if (Failure is not { } failure || ReferenceEquals(failure, _logged))
        {
            return;
        }
        if (_logged is null)
        {
            logger.LogError(failure, "A live page could not load its latest figures; it says it is not up to date until a load succeeds");
        }
        else
        {
            // Debug, not warning: the error opened the outage and the recovery's line closes it, so at the usual level an
            // open wall board logs two lines an outage rather than one every 30 s; an error with no recovery after it is
            // an outage still going on.
            logger.LogDebug(failure, "A live page still could not load its latest figures (failed reads in a row: {Failures})", _failedInARow);
        }
        _logged = failure;
    }

    private void SetFailure(Exception? failure)
    {
        var before = Failure;
        Failure = failure;
        if (failure is not null)
        {
            _failedInARow++;
        }
        else if (_failedInARow > 0)
        {
            (_readAgainAfter, _failedInARow, _logged) = (_failedInARow, 0, null);
        }
        if (!ReferenceEquals(before, failure))
        {
            behindChanged?.Invoke();
        }
    }
}
