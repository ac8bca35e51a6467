using CareCoordination.Auth;
using CareCoordination.Pipeline;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Referrals;

/// <summary>
/// What a referring system says next about a referral (a FHIR update message's newest note): the answer, while the coordination
/// centre waits for one; otherwise a note. Decided here, on the referral as this transaction reads it and guarded by its version
/// to the write, so that a question asked (or answered) while the message was on its way is neither missed nor answered twice.
/// </summary>
public static class AddReferrersUpdate
{
    /// <summary>ExpectedVersion, when given (the message's meta.versionId), refuses a referral changed since the sender read it.</summary>
    [AllowRoles(Roles.Referrer)]
    [AllowPartnerScope("system/ServiceRequest.u")]
    public sealed record Command(long ReferralId, string Text, int? ExpectedVersion = null) : ICommand;

    public sealed class Validator : AbstractValidator<Command>
    {
        public Validator() => RuleFor(c => c.Text).NotEmpty().WithMessage("Write the update first.").MaximumLength(ReferralForm.LongText);
    }

    public sealed class Handler(Work work, Fhir.ReceivedMessage received) : ICommandHandler<Command>
    {
        public async ValueTask<Unit> Handle(Command command, CancellationToken cancellationToken)
        {
            var referral = await ReferralAccess.FindAsync(work.Connection, work.Transaction, command.ReferralId, work.Scope.Actor);
            CheckReferralVersion.Require(referral, command.ExpectedVersion);
            // The audit trail says which it was: the command's name alone does not.
            if (referral.Status == "awaiting-information")
            {
                work.Scope.AuditDetail = "the answer to the coordination centre's question";
                await AnswerInformationRequest.AnswerAsync(work, referral, command.Text, command.ExpectedVersion);
            }
            else
            {
                work.Scope.AuditDetail = "a note";
                await AddReferralNote.NoteAsync(work, referral, command.Text, command.ExpectedVersion);
            }
            await received.KeepAsync(work, referral.Id);
            return Unit.Value;
        }
    }
}
