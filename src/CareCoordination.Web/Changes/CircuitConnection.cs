using Microsoft.AspNetCore.Components.Server.Circuits;

namespace CareCoordination.Changes;

/// <summary>
/// Tells a live page when its browser connection comes back, so it can ask the change feed for what it
/// missed by sequence number instead of trusting that nothing happened while it was away.
/// </summary>
public sealed class CircuitConnection(ILogger<CircuitConnection> logger) : CircuitHandler
{
    public event Func<Task>? Reconnected;

    public bool IsUp { get; private set; } = true;

    public override Task OnConnectionDownAsync(Circuit circuit, CancellationToken cancellationToken)
    {
        IsUp = false;
        return Task.CompletedTask;
    }

    public override async Task OnConnectionUpAsync(Circuit circuit, CancellationToken cancellationToken)
    {
        var wasDown = !IsUp;
        IsUp = true;
        if (wasDown && Reconnected is { } handlers)
        {
            // Each page catches up on its own: one whose catching up fails leaves the others to theirs.
            foreach (var handler in handlers.GetInvocationList().Cast<Func<Task>>())
            {
                try
                {
                    await handler();
                }
                catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
                {
                    logger.LogError(ex, "A page could not catch up on the changes it missed while its connection was down");
                }
            }
        }
    }
}
