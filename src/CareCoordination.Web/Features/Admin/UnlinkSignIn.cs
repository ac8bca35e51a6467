using CareCoordination.Auth;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using Dapper;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Admin;

/// <summary>
/// An administrator takes an account's identity-provider sign-in away (a wrong link, a person who left the
/// organisation but keeps the account, a new identity replacing the old). The identity no longer signs in;
/// if it comes back it asks to be linked again. A session already open is not ended: deactivate the account for that.
/// </summary>
public static class UnlinkSignIn
{
    [AllowRoles(Roles.Admin)]
    public sealed record Command(long StaffUserId, string Reason) : ICommand;

    public sealed class Validator : AbstractValidator<Command>
    {
        public Validator()
        {
            RuleFor(c => c.StaffUserId).GreaterThan(0);
            RuleFor(c => c.Reason).NotEmpty().WithMessage("Say why the sign-in is unlinked.").MaximumLength(ReferralForm.ShortText);
        }
    }

    private sealed record Account
    {
        public string Username { get; init; } = "";
        public string DisplayName { get; init; } = "";
        public string? Issuer { get; init; }
        public string? Subject { get; init; }
    }

    public sealed class Handler(Work work) : ICommandHandler<Command>
    {
        public async ValueTask<Unit> Handle(Command command, CancellationToken cancellationToken)
        {
            var scope = work.Scope;
            var account = await work.Connection.QuerySingleOrDefaultAsync<Account>(
                "SELECT username AS Username, display_name AS DisplayName, oidc_issuer AS Issuer, oidc_subject AS Subject FROM staff_user WHERE id = @StaffUserId",
                new { command.StaffUserId }, work.Transaction)
                ?? throw new NotFound($"Staff account {command.StaffUserId}");
            if (account.Subject is null)
            {
                throw new RuleBroken($"{account.DisplayName} ({account.Username}) has no sign-in link to take away.");
            }
            var unlinked = await work.Connection.ExecuteAsync(
                """
                UPDATE staff_user SET oidc_issuer = NULL, oidc_subject = NULL, oidc_linked_at = NULL, oidc_linked_by = NULL
                WHERE id = @StaffUserId AND oidc_issuer = @Issuer AND oidc_subject = @Subject
                """, new { command.StaffUserId, account.Issuer, account.Subject }, work.Transaction);
            if (unlinked == 0)
            {
                var last = await AdminLookups.LastActorAsync(work, "staff_user", command.StaffUserId);
                throw new Conflict($"{last ?? "Someone"} changed the sign-in link of {account.DisplayName} a moment ago.");
            }
            scope.Touch("staff_user", command.StaffUserId);
            scope.RecordChange("staff.sign-in-unlinked", "staff_user", command.StaffUserId, null,
                new { issuer = account.Issuer, subject = account.Subject, username = account.Username, reason = command.Reason.Trim(), by = scope.Actor.Name });
            return Unit.Value;
        }
    }
}
