using CareCoordination.Auth;
using CareCoordination.Pipeline;
using Mediator;

namespace CareCoordination.Features.Account;

/// <summary>
/// GET /api/me: who the caller is to this system. A partner's integration engineer checks a new token
/// here before wiring up FHIR calls; the staff screens read the same.
/// </summary>
public static class WhoAmI
{
    [AllowRoles(Roles.Referrer, Roles.Coordinator, Roles.BedBureau, Roles.Manager, Roles.Admin)]
    [AllowPartnerScope(AllowPartnerScopeAttribute.AnyScope)]
    public sealed record Query : IQuery<Result>;

    public sealed record Result(string Kind, string Name, string? Role, long? OrganisationId, IReadOnlyList<string> Scopes);

    public sealed class Handler(Work work) : IQueryHandler<Query, Result>
    {
        public ValueTask<Result> Handle(Query query, CancellationToken cancellationToken)
        {
            var actor = work.Scope.Actor;
            return ValueTask.FromResult(new Result(actor.Kind.ToString().ToLowerInvariant(), actor.Name, actor.Role, actor.OrganisationId, [.. actor.Scopes.Order(StringComparer.Ordinal)]));
        }
    }

    public static void MapWhoAmI(this IEndpointRouteBuilder app) =>
        app.MapGet("/api/me", async (IMediator mediator, CancellationToken cancellationToken) => Results.Ok(await mediator.Send(new Query(), cancellationToken)));
}
