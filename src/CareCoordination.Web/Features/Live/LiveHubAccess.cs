using System.Collections.Concurrent;
using CareCoordination.Auth;
using Microsoft.AspNetCore.SignalR;

namespace CareCoordination.Features.Live;

/// <summary>
/// Keeps /hubs/live to those who may still use it. A hub connection is authenticated once, when it opens, and a
/// board screen may stay open for weeks: a member of staff deactivated (or moved to another role or
/// organisation), or a partner client deactivated, loses the connection at its next call, and within
/// Auth:RevalidateSeconds while it only listens. Each node looks after the connections it holds.
/// </summary>
public sealed class LiveHubAccess(Revocation revocation, TimeProvider clock, IConfiguration configuration, ILogger<LiveHubAccess> logger)
    : BackgroundService, IHubFilter
{
    private const string Withdrawn = "Your access to live updates has been withdrawn. Sign in again, or ask for a new token.";

    private readonly ConcurrentDictionary<string, HubCallerContext> _connections = new(StringComparer.Ordinal);

    public async ValueTask<object?> InvokeMethodAsync(HubInvocationContext invocation, Func<HubInvocationContext, ValueTask<object?>> next)
    {
        if (await revocation.IsRevokedAsync(Actor.From(invocation.Context.User), invocation.Context.ConnectionAborted))
        {
            invocation.Context.Abort();
            throw new HubException(Withdrawn);
        }
        return await next(invocation);
    }

    public Task OnConnectedAsync(HubLifetimeContext context, Func<HubLifetimeContext, Task> next)
    {
        _connections[context.Context.ConnectionId] = context.Context;
        return next(context);
    }

    public Task OnDisconnectedAsync(HubLifetimeContext context, Exception? exception, Func<HubLifetimeContext, Exception?, Task> next)
    {
        _connections.TryRemove(context.Context.ConnectionId, out _);
        return next(context, exception);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var seconds = configuration.GetValue("Auth:RevalidateSeconds", 30);
        if (seconds <= 0)
        {
            return;
        }
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(seconds), clock);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                await SweepAsync(stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                logger.LogError(ex, "Live hub connections could not be rechecked; the next sweep tries again");
            }
        }
    }

    /// <summary>Listening is not a call, so no filter sees it: every open connection's holder is looked up, once per holder and grant.</summary>
    private async Task SweepAsync(CancellationToken cancellationToken)
    {
        var holders = _connections.Values
            .Select(connection => (Actor: Actor.From(connection.User), Connection: connection))
            .GroupBy(c => (c.Actor.Kind, c.Actor.Id, c.Actor.Role, c.Actor.OrganisationId));
        foreach (var holder in holders)
        {
            if (await revocation.IsRevokedAsync(holder.First().Actor, cancellationToken))
            {
                foreach (var (_, connection) in holder)
                {
                    connection.Abort();
                }
                logger.LogInformation("Closed {Count} live hub connection(s) of {Kind} {Id}: access withdrawn", holder.Count(), holder.Key.Kind, holder.Key.Id);
            }
        }
    }
}
