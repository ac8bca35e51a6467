using System.Collections.Concurrent;
using System.Net;
using CareCoordination.Changes;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using CareCoordination.Tests.Support;
using Dapper;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace CareCoordination.Tests.Changes;

public abstract class ChangeFeedTests(ITestStore store)
{
    /// <summary>
    /// The promise live screens rest on: with writers committing out of the order they took their
    /// sequence numbers, the feed still delivers every number exactly once, in order. On PostgreSQL this
    /// fails without the change-writer lock, because a later number can commit before an earlier one.
    /// </summary>
    [Fact]
    public async Task ChangeFeed_UnderConcurrentWriters_DeliversEverySequenceNumberOnceInOrder()
    {
        await using var database = await store.MigratedAsync();
        var (feed, received, subscription) = await StartRecordingAsync(database);
        using var subscribed = subscription;
        const int writers = 8;
        const int writes = 25;

        await Task.WhenAll(Enumerable.Range(0, writers).Select(writer => Task.Run(async () =>
        {
            var random = new Random(writer);
            for (var i = 0; i < writes; i++)
            {
                await using var connection = await database.OpenAsync();
                await using var transaction = await database.BeginWriteAsync(connection);
                await connection.ExecuteAsync("SELECT COUNT(*) FROM change", transaction: transaction);
                // Hold the transaction open a little so that commits interleave with other writers.
                await Task.Delay(random.Next(0, 4));
                await ChangeLog.AppendLastAsync(database, connection, transaction,
                    [new PendingChange("test.written", "test", (writer * 1000) + i, null, null)], DateTimeOffset.UtcNow, $"writer {writer}");
                await database.CommitAsync(transaction);
                feed.Poke();
            }
        })));
        feed.Poke();
        await WaitUntilAsync(() => received.Count >= writers * writes);
        await feed.StopAsync(CancellationToken.None);

        await using var check = await database.OpenAsync();
        var stored = (await check.QueryAsync<long>("SELECT seq FROM change ORDER BY seq")).ToList();
        Assert.Equal(writers * writes, stored.Count);
        Assert.Equal(stored, received.ToList());
    }

    /// <summary>
    /// A commit that pokes the feed while it is still handing out earlier changes (here: each change handed out commits
    /// the next) must be published too. The feed clears its poke before it reads, so such a poke wakes it once more
    /// rather than being absorbed by the round already under way.
    /// </summary>
    [Fact]
    public async Task ACommitPokedWhileTheFeedIsHandingOutEarlierChanges_IsPublishedToo()
    {
        await using var database = await store.MigratedAsync();
        var feed = new ChangeFeed(database, NullLogger<ChangeFeed>.Instance);
        const int chain = 30;
        var received = new ConcurrentQueue<long>();
        using var subscription = feed.Subscribe(async change =>
        {
            received.Enqueue(change.Seq);
            if (received.Count < chain)
            {
                await WriteAsync(database, received.Count);
                feed.Poke();
            }
        });
        await feed.StartAsync(CancellationToken.None);
        await WaitUntilAsync(() => feed.Published >= 0);

        await WriteAsync(database, 0);
        feed.Poke();
        await WaitUntilAsync(() => received.Count >= chain);
        await feed.StopAsync(CancellationToken.None);

        await using var check = await database.OpenAsync();
        Assert.Equal((await check.QueryAsync<long>("SELECT seq FROM change ORDER BY seq")).ToList(), received.ToList());
    }

