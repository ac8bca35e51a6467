using CareCoordination.Pipeline;
using Dapper;

namespace CareCoordination.Features.Referrals;

/// <summary>Notes and the version bump every referral command makes: shared by the referrer's and the coordinator's commands.</summary>
public static class ReferralNotes
{
    public static Task AddAsync(Work work, long referralId, string kind, string text) =>
        work.Connection.ExecuteAsync(
            """
            INSERT INTO referral_note (referral_id, author_user_id, author_name, kind, text, at)
            VALUES (@referralId, @userId, @name, @kind, @text, @now)
            """,
            new { referralId, userId = work.Scope.Actor.UserId, name = work.Scope.Actor.Name, kind, text = text.Trim(), now = work.Scope.Now },
            work.Transaction);

    /// <summary>
    /// Moves the referral on, guarded by the version it was read at: if someone else changed it in between,
    /// nothing is written and the caller is told.
    /// </summary>
    public static async Task TouchReferralAsync(Work work, ReferralRow referral, string changeKind, string? status = null, string? outcomeReason = null)
    {
        var scope = work.Scope;
        await Fhir.FhirVersions.KeepSupersededAsync(work, "referral", referral.Id);
        var updated = await work.Connection.ExecuteAsync(
            """
            UPDATE referral SET status = COALESCE(@status, status), outcome_reason = COALESCE(@outcomeReason, outcome_reason),
                version = version + 1, updated_at = @now
            WHERE id = @Id AND version = @Version
            """, new { referral.Id, referral.Version, status, outcomeReason, now = scope.Now }, work.Transaction);
        if (updated == 0)
        {
            throw new Conflict("Someone else changed this referral a moment ago. Look at it again before you carry on.");
        }
        scope.RecordChange(changeKind, "referral", referral.Id, referral.OrganisationId, new { status = status ?? referral.Status });
        scope.Touch("referral", referral.Id, referral.PersonId);
    }
}
