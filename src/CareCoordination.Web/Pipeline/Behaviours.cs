using System.Reflection;
using CareCoordination.Auth;
using CareCoordination.Changes;
using CareCoordination.Features.Fhir;
using CareCoordination.Store;
using Dapper;
using FluentValidation;
using Mediator;

namespace CareCoordination.Pipeline;

/// <summary>Outermost: opens the message's scope and refuses a caller the message does not allow.</summary>
public sealed class AuthorisationBehaviour<TMessage, TResponse>(ActorAccessor actors, TimeProvider clock, AuditWriter audit)
    : IPipelineBehavior<TMessage, TResponse>
    where TMessage : notnull, IMessage
{
    private static AccessPolicy Policy => AccessPolicy<TMessage>.Policy;

    public async ValueTask<TResponse> Handle(TMessage message, MessageHandlerDelegate<TMessage, TResponse> next, CancellationToken cancellationToken)
    {
        var outer = Work.Current;
        var actor = outer?.Actor ?? actors.Current;
        // A message sent from inside a command joins that command's scope: one transaction, one set of changes.
        var scope = outer is { Transaction: not null } ? outer : new MessageScope(actor, clock.GetUtcNow(), Policy.Action);
        if (!Policy.Allows(actor))
        {
            await audit.WriteRefusalAsync(scope, "denied", Policy.Action, cancellationToken);
            throw new AccessDenied($"{Describe(actor)} may not {Policy.Action}.");
        }
        var joined = ReferenceEquals(scope, outer);
        Work.Enter(scope);
        if (joined)
        {
            scope.SentInside++;
        }
        try
        {
            return await next(message, cancellationToken);
        }
        finally
        {
            if (joined)
            {
                scope.SentInside--;
            }
            Work.Enter(outer);
        }
    }

    private static string Describe(Actor actor) => actor.Kind switch
    {
        ActorKind.Staff => $"The {Roles.Describe(actor.Role ?? "")} role",
        ActorKind.Partner => $"Partner client {actor.Name}",
        _ => "An anonymous caller",
    };
}

/// <summary>A message type's policy, read from its attributes once per type: every behaviour asks here.</summary>
internal static class AccessPolicy<TMessage>
{
    public static readonly AccessPolicy Policy = AccessPolicy.For(typeof(TMessage));
}

internal sealed record AccessPolicy(string Action, bool Anonymous, IReadOnlyList<string> Roles, string? PartnerScope)
{
    public static AccessPolicy For(Type messageType)
    {
        // Messages are nested in their use case (SignIn.Request): the use case names the action.
        var action = messageType.DeclaringType?.Name ?? messageType.Name;
        var anonymous = messageType.GetCustomAttribute<AllowAnonymousMessageAttribute>() is not null;
        var roles = messageType.GetCustomAttribute<AllowRolesAttribute>()?.Roles ?? [];
        var scope = messageType.GetCustomAttribute<AllowPartnerScopeAttribute>()?.Scope;
        if (!anonymous && roles.Count == 0 && scope is null)
        {
            throw new InvalidOperationException($"{messageType.FullName} states no access: give it AllowRoles, AllowPartnerScope or AllowAnonymousMessage.");
        }
        return new AccessPolicy(action, anonymous, roles, scope);
    }

    public bool Allows(Actor actor) => actor.Kind switch
    {
        _ when Anonymous => true,
        ActorKind.System => true,
        ActorKind.Staff => actor.Role is not null && Roles.Contains(actor.Role),
        ActorKind.Partner => PartnerScope == AllowPartnerScopeAttribute.AnyScope
            || (PartnerScope is not null && actor.Scopes.Any(granted => ScopeGrants(granted, PartnerScope))),
        _ => false,
    };

    /// <summary>SMART v2: system/ServiceRequest.cru grants .c, .r and .u; system/*.rs grants reads of anything.</summary>
    internal static bool ScopeGrants(string granted, string needed)
    {
        var (grantedResource, grantedActions) = Split(granted);
        var (neededResource, neededActions) = Split(needed);
        if (grantedResource != "system/*" && grantedResource != neededResource)
        {
            return false;
        }
        return neededActions.All(grantedActions.Contains);
    }

    private static (string Resource, string Actions) Split(string scope)
    {
        var dot = scope.LastIndexOf('.');
        return dot < 0 ? (scope, "") : (scope[..dot], scope[(dot + 1)..]);
    }
}

