using CareCoordination.Auth;
using CareCoordination.Changes;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Mediator;

namespace CareCoordination.Features.Admin;

/// <summary>
/// Every site, open or closed, with its wards and beds as the administrator maintains them, and the choices
/// the forms offer: providers and localities.
/// </summary>
public static class BedEstate
{
    [AllowRoles(Roles.Admin)]
    public sealed record Query : IQuery<Result>;

    public sealed record Result(IReadOnlyList<Site> Sites, IReadOnlyList<ProviderOption> Providers, IReadOnlyList<string> Localities, long AsOfSeq);

    public sealed record Site(SiteRow Row, IReadOnlyList<Ward> Wards);

    public sealed record Ward(long Id, string Name, IReadOnlyList<Bed> Beds)
    {
        /// <summary>The number after the highest one used with this prefix: where "add beds" suggests starting.</summary>
        public int NextNumber(string prefix)
        {
            var numbers = Beds.Select(b => b.Label)
                .Where(l => l.StartsWith(prefix.Trim(), StringComparison.Ordinal))
                .Select(l => int.TryParse(l.AsSpan(prefix.Trim().Length), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n) ? n : 0);
            return numbers.DefaultIfEmpty(0).Max() + 1;
        }
    }

    public sealed record SiteRow
    {
        public long Id { get; init; }
        public string Name { get; init; } = "";
        public string Kind { get; init; } = "";
        public string Locality { get; init; } = "";
        public string Postcode { get; init; } = "";
        public long ProviderId { get; init; }
        public string Provider { get; init; } = "";
        public bool Active { get; init; }
    }

    public sealed record Bed
    {
        public long Id { get; init; }
        public long WardId { get; init; }
        public string Label { get; init; } = "";
        public string BedType { get; init; } = "";
        public string AllowedSex { get; init; } = "";
        public bool SingleRoom { get; init; }
        public string Status { get; init; } = "";
    }

    private sealed record WardRow
    {
        public long Id { get; init; }
        public long SiteId { get; init; }
        public string Name { get; init; } = "";
    }

    public sealed class Handler(Database database, ChangeFeed feed) : IQueryHandler<Query, Result>
    {
        public async ValueTask<Result> Handle(Query query, CancellationToken cancellationToken)
        {
            var asOf = feed.Published;
            await using var connection = await database.OpenAsync(cancellationToken);
            var sites = await connection.QueryAsync<SiteRow>(
                """
                SELECT s.id AS Id, s.name AS Name, s.kind AS Kind, s.locality AS Locality, s.postcode AS Postcode,
                       o.id AS ProviderId, o.name AS Provider, s.active AS Active
                FROM site s JOIN organisation o ON o.id = s.organisation_id
                ORDER BY CASE WHEN s.active THEN 0 ELSE 1 END, s.name
                """);
            var wards = (await connection.QueryAsync<WardRow>("SELECT id AS Id, site_id AS SiteId, name AS Name FROM ward")).OrderBy(w => w.Name, StringComparer.Ordinal).ToLookup(w => w.SiteId);
            var beds = (await connection.QueryAsync<Bed>(
                """
                SELECT id AS Id, ward_id AS WardId, label AS Label, bed_type AS BedType, allowed_sex AS AllowedSex,
                       single_room AS SingleRoom, status AS Status
                FROM bed
                """)).ToLookup(b => b.WardId);
            var estate = sites
                .Select(s => new Site(s, wards[s.Id].Select(w => new Ward(w.Id, w.Name, beds[w.Id].OrderBy(b => b.Label, StringComparer.Ordinal).ToList())).ToList()))
                .ToList();
            return new Result(estate, await AdminLookups.ProvidersAsync(connection), await AdminLookups.LocalitiesAsync(connection), asOf);
        }
    }
}
