using CareCoordination.Auth;
using CareCoordination.Pipeline;
using Dapper;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Referrals;

/// <summary>
/// The referrer answers what the coordinator asked. The referral goes back to triage and the task's
/// paused clock runs again, with the coordinator who asked still holding it.
/// </summary>
public static class AnswerInformationRequest
{
    [AllowRoles(Roles.Referrer)]
    [AllowPartnerScope("system/ServiceRequest.u")]
    public sealed record Command(long ReferralId, string Answer) : ICommand;

    public sealed class Validator : AbstractValidator<Command>
    {
        public Validator() => RuleFor(c => c.Answer).NotEmpty().WithMessage("Write your answer first.").MaximumLength(ReferralForm.LongText);
    }

    private sealed record PausedTask
    {
        public long Id { get; init; }
        public string Queue { get; init; } = "";
        public DateTimeOffset? Since { get; init; }
        public long? Owner { get; init; }
    }

    public sealed class Handler(Work work, Fhir.ReceivedMessage received) : ICommandHandler<Command>
    {
        public async ValueTask<Unit> Handle(Command command, CancellationToken cancellationToken)
        {
            var referral = await ReferralAccess.FindAsync(work.Connection, work.Transaction, command.ReferralId, work.Scope.Actor);
            await AnswerAsync(work, referral, command.Answer, expectedVersion: null);
            await received.KeepAsync(work, referral.Id);
            return Unit.Value;
        }
    }

    /// <summary>The answer itself, on a referral read in this transaction (also AddReferrersUpdate's, when a question waits).</summary>
    internal static async Task AnswerAsync(Work work, ReferralRow referral, string answer, int? expectedVersion)
    {
        var scope = work.Scope;
        if (referral.Status != "awaiting-information")
        {
            throw new RuleBroken($"Nothing is waiting for an answer: the referral is {referral.Status}.");
        }
        await ReferralNotes.AddAsync(work, referral.Id, "information-response", answer);
        var onHold = await work.Connection.QueryAsync<PausedTask>(
            "SELECT id AS Id, queue AS Queue, on_hold_since AS Since, owner_user_id AS Owner FROM triage_task WHERE referral_id = @Id AND status = 'on-hold'", new { referral.Id }, work.Transaction);
        // Kept before anything below changes them: the referral's information needed is cleared before its version moves.
        await Fhir.FhirVersions.KeepSupersededAsync(work, "referral", referral.Id);
        await Fhir.FhirVersions.KeepSupersededAsync(work, "triage_task", [.. onHold.Select(t => t.Id)]);
        foreach (var (taskId, queue, since) in onHold.Select(t => (t.Id, t.Queue, t.Since)))
        {
            // The pause ends: its length comes off the triage clock.
            var paused = since is { } start ? (int)Math.Max(0, (scope.Now - start).TotalSeconds) : 0;
            // Released while paused: nobody holds it, so it goes back to waiting rather than "being worked". Decided by the row as
            // it is when written, not as read above: on PostgreSQL a take or a release committed in between (they move the task,
            // not the referral, so the referral's version check below would not see them) is what the statement finds.
            var status = await work.Connection.QuerySingleOrDefaultAsync<string>(
                """
                UPDATE triage_task SET status = CASE WHEN owner_user_id IS NULL THEN 'requested' ELSE 'in-progress' END,
                    on_hold_since = NULL, paused_seconds = paused_seconds + @paused, version = version + 1, updated_at = @now
                WHERE id = @taskId AND status = 'on-hold'
                RETURNING status
                """,
                new { taskId, paused, now = scope.Now }, work.Transaction);
            if (status is not null)
            {
                scope.RecordChange("task.resumed", "triage_task", taskId, referral.OrganisationId, new { referralId = referral.Id, queue, status, pausedSeconds = paused });
            }
        }
        // The referrer has answered what was asked, so what the referral lacked when it arrived is no longer flagged.
        await work.Connection.ExecuteAsync("UPDATE referral SET information_needed = NULL WHERE id = @Id", new { referral.Id }, work.Transaction);
        await ReferralNotes.TouchReferralAsync(work, referral, "referral.information-received", status: "in-triage", expectedVersion: expectedVersion);
    }
}
