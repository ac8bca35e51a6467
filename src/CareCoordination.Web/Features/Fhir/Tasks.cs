using CareCoordination.Auth;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Mediator;

namespace CareCoordination.Features.Fhir;

/// <summary>A triage task as the FHIR Task shows it, with its referral's state and who owns the work.</summary>
public sealed record FhirTriageTask
{
    public long Id { get; init; }
    public long ReferralId { get; init; }
    public string Queue { get; init; } = "";
    public string Status { get; init; } = "";
    public string? Reason { get; init; }
    public string? Decision { get; init; }
    public int Version { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset UpdatedAt { get; init; }
    public DateTimeOffset? TakenAt { get; init; }
    public DateTimeOffset? CompletedAt { get; init; }
    public string ReferralStatus { get; init; } = "";
    public long OrganisationId { get; init; }
    public string RequesterCode { get; init; } = "";
    public string RequesterName { get; init; } = "";
    public long? OwnerId { get; init; }
    public string? OwnerCode { get; init; }
    public string? OwnerName { get; init; }
    public long PersonId { get; init; }
    public string NhsNumber { get; init; } = "";
    public string PersonName { get; init; } = "";

    /// <summary>
    /// The owner is the organisation doing the work: the holder's (a coordination centre or the bed bureau)
    /// once someone has taken it; before that the bed bureau for its queue, or the coordination centre of
    /// the person's locality. Kept on the task by the commands that change it (TriageTasks.KeepOwnerAsync).
    /// </summary>
    public static readonly string Select = SelectOver("triage_task");

    /// <summary>
    /// The tasks of <paramref name="tasks"/> (the table, or a subquery of its rows) with their referral, person and organisations.
    /// A search gives the page of tasks as a subquery: PostgreSQL then plans a join of one small set with four tables, where
    /// the filter, order and limit over the whole join doubled the planning that it does afresh at every call (issue 14).
    /// </summary>
    public static string SelectOver(string tasks) => $"""
        SELECT t.id AS Id, t.referral_id AS ReferralId, t.queue AS Queue, t.status AS Status, t.reason AS Reason, t.decision AS Decision, t.version AS Version,
               t.created_at AS CreatedAt, t.updated_at AS UpdatedAt, t.taken_at AS TakenAt, t.completed_at AS CompletedAt,
               r.status AS ReferralStatus, r.organisation_id AS OrganisationId, ro.code AS RequesterCode, ro.name AS RequesterName,
               oo.id AS OwnerId, oo.code AS OwnerCode, oo.name AS OwnerName,
               r.person_id AS PersonId, rp.nhs_number AS NhsNumber, rp.given_name || ' ' || rp.family_name AS PersonName
        FROM {tasks} t
        JOIN referral r ON r.id = t.referral_id
        JOIN referral_person rp ON rp.referral_id = r.id
        JOIN organisation ro ON ro.id = r.organisation_id
        LEFT JOIN organisation oo ON oo.id = t.owner_organisation_id
        WHERE r.status <> 'draft'
        """;
}

/// <summary>GET /fhir/Task/{id}: one triage task of the caller's organisation's referrals.</summary>
public static class ReadTask
{
    [AllowRoles(Roles.Referrer, Roles.Coordinator, Roles.BedBureau, Roles.Manager)]
    [AllowPartnerScope("system/Task.r")]
    public sealed record Query(long Id) : IQuery<FhirTriageTask>, IAudited;

