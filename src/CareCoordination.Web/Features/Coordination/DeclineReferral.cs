using CareCoordination.Auth;
using CareCoordination.Domain;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Coordination;

/// <summary>Says no, with a coded reason the reports can count and words the referrer can act on.</summary>
public static class DeclineReferral
{
    [AllowRoles(Roles.Coordinator, Roles.BedBureau)]
    public sealed record Command(long TaskId, string ReasonCode, string? Detail = null) : ICommand;

    public sealed class Validator : AbstractValidator<Command>
    {
        public Validator()
        {
            RuleFor(c => c.ReasonCode).Must(code => ReferralCodes.Has(ReferralCodes.DeclineReasons, code))
                .WithMessage("Choose why the referral is declined.");
            RuleFor(c => c.Detail).NotEmpty().When(c => c.ReasonCode == "other")
                .WithMessage("Say why the referral is declined.");
            RuleFor(c => c.Detail).MaximumLength(ReferralForm.LongText);
        }
    }

    public sealed class Handler(Work work) : ICommandHandler<Command>
    {
        public async ValueTask<Unit> Handle(Command command, CancellationToken cancellationToken)
        {
            var task = await TriageTasks.FindWorkingAsync(work, command.TaskId);
            var label = ReferralCodes.LabelOf(ReferralCodes.DeclineReasons, command.ReasonCode);
            var reason = string.IsNullOrWhiteSpace(command.Detail) ? label : $"{label}: {command.Detail.Trim()}";
            await TriageTasks.CloseAsync(work, task, "rejected", "task.rejected", $"declined: {command.ReasonCode}", reason);
            await ReferralNotes.TouchReferralAsync(work, task.Referral, "referral.declined", status: "declined", outcomeReason: reason);
            await Carers.CarerMessages.QueueAsync(work, task.ReferralId, task.OrganisationId, Carers.CarerMessages.Declined);
            return Unit.Value;
        }
    }
}
