using CareCoordination.Auth;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Mediator;
using Microsoft.Extensions.Options;

namespace CareCoordination.Features.Coordination;

/// <summary>
/// Waiting well: a referral that waits past its target gets a re-contact task, so that someone checks on
/// the person and tells the referrer where things stand. Once done, another is raised if it waits a whole
/// target period more. Raised by the system on a timer, one per command until none is due; the change row
/// says who (system) and why.
/// </summary>
public static class WaitingWell
{
    [AllowRoles(Roles.Coordinator)]
    public sealed record RaiseRecontacts : ICommand<int>;

    /// <summary>
    /// The open tasks that could be due a re-contact, oldest first: created longer ago than the shortest target (the wait is
    /// never longer than the time since creation, and a late take means it was), with no re-contact open and none raised
    /// within the last triage period (a task's re-contacts are found through its referral's index: recontact has none of its own
    /// but the open one's). The timer runs this once per re-contact it raises, so it must not read every open task: with a
    /// backlog each tick read them all again for every one it raised (issue 14's bench: 22 reads of 10,000 tasks
    /// in a tick, 145 ms each on PostgreSQL, SQLite's writer held throughout).
    /// </summary>
    public const string MayBeDue = """
        SELECT t.id AS TaskId, t.referral_id AS ReferralId, t.queue AS Queue, t.status AS Status, r.organisation_id AS OrganisationId,
               r.person_id AS PersonId, t.created_at AS CreatedAt, t.taken_at AS TakenAt, t.on_hold_since AS OnHoldSince,
               t.paused_seconds AS PausedSeconds
        FROM triage_task t JOIN referral r ON r.id = t.referral_id
        WHERE t.status IN ('requested', 'in-progress') AND t.created_at < @CreatedBefore
          AND NOT EXISTS (SELECT 1 FROM recontact rc
                          WHERE rc.referral_id = t.referral_id AND rc.triage_task_id = t.id AND (rc.done_at IS NULL OR rc.created_at > @RecontactedAfter))
        ORDER BY t.created_at, t.id
        """;

    private sealed record Waiting
    {
        public long TaskId { get; init; }
        public long ReferralId { get; init; }
        public string Queue { get; init; } = "";
        public string Status { get; init; } = "";
        public long OrganisationId { get; init; }
        public long PersonId { get; init; }
        public DateTimeOffset CreatedAt { get; init; }
        public DateTimeOffset? TakenAt { get; init; }
        public DateTimeOffset? OnHoldSince { get; init; }
        public int PausedSeconds { get; init; }
    }

    /// <summary>The parameters of <see cref="MayBeDue"/> at <paramref name="now"/>.</summary>
    public static object MayBeDueAt(DateTimeOffset now, CoordinationTargets targets) => new
    {
        CreatedBefore = now - TimeSpan.FromMinutes(Math.Min(targets.TakenWithinMinutes, targets.TriagedWithinMinutes)),
        RecontactedAfter = now - TimeSpan.FromMinutes(targets.TriagedWithinMinutes),
    };

    public sealed class Handler(Work work, IOptionsMonitor<CoordinationTargets> options) : ICommandHandler<RaiseRecontacts, int>
    {
        public async ValueTask<int> Handle(RaiseRecontacts command, CancellationToken cancellationToken)
        {
            var scope = work.Scope;
            var targets = options.CurrentValue;
            // Paused referrals are waiting on the referrer, not on us: their clock is stopped.
            var waiting = await work.Connection.QueryAsync<Waiting>(MayBeDue, MayBeDueAt(scope.Now, targets), work.Transaction);
            var raised = 0;
            foreach (var task in waiting)
            {
                var clock = TriageClock.Of(task.CreatedAt, task.TakenAt, task.OnHoldSince, task.PausedSeconds, scope.Now, targets);
                if (!clock.Breached)
                {
                    continue;
                }
                // The task, held while its re-contact is raised: on PostgreSQL one being decided at this moment has either closed,
                // and is passed over, or waits, and then closes the re-contact with it (CloseDueRecontactsAsync). Read above
                // without a lock, a decision committed in between left a re-contact due on a closed task.
                if (await work.Connection.ExecuteAsync(
                        "UPDATE triage_task SET status = status WHERE id = @TaskId AND status IN ('requested', 'in-progress')",
                        new { task.TaskId }, work.Transaction) == 0)
                {
                    continue;
                }
                var reason = $"Waited {ReferralText.Duration(clock.Waited)}, past the {(int)clock.TargetTime.TotalMinutes} min {clock.Target} target.";
                var id = await work.Connection.ExecuteScalarAsync<long>(
                    """
                    INSERT INTO recontact (triage_task_id, referral_id, reason, created_at) VALUES (@TaskId, @ReferralId, @reason, @Now)
                    RETURNING id
                    """, new { task.TaskId, task.ReferralId, reason, scope.Now }, work.Transaction);
                scope.RecordChange("task.recontact-due", "triage_task", task.TaskId, task.OrganisationId,
                    new { referralId = task.ReferralId, queue = task.Queue, status = task.Status, recontactId = id, reason, rag = "red" });
                scope.Touch("triage_task", task.TaskId, task.PersonId);
                raised++;
                // One per command and transaction: the timer sends again until none is due.
                break;
            }
            return raised;
        }
    }

    /// <summary>
    /// A task that closes (decided, passed to the other team, cancelled) is no longer waiting: its re-contact still due is
    /// closed with it, said so, and by nobody. Left open it stayed "due" on a closed referral for good, with a Record button
    /// for a team whose queue the task was not in any more, which refused it.
    /// </summary>
    public static Task CloseDueRecontactsAsync(Work work, long taskId, string why) =>
        work.Connection.ExecuteAsync(
            "UPDATE recontact SET done_at = @Now, outcome = @outcome WHERE triage_task_id = @taskId AND done_at IS NULL",
            new { work.Scope.Now, outcome = $"No longer due: {why}", taskId }, work.Transaction);
}
