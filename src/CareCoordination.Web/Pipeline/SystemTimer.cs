using CareCoordination.Auth;
using Mediator;

namespace CareCoordination.Pipeline;

/// <summary>
/// Sends a command as the system on a timer (expiring reservations, raising re-contacts). The work is the
/// command, so tests send it themselves at the time they choose; this only keeps the beat.
/// </summary>
public sealed class SystemTimer<TCommand>(IServiceScopeFactory scopes, TimeProvider clock, ILogger<SystemTimer<TCommand>> logger,
    Func<int> intervalSeconds, string outcome) : BackgroundService
    where TCommand : ICommand<int>, new()
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var seconds = intervalSeconds();
        if (seconds <= 0)
        {
            return;
        }
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(seconds), clock);
        while (await timer.WaitForNextTickAsync(stoppingToken))
        {
            try
            {
                await using var scope = scopes.CreateAsyncScope();
                scope.ServiceProvider.GetRequiredService<ActorAccessor>().ActAsSystem();
                var count = await scope.ServiceProvider.GetRequiredService<IMediator>().Send(new TCommand(), stoppingToken);
                if (count > 0)
                {
                    logger.LogInformation("{Count} {Outcome}", count, outcome);
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                logger.LogError(ex, "{Command} failed; the next tick tries again", typeof(TCommand).FullName);
            }
        }
    }

    public static IServiceCollection Register(IServiceCollection services, Func<IServiceProvider, Func<int>> intervalSeconds, string outcome) =>
        services.AddHostedService(sp => new SystemTimer<TCommand>(sp.GetRequiredService<IServiceScopeFactory>(), sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<SystemTimer<TCommand>>>(), intervalSeconds(sp), outcome));
}
