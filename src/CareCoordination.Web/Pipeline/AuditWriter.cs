using System.Data.Common;
using CareCoordination.Auth;
using CareCoordination.Store;
using Dapper;

namespace CareCoordination.Pipeline;

public sealed class AuditWriter(Database database)
{
    private const string Insert = """
        INSERT INTO audit_event (at, actor_kind, actor_id, actor_name, organisation_id, action, outcome, entity_type, entity_id, person_id, detail)
        VALUES (@At, @ActorKind, @ActorId, @ActorName, @OrganisationId, @Action, @Outcome, @EntityType, @EntityId, @PersonId, @Detail)
        """;

    /// <summary>
    /// A refused message (denied, invalid) is written on its own connection, because its transaction, if it
    /// had one, never began. A message sent inside a command (a FHIR transaction's entries) is refused while
    /// the outer command's write transaction is open: writing then would wait on that very transaction (SQLite)
    /// or be rolled back with it, so the row is held and written once the outer transaction has ended.
    /// </summary>
    public Task WriteRefusalAsync(MessageScope scope, string outcome, string action, CancellationToken cancellationToken)
    {
        if (scope.Transaction is not null)
        {
            scope.DeferredRefusals.Add((outcome, action));
            return Task.CompletedTask;
        }
        return WriteAsync(scope, outcome, null, null, cancellationToken, action);
    }

    internal async Task WriteDeferredAsync(MessageScope scope, CancellationToken cancellationToken)
    {
        foreach (var (outcome, action) in scope.DeferredRefusals)
        {
            await WriteAsync(scope, outcome, null, null, cancellationToken, action);
        }
        scope.DeferredRefusals.Clear();
    }

    /// <summary>
    /// One row per thing the message touched (or one row if it named none). Subjects from firstSubject on are
    /// the message's own; any a message sent inside it has already audited are not written again.
    /// </summary>
    public async Task WriteAsync(MessageScope scope, string outcome, DbConnection? connection, DbTransaction? transaction, CancellationToken cancellationToken,
        string? action = null, int firstSubject = 0)
    {
        var ownConnection = connection is null;
        connection ??= await database.OpenAsync(cancellationToken);
        try
        {
            var own = new List<AuditSubject>();
            for (var i = firstSubject; i < scope.Subjects.Count; i++)
            {
                if (scope.AuditedSubjects.Add(i))
                {
                    own.Add(scope.Subjects[i]);
                }
            }
            var subjects = own.Count > 0 ? own : [new AuditSubject("", 0, null)];
            var rows = subjects.Select(s => new
            {
                At = scope.Now,
                ActorKind = scope.Actor.Kind.ToString().ToLowerInvariant(),
                ActorId = scope.Actor.Id,
                ActorName = scope.Actor.Name,
                scope.Actor.OrganisationId,
                Action = action ?? scope.Action,
                Outcome = outcome,
                EntityType = s.EntityType.Length == 0 ? null : s.EntityType,
                EntityId = s.EntityType.Length == 0 ? (long?)null : s.EntityId,
                s.PersonId,
                Detail = scope.AuditDetail,
            });
            await connection.ExecuteAsync(new CommandDefinition(Insert, rows, transaction, cancellationToken: cancellationToken));
        }
        finally
        {
            if (ownConnection)
            {
                await connection.DisposeAsync();
            }
        }
    }
}
