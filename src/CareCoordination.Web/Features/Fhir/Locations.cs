using System.Globalization;
using System.Data.Common;
using CareCoordination.Auth;
using CareCoordination.Features.BedBureau;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Mediator;

namespace CareCoordination.Features.Fhir;

/// <summary>A site as the FHIR Location shows it.</summary>
public sealed record FhirSite
{
    public long Id { get; init; }
    public string Name { get; init; } = "";
    public string Locality { get; init; } = "";
    public string Postcode { get; init; } = "";
    public bool Active { get; init; }
    public string OrganisationCode { get; init; } = "";
    public string OrganisationName { get; init; } = "";

    public const string Select = """
        SELECT s.id AS Id, s.name AS Name, s.locality AS Locality, s.postcode AS Postcode, s.active AS Active,
               o.code AS OrganisationCode, o.name AS OrganisationName
        FROM site s JOIN organisation o ON o.id = s.organisation_id
        """;
}

/// <summary>A ward as the FHIR Location shows it.</summary>
public sealed record FhirWard
{
    public long Id { get; init; }
    public string Name { get; init; } = "";
    public long SiteId { get; init; }
    public string SiteName { get; init; } = "";
    public bool SiteActive { get; init; }

    public const string Select = """
        SELECT w.id AS Id, w.name AS Name, s.id AS SiteId, s.name AS SiteName, s.active AS SiteActive
        FROM ward w JOIN site s ON s.id = w.site_id
        """;
}

/// <summary>
/// A site, a ward or a bed: one FHIR Location each, told apart by the id's prefix (site-3, ward-12,
/// bed-140) because the three tables number their rows independently. Beds are read as the bed bureau
/// reads them (Beds.Columns/From).
/// </summary>
public sealed record FhirPlace(FhirSite? Site = null, FhirWard? Ward = null, BedRow? Bed = null)
{
    public string LocationId => Site is not null ? SiteId(Site.Id) : Ward is not null ? WardId(Ward.Id) : BedId(Bed!.Id);

    /// <summary>The Location this one is part of: a bed's ward, a ward's site; a site is part of nothing.</summary>
    public string? PartOf => Ward is not null ? SiteId(Ward.SiteId) : Bed is not null ? WardId(Bed.WardId) : null;

    public static string SiteId(long id) => "site-" + id.ToString(CultureInfo.InvariantCulture);

    public static string WardId(long id) => "ward-" + id.ToString(CultureInfo.InvariantCulture);

    public static string BedId(long id) => "bed-" + id.ToString(CultureInfo.InvariantCulture);

    /// <summary>"bed-140" as ("bed", 140); null for anything that cannot name a Location here.</summary>
    public static (string Kind, long Id)? Parse(string locationId)
    {
        var dash = locationId.IndexOf('-', StringComparison.Ordinal);
        if (dash < 0 || !long.TryParse(locationId[(dash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var id))
        {
            return null;
        }
        var kind = locationId[..dash];
        return kind is "site" or "ward" or "bed" ? (kind, id) : null;
    }

    /// <summary>Sites, then wards, then beds, each in id order; only the one named when <paramref name="only"/> is given.</summary>
    public static async Task<List<FhirPlace>> LoadAsync(DbConnection connection, (string Kind, long Id)? only = null)
    {
        var places = new List<FhirPlace>();
        var id = only?.Id;
        if (only is null || only.Value.Kind == "site")
        {
            var sites = await connection.QueryAsync<FhirSite>(FhirSite.Select + (id is null ? "" : " WHERE s.id = @id") + " ORDER BY s.id", new { id });
            places.AddRange(sites.Select(s => new FhirPlace(Site: s)));
        }
        if (only is null || only.Value.Kind == "ward")
        {
            var wards = await connection.QueryAsync<FhirWard>(FhirWard.Select + (id is null ? "" : " WHERE w.id = @id") + " ORDER BY w.id", new { id });
            places.AddRange(wards.Select(w => new FhirPlace(Ward: w)));
        }
        if (only is null || only.Value.Kind == "bed")
        {
            var beds = await connection.QueryAsync<BedRow>($"SELECT {Beds.Columns} {Beds.From}" + (id is null ? "" : " WHERE b.id = @id") + " ORDER BY b.id", new { id });
            places.AddRange(beds.Select(b => new FhirPlace(Bed: b)));
        }
        return places;
    }
}

/// <summary>GET /fhir/Location/{id}: a site, ward or bed. Capacity is not personal data: any partner with the scope sees every place.</summary>
public static class ReadLocation
{
    [AllowRoles(Roles.Manager, Roles.Coordinator, Roles.BedBureau, Roles.Admin)]
    [AllowPartnerScope("system/Location.r")]
    public sealed record Query(string Id) : IQuery<FhirPlace>;

    public sealed class Handler(Database database) : IQueryHandler<Query, FhirPlace>
    {
        public async ValueTask<FhirPlace> Handle(Query query, CancellationToken cancellationToken)
        {
            var parsed = FhirPlace.Parse(query.Id) ?? throw new NotFound($"Location/{query.Id}");
            await using var connection = await database.OpenAsync(cancellationToken);
            var places = await FhirPlace.LoadAsync(connection, parsed);
            return places.SingleOrDefault() ?? throw new NotFound($"Location/{query.Id}");
        }
    }
}

/// <summary>
/// GET /fhir/Location?type=…&amp;partof=…&amp;operational-status=…: sites, wards and beds. The estate is small
/// (hundreds of beds), so the filters run over the places as read rather than in SQL, and they filter by
/// exactly what the mapping writes.
/// </summary>
public static class SearchLocations
{
    [AllowRoles(Roles.Manager, Roles.Coordinator, Roles.BedBureau, Roles.Admin)]
    [AllowPartnerScope("system/Location.s")]
    public sealed record Query(IReadOnlyList<string> BedTypes, string? PartOf, IReadOnlyList<string> OperationalStatuses, int Count, int Offset)
        : IQuery<Page<FhirPlace>>;

    public sealed class Handler(Database database) : IQueryHandler<Query, Page<FhirPlace>>
    {
        public async ValueTask<Page<FhirPlace>> Handle(Query query, CancellationToken cancellationToken)
        {
            await using var connection = await database.OpenAsync(cancellationToken);
            var matches = (await FhirPlace.LoadAsync(connection))
                .Where(p => query.BedTypes.Count == 0 || (p.Bed is not null && query.BedTypes.Contains(p.Bed.BedType)))
                .Where(p => query.PartOf is null || p.PartOf == query.PartOf)
                .Where(p => query.OperationalStatuses.Count == 0
                    || (p.Bed is not null && query.OperationalStatuses.Contains(FhirMapping.BedOperationalStatus(p.Bed).Code)))
                .ToList();
            return new Page<FhirPlace>(matches.Count, matches.Skip(query.Offset).Take(query.Count).ToList());
        }
    }
}
