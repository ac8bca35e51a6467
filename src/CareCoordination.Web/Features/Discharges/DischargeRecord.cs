using CareCoordination.Auth;
using CareCoordination.Domain;
using CareCoordination.Features.Referrals;
using CareCoordination.Features.Reports.CodeLists;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Mediator;

namespace CareCoordination.Features.Discharges;

/// <summary>
/// A referral's discharge from hospital as its pages show it: the discharge ready date, the discharge and where it was recorded
/// from, pathways and destination, what a new record would default to, the delay reasons with their history (each under the
/// labels of the list it was chosen from), and the list of reasons that applies today.
/// </summary>
public static class DischargeRecord
{
    [AllowRoles(Roles.Referrer, Roles.Coordinator, Roles.BedBureau, Roles.Manager)]
    public sealed record Query(long ReferralId) : IQuery<Result>, IAudited;

    public sealed record Result
    {
        public long ReferralId { get; init; }
        public long OrganisationId { get; init; }
        public long PersonId { get; init; }
        public string Status { get; init; } = "";
        public string Source { get; init; } = "";
        public DateOnly? DischargeReadyOn { get; init; }
        public DateTimeOffset? DischargedAt { get; init; }
        public string? RecordedFrom { get; init; }
        public string? PathwayIntended { get; init; }
        public string? PathwayAtDischarge { get; init; }
        public string? Destination { get; init; }
        public string? CareLevel { get; init; }
        public Discharges.Defaults Defaults { get; init; } = Discharges.Defaults.None;
        public IReadOnlyList<Delay> Delays { get; init; } = [];
        public CodeListVersion? ReasonsToday { get; init; }

        public bool IsHospital => ReferralCodes.IsHospital(Source);

        /// <summary>Whole London days from the discharge ready date to the discharge, as the national delay bands count them.</summary>
        public int? DaysDelayed => DischargeReadyOn is { } ready && DischargedAt is { } left
            ? DateOnly.FromDateTime(LondonTime.ToLocal(left).DateTime).DayNumber - ready.DayNumber
            : null;
    }

    public sealed record Delay
    {
        public long Id { get; init; }
        public DateTimeOffset FromAt { get; init; }
        public DateTimeOffset? ToAt { get; init; }
        public string Code { get; init; } = "";
        public string Label { get; init; } = "";
        public string FamilyLabel { get; init; } = "";
        public string ListVersion { get; init; } = "";
        public string? Note { get; init; }
        public string RecordedBy { get; init; } = "";
        public DateTimeOffset RecordedAt { get; init; }
    }

    public sealed class Handler(Database database, Work work, TimeProvider clock) : IQueryHandler<Query, Result>
    {
        public async ValueTask<Result> Handle(Query query, CancellationToken cancellationToken)
        {
            await using var connection = await database.OpenAsync(cancellationToken);
            var result = await connection.QuerySingleOrDefaultAsync<Result>(
                """
                SELECT id AS ReferralId, organisation_id AS OrganisationId, person_id AS PersonId, status AS Status, source AS Source,
                       medically_optimised_on AS DischargeReadyOn, discharged_at AS DischargedAt, discharge_recorded_from AS RecordedFrom,
                       pathway_intended AS PathwayIntended, pathway_at_discharge AS PathwayAtDischarge, destination_at_discharge AS Destination,
                       destination_care_level AS CareLevel
                FROM referral WHERE id = @ReferralId
                """, new { query.ReferralId });
            if (result is null || !ReferralAccess.MaySee(work.Scope.Actor, result.OrganisationId))
            {
                throw new NotFound($"Referral {query.ReferralId}");
            }
            work.Scope.Touch("referral", result.ReferralId, result.PersonId);
            // Each delay under the labels of the list version it was chosen from.
            var delays = await connection.QueryAsync<Delay>(
                """
                SELECT d.id AS Id, d.from_at AS FromAt, d.to_at AS ToAt, d.code AS Code, i.label AS Label, i.family_label AS FamilyLabel,
                       d.list_version AS ListVersion, d.note AS Note, d.recorded_by_name AS RecordedBy, d.recorded_at AS RecordedAt
                FROM discharge_delay d
                JOIN code_list_item i ON i.list_name = d.list_name AND i.list_version = d.list_version AND i.code = d.code
                WHERE d.referral_id = @ReferralId
                ORDER BY d.from_at, d.id
                """, new { query.ReferralId });
            return result with
            {
                Defaults = await Discharges.FromPlacementAsync(connection, null, result.ReferralId),
                Delays = delays.ToList(),
                ReasonsToday = await CodeListVersions.OnAsync(connection, null, CodeListVersions.DelayReasons, LondonTime.Today(clock)),
            };
        }
    }
}
