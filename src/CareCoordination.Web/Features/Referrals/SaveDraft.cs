using System.Text.Json;
using CareCoordination.Auth;
using CareCoordination.Pipeline;
using Dapper;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Referrals;

/// <summary>
/// Keeps the form as it stands, however incomplete, so a referrer called away loses nothing. A draft
/// is private to its author's organisation, and becomes a referral only when submitted.
/// </summary>
public static class SaveDraft
{
    /// <summary>
    /// Who saved the draft last, asked when a write at the version the form came from found no such version (SaveDraft,
    /// SubmitReferral, DiscardDraft): a colleague's later save, whose author the refusal names; null when the draft is gone.
    /// </summary>
    internal static Task<string?> SavedLastByAsync(Work work, long draftId, long? organisationId) =>
        work.Connection.ExecuteScalarAsync<string?>(
            "SELECT author_name FROM referral_draft WHERE id = @draftId AND organisation_id = @organisationId",
            new { draftId, organisationId }, work.Transaction);

    /// <summary>Version is the one the page loaded: saving over someone else's newer save is refused, not silently lost.</summary>
    [AllowRoles(Roles.Referrer)]
    public sealed record Command(long? DraftId, int? Version, ReferralForm Form) : ICommand<Result>;

    public sealed record Result(long DraftId, int Version);

    public sealed class Validator : AbstractValidator<Command>
    {
        public Validator(ReferralForm.TextLimits limits)
        {
            RuleFor(c => c.Form).SetValidator(limits);
            RuleFor(c => c.Version).NotNull().When(c => c.DraftId is not null).WithMessage("Say which version of the draft this saves over.");
        }
    }

    public sealed class Handler(Work work) : ICommandHandler<Command, Result>
    {
        public async ValueTask<Result> Handle(Command command, CancellationToken cancellationToken)
        {
            var scope = work.Scope;
            var organisationId = scope.Actor.OrganisationId ?? throw new AccessDenied("Only a member of a referring organisation can keep drafts.");
            var draft = new
            {
                command.DraftId,
                command.Version,
                OrganisationId = organisationId,
                AuthorUserId = scope.Actor.UserId,
                AuthorName = scope.Actor.Name,
                PersonLabel = command.Form.PersonLabel(),
                Form = JsonSerializer.Serialize(command.Form, JsonDefaults.Options),
                scope.Now,
            };
            if (command.DraftId is not { } draftId)
            {
                var id = await work.Connection.ExecuteScalarAsync<long>(
                    """
                    INSERT INTO referral_draft (organisation_id, author_user_id, author_name, person_label, form, version, created_at, updated_at)
                    VALUES (@OrganisationId, @AuthorUserId, @AuthorName, @PersonLabel, @Form, 1, @Now, @Now) RETURNING id
                    """, draft, work.Transaction);
                scope.RecordChange("draft.saved", "referral_draft", id, organisationId, new { version = 1 });
                scope.Touch("referral_draft", id);
                return new Result(id, 1);
            }

            var saved = await work.Connection.ExecuteAsync(
                """
                UPDATE referral_draft SET form = @Form, person_label = @PersonLabel, author_user_id = @AuthorUserId,
                    author_name = @AuthorName, version = version + 1, updated_at = @Now
                WHERE id = @DraftId AND organisation_id = @OrganisationId AND version = @Version
                """, draft, work.Transaction);
            if (saved == 0)
            {
                // This very save, landed already (pressed again after the store did not answer): its version, rather than a
                // refusal naming the referrer as the colleague who saved after them.
                if (await work.Connection.QueryFirstOrDefaultAsync<int?>(
                    """
                    SELECT version FROM referral_draft
                    WHERE id = @DraftId AND organisation_id = @OrganisationId AND version = @Version + 1 AND author_user_id = @AuthorUserId AND form = @Form
                    """, draft, work.Transaction) is { } landed)
                {
                    scope.Touch("referral_draft", draftId);
                    return new Result(draftId, landed);
                }
                throw await SavedLastByAsync(work, draftId, organisationId) is { } other
                    ? new Conflict($"{other} saved this draft after you opened it. Open it again to see their changes.")
                    : new NotFound($"Draft {draftId}");
            }
            var version = command.Version!.Value + 1;
            scope.RecordChange("draft.saved", "referral_draft", draftId, organisationId, new { version });
            scope.Touch("referral_draft", draftId);
            return new Result(draftId, version);
        }
    }
}
