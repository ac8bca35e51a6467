using CareCoordination.Store;
using Npgsql;

namespace CareCoordination.Changes;

/// <summary>
/// With several nodes on one PostgreSQL store, each node hears of the others' commits by LISTEN/NOTIFY and
/// pokes its own change feed, which then reads the change table in sequence order as it does for its own
/// commits. The notification carries only which node wrote (Database.ChangeNoticeMark): the change table stays the one
/// source, and a node's own notices are let pass, since its commits poke its feed in process (except for a while after a
/// commit whose answer was lost: Database.HearsOwnNotices). After a dropped
/// connection the feed is poked once, so a notification missed meanwhile costs nothing.
/// </summary>
public sealed class PostgresChangeListener(Database database, ChangeFeed feed, ILogger<PostgresChangeListener> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (database.Provider != StoreProvider.PostgreSQL)
        {
            return;
        }
        var delay = TimeSpan.FromSeconds(1);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = (await database.OpenListenerAsync(stoppingToken))!;
                connection.Notification += (_, notice) =>
                {
                    if (notice.Payload != database.ChangeNoticeMark || database.HearsOwnNotices)
                    {
                        feed.Poke();
                    }
                };
                await using (var listen = new NpgsqlCommand($"LISTEN {Database.ChangeChannel}", connection))
                {
                    await listen.ExecuteNonQueryAsync(stoppingToken);
                }
                feed.Poke();
                delay = TimeSpan.FromSeconds(1);
                while (!stoppingToken.IsCancellationRequested)
                {
                    await connection.WaitAsync(stoppingToken);
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                logger.LogWarning(ex, "Listening for other nodes' changes failed; trying again in {Delay}", delay);
                await Task.Delay(delay, stoppingToken);
                delay = TimeSpan.FromSeconds(Math.Min(30, delay.TotalSeconds * 2));
            }
        }
    }
}
