using System.Data.Common;
using CareCoordination.Auth;
using CareCoordination.Pipeline;
using Dapper;

namespace CareCoordination.Features.Referrals;

/// <summary>The referral row every referral command starts from, found only if the caller may act on it.</summary>
public sealed record ReferralRow
{
    public long Id { get; init; }
    public long PersonId { get; init; }
    public long OrganisationId { get; init; }
    public string Status { get; init; } = "";
    public int Version { get; init; }
}

/// <summary>An open referral for the same person, shown before a second one is sent.</summary>
public sealed record OpenReferral
{
    public long Id { get; init; }
    public long OrganisationId { get; init; }
    public string Status { get; init; } = "";
    public string? Pathway { get; init; }
    public string Organisation { get; init; } = "";
    public DateTimeOffset? SubmittedAt { get; init; }
}

/// <summary>
/// A person's open referrals as the caller may know them. Coordination staff: every one, in full. A referrer or partner:
/// its own organisation's in full, and of any other organisation's only that one exists (Elsewhere), so that it does not
/// send a second referral by mistake, without learning who referred the person, when, or for what.
/// </summary>
public sealed record OpenReferrals(IReadOnlyList<OpenReferral> Visible, bool Elsewhere)
{
    public static OpenReferrals None { get; } = new([], false);

    public bool Any => Visible.Count > 0 || Elsewhere;

    public static OpenReferrals For(Actor actor, IReadOnlyList<OpenReferral> all) => ReferralAccess.SeesEveryOrganisation(actor)
        ? new OpenReferrals(all, false)
        : new OpenReferrals([.. all.Where(o => o.OrganisationId == actor.OrganisationId)], all.Any(o => o.OrganisationId != actor.OrganisationId));
}

public static class ReferralAccess
{
    /// <summary>Statuses in which a referral is still being worked: the ones a duplicate check and a cancel look at.</summary>
    public static IReadOnlyList<string> Open { get; } = ["submitted", "in-triage", "awaiting-information", "accepted", "redirected"];

    private static readonly string OpenList = Store.Sql.Literals(Open);

    /// <summary>
    /// A referrer or partner sees only its own organisation's referrals; another's is "not found", not
    /// "forbidden", so that its existence does not leak. Coordination staff see every referral.
    /// </summary>
    public static async Task<ReferralRow> FindAsync(DbConnection connection, DbTransaction? transaction, long referralId, Actor actor)
    {
        var row = await connection.QuerySingleOrDefaultAsync<ReferralRow>(
            """
            SELECT id AS Id, person_id AS PersonId, organisation_id AS OrganisationId, status AS Status, version AS Version
            FROM referral WHERE id = @referralId
            """, new { referralId }, transaction);
        if (row is null || !MaySee(actor, row.OrganisationId))
        {
            throw new NotFound($"Referral {referralId}");
        }
        return row;
    }

    public static bool MaySee(Actor actor, long organisationId) =>
        SeesEveryOrganisation(actor) || actor.OrganisationId == organisationId;

    /// <summary>Coordination staff and the system see every organisation's referrals; everyone else only their own's.</summary>
    public static bool SeesEveryOrganisation(Actor actor) =>
        actor.Kind == ActorKind.System || (actor.Kind == ActorKind.Staff && actor.Role is Roles.Coordinator or Roles.BedBureau or Roles.Manager);

    /// <summary>Every open referral for the person, whoever sent it: see OpenReferrals.For for what a caller may be shown.</summary>
    public static async Task<List<OpenReferral>> OpenReferralsAsync(DbConnection connection, DbTransaction? transaction, long personId) =>
        (await connection.QueryAsync<OpenReferral>(
            $"""
            SELECT r.id AS Id, r.organisation_id AS OrganisationId, r.status AS Status, r.pathway AS Pathway, o.name AS Organisation, r.submitted_at AS SubmittedAt
            FROM referral r JOIN organisation o ON o.id = r.organisation_id
            WHERE r.person_id = @personId AND r.status IN ({OpenList})
            ORDER BY r.submitted_at, r.id
            """, new { personId }, transaction)).ToList();
}
