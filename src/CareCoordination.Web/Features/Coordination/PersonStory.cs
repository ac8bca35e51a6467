using CareCoordination.Auth;
using CareCoordination.Domain;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Mediator;
using Microsoft.Extensions.Options;

namespace CareCoordination.Features.Coordination;

/// <summary>
/// Everything a coordinator needs to decide, on one page: this referral as sent, every earlier referral
/// and placement for the same NHS number, the notes and timeline, the task with its clock, the services with
/// what they have free today, and where each manager's approval asked for under a provider's amber caution stands.
/// </summary>
public static class PersonStory
{
    [AllowRoles(Roles.Coordinator, Roles.BedBureau, Roles.Manager)]
    public sealed record Query(long ReferralId) : IQuery<Result>, IAudited;

    public sealed record Result(
        TrackReferral.Result Referral,
        long? ReservedServicePlacementId,
        TaskView? Task,
        IReadOnlyList<EarlierReferral> Earlier,
        IReadOnlyList<Recontact> Recontacts,
        IReadOnlyList<ServiceOption> Services,
        IReadOnlyList<Colleague> Colleagues,
        IReadOnlyList<Approval> Approvals)
    {
        /// <summary>The latest approval asked for placing with this provider: into this service, or (null) into its beds.</summary>
        public Approval? LatestApproval(long providerId, long? serviceId) =>
            Approvals.Where(a => a.ProviderId == providerId && a.ServiceId == serviceId).MaxBy(a => a.Id);
    }

    public sealed record Approval
    {
        public long Id { get; init; }
        public long ProviderId { get; init; }
        public long? ServiceId { get; init; }
        public string Status { get; init; } = "";
        public string Reason { get; init; } = "";
        public string RequestedBy { get; init; } = "";
        public DateTimeOffset RequestedAt { get; init; }
        public string? DecidedBy { get; init; }
        public DateTimeOffset? DecidedAt { get; init; }
        public string? DecisionNote { get; init; }
        public long Placements { get; init; }

        /// <summary>An approval makes one placement: once used, another needs asking for.</summary>
        public bool Used => Placements > 0;
    }

    public sealed record TaskView(TaskRow Row, TriageClock Clock, Priority Priority)
    {
        public string Urgency => Row.Priority ?? Row.Urgency;
    }

    public sealed record EarlierReferral
    {
        public long Id { get; init; }
        public string Status { get; init; } = "";
        public string? Pathway { get; init; }
        public string Organisation { get; init; } = "";
        public DateTimeOffset? SubmittedAt { get; init; }
        public string? Decision { get; init; }
        public string? OutcomeReason { get; init; }
        public string? PlacedWith { get; init; }
        public string? PlacementStatus { get; init; }
        public DateOnly? StartOn { get; init; }
        public DateTimeOffset? EndedAt { get; init; }
    }

    public sealed record Recontact
    {
        public long Id { get; init; }
        public string Reason { get; init; } = "";
        public DateTimeOffset CreatedAt { get; init; }
        public DateTimeOffset? DoneAt { get; init; }
        public string? DoneBy { get; init; }
        public string? Outcome { get; init; }
    }

    public sealed record ServiceOption
    {
        public long Id { get; init; }
        public string Name { get; init; } = "";
        public string Kind { get; init; } = "";
        public string? Locality { get; init; }
        public string CapacityUnit { get; init; } = "";
        public int CapacityPerDay { get; init; }
        public int AvailableToday { get; init; }
        public DateTimeOffset ConfirmedAt { get; init; }
        public long ProviderId { get; init; }
        public string Provider { get; init; } = "";
        public string? CqcRating { get; init; }
        public string Caution { get; init; } = "none";
        public string? CautionNote { get; init; }

        public bool IsFull => AvailableToday == 0;

        public string Free => CapacityUnit == "hours" ? $"{AvailableToday} of {CapacityPerDay} hours free today" : $"{AvailableToday} of {CapacityPerDay} slots free today";
    }

    public sealed record Colleague(long Id, string Name);

