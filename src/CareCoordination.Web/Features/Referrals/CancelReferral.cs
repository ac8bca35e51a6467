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
    [AllowRoles(Roles.Referrer, Roles.Coordinator)]
    public sealed record Command(long ReferralId, string Reason) : ICommand;

    public sealed class Validator : AbstractValidator<Command>
    {
        public Validator() => RuleFor(c => c.Reason).NotEmpty().WithMessage("Say why the referral is cancelled.").MaximumLength(ReferralForm.LongText);
    }

    public sealed class Handler(Work work) : ICommandHandler<Command>
    {
        public async ValueTask<Unit> Handle(Command command, CancellationToken cancellationToken)
        {
            var scope = work.Scope;
            var (connection, transaction) = (work.Connection, work.Transaction);
            var referral = await ReferralAccess.FindAsync(connection, transaction, command.ReferralId, scope.Actor);
            if (!ReferralAccess.Open.Contains(referral.Status))
            {
                throw new RuleBroken($"A referral that is {referral.Status} cannot be cancelled.");
            }
            var reason = command.Reason.Trim();
            var tasks = await connection.QueryAsync<(long Id, string Queue)>(
                "SELECT id, queue FROM triage_task WHERE referral_id = @Id AND status IN ('requested', 'received', 'accepted', 'ready', 'in-progress', 'on-hold')",
                new { referral.Id }, transaction);
            foreach (var (taskId, queue) in tasks)
            {
                await connection.ExecuteAsync(
                    """
                    UPDATE triage_task SET status = 'cancelled', reason = @reason, version = version + 1, updated_at = @now, completed_at = @now
                    WHERE id = @taskId
                    """, new { taskId, reason, now = scope.Now }, transaction);
                scope.RecordChange("task.cancelled", "triage_task", taskId, referral.OrganisationId, new { referralId = referral.Id, queue, status = "cancelled" });
            }
            var placements = await connection.QueryAsync<(long Id, long? BedId)>(
                "SELECT id, bed_id FROM placement WHERE referral_id = @Id AND status = 'reserved'", new { referral.Id }, transaction);
            foreach (var (placementId, bedId) in placements)
            {
                await connection.ExecuteAsync("UPDATE placement SET status = 'cancelled', ended_at = @now WHERE id = @placementId",
                    new { placementId, now = scope.Now }, transaction);
                scope.RecordChange("placement.cancelled", "placement", placementId, referral.OrganisationId, new { referralId = referral.Id, bedId, status = "cancelled" });
                if (bedId is { } bed)
                {
                    // The bed was held for this person only: it is free again at once.
                    await connection.ExecuteAsync(
                        "UPDATE bed SET status = 'available', version = version + 1, confirmed_at = @now WHERE id = @bed AND status = 'reserved'",
                        new { bed, now = scope.Now }, transaction);
                    scope.RecordChange("bed.released", "bed", bed, null, new { status = "available" });
                }
            }
            await ReferralNotes.TouchReferralAsync(work, referral, "referral.cancelled", status: "cancelled", outcomeReason: reason);
            return Unit.Value;
        }
    }
}