    /// <summary>
    /// Issue 14: every commit pokes the feed, and each round opened a connection and compiled its query again. The feed now
    /// keeps one connection and its prepared query from round to round, and every change is still published once, in order.
    /// </summary>
    [Fact]
    public async Task TheFeed_ReadsEveryRound_OnTheOneConnectionItKeeps()
    {
        await using var database = await store.MigratedAsync();
        var (feed, received, subscription) = await StartRecordingAsync(database);
        using var subscribed = subscription;

        const int rounds = 20;
        for (var i = 0; i < rounds; i++)
        {
            await WriteAsync(database, i);
            feed.Poke();
            // One round per change: the next is written only once this one is out.
            await WaitUntilAsync(() => received.Count > i);
        }
        await feed.StopAsync(CancellationToken.None);

        await using var check = await database.OpenAsync();
        Assert.Equal((await check.QueryAsync<long>("SELECT seq FROM change ORDER BY seq")).ToList(), received.ToList());
        Assert.Equal(rounds, received.Count);
        Assert.Equal(1, feed.ConnectionsOpened);
    }

    /// <summary>The connection the feed keeps can end under it (a PostgreSQL server restarted): the next round reads on a new one, losing nothing.</summary>
    protected async Task TheFeed_WhoseConnectionEnded_ReadsOnANewOne_AndLosesNothing(Func<Database, Task> endTheFeedsConnection)
    {
        await using var database = await store.MigratedAsync();
        var (feed, received, subscription) = await StartRecordingAsync(database);
        using var subscribed = subscription;
        await WriteAsync(database, 1);
        feed.Poke();
        await WaitUntilAsync(() => received.Count == 1);

        await endTheFeedsConnection(database);
        await WriteAsync(database, 2);
        feed.Poke();
        await WaitUntilAsync(() => received.Count == 2);
        await feed.StopAsync(CancellationToken.None);

        await using var check = await database.OpenAsync();
        Assert.Equal((await check.QueryAsync<long>("SELECT seq FROM change ORDER BY seq")).ToList(), received.ToList());
        Assert.Equal(2, feed.ConnectionsOpened);
    }

    /// <summary>A started feed and the sequence numbers it hands out, in the order it hands them out.</summary>
    internal static async Task<(ChangeFeed Feed, ConcurrentQueue<long> Received, IDisposable Subscription)> StartRecordingAsync(Database database)
    {
        var feed = new ChangeFeed(database, NullLogger<ChangeFeed>.Instance);
        var received = new ConcurrentQueue<long>();
        var subscription = feed.Subscribe(change =>
        {
            received.Enqueue(change.Seq);
            return ValueTask.CompletedTask;
        });
        await feed.StartAsync(CancellationToken.None);
        await WaitUntilAsync(() => feed.Published >= 0);
        return (feed, received, subscription);
    }

    /// <param name="before">PostgreSQL only: statements sent first in the change's last round trip, as a command's held audit rows go.</param>
    internal static async Task WriteAsync(Database database, long entityId, string? before = null)
    {
        await using var connection = await database.OpenAsync();
        await using var transaction = await database.BeginWriteAsync(connection);
        await ChangeLog.AppendLastAsync(database, connection, transaction, [new PendingChange("test.written", "test", entityId, null, null)], DateTimeOffset.UtcNow, "tester",
            before is null ? null : (before, new DynamicParameters()));
        await database.CommitAsync(transaction);
    }

    [Fact]
    public async Task ChangesSince_ServesOnlyWhatWasPublished_AndEverythingAfterTheGivenNumber()
    {
        await using var database = await store.MigratedAsync();
        var feed = new ChangeFeed(database, NullLogger<ChangeFeed>.Instance);
        await feed.StartAsync(CancellationToken.None);
        await WaitUntilAsync(() => feed.Published >= 0);
        for (var i = 0; i < 5; i++)
        {
            await using var connection = await database.OpenAsync();
            await using var transaction = await database.BeginWriteAsync(connection);
            await ChangeLog.AppendLastAsync(database, connection, transaction, [new PendingChange("test.written", "test", i, 7, """{"n":1}""")], DateTimeOffset.UtcNow, "tester");
            await database.CommitAsync(transaction);
        }
        Assert.Empty(await feed.SinceAsync(0));

        feed.Poke();
        await WaitUntilAsync(() => feed.Published >= 5);
        var all = await feed.SinceAsync(0);
        var afterTwo = await feed.SinceAsync(all[1].Seq);
        await feed.StopAsync(CancellationToken.None);

        Assert.Equal(5, all.Count);
        Assert.Equal(all.Skip(2).Select(c => c.Seq), afterTwo.Select(c => c.Seq));
        Assert.All(all, c => Assert.Equal(("test.written", "test", 7L, "tester"), (c.Kind, c.EntityType, c.OrganisationId!.Value, c.Actor!)));
    }

