using System.Data.Common;
using CareCoordination.Changes;
using CareCoordination.Domain;
using CareCoordination.Store;

namespace CareCoordination.Features.Boards;

/// <summary>
/// A board's figures last worked out on this node, and the store's last change when they were. Every open board reloads its
/// figures at each change it is told of, and where the answer is the same for every viewer (it names no one and is not
/// narrowed to an organisation) it is worked out once per change and shared: a change costs one working out, not one per
/// open board (issue 14). Boards that ask while it is being worked out wait for that one, holding no connection, and share its
/// failure too: a store that times out fails them together, not in turn.
/// </summary>
/// <remarks>
/// Current while the store's last change is the one it was worked out at (sequence order is commit order: ChangeLog), the
/// London day has not turned, and it is under <paramref name="maxAge"/> old: figures that depend on the time (a wait, a
/// confirmation gone stale) move on, and a change made without the change log (a restore, an edit by hand) shows to a board
/// opened or reloaded after that long.
/// </remarks>
public abstract class SharedAtChange<T>(Database database, TimeProvider clock, TimeSpan maxAge) where T : class
{
    private sealed record Worked(DateOnly Today, long AsOfSeq, DateTimeOffset At, T Result)
    {
        /// <summary>Has the change the board was told of in it, and is of today.</summary>
        public bool Answers(long seen, DateOnly today) => AsOfSeq >= seen && Today == today;
    }

    private readonly Lock _gate = new();
    private Worked? _worked;
    private Task<Worked>? _working;
    private long _timesWorkedOut;
    private int _waiting;

    /// <summary>How many times this node has worked the figures out: what sharing them saves is seen in this.</summary>
    internal long TimesWorkedOut => Interlocked.Read(ref _timesWorkedOut);

    /// <summary>Boards waiting while the figures are worked out.</summary>
    internal int BoardsWaiting => Volatile.Read(ref _waiting);

    /// <summary>The store's engine, for figures read in its dialect.</summary>
    protected StoreProvider Provider => database.Provider;

    /// <summary>
    /// The figures at or after the store's last change, read at <paramref name="now"/>, on <paramref name="connection"/>; its
    /// change sequence number is <paramref name="asOfSeq"/>, read before them.
    /// </summary>
    protected abstract Task<T> WorkOutAsync(DbConnection connection, long asOfSeq, DateTimeOffset now, DateOnly today);

    internal async Task<T> GetAsync(CancellationToken cancellationToken)
    {
        long seen;
        await using (var connection = await database.OpenAsync(cancellationToken))
        {
            seen = await ChangeLog.LastSeqAsync(connection, cancellationToken);
        }
        while (true)
        {
            if (Current(seen) is { } current)
            {
                return current.Result;
            }
            Task<Worked> working;
            lock (_gate)
            {
                if (_working is not { IsCompleted: false })
                {
                    // One may have ended since the look above: begun again, it would be worked out twice for one change.
                    if (Current(seen) is { } ended)
                    {
                        return ended.Result;
                    }
                    // Run apart from this board, and outside its context (its message scope, its trace): it is every waiting
                    // board's, whichever of them gives up waiting.
                    using (ExecutionContext.SuppressFlow())
                    {
                        _working = Task.Run(WorkOutSharedAsync);
                    }
                }
                working = _working;
            }
            Interlocked.Increment(ref _waiting);
            Worked worked;
            try
            {
                worked = await working.WaitAsync(cancellationToken);
            }
            finally
            {
                Interlocked.Decrement(ref _waiting);
            }
            if (worked.Answers(seen, LondonTime.Today(clock)))
            {
                return worked.Result;
            }
            // Begun before this board's change was made, or before midnight: once more.
        }
    }

    /// <summary>The figures last worked out, if they have the change the board was told of, are of today and under their age.</summary>
    private Worked? Current(long seen) =>
        Volatile.Read(ref _worked) is { } worked && worked.Answers(seen, LondonTime.Today(clock)) && clock.GetUtcNow() - worked.At < maxAge ? worked : null;

    /// <summary>Bounded by the store's command timeout, not by any one board's wait.</summary>
    private async Task<Worked> WorkOutSharedAsync()
    {
        await using var connection = await database.OpenAsync(CancellationToken.None);
        // Read before the figures' own reads, so what they see is at least as new as the change they are kept under.
        var asOf = await ChangeLog.LastSeqAsync(connection, CancellationToken.None);
        var (now, today) = (clock.GetUtcNow(), LondonTime.Today(clock));
        var worked = new Worked(today, asOf, now, await WorkOutAsync(connection, asOf, now, today));
        Interlocked.Increment(ref _timesWorkedOut);
        Volatile.Write(ref _worked, worked);
        return worked;
    }
}
