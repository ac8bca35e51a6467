using CareCoordination.Domain;
using CareCoordination.Pipeline;
using Dapper;

namespace CareCoordination.Features.BedBureau;

/// <summary>A bed with where it is and who provides it, as every bed command and board reads it.</summary>
public sealed record BedRow
{
    public long Id { get; init; }
    public string Label { get; init; } = "";
    public string BedType { get; init; } = "";
    public string AllowedSex { get; init; } = "";
    public string Status { get; init; } = "";
    /// <summary>A code of Beds.ClosureReasons: what capacity copies (the hub, FHIR) may carry.</summary>
    public string? ClosedReason { get; init; }

    /// <summary>Why, in the bed bureau's words: free text that may name a patient, so it stays on the bed board.</summary>
    public string? ClosedDetail { get; init; }
    public bool SingleRoom { get; init; }
    public DateTimeOffset ConfirmedAt { get; init; }
    public int Version { get; init; }
    public long WardId { get; init; }
    public string WardName { get; init; } = "";
    public long SiteId { get; init; }
    public string SiteName { get; init; } = "";
    public string Locality { get; init; } = "";
    public long ProviderId { get; init; }
    public string Provider { get; init; } = "";
    public string? CqcRating { get; init; }
    public string Caution { get; init; } = "none";
    public string? CautionNote { get; init; }
    public bool SiteActive { get; init; } = true;

    public string Place => $"{SiteName}, {WardName} bed {Label}";

    public bool IsStale(DateTimeOffset now, BedBureauSettings settings) => now - ConfirmedAt > TimeSpan.FromHours(settings.StaleAfterHours);
}

/// <summary>
/// The bed state machine, written once. Every move names the states it may start from and writes only
/// if the bed is still in one of them at the version read, so two people moving one bed cannot both win.
/// </summary>
public static class Beds
{
    public const string Columns = """
        b.id AS Id, b.label AS Label, b.bed_type AS BedType, b.allowed_sex AS AllowedSex, b.status AS Status,
        b.closed_reason AS ClosedReason, b.closed_detail AS ClosedDetail, b.single_room AS SingleRoom, b.confirmed_at AS ConfirmedAt, b.version AS Version,
        w.id AS WardId, w.name AS WardName, s.id AS SiteId, s.name AS SiteName, s.locality AS Locality,
        o.id AS ProviderId, o.name AS Provider, o.cqc_rating AS CqcRating, o.caution AS Caution, o.caution_note AS CautionNote,
        s.active AS SiteActive
        """;

    public const string From = """
        FROM bed b JOIN ward w ON w.id = b.ward_id JOIN site s ON s.id = w.site_id JOIN organisation o ON o.id = s.organisation_id
        """;

    /// <summary>Which moves are legal from which state: the one table the commands and the tests share.</summary>
    public static IReadOnlyDictionary<string, IReadOnlyList<string>> Moves { get; } = new Dictionary<string, IReadOnlyList<string>>
    {
        ["available"] = ["reserved", "closed"],
        ["reserved"] = ["occupied", "available"],
        ["occupied"] = ["cleaning"],
        ["cleaning"] = ["available", "closed"],
        ["closed"] = ["available"],
    };

    public static IReadOnlyList<Domain.Code> ClosureReasons { get; } =
    [
        new("infection", "Infection control", "Closed to admissions while an infection is managed"),
        new("staffing", "Staffing", "Not enough staff to open it safely"),
        new("maintenance", "Repairs or maintenance", "Equipment or estates work"),
        new("other", "Other", "Say why"),
    ];

    /// <summary>"Infection control: detail", for the bed bureau's own screens.</summary>
    public static string? ClosedLabel(BedRow bed) => bed.ClosedReason is not { } code
        ? null
        : string.IsNullOrWhiteSpace(bed.ClosedDetail) ? ClosureReasons.LabelOf(code) : $"{ClosureReasons.LabelOf(code)}: {bed.ClosedDetail}";

