using CareCoordination.Store;
using Dapper;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace CareCoordination.Features.Health;

/// <summary>/health answers 200 only while the store answers: a load balancer takes a node without its store out of service.</summary>
public sealed class StoreHealth(Database database) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(5));
            await using var connection = await database.OpenAsync(timeout.Token);
            await connection.ExecuteScalarAsync<long>(new CommandDefinition("SELECT COUNT(*) FROM schema_migration", cancellationToken: timeout.Token));
            return HealthCheckResult.Healthy($"{database.Provider} store answers.");
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return HealthCheckResult.Unhealthy($"{database.Provider} store does not answer.", ex);
        }
    }
}
