using System.Data.Common;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;

namespace CareCoordination.Changes;

/// <summary>Appends a command's changes in its transaction. The writer lock makes sequence order commit order.</summary>
internal static class ChangeLog
{
    public static async Task AppendAsync(Database database, DbConnection connection, DbTransaction transaction, IEnumerable<PendingChange> changes, DateTimeOffset at, string actor)
    {
        if (database.ChangeWriterLock is { } lockSql)
        {
            await connection.ExecuteAsync(lockSql, transaction: transaction);
        }
        await connection.ExecuteAsync(
            """
            INSERT INTO change (at, kind, entity_type, entity_id, organisation_id, actor, data)
            VALUES (@At, @Kind, @EntityType, @EntityId, @OrganisationId, @Actor, @Data)
            """,
            changes.Select(c => new { At = at, c.Kind, c.EntityType, c.EntityId, c.OrganisationId, Actor = actor, c.Data }),
            transaction);
        if (database.ChangeNotify is { } notify)
        {
            await connection.ExecuteAsync(notify, transaction: transaction);
        }
    }
}
