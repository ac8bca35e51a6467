using CareCoordination.Auth;
using CareCoordination.Pipeline;
using Dapper;
using Mediator;

namespace CareCoordination.Features.Admin;

/// <summary>
/// Closes a hospital site (the form stops offering it, and a referral naming it is refused) or opens it again. Referrals
/// already made there keep it, so the returns for past periods still count them under it.
/// </summary>
public static class SetHospitalSiteActive
{
    [AllowRoles(Roles.Admin)]
    public sealed record Command(long Id, bool Active) : ICommand;

    public sealed class Handler(Work work) : ICommandHandler<Command>
    {
        public async ValueTask<Unit> Handle(Command command, CancellationToken cancellationToken)
        {
            var changed = await work.Connection.ExecuteAsync(
                "UPDATE hospital_site SET active = @Active WHERE id = @Id", new { command.Id, command.Active }, work.Transaction);
            if (changed == 0)
            {
                throw new NotFound($"Hospital site {command.Id}");
            }
            work.Scope.Touch("hospital_site", command.Id);
            return Unit.Value;
        }
    }
}
