using CareCoordination.Auth;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using Dapper;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Coordination;

/// <summary>Passes a held referral to a named colleague in the same team, with a note of why if there is one.</summary>
public static class HandReferral
{
    [AllowRoles(Roles.Coordinator, Roles.BedBureau)]
    public sealed record Command(long TaskId, long ToUserId, string? Note = null) : ICommand;

    public sealed class Validator : AbstractValidator<Command>
    {
        public Validator()
        {
            RuleFor(c => c.ToUserId).GreaterThan(0).WithMessage("Choose the colleague to hand it to.");
            RuleFor(c => c.Note).MaximumLength(ReferralForm.LongText);
        }
    }

    public sealed class Handler(Work work) : ICommandHandler<Command>
    {
        public async ValueTask<Unit> Handle(Command command, CancellationToken cancellationToken)
        {
            var actor = work.Scope.Actor;
            var task = await TriageTasks.FindAsync(work, command.TaskId);
            TriageTasks.RequireHeldBy(task, actor);
            if (command.ToUserId == actor.UserId)
            {
                throw new RuleBroken("You already hold this referral.");
            }
            var colleague = await work.Connection.QuerySingleOrDefaultAsync<(string Name, string Role, bool Active)>(
                "SELECT display_name, role, active FROM staff_user WHERE id = @ToUserId", new { command.ToUserId }, work.Transaction);
            if (colleague.Name is null || !colleague.Active)
            {
                throw new RuleBroken("That colleague is not an active member of staff.");
            }
            if (TriageTasks.QueueOf(colleague.Role) != task.Queue || colleague.Role is not (Roles.Coordinator or Roles.BedBureau))
            {
                throw new RuleBroken($"{colleague.Name} does not work {TriageTasks.QueueName(task.Queue)}'s queue.");
            }
            await TriageTasks.UpdateAsync(work, task, "owner_user_id = @To", new { To = command.ToUserId });
            await TriageTasks.KeepOwnerAsync(work.Connection, work.Transaction, task.Id);
            TriageTasks.RecordChange(work, task, "task.handed", task.Status, new { from = actor.Name, to = colleague.Name });
            if (!string.IsNullOrWhiteSpace(command.Note))
            {
                await ReferralNotes.AddAsync(work, task.ReferralId, "note", $"Handed to {colleague.Name}: {command.Note.Trim()}");
            }
            return Unit.Value;
        }
    }
}
