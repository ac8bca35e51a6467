using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Mediator;

namespace CareCoordination.Features.Fhir.Subscriptions;

/// <summary>DELETE /fhir/Subscription/{id}: no more notifications, and its events are forgotten.</summary>
public static class DeleteSubscription
{
    [AllowPartnerScope("system/Subscription.d")]
    public sealed record Command(long Id) : ICommand;

    public sealed class Handler(Database database, Work work) : ICommandHandler<Command>
    {
        public async ValueTask<Unit> Handle(Command command, CancellationToken cancellationToken)
        {
            // The delivery service numbers events under this lock: never into a subscription deleted under it.
            await database.LockAsync(work.Connection, work.Transaction, $"fhir_subscription:{command.Id}");
            var row = await ReadSubscription.FindOwnAsync(work.Connection, work.Transaction, work.Scope.Actor, command.Id);
            await work.Connection.ExecuteAsync("DELETE FROM fhir_subscription_event WHERE subscription_id = @Id", new { row.Id }, work.Transaction);
            await work.Connection.ExecuteAsync("DELETE FROM fhir_subscription WHERE id = @Id", new { row.Id }, work.Transaction);
            work.Scope.Touch("fhir_subscription", row.Id);
            return Unit.Value;
        }
    }
}
