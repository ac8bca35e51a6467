using CareCoordination.Auth;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Mediator;

namespace CareCoordination.Features.Fhir;

/// <summary>One row of the audit trail (AuditWriter) that a partner system wrote by its own calls.</summary>
public sealed record FhirAudit
{
    public long Id { get; init; }
    public DateTimeOffset At { get; init; }
    public string ClientId { get; init; } = "";
    public string ClientName { get; init; } = "";
    public long? OrganisationId { get; init; }
    public string? OrganisationCode { get; init; }
    public string? OrganisationName { get; init; }
    public string Action { get; init; } = "";
    public string Outcome { get; init; } = "";
    public string? EntityType { get; init; }
    public long? EntityId { get; init; }
    public long? PersonId { get; init; }

    /// <summary>A read of a page of records (entity type, no entity id): the people it disclosed (ReadPeople).</summary>
    public IReadOnlyList<long> People { get; init; } = [];

    /// <summary>Each page read's people, read back for the rows of one answer.</summary>
    public static async Task<List<FhirAudit>> WithPeopleAsync(System.Data.Common.DbConnection connection, StoreProvider provider, List<FhirAudit> audits)
    {
        var pages = audits.Where(a => a.EntityType is not null && a.EntityId is null).Select(a => a.Id).ToArray();
        if (pages.Length == 0)
        {
            return audits;
        }
        var people = (await connection.QueryAsync<(long AuditId, long PersonId)>(
                ReadPeople.Of(provider, string.Join(",", pages))))
            .ToLookup(p => p.AuditId, p => p.PersonId);
        return [.. audits.Select(a => people.Contains(a.Id) ? a with { People = [.. people[a.Id]] } : a)];
    }

    /// <summary>
    /// Partners' rows only. A partner's actor id is its client id (Actor.From: the token's client_id claim), and the
    /// client's name is read from partner_client, as the audit row keeps the id.
    /// </summary>
    public const string Select = """
        SELECT a.id AS Id, a.at AS At, a.actor_id AS ClientId, COALESCE(pc.name, a.actor_name, a.actor_id) AS ClientName,
               a.organisation_id AS OrganisationId, o.code AS OrganisationCode, o.name AS OrganisationName,
               a.action AS Action, a.outcome AS Outcome, a.entity_type AS EntityType, a.entity_id AS EntityId, a.person_id AS PersonId
        FROM audit_event a
        LEFT JOIN partner_client pc ON pc.client_id = a.actor_id
        LEFT JOIN organisation o ON o.id = a.organisation_id
        WHERE a.actor_kind = 'partner' AND a.actor_id = @ClientId
        """;

    /// <summary>The FHIR resource type each audited entity type is served as; entity=Type/id searches by these.</summary>
    public static IReadOnlyDictionary<string, string> ResourceTypes { get; } = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["referral"] = "ServiceRequest",
        ["triage_task"] = "Task",
        ["person"] = "Patient",
        ["service"] = "HealthcareService",
        ["organisation"] = "Organization",
        ["staff_user"] = "Practitioner",
        ["audit_event"] = "AuditEvent",
        ["fhir_subscription"] = "Subscription",
    };
}

// Access: partners only, and each sees only its own client's rows (another client's, even of the same
// organisation, is "not found"). Staff get no AuditEvent through FHIR: the whole trail records every read of
// every person's record, which is for information governance to review in its own tools, and nothing on this
// server needs a FHIR view of it; a staff view would first have to settle whose rows each role may see.
//
// Auditing the audit trail: each read or search of AuditEvent writes ONE row of its own (IAudited), naming the
// AuditEvent read or no entity for a search, and never one row per AuditEvent returned. Per-row auditing would
// make every search add as many rows as it returned, so each next search would return and write more: the
// trail would grow quadratically with the number of times a partner looks at it.

/// <summary>GET /fhir/AuditEvent/{id}: one of the caller's own audit rows.</summary>
public static class ReadAuditEvent
{
    [AllowPartnerScope("system/AuditEvent.r")]
    public sealed record Query(long Id) : IQuery<FhirAudit>, IAudited;

    public sealed class Handler(Database database, Work work) : IQueryHandler<Query, FhirAudit>
    {
        public async ValueTask<FhirAudit> Handle(Query query, CancellationToken cancellationToken)
        {
            await using var connection = await database.OpenAsync(cancellationToken);
            var audit = await connection.QuerySingleOrDefaultAsync<FhirAudit>(FhirAudit.Select + " AND a.id = @Id",
                    new { query.Id, ClientId = work.Scope.Actor.Id })
                ?? throw new NotFound($"AuditEvent/{query.Id}");
            work.Scope.Touch("audit_event", audit.Id);
            return (await FhirAudit.WithPeopleAsync(connection, database.Provider, [audit]))[0];
        }
    }
}

/// <summary>GET /fhir/AuditEvent?date=ge…&amp;entity=ServiceRequest/12&amp;outcome=4: the caller's own audit rows, oldest first.</summary>
public static class SearchAuditEvents
{
    /// <summary>FHIR's AuditEvent.outcome codes and the audit rows' outcomes each stands for.</summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<string>> Outcomes { get; } = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal)
    {
        ["0"] = ["success"],
        ["4"] = ["denied", "invalid"],
        ["8"] = ["failed"],
    };

    [AllowPartnerScope("system/AuditEvent.s")]
    public sealed record Query(IReadOnlyList<DateBound> Date, (string Type, long Id)? Entity, IReadOnlyList<string> Outcomes, int Count, int Offset)
        : IQuery<Page<FhirAudit>>, IAudited, IPageRequest
    {
        public bool WithTotal { get; init; } = true;
    }

    public sealed class Handler(Database database, Work work) : IQueryHandler<Query, Page<FhirAudit>>
    {
        public async ValueTask<Page<FhirAudit>> Handle(Query query, CancellationToken cancellationToken)
        {
            var where = "";
            var parameters = new DynamicParameters(new { ClientId = work.Scope.Actor.Id, query.Count, query.Offset });
            where += FhirSearch.DateWhere("a.at", query.Date, parameters);
            if (query.Entity is var (type, id))
            {
                // A Patient is an entity of every row about them (FhirMapping.ToAuditEvent), not only of reads of the Patient itself,
                // and of every page read that disclosed them. A page read names no one record of its kind.
                where += type == "Patient"
                    ? $" AND (a.person_id = @EntityId OR a.id IN ({ReadPeople.ReadsOf(database.Provider, "@EntityId")}))"
                    : " AND a.entity_type = @EntityType AND a.entity_id = @EntityId";
                parameters.Add("EntityType", FhirAudit.ResourceTypes.Single(t => t.Value == type).Key);
                parameters.Add("EntityId", id);
            }
            if (query.Outcomes.Count > 0)
            {
                where += $" AND a.outcome IN ({Sql.Literals(query.Outcomes.SelectMany(o => Outcomes[o]))})";
            }
            await using var connection = await database.OpenAsync(cancellationToken);
            var page = await Page<FhirAudit>.ReadAsync(connection, query, FhirAudit.Select, where, "a.id", parameters, _ => { });
            return page with { Items = await FhirAudit.WithPeopleAsync(connection, database.Provider, [.. page.Items]) };
        }
    }
}
