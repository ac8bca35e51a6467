using CareCoordination.Auth;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Admin;

/// <summary>
/// An administrator links an identity at the organisation's identity provider (issuer and subject) to the staff
/// account its link request named: from then on that identity signs in as that account, and nothing else does.
/// The administrator should know it is the same person (they asked, in person or on the phone) before approving.
/// A refused request can be approved after all. Who approved, and when, is kept on the account and the request.
/// </summary>
public static class ApproveSignInLink
{
    [AllowRoles(Roles.Admin)]
    public sealed record Command(long RequestId) : ICommand;

    public sealed class Validator : AbstractValidator<Command>
    {
        public Validator()
        {
            RuleFor(c => c.RequestId).GreaterThan(0);
        }
    }

    private sealed record LinkRequest
    {
        public string Status { get; init; } = "";
        public string Issuer { get; init; } = "";
        public string Subject { get; init; } = "";
        public string Email { get; init; } = "";
        public long StaffUserId { get; init; }
        public string Username { get; init; } = "";
        public string DisplayName { get; init; } = "";
        public bool AccountActive { get; init; }
        public bool AccountLinked { get; init; }
    }

    public sealed class Handler(Work work, Database database) : ICommandHandler<Command>
    {
        public async ValueTask<Unit> Handle(Command command, CancellationToken cancellationToken)
        {
            var scope = work.Scope;
            var request = await work.Connection.QuerySingleOrDefaultAsync<LinkRequest>(
                """
                SELECT r.status AS Status, r.issuer AS Issuer, r.subject AS Subject, r.email AS Email, u.id AS StaffUserId,
                       u.username AS Username, u.display_name AS DisplayName, u.active AS AccountActive, u.oidc_subject IS NOT NULL AS AccountLinked
                FROM sign_in_link_request r JOIN staff_user u ON u.id = r.staff_user_id
                WHERE r.id = @RequestId
                """, new { command.RequestId }, work.Transaction)
                ?? throw new NotFound($"Sign-in link request {command.RequestId}");
            var account = $"{request.DisplayName} ({request.Username})";
            if (request.Status == "approved")
            {
                throw new RuleBroken($"This request was approved already: the identity is linked to {account}.");
            }
            if (!request.AccountActive)
            {
                throw new RuleBroken($"{account} is deactivated. Refuse the request, or reactivate the account first.");
            }
            if (request.AccountLinked)
            {
                throw new RuleBroken($"{account} is already linked to a sign-in. Unlink that first if this one replaces it, or refuse the request.");
            }
            var holder = await work.Connection.QuerySingleOrDefaultAsync<string>(
                "SELECT username FROM staff_user WHERE oidc_issuer = @Issuer AND oidc_subject = @Subject",
                new { request.Issuer, request.Subject }, work.Transaction);
            if (holder is not null)
            {
                throw new RuleBroken($"This identity is already linked to {holder}. Unlink it there first.");
            }

            int linked;
            try
            {
                linked = await work.Connection.ExecuteAsync(
                    """
                    UPDATE staff_user SET oidc_issuer = @Issuer, oidc_subject = @Subject, oidc_linked_at = @Now, oidc_linked_by = @By
                    WHERE id = @StaffUserId AND active AND oidc_subject IS NULL
                    """, new { request.Issuer, request.Subject, scope.Now, By = scope.Actor.UserId, request.StaffUserId }, work.Transaction);
            }
            catch (Exception e) when (database.IsUniqueViolation(e))
            {
                throw new Conflict("Someone linked this identity to another account a moment ago.");
            }
            var decided = await work.Connection.ExecuteAsync(
                """
                UPDATE sign_in_link_request SET status = 'approved', decided_at = @Now, decided_by = @By, decision_reason = NULL
                WHERE id = @RequestId AND status = @Status
                """, new { scope.Now, By = scope.Actor.UserId, command.RequestId, request.Status }, work.Transaction);
            if (linked == 0 || decided == 0)
            {
                var last = await AdminLookups.LastActorAsync(work, "sign_in_link_request", command.RequestId);
                throw new Conflict($"{last ?? "Someone"} changed this request or {account} a moment ago. Look again.");
            }

            scope.Touch("sign_in_link_request", command.RequestId);
            scope.Touch("staff_user", request.StaffUserId);
            var detail = new { issuer = request.Issuer, subject = request.Subject, email = request.Email, username = request.Username, by = scope.Actor.Name };
            scope.RecordChange("sign-in-link.approved", "sign_in_link_request", command.RequestId, null, detail);
            scope.RecordChange("staff.sign-in-linked", "staff_user", request.StaffUserId, null, detail);
            return Unit.Value;
        }
    }
}
