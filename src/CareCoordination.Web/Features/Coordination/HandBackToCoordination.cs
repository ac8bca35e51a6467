using CareCoordination.Auth;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Coordination;

/// <summary>
/// The bed bureau hands a referral back when home is possible after all. Counted as "supported at home
/// despite a bed request" when the coordination centre then accepts it into a service.
/// </summary>
public static class HandBackToCoordination
{
    [AllowRoles(Roles.BedBureau)]
    public sealed record Command(long TaskId, string Reason) : ICommand;

    public sealed class Validator : AbstractValidator<Command>
    {
        public Validator() => RuleFor(c => c.Reason)
            .Must(reason => reason?.Trim().Length >= 10).WithMessage("Say why a home-first service is possible after all.")
            .MaximumLength(ReferralForm.LongText);
    }

    public sealed class Handler(Work work) : ICommandHandler<Command>
    {
        public async ValueTask<Unit> Handle(Command command, CancellationToken cancellationToken)
        {
            var task = await TriageTasks.FindWorkingAsync(work, command.TaskId);
            var reason = command.Reason.Trim();
            await TriageTasks.PassToAsync(work, task, "coordination", "returned to coordination: home first is possible", reason, $"Handed back by the bed bureau: {reason}");
            return Unit.Value;
        }
    }
}
