using System.Collections.Immutable;
using System.Data;
using System.Data.Common;
using CareCoordination.Store;
using Dapper;

namespace CareCoordination.Changes;

public sealed record Change(long Seq, DateTimeOffset At, string Kind, string EntityType, long EntityId, long? OrganisationId, string? Actor, string? Data)
{
    /// <summary>The referral this change is about: its own id, or the referralId that task, placement, approval and carer message changes carry.</summary>
    public long? ReferralId()
    {
        if (EntityType == "referral")
        {
            return EntityId;
        }
        if (Data is null || EntityType is not ("triage_task" or "placement" or "caution_approval" or "carer_message"))
        {
            return null;
        }
        using var data = System.Text.Json.JsonDocument.Parse(Data);
        return data.RootElement.TryGetProperty("referralId", out var value) && value.TryGetInt64(out var id) ? id : null;
    }
}

/// <summary>
/// Pushes committed changes to this node's live screens in sequence order. A commit only pokes the feed;
/// the feed then reads the change table after the last sequence number it published, so subscribers
/// see every change once, in order, whichever writer committed first.
/// </summary>
/// <remarks>
/// The feed runs on a thread of its own, not on the thread pool: a commit wakes it at once, where a pool
/// work item would queue behind whatever the pool holds (a burst of pushes to a thousand connections, or
/// requests waiting on the store), and that queueing was most of a board's wait under load.
/// </remarks>
public sealed class ChangeFeed(Database database, ILogger<ChangeFeed> logger) : BackgroundService
{
    private const string ChangesAfter = """
        SELECT seq AS Seq, at AS At, kind AS Kind, entity_type AS EntityType, entity_id AS EntityId,
               organisation_id AS OrganisationId, actor AS Actor, data AS Data
        FROM change WHERE seq > @After ORDER BY seq LIMIT @Limit
        """;

    private const int BatchSize = 500;

    // A poke sets the event only when none is pending, so it holds at most one wake-up; the feed resets it and clears the
    // flag before it reads, so a commit poked during a read is read on the next round, never lost. An event that does not
    // spin: SemaphoreSlim.Wait spun before it slept, and with a poke per commit that was about 1.5% of the server's CPU (issue 14).
    private readonly ManualResetEventSlim _wake = new(false, spinCount: 0);
    private int _poked;
    private ImmutableArray<Func<Change, ValueTask>> _subscribers = [];
    private long _published = -1;

    // The changes published last, by seq modulo its length: the "as of" time of every open page is one of these, so a
    // page told of a change does not ask the store when it was made (a thousand boards would, on every change).
    private readonly Change?[] _recent = new Change?[1024];

    /// <summary>The highest sequence number pushed to subscribers so far.</summary>
    public long Published => Interlocked.Read(ref _published);

    public void Poke()
    {
        if (Interlocked.Exchange(ref _poked, 1) == 0)
        {
            _wake.Set();
        }
    }

    public IDisposable Subscribe(Func<Change, ValueTask> onChange)
    {
        ImmutableInterlocked.Update(ref _subscribers, list => list.Add(onChange));
        return new Subscription(() => ImmutableInterlocked.Update(ref _subscribers, list => list.Remove(onChange)));
    }

    /// <summary>
    /// When change <paramref name="seq"/> was made: what a page names beside the sequence number it shows "as of", so that
    /// printed or downloaded in downtime it says how old it is. Null before the first change.
    /// </summary>
    public async Task<DateTimeOffset?> TimeOfAsync(long seq, CancellationToken cancellationToken = default)
    {
        if (seq >= 0 && Volatile.Read(ref _recent[seq % _recent.Length]) is { } recent && recent.Seq == seq)
        {
            return recent.At;
        }
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<DateTimeOffset?>(new CommandDefinition(
            "SELECT at FROM change WHERE seq = @seq", new { seq }, cancellationToken: cancellationToken));
    }

    /// <summary>
    /// Whether a live page as of change <paramref name="after"/>, back from a dropped connection, may have missed a change it
    /// shows: one of the changes since concerns it, or there were more of them than one look reads, or the store cannot say.
    /// In the last two cases the page reloads, which brings it up to date or marks it not up to date (SerialLoad); before,
    /// a store error here left the page's older rows under "Live", and changes past the first thousand went unlooked at.
    /// </summary>
    public async Task<bool> MayHaveMissedAsync(long after, Func<Change, bool> concerns, CancellationToken cancellationToken = default)
    {
        const int Look = 1000;
        try
        {
            var missed = await SinceAsync(after, Look, cancellationToken);
            return missed.Count >= Look || missed.Any(concerns);
        }
        catch (Exception ex) when (ex is System.Data.Common.DbException or TimeoutException)
        {
            return true;
        }
    }

