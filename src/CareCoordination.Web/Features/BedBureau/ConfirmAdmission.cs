using CareCoordination.Auth;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using Mediator;

namespace CareCoordination.Features.BedBureau;

/// <summary>The person has arrived: the placement starts, the bed is occupied, and the referral is placed.</summary>
public static class ConfirmAdmission
{
    [AllowRoles(Roles.BedBureau)]
    public sealed record Command(long PlacementId) : ICommand;

    public sealed class Handler(Work work) : ICommandHandler<Command>
    {
        public async ValueTask<Unit> Handle(Command command, CancellationToken cancellationToken)
        {
            var placement = await Placements.FindBedPlacementAsync(work, command.PlacementId);
            if (placement.Status == "reserved" && placement.ReservedUntil is { } until && until < work.Scope.Now)
            {
                throw new RuleBroken("The reservation has expired and the bed has gone back to the board. Reserve a bed again.");
            }
            await Placements.MoveAsync(work, placement, "reserved", "active", "placement.started");
            var bed = await Beds.FindAsync(work, placement.BedId!.Value);
            await Beds.MoveAsync(work, bed, "occupied", "bed.occupied", detail: new { referralId = placement.ReferralId });
            await ReferralNotes.TouchReferralAsync(work, placement.Referral, "referral.placed", status: "placed");
            await Carers.CarerMessages.QueueStartAsync(work, placement);
            // Admitted to the bed: a person who was in hospital has left it.
            await Discharges.Discharges.RecordFromPlacementAsync(work, placement.ReferralId, placement.OrganisationId);
            return Unit.Value;
        }
    }
}
