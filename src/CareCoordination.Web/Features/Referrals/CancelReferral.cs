using CareCoordination.Auth;
using CareCoordination.Pipeline;
using Dapper;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Referrals;

/// <summary>
/// Withdraws a referral that is no longer needed (readmitted, family arranged care, sent in error).
/// The open task closes, and a reserved service slot or bed is given back.
/// </summary>
public static class CancelReferral
{
    /// <summary>ExpectedVersion, when given (a FHIR update's If-Match), refuses a cancel of a referral changed since the caller read it.</summary>
    [AllowRoles(Roles.Referrer, Roles.Coordinator)]
    [AllowPartnerScope("system/ServiceRequest.u")]
    public sealed record Command(long ReferralId, string Reason, int? ExpectedVersion = null) : ICommand;

    public sealed class Validator : AbstractValidator<Command>
    {
        public Validator() => RuleFor(c => c.Reason).NotEmpty().WithMessage("Say why the referral is cancelled.").MaximumLength(ReferralForm.LongText);
    }

    private sealed record ReservedPlace
    {
        public long Id { get; init; }
        public long? BedId { get; init; }
        public long? ServiceId { get; init; }
        public int? HoursPerDay { get; init; }
        public string? CapacityOverride { get; init; }
    }

    public sealed class Handler(Work work, Fhir.ReceivedMessage received) : ICommandHandler<Command>
    {
        public async ValueTask<Unit> Handle(Command command, CancellationToken cancellationToken)
        {
            var scope = work.Scope;
            var (connection, transaction) = (work.Connection, work.Transaction);
            var referral = await ReferralAccess.FindAsync(connection, transaction, command.ReferralId, scope.Actor);
            CheckReferralVersion.Require(referral, command.ExpectedVersion);
            if (!ReferralAccess.Open.Contains(referral.Status))
            {
                throw new RuleBroken($"A referral that is {referral.Status} cannot be cancelled.");
            }
            var reason = command.Reason.Trim();
            var tasks = await connection.QueryAsync<(long Id, string Queue)>(
                "SELECT id, queue FROM triage_task WHERE referral_id = @Id AND status IN ('requested', 'received', 'accepted', 'ready', 'in-progress', 'on-hold')",
                new { referral.Id }, transaction);
            await Fhir.FhirVersions.KeepSupersededAsync(work, "triage_task", [.. tasks.Select(t => t.Id)]);
            foreach (var (taskId, queue) in tasks)
            {
                await connection.ExecuteAsync(
                    """
                    UPDATE triage_task SET status = 'cancelled', reason = @reason, version = version + 1, updated_at = @now, completed_at = @now
                    WHERE id = @taskId
                    """, new { taskId, reason, now = scope.Now }, transaction);
                scope.RecordChange("task.cancelled", "triage_task", taskId, referral.OrganisationId, new { referralId = referral.Id, queue, status = "cancelled" });
                await Coordination.WaitingWell.CloseDueRecontactsAsync(work, taskId, "the referral was cancelled.");
            }
            var placements = await connection.QueryAsync<ReservedPlace>(
                """
                SELECT id AS Id, bed_id AS BedId, service_id AS ServiceId, hours_per_day AS HoursPerDay, capacity_override AS CapacityOverride
                FROM placement WHERE referral_id = @Id AND status = 'reserved'
                """, new { referral.Id }, transaction);
            foreach (var place in placements)
            {
                await connection.ExecuteAsync("UPDATE placement SET status = 'cancelled', ended_at = @now WHERE id = @Id",
                    new { place.Id, now = scope.Now }, transaction);
                scope.RecordChange("placement.cancelled", "placement", place.Id, referral.OrganisationId,
                    new { referralId = referral.Id, bedId = place.BedId, serviceId = place.ServiceId, status = "cancelled" });
                if (place.BedId is { } bedId && await BedBureau.Beds.FindAsync(work, bedId) is { Status: "reserved" } bed)
                {
                    // The bed was held for this person only: it is free again at once. Refused as the referral's conflict, not the
                    // bed board's: the canceller (a partner's system too) knows the referral, not the bed or who moved it.
                    try
                    {
                        await BedBureau.Beds.MoveAsync(work, bed, "available", "bed.released", detail: new { reason = "referral cancelled" });
                    }
                    catch (Conflict)
                    {
                        throw new Conflict("The bed held for this referral changed a moment ago, as you cancelled it: nothing was cancelled. "
                            + "Read the referral again, then send the cancellation again.");
                    }
                }
                if (place.ServiceId is { } serviceId && place.CapacityOverride is null)
                {
                    // The slot (or hours) taken on acceptance goes back, never above the service's daily capacity.
                    await connection.ExecuteAsync(
                        """
                        UPDATE service SET available_today = CASE WHEN available_today + @units > capacity_per_day THEN capacity_per_day
                                                                  ELSE available_today + @units END,
                                           version = version + 1
                        WHERE id = @serviceId
                        """, new { units = place.HoursPerDay ?? 1, serviceId }, transaction);
                    var available = await connection.ExecuteScalarAsync<int>("SELECT available_today FROM service WHERE id = @serviceId", new { serviceId }, transaction);
                    scope.RecordChange("service.capacity-changed", "service", serviceId, null, new { availableToday = available, reason = "referral cancelled" });
                }
            }
            await ReferralNotes.TouchReferralAsync(work, referral, "referral.cancelled", status: "cancelled", outcomeReason: reason,
                expectedVersion: command.ExpectedVersion);
            await Carers.CarerMessages.QueueAsync(work, referral.Id, referral.OrganisationId, Carers.CarerMessages.Closed);
            await received.KeepAsync(work, referral.Id);
            return Unit.Value;
        }
    }
}