    /// <summary>
    /// A live page back from a dropped connection reloads when a change it missed concerns it, when more changed than one
    /// look reads (a page away for a busy hour: the first thousand changes are not all it missed), or when the store cannot
    /// say: it used to look at the first thousand only, and a store error there left its older rows under "Live".
    /// </summary>
    [Fact]
    public async Task APageBackFromADroppedConnection_MayHaveMissedAChange_WhenOneConcernsIt_PastOneLook_OrWhenTheStoreCannotSay()
    {
        await using var database = await store.MigratedAsync();
        var feed = new ChangeFeed(database, NullLogger<ChangeFeed>.Instance);
        await feed.StartAsync(CancellationToken.None);
        await WaitUntilAsync(() => feed.Published >= 0);
        var start = feed.Published;
        // A thousand changes to beds, then one to a referral.
        await using (var connection = await database.OpenAsync())
        {
            await using var transaction = await database.BeginWriteAsync(connection);
            var changes = Enumerable.Range(1, 1000).Select(i => new PendingChange("test.written", "bed", i, null, null))
                .Append(new PendingChange("test.written", "referral", 1, null, null)).ToList();
            await ChangeLog.AppendLastAsync(database, connection, transaction, changes, DateTimeOffset.UtcNow, "tester");
            await database.CommitAsync(transaction);
        }
        feed.Poke();
        await WaitUntilAsync(() => feed.Published >= start + 1001);
        await feed.StopAsync(CancellationToken.None);
        static bool Referrals(Change c) => c.EntityType == "referral";
        static bool Wards(Change c) => c.EntityType == "ward";

        Assert.True(await feed.MayHaveMissedAsync(start + 500, Referrals));
        Assert.False(await feed.MayHaveMissedAsync(start + 500, Wards));
        // The referral's change is the 1,001st since the start: past the first look, so the page reloads.
        Assert.True(await feed.MayHaveMissedAsync(start, Referrals));

        await using (var connection = await database.OpenAsync())
        {
            await connection.ExecuteAsync("ALTER TABLE change RENAME TO change_gone");
        }
        Assert.True(await feed.MayHaveMissedAsync(start + 500, Wards));
    }

    /// <summary>
    /// A command's changes are appended together (on PostgreSQL in one statement, with the lock and the notice): each row
    /// keeps its own values, nulls included, and the order the command recorded them in is their sequence order.
    /// </summary>
    [Fact]
    public async Task ACommandsSeveralChanges_AreStoredInTheOrderRecorded_EachWithItsOwnValues()
    {
        await using var database = await store.MigratedAsync();
        var feed = new ChangeFeed(database, NullLogger<ChangeFeed>.Instance);
        await feed.StartAsync(CancellationToken.None);
        await WaitUntilAsync(() => feed.Published >= 0);
        var at = new DateTimeOffset(2026, 12, 3, 18, 10, 0, TimeSpan.Zero);
        PendingChange[] recorded =
        [
            new("referral.submitted", "referral", 30, 7, """{"urgency":"urgent"}"""),
            new("triage.created", "triage_task", 12, null, null),
            new("person.registered", "person", 4, 9, """{"n":2}"""),
        ];
        await using (var connection = await database.OpenAsync())
        await using (var transaction = await database.BeginWriteAsync(connection))
        {
            await ChangeLog.AppendLastAsync(database, connection, transaction, recorded, at, "partner: Bench");
            await database.CommitAsync(transaction);
        }
        feed.Poke();
        await WaitUntilAsync(() => feed.Published >= 3);
        var published = await feed.SinceAsync(0);
        await feed.StopAsync(CancellationToken.None);

        Assert.Equal(
            [("referral.submitted", "referral", 30L, (long?)7, "partner: Bench"), ("triage.created", "triage_task", 12L, null, "partner: Bench"),
             ("person.registered", "person", 4L, 9, "partner: Bench")],
            published.Select(c => (c.Kind, c.EntityType, c.EntityId, c.OrganisationId, c.Actor!)).ToList());
        Assert.Equal([1L, 2L, 3L], published.Select(c => c.Seq - published[0].Seq + 1).ToList());
        await using var reader = await database.OpenAsync();
        Assert.Equal(["""{"urgency":"urgent"}""", null, """{"n":2}"""],
            (await reader.QueryAsync<string?>("SELECT data FROM change ORDER BY seq")).ToList());
        Assert.All(published, c => Assert.Equal(at, c.At));
    }

