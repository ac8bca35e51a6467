using CareCoordination.Changes;
using Microsoft.Extensions.Logging.Abstractions;

namespace CareCoordination.Tests.Changes;

/// <summary>Back from a dropped connection, every live page of the circuit catches up, whichever of them fails to.</summary>
public sealed class CircuitConnectionTests
{
    [Fact]
    public async Task APageWhoseCatchingUpFails_LeavesTheOtherPagesToCatchUp()
    {
        var connection = new CircuitConnection(NullLogger<CircuitConnection>.Instance);
        var caughtUp = new List<string>();
        connection.Reconnected += () => { caughtUp.Add("queue"); return Task.CompletedTask; };
        connection.Reconnected += () => Task.FromException(new TimeoutException("The store did not answer in time."));
        connection.Reconnected += () => { caughtUp.Add("capacity board"); return Task.CompletedTask; };

        await connection.OnConnectionDownAsync(null!, CancellationToken.None);
        await connection.OnConnectionUpAsync(null!, CancellationToken.None);

        Assert.Equal(["queue", "capacity board"], caughtUp);
        Assert.True(connection.IsUp);
    }
}
