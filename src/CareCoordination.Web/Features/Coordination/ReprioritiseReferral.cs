using CareCoordination.Auth;
using CareCoordination.Domain;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Coordination;

/// <summary>
/// Moves a referral up or down the queue by changing the urgency the priority rule uses. Anyone in the
/// team may, holder or not; each change is logged with who and why.
/// </summary>
public static class ReprioritiseReferral
{
    [AllowRoles(Roles.Coordinator, Roles.BedBureau)]
    public sealed record Command(long TaskId, string Priority, string Reason) : ICommand;

    public sealed class Validator : AbstractValidator<Command>
    {
        public Validator()
        {
            RuleFor(c => c.Priority).Must(p => ReferralCodes.Has(ReferralCodes.Urgencies, p)).WithMessage("Choose routine, urgent or immediate.");
            RuleFor(c => c.Reason).NotEmpty().WithMessage("Say why the priority changes.").MaximumLength(ReferralForm.LongText);
        }
    }

    public sealed class Handler(Work work) : ICommandHandler<Command>
    {
        public async ValueTask<Unit> Handle(Command command, CancellationToken cancellationToken)
        {
            var task = await TriageTasks.FindAsync(work, command.TaskId);
            TriageTasks.RequireQueueOfCaller(task, work.Scope.Actor);
            TriageTasks.RequireOpen(task);
            var from = task.Priority ?? task.Urgency;
            if (from == command.Priority)
            {
                throw new RuleBroken($"The referral is already {ReferralCodes.LabelOf(ReferralCodes.Urgencies, from).ToLowerInvariant()}.");
            }
            var reason = command.Reason.Trim();
            await TriageTasks.UpdateAsync(work, task, "priority = @Priority", new { command.Priority });
            TriageTasks.RecordChange(work, task, "task.reprioritised", task.Status, new { from, to = command.Priority, reason });
            await ReferralNotes.AddAsync(work, task.ReferralId, "note",
                $"Priority {ReferralCodes.LabelOf(ReferralCodes.Urgencies, from).ToLowerInvariant()} → {ReferralCodes.LabelOf(ReferralCodes.Urgencies, command.Priority).ToLowerInvariant()}: {reason}");
            return Unit.Value;
        }
    }
}
