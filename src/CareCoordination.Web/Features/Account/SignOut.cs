using CareCoordination.Auth;
using CareCoordination.Pipeline;
using Dapper;
using Mediator;

namespace CareCoordination.Features.Account;

/// <summary>
/// A member of staff signs out, and every session of theirs ends with it: the account's session stamp moves on, so each
/// cookie signed with the old one is refused at its next check (Revocation), as are the open tabs and live connections it
/// made at their next recheck. Ending only this browser's cookie left the other tabs of a shared ward PC signed in as the
/// person who had signed out, for whoever sat down next, every command and audit row in that person's name.
/// </summary>
public static class SignOut
{
    [AllowRoles(Roles.Referrer, Roles.Coordinator, Roles.BedBureau, Roles.Manager, Roles.Admin)]
    public sealed record Command : ICommand;

    public sealed class Handler(Work work) : ICommandHandler<Command>
    {
        public async ValueTask<Unit> Handle(Command command, CancellationToken cancellationToken)
        {
            var actor = work.Scope.Actor;
            var userId = actor.UserId ?? throw new AccessDenied("Only a member of staff signs out.");
            // From the session's own stamp: a second sign-out of the same sessions (another tab's, just before) moves nothing more.
            await work.Connection.ExecuteAsync(
                "UPDATE staff_user SET session_stamp = session_stamp + 1 WHERE id = @userId AND session_stamp = @SessionStamp",
                new { userId, actor.SessionStamp }, work.Transaction);
            work.Scope.Touch("staff_user", userId);
            return Unit.Value;
        }
    }
}
