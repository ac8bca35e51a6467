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
    /// nothing is written and the caller is told. A caller that named the version it read (<paramref name="expectedVersion"/>,
    /// a FHIR If-Match or meta.versionId) is told its precondition failed (412), as the check before the write would have said.
    /// </summary>
    public static async Task TouchReferralAsync(Work work, ReferralRow referral, string changeKind, string? status = null, string? outcomeReason = null,
        int? expectedVersion = null)
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
            if (expectedVersion is { } expected)
            {
                // PostgreSQL: another writer's change committed after this command read the referral (SQLite's writers take turns).
                var now = await work.Connection.ExecuteScalarAsync<int>("SELECT version FROM referral WHERE id = @Id", new { referral.Id }, work.Transaction);
                throw CheckReferralVersion.Stale(now, expected);
            }
            throw new Conflict("Someone else changed this referral a moment ago. Look at it again before you carry on.");
        }
        scope.RecordChange(changeKind, "referral", referral.Id, referral.OrganisationId, new { status = status ?? referral.Status });
        scope.Touch("referral", referral.Id, referral.PersonId);
    }
}
