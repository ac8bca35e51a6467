using System.Security.Claims;
using CareCoordination.Auth;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Account;

/// <summary>
/// A member of staff comes back from the organisation's identity provider. The provider has proved who they
/// are there (its issuer and their subject); only an administrator's link from that pair to an active account
/// lets them in. Never a username or email match: a provider lets people choose or change those.
/// The first time an identity arrives, with an email the provider has verified and that matches exactly one
/// active unlinked account, a link request waits for an administrator (Features/Admin/ApproveSignInLink).
/// </summary>
public static class SignInWithIdentityProvider
{
    /// <summary>
    /// Sent only by the OpenID Connect handler (Auth/OpenIdConnectSignIn), after it has validated the id_token's
    /// signature, issuer, audience and nonce: never map it to an endpoint, or anyone could claim any subject.
    /// </summary>
    [AllowAnonymousMessage]
    public sealed record Command(string Issuer, string Subject, string? Email, bool EmailVerified, string? Name, string? ClientAddress) : ICommand<Result>;

    public enum Outcome { SignedIn, AwaitingApproval, Refused, LockedOut }

    /// <summary>A principal for the cookie when signed in; otherwise what to tell the person.</summary>
    public sealed record Result(Outcome Outcome, ClaimsPrincipal? Principal);

    public sealed class Validator : AbstractValidator<Command>
    {
        public Validator()
        {
            // OpenID Connect: a subject is at most 255 ASCII characters; an issuer is a URL.
            RuleFor(c => c.Issuer).NotEmpty().MaximumLength(2000);
            RuleFor(c => c.Subject).NotEmpty().MaximumLength(255);
            RuleFor(c => c.Email).MaximumLength(320);
        }
    }

    private sealed record LinkRequest
    {
        public long Id { get; init; }
        public string Status { get; init; } = "";
        public long StaffUserId { get; init; }
    }

    public sealed class Handler(Work work, Database database, SignInThrottle throttle) : ICommandHandler<Command, Result>
    {
        public async ValueTask<Result> Handle(Command command, CancellationToken cancellationToken)
        {
            var scope = work.Scope;
            var identity = $"identity provider {command.Issuer}, subject {command.Subject}"
                + (string.IsNullOrWhiteSpace(command.Email) ? "" : $", email {command.Email.Trim()}{(command.EmailVerified ? "" : " (not verified)")}");
            // Throttled as the password sign-in is: per identity, and per address (shared with password failures).
            var throttleKey = $"oidc {command.Issuer} {command.Subject}";
            Result Refuse(Outcome outcome, string why)
            {
                scope.Outcome = "denied";
                scope.AuditDetail = $"{identity}: {why}";
                if (outcome != Outcome.LockedOut)
                {
                    throttle.RecordFailure(throttleKey, command.ClientAddress);
                }
                return new Result(outcome, null);
            }

            // Audited once per attempt by the pipeline: the detail says who and why, and the row names the account it concerns, if any.
            scope.AuditDetail = identity;
            if (throttle.IsLockedOut(throttleKey, command.ClientAddress))
            {
                return Refuse(Outcome.LockedOut, "too many failed sign-ins");
            }

            var linked = await work.Connection.QuerySingleOrDefaultAsync<StaffAccount>(
                StaffAccount.Select + " WHERE u.oidc_issuer = @Issuer AND u.oidc_subject = @Subject",
                new { command.Issuer, command.Subject }, work.Transaction);
            if (linked is not null)
            {
                scope.Touch("staff_user", linked.Id);
                if (!linked.Active)
                {
                    return Refuse(Outcome.Refused, $"linked to {linked.Username}, which is deactivated");
                }
                scope.AuditDetail = $"{identity}: signed in as {linked.Username}";
                return new Result(Outcome.SignedIn, linked.ToPrincipal(AuthenticationSetup.OpenIdConnect));
            }

            // Two first sign-ins of one identity at once would both ask (SQLite already runs one writer at a time).
            await database.LockAsync(work.Connection, work.Transaction, $"sign-in-link {command.Issuer} {command.Subject}");
            var open = await work.Connection.QuerySingleOrDefaultAsync<LinkRequest>(
                "SELECT id AS Id, status AS Status, staff_user_id AS StaffUserId FROM sign_in_link_request WHERE issuer = @Issuer AND subject = @Subject AND status IN ('pending', 'refused')",
                new { command.Issuer, command.Subject }, work.Transaction);
            if (open is { Status: "refused" })
            {
                scope.Touch("staff_user", open.StaffUserId);
                return Refuse(Outcome.Refused, "not linked; an administrator refused its link request");
            }
            if (open is not null)
            {
                await work.Connection.ExecuteAsync(
                    "UPDATE sign_in_link_request SET attempts = attempts + 1, last_attempt_at = @Now WHERE id = @Id",
                    new { scope.Now, open.Id }, work.Transaction);
                scope.Touch("staff_user", open.StaffUserId);
                return Refuse(Outcome.AwaitingApproval, "not linked; its link request still awaits an administrator");
            }

            // An email the provider has not verified could be anyone's: it is never offered for linking.
            if (!command.EmailVerified || string.IsNullOrWhiteSpace(command.Email))
            {
                return Refuse(Outcome.Refused, "not linked, and the provider has not verified an email to offer for linking");
            }
            var email = command.Email.Trim();
            var candidates = (await work.Connection.QueryAsync<long>(
                "SELECT id FROM staff_user WHERE lower(email) = lower(@email) AND active AND oidc_subject IS NULL",
                new { email }, work.Transaction)).ToList();
            if (candidates.Count != 1)
            {
                return Refuse(Outcome.Refused, "not linked, and no single active unlinked account has this email");
            }

            var requestId = await work.Connection.ExecuteScalarAsync<long>(
                """
                INSERT INTO sign_in_link_request (issuer, subject, email, name, staff_user_id, status, requested_at, last_attempt_at)
                VALUES (@Issuer, @Subject, @email, @Name, @account, 'pending', @Now, @Now) RETURNING id
                """,
                new { command.Issuer, command.Subject, email, Name = Trimmed(command.Name), account = candidates[0], scope.Now }, work.Transaction);
            scope.Touch("staff_user", candidates[0]);
            scope.RecordChange("sign-in-link.requested", "sign_in_link_request", requestId, null,
                new { issuer = command.Issuer, subject = command.Subject, email, staffUserId = candidates[0] });
            return Refuse(Outcome.AwaitingApproval, "not linked; a link request now awaits an administrator");
        }

        private static string? Trimmed(string? text) => text?.Trim() is { Length: > 0 } name ? name[..Math.Min(name.Length, 200)] : null;
    }
}
