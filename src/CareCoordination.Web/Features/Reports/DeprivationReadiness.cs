using Mediator;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace CareCoordination.Features.Reports;

/// <summary>
/// The equity report (and the decision pack, which asks it) counts people by the deprivation lookup, which start-up loads
/// while the node already serves. Asked before the load ends, the report waits for it: the right figures a moment later,
/// never everyone counted as "not known" or against the files being replaced. A failed load refuses with the reason.
/// </summary>
public sealed class EquityWaitsForDeprivation(DeprivationLookup lookup) : IPipelineBehavior<EquityReport.Query, EquityReport.Result>
{
    public async ValueTask<EquityReport.Result> Handle(EquityReport.Query message,
        MessageHandlerDelegate<EquityReport.Query, EquityReport.Result> next, CancellationToken cancellationToken)
    {
        await lookup.WhenLoadedAsync(cancellationToken);
        return await next(message, cancellationToken);
    }
}

/// <summary>deprivation-lookup: Healthy while it loads (what needs it waits), Degraded if start-up's load failed.</summary>
public sealed class DeprivationLookupHealth(DeprivationLookup lookup) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(lookup.State switch
        {
            { Failure: { } failure } => HealthCheckResult.Degraded(
                "The deprivation lookup did not load; the equity report and the decision pack refuse until a restart loads it: "
                + Health.StoreHealth.Reason(failure)),
            { Loading: true } => HealthCheckResult.Healthy("Loading; the equity report waits for it."),
            _ => HealthCheckResult.Healthy("Loaded, or not configured."),
        });
}
