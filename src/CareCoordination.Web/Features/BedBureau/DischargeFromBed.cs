using CareCoordination.Auth;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using Mediator;

namespace CareCoordination.Features.BedBureau;

/// <summary>The person has left the bed: the placement ends, the referral completes, and the bed goes to cleaning.</summary>
public static class DischargeFromBed
{
    [AllowRoles(Roles.BedBureau)]
    public sealed record Command(long PlacementId) : ICommand;

    public sealed class Handler(Work work) : ICommandHandler<Command>
    {
        public async ValueTask<Unit> Handle(Command command, CancellationToken cancellationToken)
        {
            var placement = await Placements.FindBedPlacementAsync(work, command.PlacementId);
            await Placements.MoveAsync(work, placement, "active", "ended", "placement.ended");
            var bed = await Beds.FindAsync(work, placement.BedId!.Value);
            await Beds.MoveAsync(work, bed, "cleaning", "bed.cleaning");
            await ReferralNotes.TouchReferralAsync(work, placement.Referral, "referral.completed", status: "completed");
            return Unit.Value;
        }
    }
}