/// <summary>Runs the message's FluentValidation rules: the same rules for the form and for the API.</summary>
public sealed class ValidationBehaviour<TMessage, TResponse>(IEnumerable<IValidator<TMessage>> validators, AuditWriter audit)
    : IPipelineBehavior<TMessage, TResponse>
    where TMessage : notnull, IMessage
{
    public async ValueTask<TResponse> Handle(TMessage message, MessageHandlerDelegate<TMessage, TResponse> next, CancellationToken cancellationToken)
    {
        var failures = new List<FluentValidation.Results.ValidationFailure>();
        foreach (var validator in validators)
        {
            var result = await validator.ValidateAsync(message, cancellationToken);
            failures.AddRange(result.Errors);
        }
        if (failures.Count > 0)
        {
            if (message is IBaseCommand || message is IAudited)
            {
                await audit.WriteRefusalAsync(Work.Current!, "invalid", AccessPolicy<TMessage>.Policy.Action, cancellationToken);
            }
            throw new ValidationFailed(failures
                .GroupBy(f => f.PropertyName)
                .ToDictionary(g => g.Key, g => g.Select(f => f.ErrorMessage).Distinct().ToArray()));
        }
        return await next(message, cancellationToken);
    }
}

/// <summary>
/// Commands only: one transaction around the handler, its change rows and its audit row, so that a
/// failure leaves nothing half-written. The handler runs in the caller's flow; on SQLite its transaction
/// may be shared with other commands waiting at the same moment (each in its own savepoint, see
/// Database.WriteAsync), and it is answered only after that transaction committed. Then the change feed
/// is told, and pushes to live screens.
/// </summary>
public sealed class TransactionBehaviour<TMessage, TResponse>(Database database, ChangeFeed feed, AuditWriter audit)
    : IPipelineBehavior<TMessage, TResponse>
    where TMessage : notnull, IBaseCommand
{
    public async ValueTask<TResponse> Handle(TMessage message, MessageHandlerDelegate<TMessage, TResponse> next, CancellationToken cancellationToken)
    {
        var scope = Work.Current!;
        if (scope.Transaction is not null)
        {
            return await next(message, cancellationToken);
        }

        try
        {
            return await database.WriteAsync(async (connection, transaction) =>
            {
                scope.Connection = connection;
                scope.Transaction = transaction;
                try
                {
                    var response = await next(message, cancellationToken);
                    var heldAudit = AuditWriter.HeldRowsStatement(scope);
                    if (scope.Changes.Count > 0 || heldAudit is not null)
                    {
                        // Last: on PostgreSQL the audit rows held for it, the change rows and the COMMIT go in one round trip.
                        await ChangeLog.AppendLastAsync(database, connection, transaction, scope.Changes, scope.Now, scope.Actor.Name, heldAudit);
                    }
                    return response;
                }
                finally
                {
                    scope.Connection = null;
                    scope.Transaction = null;
                    scope.HeldAuditRows.Clear();
                }
            }, cancellationToken);
        }
        finally
        {
            // Also when the write failed, since this node's listener lets its own notices pass (PostgresChangeListener): a commit
            // whose answer was lost is read by this poke if it has landed, else by its own notice when it lands, which the node
            // hears for a while after such a failure (Database.HearsOwnNotices). After a rollback the poke finds nothing.
            if (scope.Changes.Count > 0)
            {
                feed.Poke();
            }
            // Refusals of messages sent inside this one were held until its transaction ended (see WriteRefusalAsync).
            await audit.WriteDeferredAsync(scope, CancellationToken.None);
        }
    }
}

/// <summary>Innermost: writes who did what to the audit trail, in the command's own transaction.</summary>
public sealed class AuditBehaviour<TMessage, TResponse>(AuditWriter audit)
    : IPipelineBehavior<TMessage, TResponse>
    where TMessage : notnull, IMessage
{
    public async ValueTask<TResponse> Handle(TMessage message, MessageHandlerDelegate<TMessage, TResponse> next, CancellationToken cancellationToken)
    {
        // A message sent inside another shares its scope: it is audited under its own name, for what it touched.
        var firstSubject = Work.Current!.Subjects.Count;
        var sentInside = Work.Current!.SentInside > 0;
        var response = await next(message, cancellationToken);
        if (message is IBaseCommand || message is IAudited)
        {
            var scope = Work.Current!;
            await audit.WriteAsync(scope, scope.Outcome, scope.Connection, scope.Transaction, cancellationToken, AccessPolicy<TMessage>.Policy.Action,
                firstSubject, sentInside, read: message is not IBaseCommand);
        }
        return response;
    }
}
