using System.Data.Common;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;

namespace CareCoordination.Changes;

/// <summary>Appends a command's changes in its transaction. The writer lock makes sequence order commit order.</summary>
internal static class ChangeLog
{
    /// <summary>The store's last change (0 before the first): what a reader has seen all of, since sequence order is commit order.</summary>
    public static async Task<long> LastSeqAsync(DbConnection connection, CancellationToken cancellationToken = default) =>
        await connection.ExecuteScalarAsync<long?>(new CommandDefinition("SELECT MAX(seq) FROM change", cancellationToken: cancellationToken)) ?? 0;

    private const string Insert = """
        INSERT INTO change (at, kind, entity_type, entity_id, organisation_id, actor, data)
        VALUES (@At, @Kind, @EntityType, @EntityId, @OrganisationId, @Actor, @Data)
        """;

    /// <summary>
    /// PostgreSQL: the notice, the change-writer lock, every row and the COMMIT in one round trip (Database.ExecuteLastAsync).
    /// Every writer of every node waits for that lock from here to its COMMIT, so each round trip inside it (four, and one
    /// per row, before; then the one to COMMIT) was a wait for all of them (issue 14). The notice first: PostgreSQL delivers
    /// it only on commit, whatever its place, so no node hears of a change that was rolled back, and it needs no lock. It
    /// names the node that wrote (Database.ChangeNoticeMark), whose own listener lets it pass.
    /// </summary>
    private static readonly string PostgresAppend = $"""
        SELECT pg_notify('{Database.ChangeChannel}', @ChangeNoticeMark);
        SELECT pg_advisory_xact_lock({Database.ChangeWriterLockKey});
        INSERT INTO change (at, kind, entity_type, entity_id, organisation_id, actor, data)
        SELECT @At, c.kind, c.entity_type, c.entity_id, c.organisation_id, @Actor, c.data
        FROM unnest(@Kinds, @EntityTypes, @EntityIds, @OrganisationIds, @Data) WITH ORDINALITY AS c (kind, entity_type, entity_id, organisation_id, data, n)
        ORDER BY c.n
        """;

    /// <summary>
    /// The last statement of the command's transaction: on PostgreSQL it commits it (Database.ExecuteLastAsync), and
    /// <paramref name="before"/>, the command's other writes that waited for this round trip (its held audit rows), go first
    /// in it; their parameters must not share a name with these. SQLite holds nothing back: there <paramref name="before"/> is null.
    /// </summary>
    public static async Task AppendLastAsync(Database database, DbConnection connection, DbTransaction transaction, IEnumerable<PendingChange> changes, DateTimeOffset at, string actor,
        (string Sql, DynamicParameters Parameters)? before = null)
    {
        if (database.Provider == StoreProvider.PostgreSQL)
        {
            var rows = changes as IReadOnlyList<PendingChange> ?? [.. changes];
            var parameters = before?.Parameters ?? new DynamicParameters();
            var sql = before is { } first ? first.Sql : "";
            if (rows.Count > 0)
            {
                parameters.AddDynamicParams(new
                {
                    At = at,
                    Actor = actor,
                    Kinds = rows.Select(c => c.Kind).ToArray(),
                    EntityTypes = rows.Select(c => c.EntityType).ToArray(),
                    EntityIds = rows.Select(c => c.EntityId).ToArray(),
                    OrganisationIds = rows.Select(c => c.OrganisationId).ToArray(),
                    Data = rows.Select(c => c.Data).ToArray(),
                    database.ChangeNoticeMark,
                });
                sql = sql.Length == 0 ? PostgresAppend : $"{sql};\n{PostgresAppend}";
            }
            if (sql.Length > 0)
            {
                await database.ExecuteLastAsync(connection, transaction, sql, parameters);
            }
            return;
        }
        if (before is not null)
        {
            throw new InvalidOperationException("SQLite writes a command's statements as they come: nothing is held for its last.");
        }
        await connection.ExecuteAsync(
            Insert,
            changes.Select(c => new { At = at, c.Kind, c.EntityType, c.EntityId, c.OrganisationId, Actor = actor, c.Data }),
            transaction);
    }
}
