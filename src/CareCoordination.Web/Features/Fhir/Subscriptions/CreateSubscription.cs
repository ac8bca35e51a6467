using CareCoordination.Pipeline;
using Dapper;
using Mediator;

namespace CareCoordination.Features.Fhir.Subscriptions;

/// <summary>
/// POST /fhir/Subscription: a partner client asks to be told of its own organisation's referrals' Task changes. It starts
/// "requested"; the delivery service sends the handshake and makes it active (or error). Events are numbered from the
/// changes after this moment.
/// </summary>
public static class CreateSubscription
{
    [AllowPartnerScope("system/Subscription.c")]
    public sealed record Command(SubscriptionRequest Request) : ICommand<FhirSubscriptionRow>;

    /// <summary>Each is a loop and an outbound connection on some node: plenty for an EPR, and a bound on one client's share.</summary>
    public const int MaxPerClient = 20;

    public sealed class Handler(Work work) : ICommandHandler<Command, FhirSubscriptionRow>
    {
        public async ValueTask<FhirSubscriptionRow> Handle(Command command, CancellationToken cancellationToken)
        {
            var actor = work.Scope.Actor;
            var organisationId = actor.OrganisationId ?? throw new AccessDenied("A subscription needs a partner client of an organisation.");
            var request = command.Request;
            Backport.RequireMayReceive(request.Content, actor);
            var existing = await work.Connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM fhir_subscription WHERE client_id = @Id", new { actor.Id }, work.Transaction);
            if (existing >= MaxPerClient)
            {
                throw new RuleBroken($"This client has {MaxPerClient} subscriptions already, the most it may have: change or delete one (a filter can be widened).");
            }
            var id = await work.Connection.ExecuteScalarAsync<long>(
                """
                INSERT INTO fhir_subscription (client_id, organisation_id, status, topic, filter_criteria, endpoint, server_base, channel_header, payload_type, content,
                    heartbeat_seconds, timeout_seconds, reason, version, created_at, updated_at, changes_through)
                VALUES (@ClientId, @organisationId, @Status, @Topic, @FilterCriteria, @Endpoint, @ServerBase, @Header, @PayloadType, @Content,
                    @HeartbeatSeconds, @TimeoutSeconds, @Reason, 1, @Now, @Now, (SELECT COALESCE(MAX(seq), 0) FROM change))
                RETURNING id
                """,
                new
                {
                    ClientId = actor.Id, organisationId, Status = request.Off ? "off" : "requested", Topic = Backport.ReferralTaskChanges, request.FilterCriteria,
                    request.Endpoint, request.ServerBase, request.Header, request.PayloadType, request.Content, request.HeartbeatSeconds,
                    request.TimeoutSeconds, request.Reason, work.Scope.Now,
                }, work.Transaction);
            work.Scope.Touch("fhir_subscription", id);
            // As made, read in its own transaction: delivery may change it the moment this commits.
            return await ReadSubscription.FindOwnAsync(work.Connection, work.Transaction, actor, id);
        }
    }
}
