using System.Data.Common;
using Dapper;

namespace CareCoordination.Features.Referrals;

/// <summary>
/// A referral's first counted decision (when, what, in which queue) and its first service or bed start, kept on the
/// referral row (migration 0028) so that the year reports (waiting lists, equity, the scorecard, the decision pack) read
/// them from the referral through an index, instead of each referral's triage tasks and placements (issue 13, 1M referrals).
/// Worked out again from the tasks and placements by every write that closes a task or starts a placement, in its own
/// transaction: the earliest counts, so a later decision or start never moves them, and a rolled-back one never wrote them.
/// Migration 0028 filled them in for the rows before it with the same rule (MigrationTests checks they agree).
/// </summary>
public static class ReferralFirsts
{
    /// <summary>
    /// The decisions that count, over triage_task t: accepted (into a service, or a bed by the bed bureau) or declined, in
    /// either queue. A pass between the coordination centre and the bed bureau is not one, nor a task cancelled with its referral.
    /// </summary>
    public const string CountedDecision =
        "t.completed_at IS NOT NULL AND ((t.status = 'completed' AND t.decision LIKE 'accepted%') OR t.status = 'rejected')";

    // The earliest counted decision (of equal times, the task made first) and the earliest start of any placement.
    private static string Keep(string where) => $"""
        UPDATE referral SET
            (first_decided_at, first_decision, first_decision_queue) = (
                SELECT t.completed_at, t.decision, t.queue FROM triage_task t
                WHERE t.referral_id = referral.id AND {CountedDecision}
                ORDER BY t.completed_at, t.id LIMIT 1),
            first_started_at = (SELECT MIN(p.started_at) FROM placement p WHERE p.referral_id = referral.id AND p.started_at IS NOT NULL)
        WHERE {where}
        """;

    private static readonly string KeepOne = Keep("id = @referralId");

    /// <summary>Every write that closes a triage task or starts a placement calls this after its write, in its transaction.</summary>
    public static Task KeepAsync(DbConnection connection, DbTransaction? transaction, long referralId) =>
        connection.ExecuteAsync(KeepOne, new { referralId }, transaction);

    /// <summary>
    /// The same for the referrals from <paramref name="firstReferralId"/> on, in one statement: a store written in bulk
    /// (the bench's history) rather than through the commands.
    /// </summary>
    public static Task KeepFromAsync(DbConnection connection, DbTransaction? transaction, long firstReferralId, int timeoutSeconds = 30) =>
        connection.ExecuteAsync(Keep("id >= @firstReferralId"), new { firstReferralId }, transaction, commandTimeout: timeoutSeconds);
}
