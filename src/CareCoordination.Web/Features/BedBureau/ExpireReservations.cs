using CareCoordination.Auth;
using CareCoordination.Features.Coordination;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using Dapper;
using Mediator;
using Microsoft.Extensions.Options;

namespace CareCoordination.Features.BedBureau;

/// <summary>
/// A reserved bed nobody took up goes back to the board, and its referral back to the bed bureau's queue
/// with a change that tells the bureau; a carer told the place had been agreed is told it is no longer held.
/// One reservation per command, each in its own transaction, so one that cannot be expired (someone admitted
/// the person that moment) never holds the others back. The system's timer sends it until it answers 0;
/// tests send it themselves.
/// </summary>
public static class ExpireReservations
{
    [AllowRoles(Roles.BedBureau)]
    public sealed record Command : ICommand<int>;

    public sealed class Handler(Work work) : ICommandHandler<Command, int>
    {
        public async ValueTask<int> Handle(Command command, CancellationToken cancellationToken)
        {
            var expired = (await work.Connection.QueryAsync<PlacementRow>(
                $"{Placements.Select} WHERE pl.status = 'reserved' AND pl.bed_id IS NOT NULL AND pl.reserved_until < @Now ORDER BY pl.reserved_until, pl.id LIMIT 1",
                new { work.Scope.Now }, work.Transaction)).ToList();
            foreach (var placement in expired)
            {
                await Placements.MoveAsync(work, placement, "reserved", "cancelled", "placement.expired", new { reason = "reservation expired" });
                var bed = await Beds.FindAsync(work, placement.BedId!.Value);
                if (bed.Status == "reserved")
                {
                    await Beds.MoveAsync(work, bed, "available", "bed.released", detail: new { reason = "reservation expired" });
                }
                if (placement.ReferralStatus == "accepted")
                {
                    var lastTask = await work.Connection.QuerySingleAsync<TaskRow>(
                        """
                        SELECT t.id AS Id, t.referral_id AS ReferralId, t.queue AS Queue, t.status AS Status, t.version AS Version,
                               t.priority AS Priority, t.created_at AS CreatedAt, r.organisation_id AS OrganisationId, r.person_id AS PersonId,
                               r.status AS ReferralStatus, r.version AS ReferralVersion, r.urgency AS Urgency
                        FROM triage_task t JOIN referral r ON r.id = t.referral_id
                        WHERE t.referral_id = @ReferralId ORDER BY t.id DESC LIMIT 1
                        """, new { placement.ReferralId }, work.Transaction);
                    await TriageTasks.OpenAsync(work, lastTask, "bed-bureau");
                    await ReferralNotes.AddAsync(work, placement.ReferralId, "note", "The reserved bed was not taken up in time and went back to the board: the referral is back in the bed bureau's queue.");
                    await ReferralNotes.TouchReferralAsync(work, placement.Referral, "referral.reservation-expired", status: "in-triage");
                    // The carer may have been told this place was agreed (ReserveBed): they are not left expecting it.
                    await Carers.CarerMessages.TellOfPlaceNoLongerHeldAsync(work, placement.ReferralId, placement.OrganisationId, bed.SiteName);
                }
            }
            return expired.Count;
        }
    }
}
