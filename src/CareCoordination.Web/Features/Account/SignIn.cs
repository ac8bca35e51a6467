using System.Security.Claims;
using CareCoordination.Auth;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Account;

/// <summary>A member of staff signs in with a local account.</summary>
public static class SignIn
{
    /// <summary>
    /// Not a command: it changes nothing in the store, and its password check (PBKDF2, slow on purpose) must hold no
    /// write transaction, or a run of guesses queues every writer behind it. Every attempt is still audited, on a
    /// short connection of its own once the check is done.
    /// </summary>
    [AllowAnonymousMessage]
    public sealed record Request(string Username, string Password, string? ClientAddress) : IRequest<Result>, IAudited;

    /// <summary>Either a principal for the cookie, or a message for the person at the screen.</summary>
    public sealed record Result(ClaimsPrincipal? Principal, string? Refusal)
    {
        public bool Succeeded => Principal is not null;
    }

    public sealed class Validator : AbstractValidator<Request>
    {
        public Validator()
        {
            RuleFor(c => c.Username).NotEmpty().WithMessage("Enter your username.");
            RuleFor(c => c.Password).NotEmpty().WithMessage("Enter your password.");
        }
    }

    public sealed class Handler(Database database, Work work, SignInThrottle throttle, SecretChecks secrets) : IRequestHandler<Request, Result>
    {
        private const string WrongCredentials = "The username or password is not right. Check them and try again.";

        private string TooMany => $"Too many failed sign-ins. Wait {throttle.Window.TotalMinutes:0} minutes, then try again, or ask an administrator to check your account.";

        /// <summary>Longer than any username an administrator can give: no account to look up, nothing for the throttle to key on.</summary>
        private const int MaxUsernameLength = 200;

        public async ValueTask<Result> Handle(Request request, CancellationToken cancellationToken)
        {
            var scope = work.Scope;
            scope.AuditDetail = $"username {request.Username.Trim()}";
            if (request.Username.Length > MaxUsernameLength || request.Username.Any(char.IsControl))
            {
                scope.Outcome = "denied";
                return new Result(null, WrongCredentials);
            }
            if (throttle.IsLockedOut(request.Username, request.ClientAddress))
            {
                scope.Outcome = "denied";
                return new Result(null, TooMany);
            }

            StaffAccount? account;
            // The connection goes back to the pool before the password is checked.
            await using (var connection = await database.OpenAsync(cancellationToken))
            {
                account = await connection.QuerySingleOrDefaultAsync<StaffAccount>(
                    StaffAccount.Select + " WHERE u.username = @Username", new { Username = request.Username.Trim().ToLowerInvariant() });
            }
            // Checked against the throttle again once a check's turn comes, and counted before the next one's (SecretChecks), so
            // guesses sent all at once get no more tries than guesses sent in turn; a name with no account that may sign in is
            // checked against a decoy, as slowly as a wrong password.
            var mayUse = account is { Active: true, PasswordHash: { } hash } ? hash : null;
            var right = await secrets.VerifyThrottledAsync(mayUse ?? secrets.Decoy, request.Password,
                () => !throttle.IsLockedOut(request.Username, request.ClientAddress),
                () => throttle.RecordFailure(request.Username, request.ClientAddress), cancellationToken);
            if (right is null)
            {
                scope.Outcome = "denied";
                return new Result(null, TooMany);
            }
            if (right != true || mayUse is null || account is null)
            {
                scope.Outcome = "denied";
                return new Result(null, WrongCredentials);
            }
            scope.Touch("staff_user", account.Id);
            return new Result(account.ToPrincipal("local"), null);
        }
    }
}
