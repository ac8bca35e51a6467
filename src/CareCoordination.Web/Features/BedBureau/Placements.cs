using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using Dapper;

namespace CareCoordination.Features.BedBureau;

/// <summary>A bed placement with its referral, as admission, discharge and expiry read it.</summary>
public sealed record PlacementRow
{
    public long Id { get; init; }
    public long ReferralId { get; init; }
    public long? BedId { get; init; }
    public string Status { get; init; } = "";
    public DateTimeOffset? ReservedUntil { get; init; }
    public long OrganisationId { get; init; }
    public long PersonId { get; init; }
    public string ReferralStatus { get; init; } = "";
    public int ReferralVersion { get; init; }

    public ReferralRow Referral => new()
    {
        Id = ReferralId, PersonId = PersonId, OrganisationId = OrganisationId, Status = ReferralStatus, Version = ReferralVersion,
    };
}

public static class Placements
{
    public const string Select = """
        SELECT pl.id AS Id, pl.referral_id AS ReferralId, pl.bed_id AS BedId, pl.status AS Status, pl.reserved_until AS ReservedUntil,
               r.organisation_id AS OrganisationId, r.person_id AS PersonId, r.status AS ReferralStatus, r.version AS ReferralVersion
        FROM placement pl JOIN referral r ON r.id = pl.referral_id
        """;

    public static async Task<PlacementRow> FindBedPlacementAsync(Work work, long placementId) =>
        await work.Connection.QuerySingleOrDefaultAsync<PlacementRow>($"{Select} WHERE pl.id = @placementId AND pl.bed_id IS NOT NULL",
            new { placementId }, work.Transaction)
        ?? throw new Pipeline.NotFound($"Bed placement {placementId}");

    /// <summary>Moves the placement on only from the state it was read in: admission and expiry cannot both happen.</summary>
    public static async Task MoveAsync(Work work, PlacementRow placement, string from, string to, string changeKind, object? detail = null)
    {
        if (placement.Status != from)
        {
            throw new RuleBroken($"The placement is {placement.Status}, not {from}.");
        }
        var column = to == "active" ? "started_at" : "ended_at";
        var moved = await work.Connection.ExecuteAsync(
            $"UPDATE placement SET status = @to, {column} = @now WHERE id = @Id AND status = @from",
            new { to, now = work.Scope.Now, placement.Id, from }, work.Transaction);
        if (moved == 0)
        {
            throw new Conflict("Someone else changed this placement a moment ago. Look at it again.");
        }
        if (to == "active")
        {
            await ReferralFirsts.KeepAsync(work.Connection, work.Transaction, placement.ReferralId);
        }
        work.Scope.RecordChange(changeKind, "placement", placement.Id, placement.OrganisationId,
            new { referralId = placement.ReferralId, bedId = placement.BedId, status = to, detail });
        work.Scope.Touch("placement", placement.Id, placement.PersonId);
    }
}
