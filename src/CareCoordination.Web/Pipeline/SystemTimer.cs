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
    private const int MaxRounds = 1000;

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
                // Each command does a little in its own transaction; send again until it has nothing left.
                var count = 0;
                for (var round = 0; round < MaxRounds; round++)
                {
                    await using var scope = scopes.CreateAsyncScope();
                    scope.ServiceProvider.GetRequiredService<ActorAccessor>().ActAsSystem();
                    var done = await scope.ServiceProvider.GetRequiredService<IMediator>().Send(new TCommand(), stoppingToken);
                    if (done == 0)
                    {
                        break;
                    }
                    count += done;
                }
                if (count > 0)
                {
                    logger.LogInformation("{Count} {Outcome}", count, outcome);
                }
            }
            catch (DomainFailure failure)
            {
                // Another node or a person got there first: the next tick looks again.
                logger.LogDebug("{Command} stopped this tick: {Reason}", typeof(TCommand).Name, failure.Message);
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
