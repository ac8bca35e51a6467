using CareCoordination.Auth;
using CareCoordination.Domain;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Mediator;

namespace CareCoordination.Features.Admin;

/// <summary>
/// The referring trusts' hospital sites (Referrals.HospitalSites), as an administrator keeps them: the form offers a trust's
/// active sites, partners name them by ODS site code, and the discharge sitrep is returned by trust and site.
/// </summary>
public static class HospitalSitesAdmin
{
    /// <summary>The organisations whose referrals come from a hospital, so may have sites.</summary>
    internal static readonly string HospitalKinds = $"({Sql.Literals(ReferralCodes.HospitalOrganisationKinds)})";

    [AllowRoles(Roles.Admin)]
    public sealed record Query : IQuery<Result>;

    public sealed record Site
    {
        public long Id { get; init; }
        public long OrganisationId { get; init; }
        public string Trust { get; init; } = "";
        public string Code { get; init; } = "";
        public string Name { get; init; } = "";
        public bool Active { get; init; }
    }

    public sealed record Trust(long Id, string Name);

    public sealed record Result(IReadOnlyList<Site> Sites, IReadOnlyList<Trust> Trusts);

    public sealed class Handler(Database database) : IQueryHandler<Query, Result>
    {
        public async ValueTask<Result> Handle(Query query, CancellationToken cancellationToken)
        {
            await using var connection = await database.OpenAsync(cancellationToken);
            var sites = await connection.QueryAsync<Site>(new CommandDefinition(
                """
                SELECT hs.id AS Id, hs.organisation_id AS OrganisationId, o.name AS Trust, hs.code AS Code, hs.name AS Name, hs.active AS Active
                FROM hospital_site hs JOIN organisation o ON o.id = hs.organisation_id
                ORDER BY o.name, hs.name
                """, cancellationToken: cancellationToken));
            var trusts = await connection.QueryAsync<Trust>(new CommandDefinition(
                $"SELECT id AS Id, name AS Name FROM organisation WHERE kind IN {HospitalKinds} AND active ORDER BY name", cancellationToken: cancellationToken));
            return new Result([.. sites], [.. trusts]);
        }
    }
}
