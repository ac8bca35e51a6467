using CareCoordination.Store;
using CareCoordination.Tests.Support;
using Dapper;

namespace CareCoordination.Tests.Store;

/// <summary>
/// On PostgreSQL a node runs at most Database:PostgresWriters write transactions at once, and the rest wait in process; an
/// audited read's row (WriteAheadAsync) never waits for a turn (issue 14: sixteen writers at once on two cores left every
/// screen's read waiting in the run queues behind them).
/// </summary>
public sealed class PostgresWritersTests : IAsyncLifetime
{
    private Database _database = null!;

    public async Task InitializeAsync() => _database = new Database(StoreProvider.PostgreSQL, await new PostgresTestStore().CreateEmptyAsync(), postgresWriters: 2);

    public async Task DisposeAsync() => await _database.DisposeAsync();

    [Fact]
    public async Task AThirdWriter_WaitsForATurn_WhileAnAuditedReadsRowGoesAhead()
    {
        var started = 0;
        var hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var twoIn = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task Writer() => _database.WriteAsync(async (connection, transaction) =>
        {
            await connection.ExecuteAsync("SELECT 1", transaction: transaction);
            if (Interlocked.Increment(ref started) == 2)
            {
                twoIn.TrySetResult();
            }
            await hold.Task;
        });

        var writers = new[] { Writer(), Writer(), Writer() };
        await twoIn.Task.WaitAsync(TimeSpan.FromSeconds(30));
        // Both turns are taken: the third has not begun, and a read's row is written meanwhile.
        await _database.WriteAheadAsync((connection, transaction) => connection.ExecuteAsync("SELECT 1", transaction: transaction))
            .WaitAsync(TimeSpan.FromSeconds(30));
        await Task.Delay(TimeSpan.FromMilliseconds(300));
        Assert.Equal(2, Volatile.Read(ref started));

        hold.SetResult();
        await Task.WhenAll(writers).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(3, started);
    }

    [Fact]
    public async Task AWriteInsideAWrite_IsRefused_NotLeftWaitingForATurnItHolds()
    {
        var refused = await Assert.ThrowsAsync<InvalidOperationException>(
            () => _database.WriteAsync((_, _) => _database.WriteAsync((_, _) => Task.CompletedTask)).WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("inside a write", refused.Message, StringComparison.Ordinal);
        // Its turn was given back: two writes still run at once.
        await Task.WhenAll(_database.WriteAsync((_, _) => Task.CompletedTask), _database.WriteAsync((_, _) => Task.CompletedTask)).WaitAsync(TimeSpan.FromSeconds(30));
    }
}
