using CareCoordination.Changes;
using CareCoordination.Store;
using CareCoordination.Tests.Support;
using Dapper;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Npgsql;
using static CareCoordination.Tests.Changes.ChangeFeedTests;

namespace CareCoordination.Tests.Changes;

/// <summary>The node watching its own store, so that open pages say "Offline since" when the store fails under a running node (issue 16).</summary>
public abstract class StoreWatchTests(ITestStore store)
{
    protected static StoreWatch Watch(Database database, ChangeFeed feed, TimeProvider clock) =>
        new(database, feed, clock, Options.Create(new StoreWatchSettings { ProbeSeconds = 60, ProbeTimeoutSeconds = 3 }), NullLogger<StoreWatch>.Instance);

    /// <summary>
    /// A change committed whose poke or notification never came (another node's, its NOTIFY lost with a dropped
    /// listener) is left unpublished by the feed; the watch's next answer from the store finds it and open pages catch up.
    /// </summary>
    [Fact]
    public async Task AChangeCommittedWithNoPoke_IsPublishedAfterTheWatchsNextProbe()
    {
        await using var database = await store.MigratedAsync();
        var (feed, received, subscription) = await StartRecordingAsync(database);
        using var subscribed = subscription;
        await WriteAsync(database, 1);
        await Task.Delay(300);
        Assert.Empty(received);

        var watch = Watch(database, feed, TimeProvider.System);
        await watch.ProbeAsync(CancellationToken.None);

        await WaitUntilAsync(() => received.Count == 1);
        Assert.Null(watch.DownSince);
        await feed.StopAsync(CancellationToken.None);
    }
}

public sealed class SqliteStoreWatchTests() : StoreWatchTests(new SqliteTestStore());

public sealed class PostgresStoreWatchTests() : StoreWatchTests(new PostgresTestStore())
{
    /// <summary>
    /// The store stops taking connections while the node runs (as a PostgreSQL server restarting or cut off would): from the
    /// first failed probe the watch says since when, tells open pages once, and says so until a probe is answered.
    /// </summary>
    [Fact]
    public async Task AStoreThatRefusesConnections_IsDownFromTheFirstFailedProbe_UntilOneIsAnswered()
    {
        await using var database = await new PostgresTestStore().MigratedAsync();
        var name = new NpgsqlConnectionStringBuilder(database.ConnectionString).Database!;
        var (feed, _, subscription) = await StartRecordingAsync(database);
        using var subscribed = subscription;
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 12, 3, 14, 32, 0, TimeSpan.Zero));
        var watch = Watch(database, feed, clock);
        var told = 0;
        watch.Changed += () => Interlocked.Increment(ref told);

        await watch.ProbeAsync(CancellationToken.None);
        Assert.Null(watch.DownSince);
        Assert.Equal(0, told);

        await using var server = new NpgsqlConnection(Environment.GetEnvironmentVariable(PostgresTestStore.Variable));
        await server.OpenAsync();
        await server.ExecuteAsync($"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false");
        await server.ExecuteAsync("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = @name", new { name });
        try
        {
            await watch.ProbeAsync(CancellationToken.None);
            Assert.Equal(clock.GetUtcNow(), watch.DownSince);
            Assert.Equal(1, told);

            clock.Advance(TimeSpan.FromMinutes(1));
            await watch.ProbeAsync(CancellationToken.None);
            Assert.Equal(clock.GetUtcNow() - TimeSpan.FromMinutes(1), watch.DownSince);
            Assert.Equal(1, told);
        }
        finally
        {
            await server.ExecuteAsync($"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true");
        }

        // A pooled connection the server ended fails once, then the pool opens a new one.
        for (var probe = 0; probe < 10 && watch.DownSince is not null; probe++)
        {
            await watch.ProbeAsync(CancellationToken.None);
        }
        Assert.Null(watch.DownSince);
        Assert.Equal(2, told);
        await feed.StopAsync(CancellationToken.None);
    }
}
