using Microsoft.AspNetCore.Components.Server.Circuits;

namespace CareCoordination.Changes;

/// <summary>
/// Tells a live page when its browser connection comes back, so it can ask the change feed for what it
/// missed by sequence number instead of trusting that nothing happened while it was away.
/// </summary>
public sealed class CircuitConnection : CircuitHandler
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
            foreach (var handler in handlers.GetInvocationList().Cast<Func<Task>>())
            {
                await handler();
            }
        }
    }
}
