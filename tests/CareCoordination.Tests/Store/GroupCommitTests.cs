using CareCoordination.Store;
using CareCoordination.Tests.Support;
using Dapper;
using Microsoft.Data.Sqlite;

namespace CareCoordination.Tests.Store;

/// <summary>
/// SQLite's writer: writers queued while a transaction is open share it, each in its own savepoint, and are answered
/// only after it commits. Each test lines writers up behind one that holds the turn, so the group is known.
/// </summary>
public sealed class GroupCommitTests : IAsyncLifetime
{
    private Database _database = null!;

    // Groups close by count or age; here only when no writer is waiting, so that a test decides who shares a group.
    public async Task InitializeAsync() => _database = await NewStoreAsync(new WriteGroupLimits(64, TimeSpan.FromMinutes(5)));

    private static async Task<Database> NewStoreAsync(WriteGroupLimits limits)
    {
        var migrated = await new SqliteTestStore().MigratedAsync();
        var connectionString = migrated.ConnectionString;
        await migrated.DisposeAsync();
        return new Database(StoreProvider.Sqlite, connectionString, limits);
    }

    public async Task DisposeAsync() => await _database.DisposeAsync();

    [Fact]
    public async Task TheWritersCommits_WaitForTheDisk_SoAnAcknowledgedWriteOutlivesAPowerCut()
    {
        // FULL syncs the WAL at every commit; NORMAL (SQLite's usual choice with WAL) only at checkpoints, and a power cut or
        // the machine's crash may then take commits already answered. A process that dies loses nothing either way
        // (KillMidBatchTests); what only the disk's sync protects cannot be cut in a test, so the setting is what is shown.
        var synchronous = await _database.WriteAsync((connection, transaction) =>
            connection.ExecuteScalarAsync<long>("PRAGMA synchronous", transaction: transaction));

        Assert.Equal(2, synchronous); // FULL
    }

    /// <summary>A writer holding the turn until released; returns once its work is running.</summary>
    private async Task<(Task Done, TaskCompletionSource Release)> HoldTheTurnAsync(Database? database = null)
    {
        var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var done = (database ?? _database).WriteAsync(async (connection, transaction) =>
        {
            await connection.ExecuteAsync("INSERT INTO app_setting (key, value) VALUES ('holder', 'held')", transaction: transaction);
            running.SetResult();
            await release.Task;
        });
        await running.Task;
        return (done, release);
    }

    private async Task UntilWaitingAsync(int writers, Database? database = null)
    {
        while ((database ?? _database).WritersWaiting < writers)
        {
            await Task.Delay(5);
        }
    }

    private Task<int> Insert(string key, Func<Task>? then = null) => _database.WriteAsync(async (connection, transaction) =>
    {
        await connection.ExecuteAsync("INSERT INTO app_setting (key, value) VALUES (@key, 'x')", new { key }, transaction);
        if (then is not null)
        {
            await then();
        }
        return 1;
    });

    private async Task<List<string>> StoredAsync()
    {
        await using var reader = await _database.OpenAsync();
        return (await reader.QueryAsync<string>("SELECT key FROM app_setting WHERE value IN ('held', 'x') ORDER BY key")).ToList();
    }

    /// <summary>
    /// Issue 14: the writers' savepoints are undone from memory, not from a temporary file written a page at a time;
    /// a writer rolled back to its savepoint still leaves the others' work, and readers keep SQLite's default.
    /// </summary>
    [Fact]
    public async Task TheWritersSavepoints_AreKeptInMemory_AndStillUndoOneWriter()
    {
        var held = await HoldTheTurnAsync();
        var inMemory = _database.WriteAsync((connection, transaction) => connection.ExecuteScalarAsync<int>("PRAGMA temp_store", transaction: transaction));
        var failing = _database.WriteAsync(async (connection, transaction) =>
        {
            await connection.ExecuteAsync("INSERT INTO app_setting (key, value) VALUES ('undone', 'x')", transaction: transaction);
            throw new InvalidOperationException("this writer fails");
        });
        var kept = _database.WriteAsync((connection, transaction) =>
            connection.ExecuteAsync("INSERT INTO app_setting (key, value) VALUES ('kept', 'y')", transaction: transaction));
        while (_database.WritersWaiting < 3)
        {
            await Task.Delay(5);
        }
        held.Release.SetResult();
        await held.Done;

        Assert.Equal(2, await inMemory); // 2: MEMORY
        await Assert.ThrowsAsync<InvalidOperationException>(() => failing);
        await kept;
        await using var reader = await _database.OpenAsync();
        Assert.Equal(["holder", "kept"], (await reader.QueryAsync<string>(
            "SELECT key FROM app_setting WHERE key IN ('holder', 'undone', 'kept') ORDER BY key")).ToList());
        Assert.Equal(0, await reader.ExecuteScalarAsync<int>("PRAGMA temp_store"));
    }

