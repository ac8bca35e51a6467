using CareCoordination.Auth;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Mediator;

namespace CareCoordination.Features.Fhir.Subscriptions;

/// <summary>
/// GET /fhir/Subscription/{id} (and its $status): one of the caller's own subscriptions. A subscription is its client's
/// alone: another client's, even of the same organisation, is not found (its channel header may hold that client's secret).
/// </summary>
public static class ReadSubscription
{
    [AllowPartnerScope("system/Subscription.r")]
    public sealed record Query(long Id) : IQuery<FhirSubscriptionRow>, IAudited;

    public sealed class Handler(Database database, Work work) : IQueryHandler<Query, FhirSubscriptionRow>
    {
        public async ValueTask<FhirSubscriptionRow> Handle(Query query, CancellationToken cancellationToken)
        {
            await using var connection = await database.OpenAsync(cancellationToken);
            var row = await FindOwnAsync(connection, null, work.Scope.Actor, query.Id);
            work.Scope.Touch("fhir_subscription", row.Id);
            return row;
        }
    }

    /// <summary>
    /// The caller's own subscription, or not found. Of its organisation as it is now: a client moved to another organisation
    /// would otherwise be answered its old organisation's Tasks ($events reads them by the subscription's organisation).
    /// </summary>
    public static async Task<FhirSubscriptionRow> FindOwnAsync(System.Data.Common.DbConnection connection, System.Data.Common.DbTransaction? transaction, Actor actor, long id) =>
        await connection.QuerySingleOrDefaultAsync<FhirSubscriptionRow>(FhirSubscriptionRow.Select + " WHERE id = @id AND client_id = @ClientId AND organisation_id = @OrganisationId",
            new { id, ClientId = actor.Id ?? "", OrganisationId = actor.OrganisationId ?? -1 }, transaction)
        ?? throw new NotFound($"Subscription/{id}");
}

/// <summary>GET /fhir/Subscription?status=active: the caller's own subscriptions.</summary>
public static class SearchSubscriptions
{
    public static IReadOnlyList<string> StatusCodes { get; } = ["requested", "active", "error", "off"];

    [AllowPartnerScope("system/Subscription.s")]
    public sealed record Query(IReadOnlyList<string> Statuses, int Count, int Offset) : IQuery<Page<FhirSubscriptionRow>>, IAudited, IPageRequest
    {
        public bool WithTotal { get; init; } = true;
    }

    public sealed class Handler(Database database, Work work) : IQueryHandler<Query, Page<FhirSubscriptionRow>>
    {
        public async ValueTask<Page<FhirSubscriptionRow>> Handle(Query query, CancellationToken cancellationToken)
        {
            var where = " WHERE client_id = @ClientId";
            if (query.Statuses.Count > 0)
            {
                where += $" AND status IN ({Sql.Literals(query.Statuses)})";
            }
            await using var connection = await database.OpenAsync(cancellationToken);
            return await Page<FhirSubscriptionRow>.ReadAsync(connection, query, FhirSubscriptionRow.Select, where, "id",
                new { ClientId = work.Scope.Actor.Id ?? "", query.Count, query.Offset }, row => work.Scope.Touch("fhir_subscription", row.Id));
        }
    }
}
