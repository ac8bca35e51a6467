using System.Data.Common;
using CareCoordination.Auth;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using Dapper;

namespace CareCoordination.Features.Coordination;

/// <summary>A triage task with its referral, as every coordination command reads it before acting.</summary>
public sealed record TaskRow
{
    public long Id { get; init; }
    public long ReferralId { get; init; }
    public string Queue { get; init; } = "";
    public string Status { get; init; } = "";
    public long? OwnerUserId { get; init; }
    public string? OwnerName { get; init; }
    public int Version { get; init; }
    public string? Priority { get; init; }
    public DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? TakenAt { get; init; }
    public DateTimeOffset? OnHoldSince { get; init; }
    public int PausedSeconds { get; init; }
    public long OrganisationId { get; init; }
    public long PersonId { get; init; }
    public string ReferralStatus { get; init; } = "";
    public int ReferralVersion { get; init; }
    public string Urgency { get; init; } = "";

    public ReferralRow Referral => new()
    {
        Id = ReferralId, PersonId = PersonId, OrganisationId = OrganisationId, Status = ReferralStatus, Version = ReferralVersion,
    };

    public bool IsOpen => TriageTasks.Open.Contains(Status);
}

/// <summary>
/// The guards and the guarded write that the take, hand and decision commands share. Each command reads
/// the task, checks its own rule, then writes only if the task is still at the version it read: two
/// coordinators acting at the same moment cannot both succeed, and the loser is told who won.
/// </summary>
public static class TriageTasks
{
    /// <summary>Statuses of a task still in a queue: waiting, being worked, or paused for information.</summary>
    public static IReadOnlyList<string> Open { get; } = ["requested", "in-progress", "on-hold"];

    public static string QueueOf(string role) => role == Roles.BedBureau ? "bed-bureau" : "coordination";

    public static string QueueName(string queue) => queue == "bed-bureau" ? "the bed bureau" : "the coordination centre";

    public static async Task<TaskRow> FindAsync(Work work, long taskId)
    {
        var task = await work.Connection.QuerySingleOrDefaultAsync<TaskRow>(
            """
            SELECT t.id AS Id, t.referral_id AS ReferralId, t.queue AS Queue, t.status AS Status, t.owner_user_id AS OwnerUserId,
                   u.display_name AS OwnerName, t.version AS Version, t.priority AS Priority, t.created_at AS CreatedAt,
                   t.taken_at AS TakenAt, t.on_hold_since AS OnHoldSince, t.paused_seconds AS PausedSeconds,
                   r.organisation_id AS OrganisationId, r.person_id AS PersonId, r.status AS ReferralStatus,
                   r.version AS ReferralVersion, r.urgency AS Urgency
            FROM triage_task t
            JOIN referral r ON r.id = t.referral_id
            LEFT JOIN staff_user u ON u.id = t.owner_user_id
            WHERE t.id = @taskId
            """, new { taskId }, work.Transaction);
        if (task is null || !ReferralAccess.MaySee(work.Scope.Actor, task.OrganisationId))
        {
            throw new Pipeline.NotFound($"Triage task {taskId}");
        }
        return task;
    }

    /// <summary>The task a decision is about: open, in the caller's team's queue, held by the caller and not paused.</summary>
    public static async Task<TaskRow> FindWorkingAsync(Work work, long taskId)
    {
        var task = await FindAsync(work, taskId);
        RequireQueueOfCaller(task, work.Scope.Actor);
        RequireWorking(task, work.Scope.Actor);
        return task;
    }

    /// <summary>
    /// Closes this team's task with its decision and opens the other team's: the coordination centre passing
    /// a referral to the bed bureau, or the bureau handing it back. The note says why, for both teams.
    /// </summary>
    public static async Task PassToAsync(Work work, TaskRow task, string queue, string decision, string reason, string note)
    {
        await CloseAsync(work, task, "completed", "task.completed", decision, reason);
        await OpenAsync(work, task, queue);
        await ReferralNotes.AddAsync(work, task.ReferralId, "note", note);
        await ReferralNotes.TouchReferralAsync(work, task.Referral, "referral.redirected", status: "redirected");
    }

    /// <summary>Coordinators work the coordination queue and the bed bureau its own: each team's decisions are its own.</summary>
    public static void RequireQueueOfCaller(TaskRow task, Actor actor)
    {
        if (actor.Kind == ActorKind.Staff && task.Queue != QueueOf(actor.Role ?? ""))
        {
            throw new RuleBroken($"This referral is in {QueueName(task.Queue)}'s queue, not yours.");
        }
    }

    public static void RequireOpen(TaskRow task)
    {
        if (!task.IsOpen)
        {
            throw new RuleBroken($"This referral has left the queue: its triage is {Describe(task.Status)}.");
        }
    }