    /// <summary>
    /// Issue 14, reads while writing: a read's audit row goes ahead of the commands queued, in the order such rows came, and
    /// the group commits straight after the writes ahead, so the read is answered after one writer and one commit, not the
    /// whole queue.
    /// </summary>
    [Fact]
    public async Task AWriteAhead_RunsBeforeTheWritersQueued_AndIsCommittedBeforeTheyRun()
    {
        var (holder, release) = await HoldTheTurnAsync();
        var ran = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var ahead = new List<Task>();
        var writers = new List<Task<int>>();
        foreach (var key in new[] { "w0", "w1", "w2" })
        {
            writers.Add(Insert(key, async () =>
            {
                // By the time a queued command runs, every write that went ahead of it is committed: another connection sees it.
                await using var reader = await _database.OpenAsync();
                var committed = await reader.ExecuteScalarAsync<int>("SELECT COUNT(*) FROM app_setting WHERE key IN ('a0', 'a1')");
                ran.Enqueue($"{key} (ahead committed: {committed})");
            }));
            await UntilWaitingAsync(writers.Count);
        }
        foreach (var key in new[] { "a0", "a1" })
        {
            ahead.Add(_database.WriteAheadAsync(async (connection, transaction) =>
            {
                await connection.ExecuteAsync("INSERT INTO app_setting (key, value) VALUES (@key, 'x')", new { key }, transaction);
                ran.Enqueue(key);
            }));
            await UntilWaitingAsync(writers.Count + ahead.Count);
        }
        var groupsBefore = _database.WriteGroupsCommitted;

        release.SetResult();
        await holder;
        await Task.WhenAll(writers);
        await Task.WhenAll(ahead);

        Assert.Equal(["a0", "a1", "w0 (ahead committed: 2)", "w1 (ahead committed: 2)", "w2 (ahead committed: 2)"], ran.ToList());
        // The holder's group with the two writes ahead, then the three commands together.
        Assert.Equal(2, _database.WriteGroupsCommitted - groupsBefore);
        Assert.Equal(["a0", "a1", "holder", "w0", "w1", "w2"], await StoredAsync());
    }

    /// <summary>
    /// A stream of reads cannot keep a submission waiting: once writes ahead have committed, the oldest command takes the
    /// turn before the next write ahead. Groups of two here, so that writes ahead are still queued when theirs commits.
    /// </summary>
    [Fact]
    public async Task AfterWritesAheadCommit_TheOldestCommandGoesBeforeTheNextWriteAhead()
    {
        await using var database = await NewStoreAsync(new WriteGroupLimits(2, TimeSpan.FromMinutes(5)));
        var (holder, release) = await HoldTheTurnAsync(database);
        var ran = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var writes = new List<Task>();
        foreach (var (key, ahead) in new[] { ("a1", true), ("a2", true), ("a3", true), ("w1", false) })
        {
            Task Work(System.Data.Common.DbConnection connection, System.Data.Common.DbTransaction transaction)
            {
                ran.Enqueue(key);
                return Task.CompletedTask;
            }
            writes.Add(ahead ? database.WriteAheadAsync(Work) : database.WriteAsync(Work));
            await UntilWaitingAsync(writes.Count, database);
        }

        release.SetResult();
        await Task.WhenAll(writes.Append(holder));

        // The holder's group takes a1 and is full; then w1, before a2 and a3 are written.
        Assert.Equal(["a1", "w1", "a2", "a3"], ran.ToList());
    }

    /// <summary>A write ahead that found the turn free commits at once: a command queued meanwhile does not join its group.</summary>
    [Fact]
    public async Task AWriteAheadOnAFreeTurn_CommitsBeforeACommandQueuedWhileItWrote()
    {
        var running = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var ahead = _database.WriteAheadAsync(async (connection, transaction) =>
        {
            await connection.ExecuteAsync("INSERT INTO app_setting (key, value) VALUES ('a0', 'x')", transaction: transaction);
            running.SetResult();
            await release.Task;
        });
        await running.Task;
        var seen = -1;
        var command = Insert("w0", async () =>
        {
            await using var reader = await _database.OpenAsync();
            seen = await reader.ExecuteScalarAsync<int>("SELECT COUNT(*) FROM app_setting WHERE key = 'a0'");
        });
        await UntilWaitingAsync(1);
        var groupsBefore = _database.WriteGroupsCommitted;

        release.SetResult();
        await Task.WhenAll(ahead, command);

        Assert.Equal(1, seen);
        Assert.Equal(2, _database.WriteGroupsCommitted - groupsBefore);
    }

    [Fact]
    public async Task AWriteAheadGivenUpWhileQueued_LeavesTheNextOneAheadOfTheCommands()
    {
        var (holder, release) = await HoldTheTurnAsync();
        var ran = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var command = Insert("w0", () =>
        {
            ran.Enqueue("w0");
            return Task.CompletedTask;
        });
        await UntilWaitingAsync(1);
        using var givenUp = new CancellationTokenSource();
        var abandoned = _database.WriteAheadAsync((_, _) => throw new InvalidOperationException("never runs"), givenUp.Token);
        await UntilWaitingAsync(2);
        await givenUp.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => abandoned);
        var ahead = _database.WriteAheadAsync((_, _) =>
        {
            ran.Enqueue("a1");
            return Task.CompletedTask;
        });
        await UntilWaitingAsync(2);

