using CareCoordination.Auth;
using CareCoordination.Pipeline;
using Dapper;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Referrals;

/// <summary>Adds something the people working the referral should know, without changing where it is.</summary>
public static class AddReferralNote
{
    /// <summary>
    /// ExpectedVersion, when given (a FHIR update's meta.versionId), refuses a referral changed since the caller read it.
    /// NothingAsked: the caller took the text for a note because the referral was not waiting for information (a partner's
    /// update, whose answer to a question is AnswerInformationRequest); a question asked since then is refused here, so that
    /// an answer is never kept as a plain note with the task left on hold.
    /// </summary>
    [AllowRoles(Roles.Referrer, Roles.Coordinator, Roles.BedBureau)]
    [AllowPartnerScope("system/ServiceRequest.u")]
    public sealed record Command(long ReferralId, string Text, int? ExpectedVersion = null, bool NothingAsked = false) : ICommand;

    public sealed class Validator : AbstractValidator<Command>
    {
        public Validator() => RuleFor(c => c.Text).NotEmpty().WithMessage("Write the note first.").MaximumLength(ReferralForm.LongText);
    }

    public sealed class Handler(Work work, Fhir.ReceivedMessage received) : ICommandHandler<Command>
    {
        public async ValueTask<Unit> Handle(Command command, CancellationToken cancellationToken)
        {
            var scope = work.Scope;
            var referral = await ReferralAccess.FindAsync(work.Connection, work.Transaction, command.ReferralId, scope.Actor);
            if (command.ExpectedVersion is { } expected && expected != referral.Version)
            {
                throw CheckReferralVersion.Stale(referral.Version, expected);
            }
            if (referral.Status == "draft")
            {
                throw new RuleBroken("A draft has no notes: add it to the form.");
            }
            if (command.NothingAsked && referral.Status == "awaiting-information")
            {
                // Read here and guarded by the referral's version to the write: no question can land unseen after this.
                throw new Conflict("The coordination centre asked a question about this referral a moment ago. "
                    + "Read the referral and send your update again: it will be taken as the answer.");
            }
            await ReferralNotes.AddAsync(work, referral.Id, "note", command.Text);
            await ReferralNotes.TouchReferralAsync(work, referral, "referral.note-added", expectedVersion: command.ExpectedVersion);
            await received.KeepAsync(work, referral.Id);
            return Unit.Value;
        }
    }
}
