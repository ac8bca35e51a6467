using System.Data.Common;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.ExceptionServices;
using Microsoft.Data.Sqlite;

namespace CareCoordination.Store;

/// <summary>
/// SQLite lets one writer in at a time. Writers used to take that turn with a synchronous BEGIN IMMEDIATE and wait in
/// SQLite's busy handler, each blocking a pool thread while one worked. Here they queue in process, asynchronously, and
/// write on one long-lived connection (no per-open PRAGMAs on the write path); readers keep their own connections (WAL).
///
/// Group commit: writers that queued while a transaction was open run one after another in it, each in its own
/// SAVEPOINT, and the transaction commits once. A writer that fails is rolled back to its savepoint and the others go on.
/// Every writer returns only after that commit, so nothing is acknowledged before it is durable as far as the store is
/// concerned; a failed COMMIT fails every writer in the group. The last writer of a group (no one waiting, or the group
/// full or old enough) commits it; a writer runs its work in its own async flow, so its caller's AsyncLocal state flows.
/// A write queued ahead (a read's audit row) goes before the commands queued; the writes ahead share a group, which commits
/// as soon as they have written, and the turn then goes to the oldest command waiting, so reads cannot hold commands back.
/// While writes ahead keep coming, each commit carries one command and them: group commit gives way to reads.
/// </summary>
internal sealed class SqliteWriter(string connectionString, Func<SqliteConnection, CancellationToken, Task> prepare, WriteGroupLimits limits)
    : IAsyncDisposable
{

    /// <summary>The writer this flow is running the work of: a write inside a write would wait on itself for ever.</summary>
    private static readonly AsyncLocal<SqliteWriter?> Holder = new();

    private readonly Lock _gate = new();
    // Writers queued, each in the order they came: the writes ahead (a read's audit row), served before the commands.
    private readonly LinkedList<TaskCompletionSource> _waitingAhead = [];
    private readonly LinkedList<TaskCompletionSource> _waiting = [];
    private bool _held;
    private bool _disposed;
    private SqliteConnection? _connection;
    private Group? _open;
    private long _savepoints;
    private long _groupsCommitted;

    /// <summary>Writers queued for the turn (for tests, which line writers up before letting them in).</summary>
    public int Waiting
    {
        get
        {
            lock (_gate)
            {
                return _waitingAhead.Count + _waiting.Count;
            }
        }
    }

    public long GroupsCommitted => Interlocked.Read(ref _groupsCommitted);

    /// <summary>Statements the writer's connection has compiled (for tests: a repeated write compiles none).</summary>
    public int StatementsCompiled => (_connection as StatementCachingConnection)?.Compiled ?? 0;

    private sealed class Group(SqliteTransaction transaction)
    {
        public SqliteTransaction Transaction { get; } = transaction;
        public long Started { get; } = Stopwatch.GetTimestamp();
        public int Writers { get; set; }
        public Exception? Broken { get; set; }
        public TaskCompletionSource Committed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <param name="ahead">
    /// A small write someone is waiting to see the answer of (a read's audit row): it is queued before the commands waiting
    /// (after other writes ahead), and its group commits as soon as the writes ahead have written, so that a screen's read
    /// waits for the writer at work and a commit rather than for every submission queued (issue 14: reads while writing).
    /// After the writes ahead commit, the turn goes to the oldest command waiting before any further write ahead, so a stream
    /// of reads cannot keep submissions waiting: at least one command is written between two such commits.
    /// </param>
    public async Task<T> WriteAsync<T>(Func<DbConnection, DbTransaction, Task<T>> work, CancellationToken cancellationToken, bool ahead = false)
    {
        if (Holder.Value == this)
        {
            throw new InvalidOperationException("A write was started inside a write: it would wait for its own turn. Write through the open transaction.");
        }
        await EnterAsync(cancellationToken, ahead);
        Group group;
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            group = _open ??= await BeginAsync(cancellationToken);
        }
        catch
        {
            Leave();
            throw;
        }

        group.Writers++;
        T result = default!;
        ExceptionDispatchInfo? failure = null;
        if (cancellationToken.IsCancellationRequested)
        {
            // Handed the turn after its caller gave up: it writes nothing, but still ends or passes on the group.
            failure = ExceptionDispatchInfo.Capture(new OperationCanceledException(cancellationToken));
        }
        else
        {
            var savepoint = "w" + (++_savepoints).ToString(CultureInfo.InvariantCulture);
            var saved = false;
            try
            {
                // Inside the try: were it to throw, the group ends as broken (below) and the turn is still passed on, never held.
                group.Transaction.Save(savepoint);
                saved = true;
                Holder.Value = this;
                try
                {
                    result = await work(_connection!, group.Transaction);
                }
                finally
                {
                    Holder.Value = null;
                }
                group.Transaction.Release(savepoint);
            }
            catch (Exception error)
            {
                failure = ExceptionDispatchInfo.Capture(error);
                if (!saved)
                {
                    // Nothing of this writer's to undo, but a transaction that cannot take a savepoint cannot be trusted either.
                    group.Broken = error;
                }
                else
                {
                    try
                    {
                        group.Transaction.Rollback(savepoint);
                        group.Transaction.Release(savepoint);
                    }
                    catch (Exception rollback)
                    {
                        // SQLite rolls a whole transaction back on some errors (disk full, I/O): the others' work is gone too.
                        group.Broken = rollback;
                    }
                }
            }
            if (group.Broken is null && SQLitePCL.raw.sqlite3_get_autocommit(_connection!.Handle) != 0)
            {
                group.Broken = failure?.SourceException ?? new InvalidOperationException("The write transaction ended inside a writer's work.");
            }
        }

        await EndTurnAsync(group, ahead);
        await group.Committed.Task;
        failure?.Throw();
        return result;
    }

    /// <summary>Passes the open group to the next writer waiting (after a write ahead, only to another), or commits it.</summary>
    private async Task EndTurnAsync(Group group, bool ahead)
    {
        if (group.Broken is null && group.Writers < limits.MaxWriters && Stopwatch.GetElapsedTime(group.Started) < limits.MaxAge && TryPassOn(onlyAhead: ahead))
        {
            return;
        }
        await CommitAsync(group);
        Leave(commandFirst: ahead);
    }

    private async Task CommitAsync(Group group)
    {
        _open = null;
        try
        {
            if (group.Broken is { } broken)
            {
                throw new InvalidOperationException("A write transaction was lost; none of its writers' work was kept.", broken);
            }
            await group.Transaction.CommitAsync(CancellationToken.None);
            Interlocked.Increment(ref _groupsCommitted);
            group.Committed.SetResult();
        }
        catch (Exception error)
        {
            await AbandonAsync(group);
            group.Committed.SetException(error);
        }
    }

    private async Task AbandonAsync(Group group)
    {
        try
        {
            await group.Transaction.DisposeAsync();
        }
        catch (Exception)
        {
            // A connection that cannot even roll back is replaced at the next turn.
            await DropConnectionAsync();
        }
    }

    private async Task<Group> BeginAsync(CancellationToken cancellationToken)
    {
        if (_connection is null)
        {
            var connection = new StatementCachingConnection(connectionString);
            try
            {
                await connection.OpenAsync(cancellationToken);
                await prepare(connection, cancellationToken);
                // Each writer of a group runs in a savepoint, and SQLite copies every page a savepoint first changes to a
                // sub-journal, a temporary file by default: one pwrite system call a page, 6% of the server's CPU under
                // load (issue 14). In memory it is a copy. It only ever undoes a savepoint of this connection, never
                // anything committed, and holds at most the pages of the writer at work. Readers keep the default, for
                // the large sorts of reports.
                await using (var memory = connection.CreateCommand())
                {
                    memory.CommandText = "PRAGMA temp_store = MEMORY";
                    await memory.ExecuteNonQueryAsync(cancellationToken);
                }
            }
            catch
            {
                await connection.DisposeAsync();
                throw;
            }
            _connection = connection;
        }
        // Only another process (an operator's tool, a restore) can hold SQLite's lock now: that wait stays in the busy handler.
        return new Group(_connection.BeginTransaction(deferred: false));
    }

    private async Task DropConnectionAsync()
    {
        if (_connection is { } connection)
        {
            _connection = null;
            await connection.DisposeAsync();
        }
    }

    /// <summary>Waits for the turn, queued as a write ahead or as a command.</summary>
    private async Task EnterAsync(CancellationToken cancellationToken, bool ahead = false)
    {
        LinkedListNode<TaskCompletionSource> node;
        lock (_gate)
        {
            if (!_held)
            {
                _held = true;
                return;
            }
            node = (ahead ? _waitingAhead : _waiting).AddLast(new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        }
        await using var _ = cancellationToken.Register(() =>
        {
            lock (_gate)
            {
                // Still queued: leave the queue. Already handed the turn: it must take it (see WriteAsync).
                if (node.List is { } queue)
                {
                    queue.Remove(node);
                    node.Value.TrySetCanceled(cancellationToken);
                }
            }
        });
        await node.Value.Task;
    }

    /// <summary>
    /// Hands the turn, with the open group, straight to the next writer waiting, if there is one: a write ahead first, then a
    /// command (unless only writes ahead are asked for, or commands come first).
    /// </summary>
    private bool TryPassOn(bool onlyAhead = false, bool commandFirst = false)
    {
        lock (_gate)
        {
            var queue = commandFirst && _waiting.Count > 0 ? _waiting
                : _waitingAhead.Count > 0 ? _waitingAhead
                : onlyAhead ? null : _waiting;
            if (queue?.First is not { } next)
            {
                return false;
            }
            queue.RemoveFirst();
            next.Value.SetResult();
            return true;
        }
    }

    /// <param name="commandFirst">After writes ahead: the oldest command waiting takes the turn before any write ahead.</param>
    private void Leave(bool commandFirst = false)
    {
        lock (_gate)
        {
            if (!TryPassOn(commandFirst: commandFirst))
            {
                _held = false;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await EnterAsync(CancellationToken.None);
        _disposed = true;
        if (_open is { } group)
        {
            await CommitAsync(group);
        }
        await DropConnectionAsync();
        Leave();
    }
}

/// <summary>
/// How far a group may grow before it commits: a long one delays its first writers' answers and holds readers' view
/// further back; a short one commits more often.
/// </summary>
public sealed record WriteGroupLimits(int MaxWriters, TimeSpan MaxAge)
{
    public static WriteGroupLimits Default { get; } = new(64, TimeSpan.FromMilliseconds(25));
}
