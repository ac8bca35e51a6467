using CareCoordination.Auth;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Mediator;

namespace CareCoordination.Features.Fhir;

/// <summary>
/// A service as the FHIR HealthcareService shows it: who provides it, what kind, where, and its capacity as the
/// coordinators see it when they choose a service (PersonStory's service list): per day, free today, when confirmed,
/// with the provider's CQC rating and the commissioners' caution and its note.
/// </summary>
public sealed record FhirService
{
    public long Id { get; init; }
    public string Name { get; init; } = "";
    public string Kind { get; init; } = "";
    public string? Locality { get; init; }
    public string CapacityUnit { get; init; } = "";
    public int CapacityPerDay { get; init; }
    public int AvailableToday { get; init; }
    public DateTimeOffset ConfirmedAt { get; init; }
    public bool Active { get; init; }
    public int Version { get; init; }
    public DateTimeOffset UpdatedAt { get; init; }
    public long ProviderId { get; init; }
    public string ProviderCode { get; init; } = "";
    public string ProviderName { get; init; } = "";
    public string? CqcRating { get; init; }
    public string Caution { get; init; } = "none";
    public string? CautionNote { get; init; }

    /// <summary>
    /// The service table has a version but no time of last change: every command that changes a service records a
    /// change row (capacity taken, given back, confirmed, edited), so the latest of those is the last update; a
    /// service nobody has touched since it was loaded was last updated when its capacity was confirmed.
    /// </summary>
    public const string Select = """
        SELECT s.id AS Id, s.name AS Name, s.kind AS Kind, s.locality AS Locality, s.capacity_unit AS CapacityUnit,
               s.capacity_per_day AS CapacityPerDay, s.available_today AS AvailableToday, s.confirmed_at AS ConfirmedAt,
               s.active AS Active, s.version AS Version,
               COALESCE((SELECT MAX(c.at) FROM change c WHERE c.entity_type = 'service' AND c.entity_id = s.id), s.confirmed_at) AS UpdatedAt,
               o.id AS ProviderId, o.code AS ProviderCode, o.name AS ProviderName,
               o.cqc_rating AS CqcRating, o.caution AS Caution, o.caution_note AS CautionNote
        FROM service s JOIN organisation o ON o.id = s.organisation_id
        WHERE 1 = 1
        """;

    /// <summary>
    /// Capacity is not personal: every partner with the scope sees every active service. A closed service is
    /// history, which only staff (who manage services) see; to a partner it is "not found".
    /// </summary>
    public static string Visible(Actor actor) => actor.Kind == ActorKind.Partner ? " AND s.active" : "";
}

/// <summary>GET /fhir/HealthcareService/{id}: one service with its capacity today.</summary>
public static class ReadHealthcareService
{
    [AllowRoles(Roles.Manager, Roles.Coordinator, Roles.BedBureau, Roles.Admin)]
    [AllowPartnerScope("system/HealthcareService.r")]
    public sealed record Query(long Id) : IQuery<FhirService>;

    public sealed class Handler(Database database, Work work) : IQueryHandler<Query, FhirService>
    {
        public async ValueTask<FhirService> Handle(Query query, CancellationToken cancellationToken)
        {
            await using var connection = await database.OpenAsync(cancellationToken);
            return await connection.QuerySingleOrDefaultAsync<FhirService>(
                    FhirService.Select + FhirService.Visible(work.Scope.Actor) + " AND s.id = @Id", new { query.Id })
                ?? throw new NotFound($"HealthcareService/{query.Id}");
        }
    }
}

/// <summary>GET /fhir/HealthcareService?type=…&amp;organization=…&amp;active=…: services in id order.</summary>
public static class SearchHealthcareServices
{
    [AllowRoles(Roles.Manager, Roles.Coordinator, Roles.BedBureau, Roles.Admin)]
    [AllowPartnerScope("system/HealthcareService.s")]
    public sealed record Query(IReadOnlyList<string> Kinds, long? ProviderId, bool? Active, int Count, int Offset) : IQuery<Page<FhirService>>, IPageRequest
    {
        public bool WithTotal { get; init; } = true;
    }

    public sealed class Handler(Database database, Work work) : IQueryHandler<Query, Page<FhirService>>
    {
        public async ValueTask<Page<FhirService>> Handle(Query query, CancellationToken cancellationToken)
        {
            var where = FhirService.Visible(work.Scope.Actor);
            if (query.Kinds.Count > 0)
            {
                where += $" AND s.kind IN ({Sql.Literals(query.Kinds)})";
            }
            if (query.ProviderId is not null)
            {
                where += " AND s.organisation_id = @ProviderId";
            }
            if (query.Active is not null)
            {
                where += " AND s.active = @Active";
            }
            var parameters = new { query.ProviderId, query.Active, query.Count, query.Offset };
            await using var connection = await database.OpenAsync(cancellationToken);
            return await Page<FhirService>.ReadAsync(connection, query, FhirService.Select, where, "s.id", parameters, _ => { });
        }
    }
}
