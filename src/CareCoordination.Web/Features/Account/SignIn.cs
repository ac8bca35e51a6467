using System.Security.Claims;
using CareCoordination.Auth;
using CareCoordination.Pipeline;
using Dapper;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Account;

/// <summary>A member of staff signs in with a local account.</summary>
public static class SignIn
{
    [AllowAnonymousMessage]
    public sealed record Command(string Username, string Password, string? ClientAddress) : ICommand<Result>;

    /// <summary>Either a principal for the cookie, or a message for the person at the screen.</summary>
    public sealed record Result(ClaimsPrincipal? Principal, string? Refusal)
    {
        public bool Succeeded => Principal is not null;
    }

    public sealed class Validator : AbstractValidator<Command>
    {
        public Validator()
        {
            RuleFor(c => c.Username).NotEmpty().WithMessage("Enter your username.");
            RuleFor(c => c.Password).NotEmpty().WithMessage("Enter your password.");
        }
    }

    public sealed class Handler(Work work, SignInThrottle throttle) : ICommandHandler<Command, Result>
    {
        private const string WrongCredentials = "The username or password is not right. Check them and try again.";

        /// <summary>Longer than any username an administrator can give: no account to look up, nothing for the throttle to key on.</summary>
        private const int MaxUsernameLength = 200;

        public async ValueTask<Result> Handle(Command command, CancellationToken cancellationToken)
        {
            var scope = work.Scope;
            scope.AuditDetail = $"username {command.Username.Trim()}";
            if (command.Username.Length > MaxUsernameLength || command.Username.Any(char.IsControl))
            {
                scope.Outcome = "denied";
                return new Result(null, WrongCredentials);
            }
            if (throttle.IsLockedOut(command.Username, command.ClientAddress))
            {
                scope.Outcome = "denied";
                return new Result(null, $"Too many failed sign-ins. Wait {throttle.Window.TotalMinutes:0} minutes, then try again, or ask an administrator to check your account.");
            }

            var account = await work.Connection.QuerySingleOrDefaultAsync<StaffAccount>(
                StaffAccount.Select + " WHERE u.username = @Username",
                new { Username = command.Username.Trim().ToLowerInvariant() }, work.Transaction);
            if (account is null || !account.Active || !Passwords.Verify(account.PasswordHash, command.Password))
            {
                throttle.RecordFailure(command.Username, command.ClientAddress);
                scope.Outcome = "denied";
                return new Result(null, WrongCredentials);
            }
            scope.Touch("staff_user", account.Id);
            return new Result(account.ToPrincipal("local"), null);
        }
    }
}
