using CareCoordination.Pipeline;
using Dapper;
using Mediator;

namespace CareCoordination.Features.Fhir.Subscriptions;

/// <summary>
/// PUT /fhir/Subscription/{id}: change a subscription's channel or filter, turn it off, or turn it back on. Anything but
/// off asks for a new handshake (status requested), which is also how a partner re-activates one in error. Its event
/// numbers carry on, so $events still finds what came before.
/// </summary>
public static class UpdateSubscription
{
    [AllowPartnerScope("system/Subscription.u")]
    public sealed record Command(long Id, SubscriptionRequest Request, int? ExpectedVersion) : ICommand<FhirSubscriptionRow>;

    public sealed class Handler(Work work) : ICommandHandler<Command, FhirSubscriptionRow>
    {
        public async ValueTask<FhirSubscriptionRow> Handle(Command command, CancellationToken cancellationToken)
        {
            var current = await ReadSubscription.FindOwnAsync(work.Connection, work.Transaction, work.Scope.Actor, command.Id);
            if (command.ExpectedVersion is { } expected && expected != current.Version)
            {
                throw new PreconditionFailed($"Subscription/{command.Id} is at version {current.Version}, not {expected}: read it again.");
            }
            var request = command.Request;
            Backport.RequireMayReceive(request.Content, work.Scope.Actor);
            var updated = await work.Connection.ExecuteAsync(
                """
                UPDATE fhir_subscription SET status = @Status, filter_criteria = @FilterCriteria, endpoint = @Endpoint, server_base = @ServerBase, channel_header = @Header,
                    payload_type = @PayloadType, content = @Content, heartbeat_seconds = @HeartbeatSeconds, timeout_seconds = @TimeoutSeconds,
                    reason = @Reason, version = version + 1, updated_at = @Now,
                    handshake_at = NULL, failures = 0, next_attempt_at = NULL, last_error = NULL
                WHERE id = @Id AND version = @Version
                """,
                new
                {
                    Status = request.Off ? "off" : "requested", request.FilterCriteria, request.Endpoint, request.ServerBase, request.Header, request.PayloadType, request.Content,
                    request.HeartbeatSeconds, request.TimeoutSeconds, request.Reason, work.Scope.Now, command.Id, current.Version,
                }, work.Transaction);
            if (updated == 0)
            {
                throw new PreconditionFailed($"Subscription/{command.Id} changed while this update was made: read it again.");
            }
            work.Scope.Touch("fhir_subscription", command.Id);
            return await ReadSubscription.FindOwnAsync(work.Connection, work.Transaction, work.Scope.Actor, command.Id);
        }
    }
}
