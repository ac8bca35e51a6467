using CareCoordination.Auth;
using CareCoordination.Pipeline;
using Dapper;
using Mediator;

namespace CareCoordination.Features.Referrals;

/// <summary>Throws away a draft that will not be sent.</summary>
public static class DiscardDraft
{
    [AllowRoles(Roles.Referrer)]
    public sealed record Command(long DraftId) : ICommand;

    public sealed class Handler(Work work) : ICommandHandler<Command>
    {
        public async ValueTask<Unit> Handle(Command command, CancellationToken cancellationToken)
        {
            var scope = work.Scope;
            var removed = await work.Connection.ExecuteAsync(
                "DELETE FROM referral_draft WHERE id = @DraftId AND organisation_id = @organisationId",
                new { command.DraftId, organisationId = scope.Actor.OrganisationId }, work.Transaction);
            if (removed == 0)
            {
                throw new NotFound($"Draft {command.DraftId}");
            }
            scope.RecordChange("draft.discarded", "referral_draft", command.DraftId, scope.Actor.OrganisationId);
            scope.Touch("referral_draft", command.DraftId);
            return Unit.Value;
        }
    }
}
