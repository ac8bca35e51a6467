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

    /// <summary>One row per thing the message touched (or one row if it named none).</summary>
    public async Task WriteAsync(MessageScope scope, string outcome, DbConnection? connection, DbTransaction? transaction, CancellationToken cancellationToken)
    {
        var ownConnection = connection is null;
        connection ??= await database.OpenAsync(cancellationToken);
        try
        {
            var subjects = scope.Subjects.Count > 0 ? scope.Subjects : [new AuditSubject("", 0, null)];
            var rows = subjects.Select(s => new
            {
                At = scope.Now,
                ActorKind = scope.Actor.Kind.ToString().ToLowerInvariant(),
                ActorId = scope.Actor.Id,
                ActorName = scope.Actor.Name,
                scope.Actor.OrganisationId,
                scope.Action,
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
