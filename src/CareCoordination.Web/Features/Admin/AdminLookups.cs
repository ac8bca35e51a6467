using System.Data.Common;
using CareCoordination.Pipeline;
using Dapper;

namespace CareCoordination.Features.Admin;

/// <summary>A provider as the owner choice on the site and service forms offers it.</summary>
public sealed record ProviderOption
{
    public long Id { get; init; }
    public string Name { get; init; } = "";
}

/// <summary>
/// What the administration slices share: which organisations are providers, and which localities the county
/// has. A provider is an organisation of kind provider or community trust, or any that already owns a site or
/// a service (a community hospital runs its own wards).
/// </summary>
public static class AdminLookups
{
    public const string IsProvider = """
        o.active AND (o.kind IN ('provider', 'community-trust')
            OR EXISTS (SELECT 1 FROM site st WHERE st.organisation_id = o.id)
            OR EXISTS (SELECT 1 FROM service sv WHERE sv.organisation_id = o.id))
        """;

    public static async Task<IReadOnlyList<ProviderOption>> ProvidersAsync(DbConnection connection) =>
        (await connection.QueryAsync<ProviderOption>($"SELECT o.id AS Id, o.name AS Name FROM organisation o WHERE {IsProvider} ORDER BY o.name")).ToList();

    /// <summary>Every locality the county knows: from the postcode districts, and any a site or service already uses.</summary>
    public static async Task<IReadOnlyList<string>> LocalitiesAsync(DbConnection connection) =>
        (await connection.QueryAsync<string>(
            """
            SELECT locality FROM postcode_district
            UNION SELECT locality FROM site
            UNION SELECT locality FROM service WHERE locality IS NOT NULL
            ORDER BY 1
            """)).ToList();

    /// <summary>The provider a new site or service belongs to, in the command's transaction; refused when it is not one.</summary>
    public static async Task<ProviderOption> RequireProviderAsync(Work work, long organisationId) =>
        await work.Connection.QuerySingleOrDefaultAsync<ProviderOption>(
            $"SELECT o.id AS Id, o.name AS Name FROM organisation o WHERE o.id = @organisationId AND {IsProvider}",
            new { organisationId }, work.Transaction)
        ?? throw new RuleBroken("Choose a provider organisation: only an active provider or community trust can own sites and services.");

    /// <summary>Who last changed an entity, for a refusal that says who got there first.</summary>
    public static Task<string?> LastActorAsync(Work work, string entityType, long entityId) =>
        work.Connection.QueryFirstOrDefaultAsync<string?>(
            "SELECT actor FROM change WHERE entity_type = @entityType AND entity_id = @entityId ORDER BY seq DESC LIMIT 1",
            new { entityType, entityId }, work.Transaction);
}