    public sealed class Handler(Database database, Work work) : IQueryHandler<Query, FhirTriageTask>
    {
        public async ValueTask<FhirTriageTask> Handle(Query query, CancellationToken cancellationToken)
        {
            await using var connection = await database.OpenAsync(cancellationToken);
            var task = await connection.QuerySingleOrDefaultAsync<FhirTriageTask>(FhirTriageTask.Select + " AND t.id = @Id", new { query.Id });
            if (task is null || !ReferralAccess.MaySee(work.Scope.Actor, task.OrganisationId))
            {
                throw new NotFound($"Task/{query.Id}");
            }
            work.Scope.Touch("triage_task", task.Id, task.PersonId);
            return task;
        }
    }
}

/// <summary>GET /fhir/Task?focus=ServiceRequest/{id}&amp;_lastUpdated=gt…: how partners follow their referrals' triage.</summary>
public static class SearchTasks
{
    [AllowRoles(Roles.Referrer, Roles.Coordinator, Roles.BedBureau, Roles.Manager)]
    [AllowPartnerScope("system/Task.s")]
    public sealed record Query(long? FocusReferralId, IReadOnlyList<DateBound> LastUpdated, int Count, int Offset,
        long? OwnerOrganisationId = null, long? PersonId = null) : IQuery<Page<FhirTriageTask>>, IAudited, IPageRequest
    {
        public bool WithTotal { get; init; } = true;

        /// <summary>Task.status codes, as the partner sees them.</summary>
        public IReadOnlyList<string> Statuses { get; init; } = [];

        public static IReadOnlyList<string> StatusCodes { get; } = ["requested", "in-progress", "on-hold", "accepted", "rejected", "completed", "cancelled"];
    }

    public sealed class Handler(Database database, Work work) : IQueryHandler<Query, Page<FhirTriageTask>>
    {
        public async ValueTask<Page<FhirTriageTask>> Handle(Query query, CancellationToken cancellationToken)
        {
            var actor = work.Scope.Actor;
            var where = "";
            var parameters = new DynamicParameters(new
            {
                OrganisationId = actor.OrganisationId ?? -1, query.FocusReferralId, query.OwnerOrganisationId, query.PersonId, query.Count, query.Offset,
            });
            if (!ReferralAccess.SeesEveryOrganisation(actor))
            {
                // The referring organisation kept on the task (0030): with a status or an owner, the total and the first page
                // are one index range (ix_triage_task_referring, ix_triage_task_owner_referring), where the referral's own
                // column read a row of the referral for every match (issue 14).
                where += " AND t.referring_organisation_id = @OrganisationId";
            }
            if (query.FocusReferralId is not null)
            {
                where += " AND t.referral_id = @FocusReferralId";
            }
            if (query.OwnerOrganisationId is not null)
            {
                where += " AND t.owner_organisation_id = @OwnerOrganisationId";
            }
            if (query.PersonId is not null)
            {
                where += " AND r.person_id = @PersonId";
            }
            where += FhirSearch.DateWhere("t.updated_at", query.LastUpdated, parameters);
            if (query.Statuses.Count > 0)
            {
                // As Task.status shows them: a completed task that accepted the referral is "accepted" (FhirMapping.ToTask).
                where += " AND (" + string.Join(" OR ", query.Statuses.Select(status => status switch
                {
                    "accepted" => "(t.status = 'completed' AND t.decision LIKE 'accepted%')",
                    "completed" => "(t.status = 'completed' AND (t.decision IS NULL OR t.decision NOT LIKE 'accepted%'))",
                    _ => $"t.status = {Sql.Literals([status])}",
                })) + ")";
            }
            // Every task's referral has been sent (a draft has none) and keeps what its person said (referral_person), so only a
            // search by person needs the referral to find and count the tasks, and the page found in the task table alone is
            // whole after the joins (TriageTasks inserts a task only for a sent referral).
            var matches = "FROM triage_task t" + (query.PersonId is null ? "" : " JOIN referral r ON r.id = t.referral_id") + " WHERE 1 = 1" + where;
            await using var connection = await database.OpenAsync(cancellationToken);
            return await Page<FhirTriageTask>.ReadAsync(connection, query, "SELECT COUNT(*) " + matches,
                limit => FhirTriageTask.SelectOver($"(SELECT t.* {matches} ORDER BY t.id LIMIT {limit} OFFSET @Offset)") + " ORDER BY t.id", parameters,
                task => work.Scope.Touch("triage_task", task.Id, task.PersonId));
        }
    }
}