        release.SetResult();
        await Task.WhenAll(holder, command, ahead);

        Assert.Equal(["a1", "w0"], ran.ToList());
    }

    [Fact]
    public async Task WritersQueuedTogether_CommitOnce_AndAFailingOneLeavesNothingOfItself_WhileTheOthersAreKept()
    {
        var (holder, release) = await HoldTheTurnAsync();
        var writers = Enumerable.Range(0, 8).Select(i => Insert($"w{i}", i == 3 ? () => throw new InvalidOperationException("writer 3 breaks a rule") : null)).ToList();
        await UntilWaitingAsync(8);
        var groupsBefore = _database.WriteGroupsCommitted;

        release.SetResult();
        await holder;

        var failed = await Assert.ThrowsAsync<InvalidOperationException>(() => writers[3]);
        Assert.Equal("writer 3 breaks a rule", failed.Message);
        Assert.All(writers.Where((_, i) => i != 3), w => Assert.Equal(1, w.Result));
        Assert.Equal(1, _database.WriteGroupsCommitted - groupsBefore);
        Assert.Equal(["holder", "w0", "w1", "w2", "w4", "w5", "w6", "w7"], await StoredAsync());
    }

    [Fact]
    public async Task AWriterWhoseWorkIsDone_IsNotAnswered_UntilItsGroupHasCommitted()
    {
        var (holder, release) = await HoldTheTurnAsync();
        var secondRunning = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var secondRelease = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var firstDone = false;
        var first = Insert("first", () =>
        {
            firstDone = true;
            return Task.CompletedTask;
        });
        await UntilWaitingAsync(1);
        var second = Insert("second", () =>
        {
            secondRunning.SetResult();
            return secondRelease.Task;
        });
        await UntilWaitingAsync(2);

        release.SetResult();
        await secondRunning.Task;

        // The first writer's work is done and its savepoint released, but the group is still open.
        Assert.True(firstDone);
        Assert.False(first.IsCompleted);
        Assert.False(holder.IsCompleted);
        Assert.Empty(await StoredAsync());

        secondRelease.SetResult();
        await Task.WhenAll(holder, first, second);
        Assert.Equal(["first", "holder", "second"], await StoredAsync());
    }

    [Fact]
    public async Task AFailedCommit_FailsEveryWriterInTheGroup_AndKeepsNothing()
    {
        await using (var connection = await _database.OpenAsync())
        {
            // A foreign key checked at COMMIT: the one way to make a commit fail on demand.
            await connection.ExecuteAsync("CREATE TABLE commit_check (person_id INTEGER REFERENCES person (id) DEFERRABLE INITIALLY DEFERRED)");
        }
        var (holder, release) = await HoldTheTurnAsync();
        var innocent = Insert("innocent");
        var breaking = _database.WriteAsync((connection, transaction) =>
            connection.ExecuteAsync("INSERT INTO commit_check (person_id) VALUES (-1)", transaction: transaction));
        await UntilWaitingAsync(2);

        release.SetResult();

        foreach (var writer in new Task[] { holder, innocent, breaking })
        {
            var failure = await Assert.ThrowsAsync<SqliteException>(() => writer);
            Assert.Contains("FOREIGN KEY", failure.Message, StringComparison.Ordinal);
        }
        Assert.Empty(await StoredAsync());
        // The writer goes on: the next group commits.
        await Insert("after");
        Assert.Equal(["after"], await StoredAsync());
    }

    [Fact]
    public async Task AWriterThatGivesUpWhileQueued_LeavesTheQueue_AndTheOthersCommit()
    {
        var (holder, release) = await HoldTheTurnAsync();
        using var giveUp = new CancellationTokenSource();
        var impatient = _database.WriteAsync((connection, transaction) =>
            connection.ExecuteAsync("INSERT INTO app_setting (key, value) VALUES ('impatient', 'x')", transaction: transaction), giveUp.Token);
        var patient = Insert("patient");
        await UntilWaitingAsync(2);

        await giveUp.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => impatient);
        release.SetResult();
        await Task.WhenAll(holder, patient);

        Assert.Equal(["holder", "patient"], await StoredAsync());
    }

    [Fact]
    public async Task AWriteStartedInsideAWrite_IsRefused_InsteadOfWaitingOnItself()
    {
        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() =>
            _database.WriteAsync((_, _) => _database.WriteAsync((connection, transaction) =>
                connection.ExecuteAsync("INSERT INTO app_setting (key, value) VALUES ('inner', 'x')", transaction: transaction))));

        Assert.Contains("inside a write", refused.Message, StringComparison.Ordinal);
        Assert.Empty(await StoredAsync());
    }
}
