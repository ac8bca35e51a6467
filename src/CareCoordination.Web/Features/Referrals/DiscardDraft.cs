using CareCoordination.Auth;
using CareCoordination.Pipeline;
using Dapper;
using Mediator;

namespace CareCoordination.Features.Referrals;

/// <summary>
/// Throws away a draft that will not be sent (started in error, or for the wrong person): otherwise it stays in the whole
/// organisation's drafts, with that person's details, for good. Only the version the referrer has open: a colleague's later
/// save is theirs to keep, as SaveDraft and SubmitReferral keep it.
/// </summary>
public static class DiscardDraft
{
    /// <summary>Version is the one the page has open; PageKey the page's own, whose later save (its answer lost) it may discard.</summary>
    [AllowRoles(Roles.Referrer)]
    public sealed record Command(long DraftId, int Version, string? PageKey = null) : ICommand;

    public sealed class Handler(Work work) : ICommandHandler<Command>
    {
        public async ValueTask<Unit> Handle(Command command, CancellationToken cancellationToken)
        {
            var scope = work.Scope;
            var removed = await work.Connection.ExecuteAsync(
                $"DELETE FROM referral_draft WHERE id = @DraftId AND organisation_id = @organisationId AND {SaveDraft.AtVersionOrOwnPage}",
                new { command.DraftId, command.Version, command.PageKey, organisationId = scope.Actor.OrganisationId, AuthorUserId = scope.Actor.UserId }, work.Transaction);
            if (removed == 0)
            {
                throw await SaveDraft.SavedLastByAsync(work, command.DraftId, scope.Actor.OrganisationId) is { } other
                    ? new Conflict($"{other} saved this draft after you opened it, so it was not discarded. Open it again to see their changes.")
                    : new NotFound($"Draft {command.DraftId}");
            }
            scope.RecordChange("draft.discarded", "referral_draft", command.DraftId, scope.Actor.OrganisationId);
            scope.Touch("referral_draft", command.DraftId);
            return Unit.Value;
        }
    }
}
