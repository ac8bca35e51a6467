using CareCoordination.Auth;
using CareCoordination.Changes;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Mediator;

namespace CareCoordination.Features.Admin;

/// <summary>
/// Every provider with what it runs, its CQC rating and the commissioners' caution, and who last changed
/// them and why: what a manager reviews after a CQC report or a quality visit.
/// </summary>
public static class ProviderRatings
{
    [AllowRoles(Roles.Admin, Roles.Manager)]
    public sealed record Query : IQuery<Result>;

    public sealed record Result(IReadOnlyList<Row> Providers, long AsOfSeq);

    public sealed record Row
    {
        public long Id { get; init; }
        public string Name { get; init; } = "";
        public string Kind { get; init; } = "";
        public string? Locality { get; init; }
        public string? CqcRating { get; init; }
        public string Caution { get; init; } = "none";
        public string? CautionNote { get; init; }
        public long Sites { get; init; }
        public long Services { get; init; }
        public string? ChangedBy { get; init; }
        public DateTimeOffset? ChangedAt { get; init; }
    }

    public sealed class Handler(Database database, ChangeFeed feed) : IQueryHandler<Query, Result>
    {
        public async ValueTask<Result> Handle(Query query, CancellationToken cancellationToken)
        {
            var asOf = feed.Published;
            await using var connection = await database.OpenAsync(cancellationToken);
            var rows = await connection.QueryAsync<Row>(
                $"""
                SELECT o.id AS Id, o.name AS Name, o.kind AS Kind, o.locality AS Locality, o.cqc_rating AS CqcRating,
                       o.caution AS Caution, o.caution_note AS CautionNote,
                       (SELECT COUNT(*) FROM site st WHERE st.organisation_id = o.id AND st.active) AS Sites,
                       (SELECT COUNT(*) FROM service sv WHERE sv.organisation_id = o.id AND sv.active) AS Services,
                       c.actor AS ChangedBy, c.at AS ChangedAt
                FROM organisation o
                LEFT JOIN change c ON c.seq = (SELECT MAX(seq) FROM change WHERE entity_type = 'organisation' AND entity_id = o.id)
                WHERE {AdminLookups.IsProvider}
                """);
            return new Result(rows.OrderBy(r => r.Name, StringComparer.Ordinal).ToList(), asOf);
        }
    }
}
