using System.Data.Common;
using CareCoordination.Domain;
using CareCoordination.Pipeline;
using Dapper;

namespace CareCoordination.Features.Discharges;

/// <summary>
/// What the discharge returns need recorded (issue 13), shared by the slices that record it: the pathway intended at triage,
/// and the discharge with its pathway and destination, whether a person records it or a placement starting implies it.
/// </summary>
public static class Discharges
{
    /// <summary>The national discharge-to-assess pathways a discharge is counted under (step-up is not a discharge).</summary>
    public static IReadOnlyList<Code> Pathways { get; } = [.. ReferralCodes.Pathways.Where(p => p.Value != "step-up")];

    /// <summary>The sitrep's destination subtypes.</summary>
    public static IReadOnlyList<Code> Destinations { get; } =
    [
        new("home", "Home", "The person's usual place of residence"),
        new("temporary-accommodation", "Temporary accommodation"),
        new("hospice-at-home", "Hospice at home"),
        new("care-home", "Care home"),
        new("community-hospital", "Community hospital or rehabilitation bed"),
        new("designated-setting", "Designated setting"),
    ];

    /// <summary>Whether the care at the destination is new, restarted, or a return to the same level as before admission.</summary>
    public static IReadOnlyList<Code> CareLevels { get; } =
    [
        new("new", "New care or support"),
        new("restart", "Care restarted"),
        new("return-to-same-level", "Return to the same level of care as before admission"),
    ];

    /// <summary>Where the discharge was recorded from (referral.discharge_recorded_from).</summary>
    public static string RecordedFromWords(string? from) => from switch
    {
        "referrer" => "the referrer",
        "coordination" => "the coordination centre or bed bureau",
        "placement" => "the placement starting",
        "partner" => "the referring organisation's system (FHIR)",
        _ => "",
    };

    /// <summary>
    /// The pathway intended, from the coordination centre's decision (documented in docs/coordination.md): accepted into the
    /// voluntary sector is pathway 0 (home, no new statutory support); into reablement, home care or therapy, pathway 1.
    /// </summary>
    public static string IntendedForService(string serviceKind) => serviceKind == "voluntary-sector" ? "0" : "1";

    /// <summary>Passed to the bed bureau: a long-term care bed (pathway 3) when that is what was asked for, else a short-term bed (pathway 2).</summary>
    public static string IntendedForBed(string askedFor) => askedFor == "3" ? "3" : "2";

    /// <summary>The latest triage decision states the intention: a hand-back and a new decision replace it.</summary>
    public static Task SetIntendedAsync(Work work, long referralId, string pathway) =>
        work.Connection.ExecuteAsync("UPDATE referral SET pathway_intended = @pathway WHERE id = @referralId",
            new { pathway, referralId }, work.Transaction);

    /// <summary>What a discharge defaults to, from the placement the person left hospital for.</summary>
    public sealed record Defaults(string? Pathway, string? Destination, string? CareLevel)
    {
        public static Defaults None { get; } = new(null, null, null);
    }

    private sealed record PlacementPlace
    {
        public string? ServiceKind { get; init; }
        public string? SiteKind { get; init; }
        public string? PathwayIntended { get; init; }
        public string AskedFor { get; init; } = "";
    }

    /// <summary>
    /// From the latest placement that is not cancelled: a service means home (pathway 0 for the voluntary sector, else 1); a bed
    /// means a care home or, for a community hospital or step-down unit, a rehabilitation bed, on the pathway intended (else 2,
    /// or 3 when a long-term bed was asked for). Care there is new. Without a placement, only the pathway intended is known.
    /// </summary>
    public static async Task<Defaults> FromPlacementAsync(DbConnection connection, DbTransaction? transaction, long referralId)
    {
        var place = await connection.QuerySingleOrDefaultAsync<PlacementPlace>(
            """
            SELECT s.kind AS ServiceKind, st.kind AS SiteKind, r.pathway_intended AS PathwayIntended, r.pathway AS AskedFor
            FROM referral r
            LEFT JOIN placement pl ON pl.id = (SELECT MAX(id) FROM placement WHERE referral_id = r.id AND status <> 'cancelled')
            LEFT JOIN service s ON s.id = pl.service_id
            LEFT JOIN bed b ON b.id = pl.bed_id
            LEFT JOIN ward w ON w.id = b.ward_id
            LEFT JOIN site st ON st.id = w.site_id
            WHERE r.id = @referralId
            """, new { referralId }, transaction);
        if (place is null)
        {
            return Defaults.None;
        }
        if (place.ServiceKind is { } kind)
        {
            return new Defaults(IntendedForService(kind), "home", "new");
        }
        if (place.SiteKind is { } site)
        {
            var pathway = place.PathwayIntended is "2" or "3" ? place.PathwayIntended : IntendedForBed(place.AskedFor);
            return new Defaults(pathway, site == "care-home" ? "care-home" : "community-hospital", "new");
        }
        return new Defaults(place.PathwayIntended, null, null);
    }

    private sealed record DischargeState
    {
        public string Source { get; init; } = "";
        public DateTimeOffset? DischargedAt { get; init; }
    }

    /// <summary>
    /// A placement has started (a bed admission confirmed, a service's support started): a person who was in hospital has left
    /// it, now. Recorded as from the placement, with the placement's defaults, unless a discharge is recorded already (whoever
    /// recorded it knew better). The open delay reason ends with the discharge.
    /// </summary>
    public static async Task RecordFromPlacementAsync(Work work, long referralId, long? organisationId)
    {
        var (connection, transaction, now) = (work.Connection, work.Transaction, work.Scope.Now);
        var state = await connection.QuerySingleAsync<DischargeState>(
            "SELECT source AS Source, discharged_at AS DischargedAt FROM referral WHERE id = @referralId", new { referralId }, transaction);
        if (!ReferralCodes.IsHospital(state.Source) || state.DischargedAt is not null)
        {
            return;
        }
        var defaults = await FromPlacementAsync(connection, transaction, referralId);
        await connection.ExecuteAsync(
            """
            UPDATE referral SET discharged_at = @now, discharge_recorded_from = 'placement',
                pathway_at_discharge = COALESCE(pathway_at_discharge, @Pathway),
                destination_at_discharge = COALESCE(destination_at_discharge, @Destination),
                destination_care_level = COALESCE(destination_care_level, @CareLevel)
            WHERE id = @referralId AND discharged_at IS NULL
            """, new { now, defaults.Pathway, defaults.Destination, defaults.CareLevel, referralId }, transaction);
        await CloseDelaysAsync(work, referralId, now);
        work.Scope.AuditDetail ??= $"discharge from hospital recorded at {now:O} from the placement starting";
        work.Scope.RecordChange("referral.discharged", "referral", referralId, organisationId, new { dischargedAt = now, recordedFrom = "placement" });
    }

    /// <summary>A delay ends when the person leaves: the open reason closes, and none runs past the discharge.</summary>
    public static Task CloseDelaysAsync(Work work, long referralId, DateTimeOffset dischargedAt) =>
        work.Connection.ExecuteAsync(
            "UPDATE discharge_delay SET to_at = @dischargedAt WHERE referral_id = @referralId AND from_at <= @dischargedAt AND (to_at IS NULL OR to_at > @dischargedAt)",
            new { referralId, dischargedAt }, work.Transaction);
}
