using System.Threading.Channels;
using CareCoordination.Changes;
using Microsoft.AspNetCore.SignalR;

namespace CareCoordination.Features.Live;

/// <summary>
/// Pushes each published change to the hub groups of its topics. The feed hands changes over one at a
/// time in seq order; they are queued in that order and sent by one loop that awaits each send before
/// the next, and SignalR keeps the order of messages on a connection, so every client receives its
/// changes in seq order. The queue keeps a slow hub client from holding up the feed's other subscribers
/// (the Blazor screens).
/// </summary>
public sealed class LiveBroadcaster(ChangeFeed feed, IHubContext<LiveHub> hub, ILogger<LiveBroadcaster> logger) : BackgroundService
{
    private readonly Channel<Change> _pending = Channel.CreateUnbounded<Change>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Subscribed before the first await, so during start-up: before the server takes its first connection.
        using var subscription = feed.Subscribe(change => _pending.Writer.WriteAsync(change, stoppingToken));
        await foreach (var change in _pending.Reader.ReadAllAsync(stoppingToken))
        {
            try
            {
                var data = LiveTopics.Parse(change.Data);
                foreach (var topic in LiveTopics.Of(change, data))
                {
                    await hub.Clients.Group(topic.Group).SendAsync(LiveChange.Method, LiveChange.From(change, data, topic.Topic), stoppingToken);
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // One change that cannot be sent must not stop the ones after it.
                logger.LogWarning(ex, "Pushing change {Seq} to live clients failed", change.Seq);
            }
        }
    }
}
