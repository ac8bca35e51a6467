using CareCoordination.Auth;
using CareCoordination.Pipeline;
using Mediator;

namespace CareCoordination.Features.Coordination;

/// <summary>Puts a held referral back in the queue for anyone to take (end of shift, or it needs someone else).</summary>
public static class ReleaseReferral
{
    [AllowRoles(Roles.Coordinator, Roles.BedBureau)]
    public sealed record Command(long TaskId) : ICommand;

    public sealed class Handler(Work work) : ICommandHandler<Command>
    {
        public async ValueTask<Unit> Handle(Command command, CancellationToken cancellationToken)
        {
            var task = await TriageTasks.FindAsync(work, command.TaskId);
            TriageTasks.RequireHeldBy(task, work.Scope.Actor);
            // A paused referral keeps its pause; one being worked goes back to waiting.
            var status = task.Status == "in-progress" ? "requested" : task.Status;
            await TriageTasks.UpdateAsync(work, task, "owner_user_id = NULL, status = @Status", new { Status = status });
            await TriageTasks.KeepOwnerAsync(work.Connection, work.Transaction, task.Id);
            TriageTasks.RecordChange(work, task, "task.released", status);
            return Unit.Value;
        }
    }
}