    /// <summary>
    /// A command's change rows are the last statement of its transaction: on PostgreSQL they commit it in the same round trip
    /// (so the change-writer lock is not held while the answer travels back to the app), on SQLite the writer commits the
    /// group after the work. Either way a failure there keeps nothing of the command.
    /// </summary>
    [Fact]
    public async Task TheChangeRows_AreTheLastStatement_CommittedWithItOnPostgreSQL_AndAFailureThereKeepsNothing()
    {
        await using var database = await store.MigratedAsync();
        bool? seenFromAnotherConnection = null;
        await database.WriteAsync(async (connection, transaction) =>
        {
            await ChangeLog.AppendLastAsync(database, connection, transaction, [new PendingChange("test.written", "test", 1, null, null)], DateTimeOffset.UtcNow, "tester");
            await using var other = await database.OpenAsync();
            seenFromAnotherConnection = await other.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM change WHERE entity_type = 'test' AND entity_id = 1") == 1;
        });
        Assert.Equal(database.Provider == StoreProvider.PostgreSQL, seenFromAnotherConnection);
        // The next write on the same pooled connection (Npgsql hands it the same transaction object) is committed as usual.
        await database.WriteAsync((connection, transaction) => connection.ExecuteAsync(
            "INSERT INTO change (at, kind, entity_type, entity_id) VALUES (@at, 'test.written', 'test', 4)", new { at = DateTimeOffset.UtcNow }, transaction));

        await Assert.ThrowsAnyAsync<System.Data.Common.DbException>(() => database.WriteAsync(async (connection, transaction) =>
        {
            await connection.ExecuteAsync("INSERT INTO change (at, kind, entity_type, entity_id) VALUES (@at, 'test.before', 'test', 2)",
                new { at = DateTimeOffset.UtcNow }, transaction);
            // No kind: the change table refuses the row.
            await ChangeLog.AppendLastAsync(database, connection, transaction, [new PendingChange(null!, "test", 3, null, null)], DateTimeOffset.UtcNow, "tester");
        }));
        await using var check = await database.OpenAsync();
        Assert.Equal([1L, 4L], await check.QueryAsync<long>("SELECT entity_id FROM change WHERE entity_type = 'test' ORDER BY seq"));
    }

    /// <summary>Downtime: a page prints and downloads "as of change N" with the time that change was made.</summary>
    [Fact]
    public async Task TimeOf_IsWhenTheChangeWasMade_AndNothingForANumberNotYetGiven()
    {
        await using var database = await store.MigratedAsync();
        var feed = new ChangeFeed(database, NullLogger<ChangeFeed>.Instance);
        var at = new DateTimeOffset(2026, 12, 3, 14, 31, 5, TimeSpan.Zero);
        await using (var connection = await database.OpenAsync())
        await using (var transaction = await database.BeginWriteAsync(connection))
        {
            await ChangeLog.AppendLastAsync(database, connection, transaction, [new PendingChange("test.written", "test", 1, null, null)], at, "tester");
            await database.CommitAsync(transaction);
        }
        await using var reader = await database.OpenAsync();
        var seq = await reader.ExecuteScalarAsync<long>("SELECT MAX(seq) FROM change");

        Assert.Equal(at, await feed.TimeOfAsync(seq));
        Assert.Null(await feed.TimeOfAsync(seq + 1));
    }

