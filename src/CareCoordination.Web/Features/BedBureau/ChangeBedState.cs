using CareCoordination.Auth;
using CareCoordination.Domain;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.BedBureau;

/// <summary>The moves of a bed that no placement makes: cleaned, closed with a reason, reopened.</summary>
public static class ChangeBedState
{
    public enum Move { Cleaned, Close, Reopen }

    [AllowRoles(Roles.BedBureau)]
    public sealed record Command(long BedId, Move To, string? ReasonCode = null, string? Detail = null) : ICommand;

    public sealed class Validator : AbstractValidator<Command>
    {
        public Validator()
        {
            RuleFor(c => c.ReasonCode).Must(code => Beds.ClosureReasons.Has(code)).When(c => c.To == Move.Close)
                .WithMessage("Choose why the bed is closed.");
            RuleFor(c => c.Detail).NotEmpty().When(c => c.To == Move.Close && c.ReasonCode == "other")
                .WithMessage("Say why the bed is closed.");
            RuleFor(c => c.Detail).MaximumLength(ReferralForm.ShortText);
        }
    }

    public sealed class Handler(Work work) : ICommandHandler<Command>
    {
        public async ValueTask<Unit> Handle(Command command, CancellationToken cancellationToken)
        {
            var bed = await Beds.FindAsync(work, command.BedId);
            switch (command.To)
            {
                case Move.Cleaned when bed.Status != "cleaning":
                    throw new RuleBroken($"{bed.Place} is {Beds.StatusLabel(bed.Status).ToLowerInvariant()}, not waiting to be cleaned.");
                case Move.Cleaned:
                    await Beds.MoveAsync(work, bed, "available", "bed.available");
                    break;
                case Move.Close:
                    // The code and the detail are kept apart: the code goes to the capacity board and partners, the detail (which may
                    // name a patient) stays on the bed.
                    var detail = string.IsNullOrWhiteSpace(command.Detail) ? null : command.Detail.Trim();
                    await Beds.MoveAsync(work, bed, "closed", "bed.closed", closedReason: command.ReasonCode, closedDetail: detail);
                    break;
                case Move.Reopen when bed.Status != "closed":
                    throw new RuleBroken($"{bed.Place} is {Beds.StatusLabel(bed.Status).ToLowerInvariant()}, not closed.");
                case Move.Reopen:
                    await Beds.MoveAsync(work, bed, "available", "bed.reopened");
                    break;
            }
            return Unit.Value;
        }
    }
}