    /// <summary>What a reconnecting screen missed. Serves only what has been published, so a resync never runs ahead of the push.</summary>
    public async Task<IReadOnlyList<Change>> SinceAsync(long after, int limit = 1000, CancellationToken cancellationToken = default)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var changes = await connection.QueryAsync<Change>(new CommandDefinition(ChangesAfter, new { After = after, Limit = limit }, cancellationToken: cancellationToken));
        var published = Published;
        return changes.Where(c => c.Seq <= published).ToList();
    }

    /// <summary>
    /// The feed's starting point (the store's last change) is read here, before the host serves: the store is ready by
    /// then, and Kestrel starts only after every hosted service has. Read on the feed's own thread, a change committed
    /// by a first request could land before it and never be pushed (the health test that stops the feed saw it).
    /// </summary>
    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        await using (var connection = await database.OpenAsync(cancellationToken))
        {
            Interlocked.Exchange(ref _published, await ChangeLog.LastSeqAsync(connection, cancellationToken));
        }
        await base.StartAsync(cancellationToken);
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.Factory.StartNew(() => Run(stoppingToken), stoppingToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    /// <summary>Blocks its own thread on purpose: waits for a poke, reads, hands each change to the subscribers in order.</summary>
    private void Run(CancellationToken stoppingToken)
    {
        try
        {
            while (true)
            {
                try
                {
                    _wake.Wait(stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                _wake.Reset();
                Interlocked.Exchange(ref _poked, 0);
                Interlocked.Increment(ref _rounds);
                try
                {
                    PublishPending(stoppingToken);
                }
                catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception ex)
                {
                    // The next poke retries from the same sequence number, on a new connection: nothing is skipped.
                    Close();
                    logger.LogError(ex, "Publishing changes after {Seq} failed", Published);
                }
            }
        }
        finally
        {
            Close();
        }
    }

    private void PublishPending(CancellationToken cancellationToken)
    {
        while (true)
        {
            var batch = ReadAfter(Published, cancellationToken);
            foreach (var change in batch)
            {
                Volatile.Write(ref _recent[change.Seq % _recent.Length], change);
                Interlocked.Exchange(ref _published, change.Seq);
                foreach (var subscriber in _subscribers)
                {
                    try
                    {
                        var delivered = subscriber(change);
                        if (!delivered.IsCompletedSuccessfully)
                        {
                            delivered.AsTask().GetAwaiter().GetResult();
                        }
                    }
                    catch (Exception ex)
                    {
                        logger.LogWarning(ex, "A subscriber failed on change {Seq}", change.Seq);
                    }
                }
            }
            if (batch.Count < BatchSize)
            {
                return;
            }
        }
    }

    // The feed's own connection and its one query, kept from round to round on the feed's thread: a commit pokes the feed,
    // and opening a connection and compiling the query anew for each round was most of what the feed cost per referral
    // (issue 14). Only ever used by the feed's thread.
    private DbConnection? _connection;
    private DbCommand? _changesAfter;
    private DbParameter? _after;

    /// <summary>How many times the feed has woken to read the change table (for tests).</summary>
    internal long Rounds => Interlocked.Read(ref _rounds);

    private long _rounds;

    /// <summary>How many connections the feed has opened for its rounds: one, unless one broke.</summary>
    internal int ConnectionsOpened { get; private set; }

    private List<Change> ReadAfter(long after, CancellationToken cancellationToken)
    {
        var kept = _changesAfter is not null;
        try
        {
            return Read(after, cancellationToken);
        }
        catch (Exception) when (kept && !cancellationToken.IsCancellationRequested)
        {
            // A kept connection can go stale (a PostgreSQL server restarted, the connection ended): once more on a new one.
            Close();
            return Read(after, cancellationToken);
        }
    }

    private List<Change> Read(long after, CancellationToken cancellationToken)
    {
        if (_changesAfter is null)
        {
            _connection = database.OpenAsync(cancellationToken).GetAwaiter().GetResult();
            ConnectionsOpened++;
            _changesAfter = Sql.Prepare(_connection, ChangesAfter, ("After", DbType.Int64), ("Limit", DbType.Int32));
            _after = _changesAfter.Parameters[0];
            _changesAfter.Parameters[1].Value = BatchSize;
        }
        _after!.Value = after;
        var batch = new List<Change>();
        using var reader = _changesAfter.ExecuteReader();
        var parse = reader.GetRowParser<Change>();
        while (reader.Read())
        {
            batch.Add(parse(reader));
        }
        return batch;
    }

    private void Close()
    {
        try
        {
            _changesAfter?.Dispose();
            _connection?.Dispose();
        }
        catch (Exception ex)
        {
            logger.LogDebug(ex, "Closing the change feed's connection failed");
        }
        _changesAfter = null;
        _after = null;
        _connection = null;
    }

    private sealed class Subscription(Action dispose) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                dispose();
            }
        }
    }
}
