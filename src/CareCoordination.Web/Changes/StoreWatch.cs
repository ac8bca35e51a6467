using CareCoordination.Store;
using Dapper;
using Microsoft.Extensions.Options;

namespace CareCoordination.Changes;

public sealed class StoreWatchSettings
{
    /// <summary>How often an open page's node asks the store whether it answers, in seconds.</summary>
    public double ProbeSeconds { get; set; } = 5;

    /// <summary>A probe not answered within this many seconds counts as the store failing.</summary>
    public double ProbeTimeoutSeconds { get; set; } = 3;
}

/// <summary>
/// Downtime mode when the store fails but this node runs (issue 16): the browser's own "Offline since" sees only its
/// connection to the node, so a page whose node has lost its store would go on looking current while nothing on it can
/// change. The watch asks the store a one-row question every few seconds; open pages show "Offline since" from the first
/// probe that fails until one answers. On an answer it also pokes the change feed when the store holds changes past what
/// was published (a commit whose notification was lost), so open pages catch up by sequence number.
/// </summary>
public sealed class StoreWatch(Database database, ChangeFeed feed, TimeProvider clock, IOptions<StoreWatchSettings> settings, ILogger<StoreWatch> logger)
    : BackgroundService
{
    private DateTimeOffset? _downSince;

    /// <summary>When the store was first found not answering, or null while it answers.</summary>
    public DateTimeOffset? DownSince => _downSince;

    /// <summary>The store went down or came back. Raised on the watch's own thread: a page hops to its renderer.</summary>
    public event Action? Changed;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var every = new PeriodicTimer(TimeSpan.FromSeconds(settings.Value.ProbeSeconds), clock);
        try
        {
            while (await every.WaitForNextTickAsync(stoppingToken))
            {
                await ProbeAsync(stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    internal async Task ProbeAsync(CancellationToken stoppingToken)
    {
        long? latest;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(settings.Value.ProbeTimeoutSeconds));
            // Off the caller's thread: SQLite waits for a lock held elsewhere in its busy handler, synchronously.
            latest = await Task.Run(async () =>
            {
                await using var connection = await database.OpenAsync(timeout.Token);
                return await connection.ExecuteScalarAsync<long?>(new CommandDefinition("SELECT MAX(seq) FROM change", cancellationToken: timeout.Token));
            }, timeout.Token).WaitAsync(timeout.Token);
        }
        catch (Exception error) when (!stoppingToken.IsCancellationRequested)
        {
            if (_downSince is null)
            {
                _downSince = clock.GetUtcNow();
                logger.LogError(error, "The store is not answering; open pages show Offline since {At}", _downSince);
                Changed?.Invoke();
            }
            return;
        }
        if (_downSince is { } since)
        {
            _downSince = null;
            logger.LogInformation("The store answers again (down since {Since})", since);
            Changed?.Invoke();
        }
        if (latest > feed.Published)
        {
            feed.Poke();
        }
    }
}
