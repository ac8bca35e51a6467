using CareCoordination.Auth;
using CareCoordination.Domain;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using Dapper;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Admin;

/// <summary>
/// Records a provider's CQC rating and the commissioners' caution. An amber or red caution says why, because
/// the bed bureau reads that note when it is about to place someone there (amber needs a manager's sign-off,
/// red stops new placements). Who changed it and why is kept in the change row.
/// </summary>
public static class ChangeProviderRating
{
    [AllowRoles(Roles.Manager, Roles.Admin)]
    public sealed record Command(long OrganisationId, string CqcRating, string Caution, string? CautionNote, string Reason) : ICommand;

    public sealed class Validator : AbstractValidator<Command>
    {
        public Validator()
        {
            RuleFor(c => c.CqcRating).Must(r => AdminCodes.CqcRatings.Has(r)).WithMessage("Choose the CQC rating, or not yet rated.");
            RuleFor(c => c.Caution).Must(c => AdminCodes.Cautions.Has(c)).WithMessage("Choose no caution, amber or red.");
            RuleFor(c => c.CautionNote).NotEmpty().When(c => c.Caution is "amber" or "red")
                .WithMessage("Say what the caution is and what it means for placements: the bed bureau reads this before placing anyone.");
            RuleFor(c => c.CautionNote).MaximumLength(ReferralForm.LongText);
            RuleFor(c => c.Reason).NotEmpty().WithMessage("Say why it changes: a CQC report, a quality visit, a safeguarding enquiry.")
                .MaximumLength(ReferralForm.LongText);
        }
    }

    private sealed record Provider
    {
        public string Name { get; init; } = "";
        public string? CqcRating { get; init; }
        public string Caution { get; init; } = "none";
        public string? CautionNote { get; init; }
    }

    public sealed class Handler(Work work, Store.Database database) : ICommandHandler<Command>
    {
        public async ValueTask<Unit> Handle(Command command, CancellationToken cancellationToken)
        {
            // A placement being made with this provider reads its caution under the same lock (ProviderCaution.RequireAsync).
            await database.LockAsync(work.Connection, work.Transaction, Providers.ProviderCaution.Lock(command.OrganisationId));
            var before = await work.Connection.QuerySingleOrDefaultAsync<Provider>(
                $"""
                SELECT o.name AS Name, o.cqc_rating AS CqcRating, o.caution AS Caution, o.caution_note AS CautionNote
                FROM organisation o WHERE o.id = @OrganisationId AND {AdminLookups.IsProvider}
                """, new { command.OrganisationId }, work.Transaction)
                ?? throw new NotFound($"Provider {command.OrganisationId}");
            // No caution, no note: an old note must not linger and be read as if it still applied.
            var note = command.Caution == "none" || string.IsNullOrWhiteSpace(command.CautionNote) ? null : command.CautionNote.Trim();
            var after = before with { CqcRating = command.CqcRating, Caution = command.Caution, CautionNote = note };
            if (after == before)
            {
                throw new RuleBroken($"{before.Name} already has that rating and caution: nothing to change.");
            }
            await work.Connection.ExecuteAsync(
                "UPDATE organisation SET cqc_rating = @CqcRating, caution = @Caution, caution_note = @note WHERE id = @OrganisationId",
                new { command.CqcRating, command.Caution, note, command.OrganisationId }, work.Transaction);
            work.Scope.Touch("organisation", command.OrganisationId);
            work.Scope.RecordChange("provider.rating-changed", "organisation", command.OrganisationId, null,
                new
                {
                    name = before.Name,
                    from = new { cqcRating = before.CqcRating, caution = before.Caution, cautionNote = before.CautionNote },
                    to = new { cqcRating = after.CqcRating, caution = after.Caution, cautionNote = after.CautionNote },
                    reason = command.Reason.Trim(),
                    by = work.Scope.Actor.Name,
                    role = work.Scope.Actor.Role,
                });
            return Unit.Value;
        }
    }
}
