using CareCoordination.Auth;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using Mediator;

namespace CareCoordination.Features.Coordination;

/// <summary>
/// Claims a waiting referral. Exactly one coordinator holds it: a second who tries at the same moment is
/// told who has it, and nothing of theirs is written.
/// </summary>
public static class TakeReferral
{
    [AllowRoles(Roles.Coordinator, Roles.BedBureau)]
    public sealed record Command(long TaskId) : ICommand;

    public sealed class Handler(Work work) : ICommandHandler<Command>
    {
        public async ValueTask<Unit> Handle(Command command, CancellationToken cancellationToken)
        {
            var actor = work.Scope.Actor;
            var task = await TriageTasks.FindAsync(work, command.TaskId);
            TriageTasks.RequireOpen(task);
            TriageTasks.RequireQueueOfCaller(task, actor);
            if (task.OwnerUserId is not null)
            {
                throw task.OwnerUserId == actor.UserId
                    ? new RuleBroken("You already hold this referral.")
                    : new Conflict($"{task.OwnerName} has already taken this referral.");
            }
            await TriageTasks.UpdateAsync(work, task,
                "owner_user_id = @Owner, status = CASE WHEN status = 'requested' THEN 'in-progress' ELSE status END, taken_at = COALESCE(taken_at, @Now)",
                new { Owner = actor.UserId });
            await TriageTasks.KeepOwnerAsync(work.Connection, work.Transaction, task.Id);
            var status = task.Status == "requested" ? "in-progress" : task.Status;
            TriageTasks.RecordChange(work, task, "task.taken", status, new { owner = actor.Name });
            // The first take starts triage; a referral already in triage (released, or back from the other team) stays there.
            if (task.ReferralStatus is "submitted" or "redirected")
            {
                await ReferralNotes.TouchReferralAsync(work, task.Referral, "referral.triage-started", status: "in-triage");
            }
            return Unit.Value;
        }
    }
}
