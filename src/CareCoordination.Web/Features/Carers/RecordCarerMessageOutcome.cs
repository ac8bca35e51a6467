using CareCoordination.Auth;
using CareCoordination.Pipeline;
using Dapper;
using Mediator;
using Microsoft.Extensions.Options;

namespace CareCoordination.Features.Carers;

/// <summary>
/// What became of one attempt to send a carer's message, recorded on the referral's timeline and in the audit trail (an
/// e-mail to a carer is a disclosure). Only the claim the sender took counts: a node whose claim ran out, and was taken
/// over, records nothing. A failure that may pass (the server is down) is tried again after a back-off that doubles;
/// one the server refuses for good, or the last allowed attempt, fails the message.
/// </summary>
public static class RecordCarerMessageOutcome
{
    public enum Outcome { Sent, Failed, NotSent }

    /// <summary>Sent by the system's sender; a coordinator's role is named only because every message must name one.</summary>
    [AllowRoles(Roles.Coordinator)]
    public sealed record Command(long MessageId, string Claim, Outcome Result, string? Error = null, bool Permanent = false,
        string? SentTo = null, string? Subject = null, string? Body = null) : ICommand<string?>;

    private sealed record Row
    {
        public long ReferralId { get; init; }
        public long OrganisationId { get; init; }
        public long PersonId { get; init; }
        public string Kind { get; init; } = "";
        public int Attempts { get; init; }
    }

    /// <summary>Answers the status the message now has, or null when the claim was no longer this sender's.</summary>
    public sealed class Handler(Work work, IOptionsMonitor<CarerMessageSettings> settings) : ICommandHandler<Command, string?>
    {
        public async ValueTask<string?> Handle(Command command, CancellationToken cancellationToken)
        {
            var scope = work.Scope;
            var row = await work.Connection.QuerySingleOrDefaultAsync<Row>(
                """
                SELECT m.referral_id AS ReferralId, m.organisation_id AS OrganisationId, r.person_id AS PersonId, m.kind AS Kind, m.attempts AS Attempts
                FROM carer_message m JOIN referral r ON r.id = m.referral_id
                WHERE m.id = @MessageId AND m.status = 'queued' AND m.claimed_by = @Claim
                """, command, work.Transaction);
            if (row is null)
            {
                return null;
            }
            var options = settings.CurrentValue;
            var attempts = command.Result == Outcome.NotSent ? row.Attempts : row.Attempts + 1;
            var retry = command.Result == Outcome.Failed && !command.Permanent && attempts < options.MaxAttempts;
            var status = command.Result switch
            {
                Outcome.Sent => "sent",
                Outcome.NotSent => "not-sent",
                _ => retry ? "queued" : "failed",
            };
            var next = retry
                ? scope.Now.AddSeconds(Math.Min(options.RetryMaxSeconds, options.RetryFirstSeconds * Math.Pow(2, Math.Min(attempts - 1, 30))))
                : scope.Now;
            await work.Connection.ExecuteAsync(
                """
                UPDATE carer_message SET status = @status, attempts = @attempts, last_error = @Error, next_attempt_at = @next,
                    claimed_by = NULL, claimed_until = NULL, sent_to = @SentTo, subject = @Subject, body = @Body,
                    sent_at = @sentAt, updated_at = @now
                WHERE id = @MessageId
                """,
                new
                {
                    status, attempts, command.Error, next, command.SentTo, command.Subject, command.Body,
                    sentAt = command.Result == Outcome.Sent ? scope.Now : (DateTimeOffset?)null, now = scope.Now, command.MessageId,
                }, work.Transaction);

            var about = CarerMessages.About(row.Kind);
            var (kind, detail) = (command.Result, retry) switch
            {
                (Outcome.Sent, _) => ("carer-message.sent", $"{about}, to {command.SentTo}"),
                (Outcome.NotSent, _) => ("carer-message.not-sent", $"{about}: {command.Error}"),
                (_, true) => ("carer-message.retrying", $"{about}, attempt {attempts}: {command.Error} Trying again at {Referrals.ReferralText.Time(next)}."),
                _ => ("carer-message.failed", $"{about}, after {attempts} {(attempts == 1 ? "attempt" : "attempts")}: {command.Error}"),
            };
            scope.RecordChange(kind, "carer_message", command.MessageId, row.OrganisationId, new { referralId = row.ReferralId, status, attempts, detail });
            scope.Touch("referral", row.ReferralId, row.PersonId);
            return status;
        }
    }
}