    [Fact]
    public async Task TimeOf_AChangeJustPublished_IsAnsweredFromTheFeed_NotAskedOfTheStore()
    {
        await using var database = await store.MigratedAsync();
        var feed = new ChangeFeed(database, NullLogger<ChangeFeed>.Instance);
        await feed.StartAsync(CancellationToken.None);
        await WaitUntilAsync(() => feed.Published >= 0);
        var at = new DateTimeOffset(2026, 12, 3, 14, 31, 5, TimeSpan.Zero);
        await using (var connection = await database.OpenAsync())
        await using (var transaction = await database.BeginWriteAsync(connection))
        {
            await ChangeLog.AppendLastAsync(database, connection, transaction, [new PendingChange("test.written", "test", 1, null, null)], at, "tester");
            await database.CommitAsync(transaction);
        }
        feed.Poke();
        await using var reader = await database.OpenAsync();
        var seq = await reader.ExecuteScalarAsync<long>("SELECT MAX(seq) FROM change");
        await WaitUntilAsync(() => feed.Published >= seq);
        await feed.StopAsync(CancellationToken.None);

        // Every open page asks this on every change it applies: with the row gone, only the feed's memory can answer.
        await reader.ExecuteAsync("DELETE FROM change WHERE seq = @seq", new { seq });
        Assert.Equal(at, await feed.TimeOfAsync(seq));
    }

    internal static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "Timed out waiting for the change feed.");
            await Task.Delay(10);
        }
    }
}

public sealed class SqliteChangeFeedTests() : ChangeFeedTests(new SqliteTestStore());

public sealed class PostgresChangeFeedTests() : ChangeFeedTests(new PostgresTestStore())
{
    /// <summary>
    /// A node hears of another node's commits only by their notices, so those poke its feed; its own commits poke it in
    /// process, so its own notices are let pass: each was a second read of the change table (issue 14). A change of its own
    /// that nothing poked for is still published, in order, with the next round.
    /// </summary>
    [Fact]
    public async Task TheListener_PokesTheFeedForAnotherNodesCommit_AndLetsItsOwnNodesPass()
    {
        await using var database = await new PostgresTestStore().MigratedAsync();
        await using var otherNode = new Database(StoreProvider.PostgreSQL, database.ConnectionString);
        var published = await ListeningAsync(database, async (feed, received) =>
        {
            await WriteAsync(otherNode, 1);
            await WaitUntilAsync(() => received.Count == 1);

            await AssertOwnCommitIsLetPassAsync(database, feed, 2);
            Assert.Single(received);

            await WriteAsync(otherNode, 3);
            await WaitUntilAsync(() => received.Count == 3);
        });
        await using var check = await database.OpenAsync();
        Assert.Equal((await check.QueryAsync<long>("SELECT seq FROM change ORDER BY seq")).ToList(), published.ToList());
    }

