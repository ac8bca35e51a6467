using CareCoordination.Auth;
using CareCoordination.Changes;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Mediator;

namespace CareCoordination.Features.Admin;

/// <summary>
/// Every service with its daily capacity, what is free today and when someone last confirmed it; and the
/// choices the add and edit forms offer. Managers read it; coordinators and the bed bureau confirm capacity.
/// </summary>
public static class ServiceCapacity
{
    [AllowRoles(Roles.Admin, Roles.Manager, Roles.Coordinator, Roles.BedBureau)]
    public sealed record Query : IQuery<Result>;

    public sealed record Result(IReadOnlyList<Row> Services, IReadOnlyList<ProviderOption> Providers, IReadOnlyList<string> Localities, long AsOfSeq);

    public sealed record Row
    {
        public long Id { get; init; }
        public long ProviderId { get; init; }
        public string Provider { get; init; } = "";
        public string Name { get; init; } = "";
        public string Kind { get; init; } = "";
        public string? Locality { get; init; }
        public string CapacityUnit { get; init; } = "";
        public int CapacityPerDay { get; init; }
        public int AvailableToday { get; init; }
        public DateTimeOffset ConfirmedAt { get; init; }
        public bool Active { get; init; }
        public int Version { get; init; }
    }

    public sealed class Handler(Database database, ChangeFeed feed) : IQueryHandler<Query, Result>
    {
        public async ValueTask<Result> Handle(Query query, CancellationToken cancellationToken)
        {
            var asOf = feed.Published;
            await using var connection = await database.OpenAsync(cancellationToken);
            var services = (await connection.QueryAsync<Row>(
                """
                SELECT s.id AS Id, o.id AS ProviderId, o.name AS Provider, s.name AS Name, s.kind AS Kind, s.locality AS Locality,
                       s.capacity_unit AS CapacityUnit, s.capacity_per_day AS CapacityPerDay, s.available_today AS AvailableToday,
                       s.confirmed_at AS ConfirmedAt, s.active AS Active, s.version AS Version
                FROM service s JOIN organisation o ON o.id = s.organisation_id
                """))
                .OrderBy(s => s.Active ? 0 : 1).ThenBy(s => s.Kind, StringComparer.Ordinal).ThenBy(s => s.Name, StringComparer.Ordinal)
                .ToList();
            return new Result(services, await AdminLookups.ProvidersAsync(connection), await AdminLookups.LocalitiesAsync(connection), asOf);
        }
    }
}
