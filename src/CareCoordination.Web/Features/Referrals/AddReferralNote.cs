using CareCoordination.Auth;
using CareCoordination.Pipeline;
using Dapper;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Referrals;

/// <summary>Adds something the people working the referral should know, without changing where it is.</summary>
public static class AddReferralNote
{
    [AllowRoles(Roles.Referrer, Roles.Coordinator, Roles.BedBureau)]
    [AllowPartnerScope("system/ServiceRequest.u")]
    public sealed record Command(long ReferralId, string Text) : ICommand;

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
            await NoteAsync(work, referral, command.Text, expectedVersion: null);
            await received.KeepAsync(work, referral.Id);
            return Unit.Value;
        }
    }

    /// <summary>The note itself, on a referral read in this transaction (also AddReferrersUpdate's, when nothing is asked).</summary>
    internal static async Task NoteAsync(Work work, ReferralRow referral, string text, int? expectedVersion)
    {
        if (referral.Status == "draft")
        {
            throw new RuleBroken("A draft has no notes: add it to the form.");
        }
        await ReferralNotes.AddAsync(work, referral.Id, "note", text);
        await ReferralNotes.TouchReferralAsync(work, referral, "referral.note-added", expectedVersion: expectedVersion);
    }
}
