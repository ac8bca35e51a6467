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

    /// <summary>
    /// Which saved draft a page may write over, save, send or discard (@Version, @PageKey, @AuthorUserId): the version it
    /// loaded, or its own later save whose answer was lost (its key and its author); never a colleague's later save.
    /// </summary>
    internal const string AtVersionOrOwnPage = "(version = @Version OR (page_key = @PageKey AND author_user_id = @AuthorUserId))";

    /// <summary>
    /// Version is the one the page loaded: saving over someone else's newer save is refused, not silently lost. PageKey is
    /// the form page's own key (born with it, as its referral's idempotency key is): a save of this page whose answer was
    /// lost is the page's own, so its next save goes over it, and a new draft saved again is that draft. Without one, a
    /// lost answer's draft is found only by opening the drafts.
    /// </summary>
    [AllowRoles(Roles.Referrer)]
    public sealed record Command(long? DraftId, int? Version, ReferralForm Form, string? PageKey = null) : ICommand<Result>;

    public sealed record Result(long DraftId, int Version);

    public sealed class Validator : AbstractValidator<Command>
    {
        public Validator(ReferralForm.TextLimits limits)
        {
            RuleFor(c => c.Form).SetValidator(limits);
            RuleFor(c => c.Version).NotNull().When(c => c.DraftId is not null).WithMessage("Say which version of the draft this saves over.");
            // Blank, it would be one key for all of an author's new forms, and merge their drafts.
            RuleFor(c => c.PageKey).NotEmpty().MaximumLength(100).When(c => c.PageKey is not null);
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
                command.PageKey,
                scope.Now,
            };
            if (command.DraftId is not { } draftId)
            {
                // A new draft saved again from its page (the first save's answer lost) is that draft, moved on: one draft.
                var made = (await work.Connection.QueryAsync<(long Id, int Version)>(
                    """
                    INSERT INTO referral_draft (organisation_id, author_user_id, author_name, person_label, form, version, created_at, updated_at, page_key)
                    VALUES (@OrganisationId, @AuthorUserId, @AuthorName, @PersonLabel, @Form, 1, @Now, @Now, @PageKey)
                    ON CONFLICT (organisation_id, page_key) DO UPDATE SET form = excluded.form, person_label = excluded.person_label,
                        version = referral_draft.version + 1, updated_at = excluded.updated_at
                    WHERE referral_draft.author_user_id = excluded.author_user_id
                    RETURNING id, version
                    """, draft, work.Transaction)).ToList() is [var one] ? one
                    // Only with a page's key another member of staff sent: the key is never shown.
                    : throw new Conflict("This page's draft was saved by someone else. Open it from your organisation's drafts.");
                scope.RecordChange("draft.saved", "referral_draft", made.Id, organisationId, new { version = made.Version });
                scope.Touch("referral_draft", made.Id);
                return new Result(made.Id, made.Version);
            }

            // At the version the page loaded, or over the page's own later save (its answer lost), never over a colleague's.
            var saved = await work.Connection.QuerySingleOrDefaultAsync<int?>(
                $"""
                UPDATE referral_draft SET form = @Form, person_label = @PersonLabel, author_user_id = @AuthorUserId,
                    author_name = @AuthorName, version = version + 1, updated_at = @Now, page_key = @PageKey
                WHERE id = @DraftId AND organisation_id = @OrganisationId
                    AND {AtVersionOrOwnPage}
                RETURNING version
                """, draft, work.Transaction);
            if (saved is not { } version)
            {
                throw await SavedLastByAsync(work, draftId, organisationId) is { } other
                    ? new Conflict($"{other} saved this draft after you opened it. Open it again to see their changes.")
                    : new NotFound($"Draft {draftId}");
            }
            scope.RecordChange("draft.saved", "referral_draft", draftId, organisationId, new { version });
            scope.Touch("referral_draft", draftId);
            return new Result(draftId, version);
        }
    }
}
