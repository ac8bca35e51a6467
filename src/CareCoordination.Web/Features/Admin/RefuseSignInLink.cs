using CareCoordination.Auth;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using Dapper;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Admin;

/// <summary>
/// An administrator refuses a link request (not the person it claims to be, or not expected): that identity keeps
/// being turned away at sign-in, without asking again, unless an administrator approves the request after all.
/// </summary>
public static class RefuseSignInLink
{
    [AllowRoles(Roles.Admin)]
    public sealed record Command(long RequestId, string Reason) : ICommand;

    public sealed class Validator : AbstractValidator<Command>
    {
        public Validator()
        {
            RuleFor(c => c.RequestId).GreaterThan(0);
            RuleFor(c => c.Reason).NotEmpty().WithMessage("Say why the link is refused.").MaximumLength(ReferralForm.ShortText);
        }
    }

    private sealed record LinkRequest
    {
        public string Status { get; init; } = "";
        public string Issuer { get; init; } = "";
        public string Subject { get; init; } = "";
        public string Email { get; init; } = "";
        public long StaffUserId { get; init; }
    }

    public sealed class Handler(Work work) : ICommandHandler<Command>
    {
        public async ValueTask<Unit> Handle(Command command, CancellationToken cancellationToken)
        {
            var scope = work.Scope;
            var request = await work.Connection.QuerySingleOrDefaultAsync<LinkRequest>(
                """
                SELECT status AS Status, issuer AS Issuer, subject AS Subject, email AS Email, staff_user_id AS StaffUserId
                FROM sign_in_link_request WHERE id = @RequestId
                """, new { command.RequestId }, work.Transaction)
                ?? throw new NotFound($"Sign-in link request {command.RequestId}");
            if (request.Status != "pending")
            {
                throw new RuleBroken(request.Status == "approved"
                    ? "This request was approved already. Unlink the account to take the sign-in away."
                    : "This request was refused already.");
            }
            var reason = command.Reason.Trim();
            var refused = await work.Connection.ExecuteAsync(
                """
                UPDATE sign_in_link_request SET status = 'refused', decided_at = @Now, decided_by = @By, decision_reason = @reason
                WHERE id = @RequestId AND status = 'pending'
                """, new { scope.Now, By = scope.Actor.UserId, reason, command.RequestId }, work.Transaction);
            if (refused == 0)
            {
                var last = await AdminLookups.LastActorAsync(work, "sign_in_link_request", command.RequestId);
                throw new Conflict($"{last ?? "Someone"} decided this request a moment ago.");
            }
            scope.Touch("sign_in_link_request", command.RequestId);
            scope.Touch("staff_user", request.StaffUserId);
            scope.RecordChange("sign-in-link.refused", "sign_in_link_request", command.RequestId, null,
                new { issuer = request.Issuer, subject = request.Subject, email = request.Email, reason, by = scope.Actor.Name });
            return Unit.Value;
        }
    }
}