    public sealed class Handler(Database database, Work work, TimeProvider clock, IOptionsMonitor<CoordinationTargets> targets)
        : IQueryHandler<Query, Result>
    {
        public async ValueTask<Result> Handle(Query query, CancellationToken cancellationToken)
        {
            // The referrer's view of the referral is the first part of the story; read in this message's scope, so one audit row.
            var referral = await new TrackReferral.Handler(database, work).Handle(new TrackReferral.Query(query.ReferralId), cancellationToken);
            await using var connection = await database.OpenAsync(cancellationToken);

            var task = await connection.QueryFirstOrDefaultAsync<TaskRow>(
                """
                SELECT t.id AS Id, t.referral_id AS ReferralId, t.queue AS Queue, t.status AS Status, t.owner_user_id AS OwnerUserId,
                       u.display_name AS OwnerName, t.version AS Version, t.priority AS Priority, t.created_at AS CreatedAt,
                       t.taken_at AS TakenAt, t.on_hold_since AS OnHoldSince, t.paused_seconds AS PausedSeconds,
                       r.organisation_id AS OrganisationId, r.person_id AS PersonId, r.status AS ReferralStatus,
                       r.version AS ReferralVersion, r.urgency AS Urgency
                FROM triage_task t
                JOIN referral r ON r.id = t.referral_id
                LEFT JOIN staff_user u ON u.id = t.owner_user_id
                WHERE t.referral_id = @ReferralId
                ORDER BY t.id DESC LIMIT 1
                """, new { query.ReferralId });
            TaskView? taskView = null;
            if (task is not null)
            {
                var taskClock = TriageClock.Of(task.CreatedAt, task.TakenAt, task.OnHoldSince, task.PausedSeconds, clock.GetUtcNow(), targets.CurrentValue);
                var r = referral.Referral;
                var risks = Priority.Risks(r.SafeguardingConcern, r.InfectionStatus, r.FallsRisk, r.SelfNeglect, r.CognitionConcern, r.MentalCapacityConcern);
                taskView = new TaskView(task, taskClock, Priority.Of(task.Priority ?? task.Urgency, r.MedicallyOptimisedOn, LondonTime.Today(clock), taskClock.Waited, risks));
            }

            var earlier = await connection.QueryAsync<EarlierReferral>(
                """
                SELECT r.id AS Id, r.status AS Status, r.pathway AS Pathway, o.name AS Organisation, r.submitted_at AS SubmittedAt,
                       (SELECT t.decision FROM triage_task t WHERE t.referral_id = r.id AND t.decision IS NOT NULL ORDER BY t.id DESC LIMIT 1) AS Decision,
                       r.outcome_reason AS OutcomeReason,
                       COALESCE(s.name, st.name || ', ' || w.name || ' bed ' || b.label) AS PlacedWith, pl.status AS PlacementStatus,
                       pl.start_on AS StartOn, pl.ended_at AS EndedAt
                FROM referral r
                JOIN organisation o ON o.id = r.organisation_id
                LEFT JOIN placement pl ON pl.id = (SELECT MAX(id) FROM placement WHERE referral_id = r.id)
                LEFT JOIN service s ON s.id = pl.service_id
                LEFT JOIN bed b ON b.id = pl.bed_id
                LEFT JOIN ward w ON w.id = b.ward_id
                LEFT JOIN site st ON st.id = w.site_id
                WHERE r.person_id = @PersonId AND r.id <> @ReferralId AND r.status <> 'draft'
                ORDER BY r.submitted_at DESC
                """, new { referral.Referral.PersonId, query.ReferralId });

            var recontacts = await connection.QueryAsync<Recontact>(
                """
                SELECT rc.id AS Id, rc.reason AS Reason, rc.created_at AS CreatedAt, rc.done_at AS DoneAt, u.display_name AS DoneBy, rc.outcome AS Outcome
                FROM recontact rc LEFT JOIN staff_user u ON u.id = rc.done_by_user_id
                WHERE rc.referral_id = @ReferralId ORDER BY rc.created_at DESC
                """, new { query.ReferralId });

            // Services near the person first: home-first support is organised by locality.
            var services = await connection.QueryAsync<ServiceOption>(
                """
                SELECT s.id AS Id, s.name AS Name, s.kind AS Kind, s.locality AS Locality, s.capacity_unit AS CapacityUnit,
                       s.capacity_per_day AS CapacityPerDay, s.available_today AS AvailableToday, s.confirmed_at AS ConfirmedAt, o.id AS ProviderId, o.name AS Provider,
                       o.cqc_rating AS CqcRating, o.caution AS Caution, o.caution_note AS CautionNote
                FROM service s JOIN organisation o ON o.id = s.organisation_id
                WHERE s.active AND s.kind NOT IN ('community-hospital', 'care-home')
                ORDER BY CASE WHEN s.locality = @Locality THEN 0 ELSE 1 END, s.kind, s.name
                """, new { referral.Referral.Person.Locality });

            var colleagues = task is null ? [] : (await connection.QueryAsync<(long Id, string Name)>(
                "SELECT id, display_name FROM staff_user WHERE active AND role = @role ORDER BY display_name",
                new { role = task.Queue == "bed-bureau" ? Roles.BedBureau : Roles.Coordinator }))
                .Where(c => c.Id != work.Scope.Actor.UserId)
                .Select(c => new Colleague(c.Id, c.Name))
                .ToList();

            var reservedService = await connection.ExecuteScalarAsync<long?>(
                "SELECT id FROM placement WHERE referral_id = @ReferralId AND service_id IS NOT NULL AND status = 'reserved'", new { query.ReferralId });
            var approvals = await connection.QueryAsync<Approval>(
                """
                SELECT a.id AS Id, a.provider_id AS ProviderId, a.service_id AS ServiceId, a.status AS Status, a.reason AS Reason,
                       a.requested_by_name AS RequestedBy, a.requested_at AS RequestedAt, a.decided_by_name AS DecidedBy, a.decided_at AS DecidedAt,
                       a.decision_note AS DecisionNote,
                       (SELECT COUNT(*) FROM placement pl WHERE pl.caution_approval_id = a.id AND pl.status <> 'cancelled') AS Placements
                FROM caution_approval a WHERE a.referral_id = @ReferralId ORDER BY a.id
                """, new { query.ReferralId });
            return new Result(referral, reservedService, taskView, earlier.ToList(), recontacts.ToList(), services.ToList(), colleagues, approvals.ToList());
        }
    }
}
