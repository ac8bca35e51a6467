using System.Collections.Immutable;
using System.Threading.Channels;
using CareCoordination.Store;
using Dapper;

namespace CareCoordination.Changes;

public sealed record Change(long Seq, DateTimeOffset At, string Kind, string EntityType, long EntityId, long? OrganisationId, string? Actor, string? Data)
{
    /// <summary>The referral this change is about: its own id, or the referralId that task, placement and approval changes carry.</summary>
    public long? ReferralId()
    {
        if (EntityType == "referral")
        {
            return EntityId;
        }
        if (Data is null || EntityType is not ("triage_task" or "placement" or "caution_approval"))
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
public sealed class ChangeFeed(Database database, ILogger<ChangeFeed> logger) : BackgroundService
{
    private const string ChangesAfter = """
        SELECT seq AS Seq, at AS At, kind AS Kind, entity_type AS EntityType, entity_id AS EntityId,
               organisation_id AS OrganisationId, actor AS Actor, data AS Data
        FROM change WHERE seq > @After ORDER BY seq LIMIT @Limit
        """;

    private readonly Channel<bool> _pokes = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private ImmutableArray<Func<Change, ValueTask>> _subscribers = [];
    private long _published = -1;

    /// <summary>The highest sequence number pushed to subscribers so far.</summary>
    public long Published => Interlocked.Read(ref _published);

    public void Poke() => _pokes.Writer.TryWrite(true);

    public IDisposable Subscribe(Func<Change, ValueTask> onChange)
    {
        ImmutableInterlocked.Update(ref _subscribers, list => list.Add(onChange));
        return new Subscription(() => ImmutableInterlocked.Update(ref _subscribers, list => list.Remove(onChange)));
    }

    /// <summary>What a reconnecting screen missed. Serves only what has been published, so a resync never runs ahead of the push.</summary>
    public async Task<IReadOnlyList<Change>> SinceAsync(long after, int limit = 1000, CancellationToken cancellationToken = default)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var changes = await connection.QueryAsync<Change>(new CommandDefinition(ChangesAfter, new { After = after, Limit = limit }, cancellationToken: cancellationToken));
        var published = Published;
        return changes.Where(c => c.Seq <= published).ToList();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await using (var connection = await database.OpenAsync(stoppingToken))
        {
            Interlocked.Exchange(ref _published, await connection.ExecuteScalarAsync<long?>("SELECT MAX(seq) FROM change") ?? 0);
        }
        await foreach (var _ in _pokes.Reader.ReadAllAsync(stoppingToken))
        {
            try
            {
                await PublishPendingAsync(stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // The next poke retries from the same sequence number: nothing is skipped.
                logger.LogError(ex, "Publishing changes after {Seq} failed", Published);
            }
        }
    }

    private async Task PublishPendingAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            await using var connection = await database.OpenAsync(cancellationToken);
            var batch = (await connection.QueryAsync<Change>(new CommandDefinition(ChangesAfter, new { After = Published, Limit = 500 }, cancellationToken: cancellationToken))).ToList();
            await connection.DisposeAsync();
            foreach (var change in batch)
            {
                Interlocked.Exchange(ref _published, change.Seq);
                foreach (var subscriber in _subscribers)
                {
                    try
                    {
                        await subscriber(change);
                    }
                    catch (Exception ex)
                    {
                        logger.LogWarning(ex, "A subscriber failed on change {Seq}", change.Seq);
                    }
                }
            }
            if (batch.Count < 500)
            {
                return;
            }
        }
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
