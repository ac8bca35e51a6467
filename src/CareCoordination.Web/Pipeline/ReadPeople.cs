using CareCoordination.Store;

namespace CareCoordination.Pipeline;

/// <summary>
/// The people a page read disclosed (AuditWriter), where each store keeps them: a row each in audit_read_person on SQLite
/// (0033), one array per read in audit_read_people on PostgreSQL (0040), so the writer and every reader ask here.
/// </summary>
public static class ReadPeople
{
    /// <summary>A page read's people after its row (the CTE a), from @People ("1,2,3"): one array, none when the page showed no one.</summary>
    internal const string InsertPostgres =
        "INSERT INTO audit_read_people (audit_id, person_ids) SELECT a.id, string_to_array(@People, ',')::bigint[] FROM a WHERE @People <> ''";

    /// <summary>A page read's people after its row (@AuditId), from @People ("1,2,3"): a row each.</summary>
    internal const string InsertSqlite =
        "INSERT INTO audit_read_person (audit_id, person_id) SELECT @AuditId, value FROM json_each('[' || @People || ']')";

    /// <summary>The ids of the page reads that disclosed the person <paramref name="person"/> (a parameter), as a subquery.</summary>
    public static string ReadsOf(StoreProvider provider, string person) => provider == StoreProvider.PostgreSQL
        // @> is what the GIN index of the arrays answers; "= ANY" would read every array.
        ? $"SELECT rp.audit_id FROM audit_read_people rp WHERE rp.person_ids @> ARRAY[CAST({person} AS BIGINT)]"
        : $"SELECT rp.audit_id FROM audit_read_person rp WHERE rp.person_id = {person}";

    /// <summary>(audit_id, person_id) of each person the reads <paramref name="auditIds"/> (a list or a subquery) disclosed, in that order.</summary>
    public static string Of(StoreProvider provider, string auditIds) => provider == StoreProvider.PostgreSQL
        ? $"SELECT rp.audit_id, p.person_id FROM audit_read_people rp, unnest(rp.person_ids) AS p (person_id) WHERE rp.audit_id IN ({auditIds}) ORDER BY rp.audit_id, p.person_id"
        : $"SELECT audit_id, person_id FROM audit_read_person WHERE audit_id IN ({auditIds}) ORDER BY audit_id, person_id";
}
