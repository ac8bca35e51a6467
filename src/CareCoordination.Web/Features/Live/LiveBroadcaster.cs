using System.Collections.Concurrent;
using CareCoordination.Changes;
using Microsoft.AspNetCore.SignalR;

namespace CareCoordination.Features.Live;

/// <summary>
/// Pushes each published change to the hub groups of its topics. The feed hands changes over one at a
/// time in seq order; they are queued in that order and sent by one loop that waits for each send before
/// the next, and SignalR keeps the order of messages on a connection, so every client receives its
/// changes in seq order. The queue keeps a slow hub client from holding up the feed's other subscribers
/// (the Blazor screens).
/// </summary>
/// <remarks>
/// Like the feed, the loop has a thread of its own: a change goes out the moment it is queued rather than
/// when the thread pool reaches it, and the pool is left to the connections' own sending.
/// </remarks>
public sealed class LiveBroadcaster(ChangeFeed feed, IHubContext<LiveHub> hub, ILogger<LiveBroadcaster> logger) : BackgroundService
{
    private readonly ConcurrentQueue<Change> _pending = new();
    // Set after each change is queued; the loop resets it before it empties the queue, so a change queued meanwhile wakes
    // it again. It does not spin: SemaphoreSlim.Wait spun before it slept, 1.5% of the server's CPU under load (issue 14).
    private readonly ManualResetEventSlim _queued = new(false, spinCount: 0);

    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Subscribed here, during start-up: before the server takes its first connection.
        var subscription = feed.Subscribe(change =>
        {
            _pending.Enqueue(change);
            _queued.Set();
            return ValueTask.CompletedTask;
        });
        return Task.Factory.StartNew(() =>
        {
            using (subscription)
            {
                Run(stoppingToken);
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    /// <summary>Blocks its own thread on purpose: one change at a time, each of its topics' sends finished before the next.</summary>
    private void Run(CancellationToken stoppingToken)
    {
        while (true)
        {
            try
            {
                _queued.Wait(stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            _queued.Reset();
            while (_pending.TryDequeue(out var change))
            {
                if (!Send(change, stoppingToken))
                {
                    return;
                }
            }
        }
    }

    /// <summary>Sends one change to each of its topics; false once the server is stopping.</summary>
    private bool Send(Change change, CancellationToken stoppingToken)
    {
        try
        {
            var data = LiveTopics.Parse(change.Data);
            foreach (var topic in LiveTopics.Of(change, data))
            {
                hub.Clients.Group(topic.Group).SendAsync(LiveChange.Method, LiveChange.From(change, data, topic.Topic), stoppingToken).GetAwaiter().GetResult();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            return false;
        }
        catch (Exception ex)
        {
            // One change that cannot be sent must not stop the ones after it.
            logger.LogWarning(ex, "Pushing change {Seq} to live clients failed", change.Seq);
        }
        return true;
    }
}
