using CareCoordination.Auth;
using CareCoordination.Domain;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Mediator;

namespace CareCoordination.Features.Reports;

/// <summary>
/// What the report filter offers: the organisations that refer (or are trusts), the organisations that provide beds (those
/// running an active site), and the localities of the county.
/// </summary>
public static class ReportChoices
{
    [AllowRoles(Roles.Manager, Roles.Admin)]
    public sealed record Query : IQuery<Result>;

    public sealed record Result(IReadOnlyList<Trust> Trusts, IReadOnlyList<string> Localities, IReadOnlyList<Trust> Providers);

    public sealed record Trust
    {
        public long Id { get; init; }
        public string Name { get; init; } = "";
    }

    public sealed class Handler(Database database) : IQueryHandler<Query, Result>
    {
        public async ValueTask<Result> Handle(Query query, CancellationToken cancellationToken)
        {
            await using var connection = await database.OpenAsync(cancellationToken);
            var trusts = await connection.QueryAsync<Trust>(
                $"""
                SELECT id AS Id, name AS Name FROM organisation
                WHERE kind IN ({Sql.Literals(ReferralCodes.HospitalOrganisationKinds)}) OR id IN (SELECT DISTINCT organisation_id FROM referral)
                ORDER BY name
                """);
            var localities = await connection.QueryAsync<string>(
                """
                SELECT locality FROM postcode_district UNION SELECT locality FROM site UNION
                SELECT locality FROM organisation WHERE locality IS NOT NULL
                ORDER BY 1
                """);
            var providers = await connection.QueryAsync<Trust>(
                """
                SELECT o.id AS Id, o.name AS Name FROM organisation o
                WHERE EXISTS (SELECT 1 FROM site s WHERE s.organisation_id = o.id AND s.active)
                ORDER BY o.name
                """);
            return new Result([.. trusts], [.. localities], [.. providers]);
        }
    }
}
