using CareCoordination.Auth;
using CareCoordination.Features.BedBureau;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using Dapper;
using Mediator;

namespace CareCoordination.Features.Coordination;

/// <summary>
/// The service has started its support at home: the placement is active and the referral placed. Until
/// then the person may still be waiting in hospital, and the boards count them as not yet placed.
/// </summary>
public static class StartServicePlacement
{
    [AllowRoles(Roles.Coordinator)]
    public sealed record Command(long PlacementId) : ICommand;

    public sealed class Handler(Work work) : ICommandHandler<Command>
    {
        public async ValueTask<Unit> Handle(Command command, CancellationToken cancellationToken)
        {
            var placement = await work.Connection.QuerySingleOrDefaultAsync<PlacementRow>(
                $"{Placements.Select} WHERE pl.id = @PlacementId AND pl.service_id IS NOT NULL", new { command.PlacementId }, work.Transaction)
                ?? throw new Pipeline.NotFound($"Service placement {command.PlacementId}");
            await Placements.MoveAsync(work, placement, "reserved", "active", "placement.started");
            await ReferralNotes.TouchReferralAsync(work, placement.Referral, "referral.placed", status: "placed");
            await Carers.CarerMessages.QueueStartAsync(work, placement);
            // Support at home has started: a person who was in hospital has left it, unless someone recorded when already.
            await Discharges.Discharges.RecordFromPlacementAsync(work, placement.ReferralId, placement.OrganisationId);
            return Unit.Value;
        }
    }
}