    /// <summary>
    /// A commit whose answer never came back may land on the server after the in-process poke has read and found nothing;
    /// the node then hears its own notices for a while, so that such a commit is published when it lands, not seconds later
    /// by the next commit or the store watch. Here the network cuts the writer's connection while the server is still working
    /// through its last round trip, which the server then finishes and commits. An error the server reported is a certain
    /// rollback, and changes nothing.
    /// </summary>
    [Fact]
    public async Task ACommitThatLandsAfterItsConnectionWasCut_IsPublishedByTheNodesOwnNotice_WhereAnErrorTheServerReportedOpensNothing()
    {
        await using var migrated = await new PostgresTestStore().MigratedAsync();
        var direct = new NpgsqlConnectionStringBuilder(migrated.ConnectionString);
        await using var network = new TcpForwarder(new IPEndPoint(IPAddress.Parse(direct.Host!), direct.Port));
        // Unpooled: each write opens a connection of its own, the newest when it is cut; the feed's and the listener's stay.
        await using var database = new Database(StoreProvider.PostgreSQL,
            new NpgsqlConnectionStringBuilder(direct.ConnectionString) { Host = "127.0.0.1", Port = network.Port, Pooling = false }.ConnectionString);
        var published = await ListeningAsync(database, async (feed, received) =>
        {
            await Assert.ThrowsAsync<PostgresException>(() => WriteAsync(database, 1, "SELECT 1 / 0"));
            Assert.False(database.HearsOwnNotices);
            await AssertOwnCommitIsLetPassAsync(database, feed, 2);
            Assert.Empty(received);

            var writing = WriteAsync(database, 3, "SELECT pg_sleep(1.5)");
            await Task.Delay(500);
            network.CutNewest();
            var cut = await Assert.ThrowsAnyAsync<NpgsqlException>(() => writing);
            Assert.IsNotType<PostgresException>(cut);
            Assert.True(database.HearsOwnNotices);
            // Nothing in this process pokes the feed for it: only the notice of the commit that lands a second later.
            await WaitUntilAsync(() => received.Count == 2);
        });
        await using var check = await migrated.OpenAsync();
        Assert.Equal([2L, 3L], await check.QueryAsync<long>("SELECT entity_id FROM change ORDER BY seq"));
        Assert.Equal(await check.QueryAsync<long>("SELECT seq FROM change ORDER BY seq"), published.ToList());
    }

    /// <summary>
    /// Runs <paramref name="act"/> with the store's change feed recording what it publishes and a listener for notices started,
    /// once the listener's first poke has been read: from then on nothing here pokes the feed but the notices the listener
    /// hears. What the feed published, in order.
    /// </summary>
    private static async Task<ConcurrentQueue<long>> ListeningAsync(Database database, Func<ChangeFeed, ConcurrentQueue<long>, Task> act)
    {
        var (feed, received, subscription) = await StartRecordingAsync(database);
        using var subscribed = subscription;
        var listener = new PostgresChangeListener(database, feed, NullLogger<PostgresChangeListener>.Instance);
        await listener.StartAsync(CancellationToken.None);
        try
        {
            await WaitUntilAsync(() => feed.Rounds > 0);
            await act(feed, received);
        }
        finally
        {
            await listener.StopAsync(CancellationToken.None);
            await feed.StopAsync(CancellationToken.None);
        }
        return received;
    }

    /// <summary>A change of this node's own, written with nothing in the process to poke the feed: its notice does not wake the feed either.</summary>
    private static async Task AssertOwnCommitIsLetPassAsync(Database database, ChangeFeed feed, long entityId)
    {
        await Task.Delay(300);
        var rounds = feed.Rounds;
        await WriteAsync(database, entityId);
        await Task.Delay(1000);
        Assert.Equal(rounds, feed.Rounds);
    }

    [Fact]
    public Task TheFeed_WhoseServerConnectionWasTerminated_ReadsOnANewOne_AndLosesNothing() =>
        TheFeed_WhoseConnectionEnded_ReadsOnANewOne_AndLosesNothing(async database =>
        {
            await using var connection = await database.OpenAsync();
            // The feed's connection is the one whose last statement was its query of the change table.
            var ended = await connection.ExecuteScalarAsync<int>("""
                SELECT count(*) FROM (
                    SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                    WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE '%FROM change WHERE seq >%') ended
                """);
            Assert.Equal(1, ended);
        });
}
