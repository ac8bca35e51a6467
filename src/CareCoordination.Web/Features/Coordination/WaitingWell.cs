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
        public DateTimeOffset? LastRecontactAt { get; init; }
        public long OpenRecontacts { get; init; }
    }

    public sealed class Handler(Work work, IOptionsMonitor<CoordinationTargets> options) : ICommandHandler<RaiseRecontacts, int>
    {
        public async ValueTask<int> Handle(RaiseRecontacts command, CancellationToken cancellationToken)
        {
            var scope = work.Scope;
            var targets = options.CurrentValue;
            // Paused referrals are waiting on the referrer, not on us: their clock is stopped.
            var waiting = await work.Connection.QueryAsync<Waiting>(
                """
                SELECT t.id AS TaskId, t.referral_id AS ReferralId, t.queue AS Queue, t.status AS Status, r.organisation_id AS OrganisationId,
                       r.person_id AS PersonId, t.created_at AS CreatedAt, t.taken_at AS TakenAt, t.on_hold_since AS OnHoldSince,
                       t.paused_seconds AS PausedSeconds,
                       (SELECT MAX(rc.created_at) FROM recontact rc WHERE rc.triage_task_id = t.id) AS LastRecontactAt,
                       (SELECT COUNT(*) FROM recontact rc WHERE rc.triage_task_id = t.id AND rc.done_at IS NULL) AS OpenRecontacts
                FROM triage_task t JOIN referral r ON r.id = t.referral_id
                WHERE t.status IN ('requested', 'in-progress')
                """, transaction: work.Transaction);
            var raised = 0;
            var every = TimeSpan.FromMinutes(targets.TriagedWithinMinutes);
            foreach (var task in waiting)
            {
                var clock = TriageClock.Of(task.CreatedAt, task.TakenAt, task.OnHoldSince, task.PausedSeconds, scope.Now, targets);
                var due = clock.Breached && task.OpenRecontacts == 0
                    && (task.LastRecontactAt is null || scope.Now - task.LastRecontactAt >= every);
                if (!due)
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
}