    /// <summary>Decisions are made by whoever holds the referral, so that two people never decide at once.</summary>
    public static void RequireHeldBy(TaskRow task, Actor actor)
    {
        RequireOpen(task);
        if (task.OwnerUserId is null)
        {
            throw new RuleBroken("Take the referral first: decisions are made by the coordinator who holds it.");
        }
        if (task.OwnerUserId != actor.UserId)
        {
            throw new Conflict($"{task.OwnerName} holds this referral. Ask them to hand it to you if you need to act on it.");
        }
    }

    public static void RequireWorking(TaskRow task, Actor actor)
    {
        RequireHeldBy(task, actor);
        if (task.Status == "on-hold")
        {
            throw new RuleBroken("The referral is waiting for the referrer's answer. Wait for it, or cancel the referral.");
        }
    }

    /// <summary>
    /// Writes the task if it is still at the version it was read at. If not, nothing is written and the
    /// caller hears who changed it and how.
    /// </summary>
    public static async Task UpdateAsync(Work work, TaskRow task, string set, object? values = null)
    {
        var parameters = new DynamicParameters(values);
        parameters.Add("TaskId", task.Id);
        parameters.Add("TaskVersion", task.Version);
        parameters.Add("Now", work.Scope.Now);
        await Fhir.FhirVersions.KeepSupersededAsync(work, "triage_task", task.Id);
        var updated = await work.Connection.ExecuteAsync(
            $"UPDATE triage_task SET {set}, version = version + 1, updated_at = @Now WHERE id = @TaskId AND version = @TaskVersion",
            parameters, work.Transaction);
        if (updated == 0)
        {
            throw await ConflictAsync(work, task.Id);
        }
    }

    public static void RecordChange(Work work, TaskRow task, string kind, string status, object? detail = null)
    {
        work.Scope.RecordChange(kind, "triage_task", task.Id, task.OrganisationId,
            new { referralId = task.ReferralId, queue = task.Queue, status, by = work.Scope.Actor.Name, detail });
        work.Scope.Touch("triage_task", task.Id, task.PersonId);
    }

    /// <summary>Closes the task with its decision: the referral has left this queue.</summary>
    public static async Task CloseAsync(Work work, TaskRow task, string status, string changeKind, string decision, string? reason)
    {
        await UpdateAsync(work, task,
            "status = @Status, decision = @Decision, reason = @Reason, completed_at = @Now, on_hold_since = NULL",
            new { Status = status, Decision = decision, Reason = reason });
        RecordChange(work, task, changeKind, status, new { decision, reason });
        await WaitingWell.CloseDueRecontactsAsync(work, task.Id, $"the referral left this queue ({decision}).");
        await ReferralFirsts.KeepAsync(work.Connection, work.Transaction, task.ReferralId);
        if (task.Queue == "coordination")
        {
            await KeepTriagedAsync(work.Connection, work.Transaction, task.ReferralId);
        }
    }

    /// <summary>
    /// Triage ends with the coordination centre's first decision on the referral (the earliest coordination task it completed
    /// or rejected): kept on the referral (triaged_at) by each decision, so the fortnight's triage times (FlowHistory) read
    /// the referrals decided in it from one index. Migration 0018 filled it in for the decisions before it, with the same rule.
    /// </summary>
    public static Task KeepTriagedAsync(DbConnection connection, DbTransaction? transaction, long referralId) =>
        connection.ExecuteAsync(KeepTriaged + " WHERE id = @referralId", new { referralId }, transaction);

    private const string KeepTriaged = """
        UPDATE referral SET triaged_at = (
            SELECT MIN(t.completed_at) FROM triage_task t
            WHERE t.referral_id = referral.id AND t.queue = 'coordination' AND t.status IN ('completed', 'rejected'))
        """;

    /// <summary>
    /// The organisation doing a task's work (FHIR Task.owner), kept on the task so that a search by owner reaches its tasks
    /// through an index (issue 14, scale of history): the holder's organisation once someone has taken it; before that the
    /// bed bureau for its queue, or the coordination centre of the person's locality. Migration 0018 filled it in for the
    /// tasks before it, with the same rule. The referring organisation is kept beside it (0030), so that a partner's Task
    /// searches, always narrowed to its own referrals, count and page through one index.
    /// </summary>
    private static readonly string KeepOwner = $"""
        UPDATE triage_task SET referring_organisation_id = (SELECT r.organisation_id FROM referral r WHERE r.id = triage_task.referral_id),
            owner_organisation_id = COALESCE(
            (SELECT u.organisation_id FROM staff_user u WHERE u.id = triage_task.owner_user_id),
            {OwnerNobodyHolds("triage_task.queue",
                "(SELECT p.locality FROM referral r JOIN person p ON p.id = r.person_id WHERE r.id = triage_task.referral_id)")})
        """;

