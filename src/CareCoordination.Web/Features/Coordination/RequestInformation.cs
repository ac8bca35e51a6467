using CareCoordination.Auth;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Coordination;

/// <summary>
/// Asks the referrer a question. The referral waits with the coordinator still holding it, the triage
/// clock stops until the answer comes, and the referrer sees the question on their own screens.
/// </summary>
public static class RequestInformation
{
    [AllowRoles(Roles.Coordinator, Roles.BedBureau)]
    public sealed record Command(long TaskId, string Question) : ICommand;

    public sealed class Validator : AbstractValidator<Command>
    {
        public Validator() => RuleFor(c => c.Question).NotEmpty().WithMessage("Write the question for the referrer.").MaximumLength(ReferralForm.LongText);
    }

    public sealed class Handler(Work work) : ICommandHandler<Command>
    {
        public async ValueTask<Unit> Handle(Command command, CancellationToken cancellationToken)
        {
            var task = await TriageTasks.FindWorkingAsync(work, command.TaskId);
            await TriageTasks.UpdateAsync(work, task, "status = 'on-hold', on_hold_since = @Now");
            TriageTasks.RecordChange(work, task, "task.on-hold", "on-hold");
            await ReferralNotes.AddAsync(work, task.ReferralId, "information-request", command.Question);
            await ReferralNotes.TouchReferralAsync(work, task.Referral, "referral.information-requested", status: "awaiting-information");
            return Unit.Value;
        }
    }
}
