using CareCoordination.Auth;
using CareCoordination.Features.Reports;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Mediator;

namespace CareCoordination.Features.Admin;

/// <summary>
/// The "you said, we did" items: for one quarter as the decision pack shows them (retired ones left out), or every
/// item for the administrators who keep the list.
/// </summary>
public static class YouSaidWeDidItems
{
    [AllowRoles(Roles.Admin, Roles.Manager)]
    public sealed record Query(DateOnly? QuarterStart = null, bool IncludeRetired = false) : IQuery<IReadOnlyList<Item>>;

    public sealed record Item
    {
        public long Id { get; init; }
        public DateOnly QuarterStart { get; init; }
        public string YouSaid { get; init; } = "";
        public string WeDid { get; init; } = "";
        public string? HeardFrom { get; init; }
        public DateTimeOffset? RetiredAt { get; init; }
        public int Version { get; init; }

        public Quarter Quarter => new(QuarterStart);

        public bool Retired => RetiredAt is not null;
    }

    public sealed class Handler(Database database) : IQueryHandler<Query, IReadOnlyList<Item>>
    {
        public async ValueTask<IReadOnlyList<Item>> Handle(Query query, CancellationToken cancellationToken)
        {
            await using var connection = await database.OpenAsync(cancellationToken);
            var items = await connection.QueryAsync<Item>(new CommandDefinition(
                """
                SELECT id AS Id, quarter_start AS QuarterStart, you_said AS YouSaid, we_did AS WeDid, heard_from AS HeardFrom,
                       retired_at AS RetiredAt, version AS Version
                FROM you_said_we_did
                WHERE (@QuarterStart IS NULL OR quarter_start = @QuarterStart) AND (@IncludeRetired OR retired_at IS NULL)
                ORDER BY quarter_start DESC, id
                """, new { query.QuarterStart, query.IncludeRetired }, cancellationToken: cancellationToken));
            return [.. items];
        }
    }
}