    /// <summary>The owner of a task nobody holds: the bed bureau for its queue, or the coordination centre of the person's locality.</summary>
    private static string OwnerNobodyHolds(string queue, string locality) => $"""
        (SELECT MIN(q.id) FROM organisation q
             WHERE ({queue} = 'bed-bureau' AND q.kind = 'bed-bureau')
                OR ({queue} = 'coordination' AND q.kind = 'coordination-centre' AND q.locality = {locality}))
        """;

    /// <summary>
    /// A new task (nobody holds it yet) with its owner and referring organisation set as KeepOwner sets them, in the INSERT
    /// itself. An UPDATE straight after the INSERT, as before, left the inserted version dead on PostgreSQL, with an entry
    /// for each of the two versions in every index of the table (issue 14, store growth), and cost a statement more.
    /// </summary>
    internal static readonly string InsertOpenSql = InsertOpenWhere("r.id = @referralId");

    /// <summary>
    /// <see cref="InsertOpenSql"/> for the referral <paramref name="referral"/> finds (a condition on referral r): a submission
    /// names its new referral by its key, so that the task goes in the same command as the referral (issue 14).
    /// </summary>
    internal static string InsertOpenWhere(string referral) => $"""
        INSERT INTO triage_task (referral_id, queue, status, priority, version, created_at, updated_at, referring_organisation_id, owner_organisation_id)
        SELECT r.id, @queue, 'requested', @priority, 1, @createdAt, @now, r.organisation_id, {OwnerNobodyHolds("@queue", "p.locality")}
        FROM referral r JOIN person p ON p.id = r.person_id
        WHERE {referral}
        RETURNING id
        """;

    /// <summary>Opens a task in <paramref name="queue"/> on the referral, nobody holding it; returns its id.</summary>
    public static Task<long> InsertOpenAsync(DbConnection connection, DbTransaction transaction, long referralId, string queue, string? priority,
        DateTimeOffset createdAt, DateTimeOffset now) =>
        connection.ExecuteScalarAsync<long>(InsertOpenSql, new { referralId, queue, priority, createdAt, now }, transaction);

    /// <summary>Every command that opens a task or changes who holds it calls this after its write.</summary>
    public static Task KeepOwnerAsync(DbConnection connection, DbTransaction? transaction, long taskId) =>
        connection.ExecuteAsync(KeepOwner + " WHERE id = @taskId", new { taskId }, transaction);

    /// <summary>
    /// When a person's record changes (their locality can), the tasks nobody holds in the coordination queue pass to the
    /// coordination centre of where they live now: all their referrals' tasks, as Task.owner has always shown them.
    /// </summary>
    public static Task KeepOwnersOfPersonAsync(DbConnection connection, DbTransaction? transaction, long personId) =>
        connection.ExecuteAsync(
            KeepOwner + " WHERE owner_user_id IS NULL AND queue = 'coordination' AND referral_id IN (SELECT id FROM referral WHERE person_id = @personId)",
            new { personId }, transaction);

    /// <summary>Opens the next task when a referral moves between the coordination centre and the bed bureau.</summary>
    public static async Task<long> OpenAsync(Work work, TaskRow from, string queue)
    {
        var id = await InsertOpenAsync(work.Connection, work.Transaction, from.ReferralId, queue, from.Priority, work.Scope.Now, work.Scope.Now);
        work.Scope.RecordChange("task.created", "triage_task", id, from.OrganisationId,
            new { referralId = from.ReferralId, queue, status = "requested", by = work.Scope.Actor.Name });
        return id;
    }

    private static async Task<Conflict> ConflictAsync(Work work, long taskId)
    {
        // Read outside this transaction's snapshot: the winner has committed, and the loser should hear what it did.
        var last = await work.Connection.QueryFirstOrDefaultAsync<(string Kind, string? Actor)>(
            "SELECT kind, actor FROM change WHERE entity_type = 'triage_task' AND entity_id = @taskId ORDER BY seq DESC LIMIT 1",
            new { taskId }, work.Transaction);
        return last.Kind is null
            ? new Conflict("Someone else changed this referral a moment ago. Look at it again before you carry on.")
            : new Conflict($"{last.Actor} got there first ({ReferralText.Change(last.Kind).ToLowerInvariant()}). Look at the referral again before you carry on.");
    }

    private static string Describe(string status) => status switch
    {
        "completed" => "finished",
        "rejected" => "finished with a decline",
        "cancelled" => "cancelled",
        _ => status,
    };
}