    public static string StatusLabel(string status) => status switch
    {
        "available" => "Available",
        "reserved" => "Reserved",
        "occupied" => "Occupied",
        "closed" => "Closed",
        "cleaning" => "Cleaning",
        _ => status,
    };

    public static async Task<BedRow> FindAsync(Work work, long bedId) =>
        await work.Connection.QuerySingleOrDefaultAsync<BedRow>($"SELECT {Columns} {From} WHERE b.id = @bedId", new { bedId }, work.Transaction)
        ?? throw new Pipeline.NotFound($"Bed {bedId}");

    /// <summary>
    /// The key a site's state is decided under (Database.LockAsync): a reservation reads whether the site is open, and closing
    /// the site counts its beds in use, each under it. Each only reads what the other writes, so on PostgreSQL (read committed,
    /// transactions at once) both went through: a bed held in a closed site, gone from every board. SQLite runs one writer.
    /// </summary>
    public static string SiteLock(long siteId) => "site:" + siteId.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Moves the bed if the move is legal and nobody moved it first; records the change either way it succeeds.</summary>
    public static async Task MoveAsync(Work work, BedRow bed, string to, string changeKind, string? closedReason = null, object? detail = null,
        string? closedDetail = null)
    {
        if (!Moves.TryGetValue(bed.Status, out var next) || !next.Contains(to))
        {
            throw new RuleBroken($"{bed.Place} is {StatusLabel(bed.Status).ToLowerInvariant()}: it cannot become {StatusLabel(to).ToLowerInvariant()}.");
        }
        await Fhir.FhirVersions.KeepSupersededAsync(work, "bed", bed.Id);
        var moved = await work.Connection.ExecuteAsync(
            """
            UPDATE bed SET status = @to, closed_reason = @closedReason, closed_detail = @closedDetail, confirmed_at = @now, version = version + 1
            WHERE id = @Id AND version = @Version AND status = @Status
            """, new { to, closedReason, closedDetail, now = work.Scope.Now, bed.Id, bed.Version, bed.Status }, work.Transaction);
        if (moved == 0)
        {
            var last = await work.Connection.QueryFirstOrDefaultAsync<string?>(
                "SELECT actor FROM change WHERE entity_type = 'bed' AND entity_id = @Id ORDER BY seq DESC LIMIT 1", new { bed.Id }, work.Transaction);
            throw new Conflict($"{last ?? "Someone"} changed {bed.Place} a moment ago. Look at the board again.");
        }
        await RecordStateAsync(work, bed.Id, bed.Version + 1, to, bed.BedType);
        RecordChange(work, bed, changeKind, to, closedReason, detail);
    }

    /// <summary>
    /// The state the bed holds from now, kept in bed_state so that the Capacity Tracker can say how the beds stood at a past
    /// time: written by every command that adds a bed, moves it or changes its type, with the bed's new version. A command's
    /// time is taken when it starts, before its turn to write, so a move that commits after another may carry an earlier
    /// time: never earlier than the bed's last state here, so that the latest time is always the latest state.
    /// </summary>
    public static Task RecordStateAsync(Work work, long bedId, int version, string status, string bedType) =>
        work.Connection.ExecuteAsync(
            """
            INSERT INTO bed_state (bed_id, from_at, version, status, bed_type)
            SELECT @bedId, CASE WHEN latest.at > @now THEN latest.at ELSE @now END, @version, @status, @bedType
            FROM (SELECT MAX(from_at) AS at FROM bed_state WHERE bed_id = @bedId) latest
            """,
            new { bedId, now = work.Scope.Now, version, status, bedType }, work.Transaction);

    /// <summary>The change carries the closure's code only: its detail never travels with a change (capacity copies reach every partner).</summary>
    public static void RecordChange(Work work, BedRow bed, string kind, string status, string? closedReason = null, object? detail = null) =>
        work.Scope.RecordChange(kind, "bed", bed.Id, null,
            new { status, siteId = bed.SiteId, wardId = bed.WardId, bedType = bed.BedType, closedReason, by = work.Scope.Actor.Name, detail });
}
