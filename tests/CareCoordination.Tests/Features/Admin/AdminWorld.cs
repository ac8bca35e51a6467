using System.Text.Json;
using CareCoordination.Pipeline;
using CareCoordination.Tests.Support;
using Dapper;
using Mediator;

namespace CareCoordination.Tests.Features.Admin;

/// <summary>What the administration tests share: the estate as a whole, to prove a refusal changed nothing, and the change rows an entity has.</summary>
internal static class AdminWorld
{
    // Init properties, not a positional record: Dapper maps SQLite's integers onto them by name.
    public sealed record Estate
    {
        public long Sites { get; init; }
        public long ActiveSites { get; init; }
        public long Wards { get; init; }
        public long Beds { get; init; }
        public long BedVersions { get; init; }
        public string BedDetails { get; init; } = "";
        public long Services { get; init; }
        public long ServiceVersions { get; init; }
        public long ServiceAvailable { get; init; }
        public long ServiceCapacity { get; init; }
        public string Ratings { get; init; } = "";
        public long LastSeq { get; init; }
    }

    public sealed record ChangeRow
    {
        public string Kind { get; init; } = "";
        public string? Actor { get; init; }
        public string? Data { get; init; }

        public JsonElement Json => JsonDocument.Parse(Data ?? "{}").RootElement;
    }

    public static async Task<Estate> EstateAsync(this AppFactory app)
    {
        await using var connection = await app.OpenAsync();
        var estate = await connection.QuerySingleAsync<Estate>(
            """
            SELECT (SELECT COUNT(*) FROM site) AS Sites,
                   (SELECT COUNT(*) FROM site WHERE active) AS ActiveSites,
                   (SELECT COUNT(*) FROM ward) AS Wards,
                   (SELECT COUNT(*) FROM bed) AS Beds,
                   (SELECT COALESCE(SUM(version), 0) FROM bed) AS BedVersions,
                   (SELECT COUNT(*) FROM service) AS Services,
                   (SELECT COALESCE(SUM(version), 0) FROM service) AS ServiceVersions,
                   (SELECT COALESCE(SUM(available_today), 0) FROM service) AS ServiceAvailable,
                   (SELECT COALESCE(SUM(capacity_per_day), 0) FROM service) AS ServiceCapacity,
                   (SELECT COALESCE(MAX(seq), 0) FROM change) AS LastSeq
            """);
        var beds = await connection.QueryAsync<(long Id, string Type, string Sex, bool Single)>(
            "SELECT id, bed_type, allowed_sex, single_room FROM bed ORDER BY id");
        var ratings = await connection.QueryAsync<(long Id, string? Rating, string Caution, string? Note)>(
            "SELECT id, cqc_rating, caution, caution_note FROM organisation ORDER BY id");
        return estate with
        {
            BedDetails = string.Join(";", beds.Select(b => $"{b.Id}:{b.Type}:{b.Sex}:{b.Single}")),
            Ratings = string.Join(";", ratings.Select(r => $"{r.Id}:{r.Rating}:{r.Caution}:{r.Note}")),
        };
    }

    public static async Task<IReadOnlyList<ChangeRow>> ChangesAsync(this AppFactory app, string entityType, long entityId)
    {
        await using var connection = await app.OpenAsync();
        return (await connection.QueryAsync<ChangeRow>(
            "SELECT kind AS Kind, actor AS Actor, data AS Data FROM change WHERE entity_type = @entityType AND entity_id = @entityId ORDER BY seq",
            new { entityType, entityId })).ToList();
    }

    public static async Task<T> SendAsync<T>(this AppFactory app, IMessage message, string user) =>
        await app.SendAsync<T>(message, await app.StaffAsync(user));

    public static async Task SendAsync(this AppFactory app, IMessage message, string user) =>
        await app.SendAsync(message, await app.StaffAsync(user));

    /// <summary>The failure is of the stated kind, says what it should, and nothing at all was written.</summary>
    public static async Task<TFailure> RefusedAsync<TFailure>(this AppFactory app, IMessage message, string user, string saying)
        where TFailure : DomainFailure
    {
        var before = await app.EstateAsync();
        var failure = await Assert.ThrowsAsync<TFailure>(() => app.SendAsync(message, user));
        Assert.Contains(saying, failure.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(before, await app.EstateAsync());
        return failure;
    }

    public static string Unique(string name) => $"{name} {Guid.NewGuid().ToString("N")[..6]}";
}
