using CareCoordination.Auth;
using CareCoordination.Domain;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using Dapper;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Providers;

/// <summary>
/// A signed-in manager approves or refuses a placement with a provider under amber caution, saying what was agreed or
/// why not. Who decided and when are recorded from the sign-in, never typed; a question is decided once.
/// </summary>
public static class DecideCautionApproval
{
    [AllowRoles(Roles.Manager)]
    public sealed record Command(long ApprovalId, bool Approve, string Note) : ICommand;

    public sealed class Validator : AbstractValidator<Command>
    {
        public Validator() =>
            RuleFor(c => c.Note).NotEmpty().WithMessage("Say what was agreed, or why not.").MaximumLength(ReferralForm.LongText);
    }

    private sealed record Asked
    {
        public long Id { get; init; }
        public string Status { get; init; } = "";
        public long ReferralId { get; init; }
        public long ProviderId { get; init; }
        public long? ServiceId { get; init; }
        public long RequestedByUserId { get; init; }
        public string? DecidedBy { get; init; }
        public DateTimeOffset? DecidedAt { get; init; }
        public long OrganisationId { get; init; }
        public long PersonId { get; init; }
        public string ReferralStatus { get; init; } = "";
    }

    public sealed class Handler(Work work) : ICommandHandler<Command>
    {
        public async ValueTask<Unit> Handle(Command command, CancellationToken cancellationToken)
        {
            var (scope, connection, transaction) = (work.Scope, work.Connection, work.Transaction);
            var manager = scope.Actor.UserId ?? throw new AccessDenied("Only a signed-in manager decides an approval.");
            var asked = await connection.QuerySingleOrDefaultAsync<Asked>(
                """
                SELECT a.id AS Id, a.status AS Status, a.referral_id AS ReferralId, a.provider_id AS ProviderId, a.service_id AS ServiceId,
                       a.requested_by_user_id AS RequestedByUserId, a.decided_by_name AS DecidedBy, a.decided_at AS DecidedAt,
                       r.organisation_id AS OrganisationId, r.person_id AS PersonId, r.status AS ReferralStatus
                FROM caution_approval a JOIN referral r ON r.id = a.referral_id
                WHERE a.id = @ApprovalId
                """, new { command.ApprovalId }, transaction)
                ?? throw new NotFound($"Approval {command.ApprovalId}");
            if (asked.Status != "requested")
            {
                throw new Conflict($"{asked.DecidedBy} {asked.Status} this on {LondonTime.ToLocal(asked.DecidedAt!.Value):d MMM yyyy HH:mm}: it stands.");
            }
            if (!ReferralAccess.Open.Contains(asked.ReferralStatus))
            {
                throw new RuleBroken($"The referral is {asked.ReferralStatus} now: there is no placement left to approve.");
            }
            if (asked.RequestedByUserId == manager)
            {
                throw new RuleBroken("You asked for this approval: another manager decides it.");
            }
            var status = command.Approve ? "approved" : "refused";
            // Guarded on the status read: of two managers deciding at once, one decides and the other is told.
            var decided = await connection.ExecuteAsync(
                """
                UPDATE caution_approval SET status = @status, decided_by_user_id = @manager, decided_by_name = @Name, decided_at = @Now, decision_note = @Note
                WHERE id = @Id AND status = 'requested'
                """, new { status, manager, scope.Actor.Name, scope.Now, Note = command.Note.Trim(), asked.Id }, transaction);
            if (decided == 0)
            {
                throw new Conflict("Another manager decided this a moment ago. Look at it again.");
            }
            scope.RecordChange($"approval.{status}", "caution_approval", asked.Id, asked.OrganisationId,
                new { referralId = asked.ReferralId, providerId = asked.ProviderId, serviceId = asked.ServiceId, status });
            scope.Touch("referral", asked.ReferralId, asked.PersonId);
            return Unit.Value;
        }
    }
}
