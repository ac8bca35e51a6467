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
/// A team's live queue: every referral waiting for, being worked by, or paused with that team, in the
/// order of the priority rule, with its clock against target and the counts per state. A county's queue
/// is tens of referrals, so the rule runs here in code where it can explain itself, not in SQL.
/// </summary>
public static class CoordinationQueue
{
    public enum State { Waiting, Taken, AwaitingInformation }

    [AllowRoles(Roles.Coordinator, Roles.BedBureau, Roles.Manager)]
    public sealed record Query(string Queue = "coordination", State? Show = null, string? Source = null, string? Pathway = null,
        string? Locality = null, bool MineOnly = false) : IQuery<Result>;

    public sealed record Result(IReadOnlyList<Row> Rows, Counts Counts, IReadOnlyList<string> Localities, long AsOfSeq);

    public sealed record Counts(int Waiting, int Taken, int AwaitingInformation, int Breached, int RecontactDue);

    public sealed record Row
    {
        public long TaskId { get; init; }
        public long ReferralId { get; init; }
        public string PersonName { get; init; } = "";
        public string NhsNumber { get; init; } = "";
        public int Age { get; init; }
        public string? Locality { get; init; }
        public string Organisation { get; init; } = "";
        public string? Source { get; init; }
        public string? Pathway { get; init; }
        public string Urgency { get; init; } = "";
        public bool Reprioritised { get; init; }
        public DateOnly? MedicallyOptimisedOn { get; init; }
        public bool EarlyRequest { get; init; }
        public bool PossibleDuplicate { get; init; }

        /// <summary>What the form needs and the sender did not say (a referral sent over FHIR), until the referrer answers.</summary>
        public IReadOnlyList<InformationNeeded.Item> InformationNeeded { get; init; } = [];
        public IReadOnlyList<string> Risks { get; init; } = [];
        public State State { get; init; }
        public string? HeldBy { get; init; }
        public long? HeldByUserId { get; init; }
        public TriageClock Clock { get; init; } = null!;
        public Priority Priority { get; init; } = null!;
        public bool RecontactDue { get; init; }
        public DateTimeOffset QueuedAt { get; init; }
    }

    private sealed record Raw
    {
        public long TaskId { get; init; }
        public long ReferralId { get; init; }
        public string Status { get; init; } = "";
        public string? Priority { get; init; }
        public long? OwnerUserId { get; init; }
        public string? HeldBy { get; init; }
        public DateTimeOffset CreatedAt { get; init; }
        public DateTimeOffset? TakenAt { get; init; }
        public DateTimeOffset? OnHoldSince { get; init; }
        public int PausedSeconds { get; init; }
        public string GivenName { get; init; } = "";
        public string FamilyName { get; init; } = "";
        public string NhsNumber { get; init; } = "";
        public DateOnly DateOfBirth { get; init; }
        public string? Locality { get; init; }
        public string Organisation { get; init; } = "";
        public string? Source { get; init; }
        public string? Pathway { get; init; }
        public string Urgency { get; init; } = "";
        public DateOnly? MedicallyOptimisedOn { get; init; }
        public bool EarlyRequest { get; init; }
        public long? DuplicateOf { get; init; }
        public string? InformationNeeded { get; init; }
        public bool SafeguardingConcern { get; init; }
        public string? InfectionStatus { get; init; }
        public bool FallsRisk { get; init; }
        public bool SelfNeglect { get; init; }
        public bool CognitionConcern { get; init; }
        public bool MentalCapacityConcern { get; init; }
        public long OpenRecontacts { get; init; }
    }

    private static readonly string OpenTasks = Sql.Literals(TriageTasks.Open);

    public sealed class Handler(Database database, TimeProvider clock, IOptionsMonitor<CoordinationTargets> targets, Changes.ChangeFeed feed, Work work)
        : IQueryHandler<Query, Result>
    {
        public async ValueTask<Result> Handle(Query query, CancellationToken cancellationToken)
        {
            // Read the position first: anything published after it will reach the page as a change.
            var asOf = feed.Published;
            await using var connection = await database.OpenAsync(cancellationToken);
            var raw = await connection.QueryAsync<Raw>(new CommandDefinition(
                $"""
                SELECT t.id AS TaskId, t.referral_id AS ReferralId, t.status AS Status, t.priority AS Priority,
                       t.owner_user_id AS OwnerUserId, u.display_name AS HeldBy, t.created_at AS CreatedAt, t.taken_at AS TakenAt,
                       t.on_hold_since AS OnHoldSince, t.paused_seconds AS PausedSeconds,
                       p.given_name AS GivenName, p.family_name AS FamilyName, p.nhs_number AS NhsNumber, p.date_of_birth AS DateOfBirth,
                       p.locality AS Locality, o.name AS Organisation, r.source AS Source, r.pathway AS Pathway, r.urgency AS Urgency,
                       r.medically_optimised_on AS MedicallyOptimisedOn, r.early_request AS EarlyRequest, r.duplicate_of_referral_id AS DuplicateOf,
                       r.information_needed AS InformationNeeded,
                       r.safeguarding_concern AS SafeguardingConcern, r.infection_status AS InfectionStatus, r.falls_risk AS FallsRisk,
                       r.self_neglect AS SelfNeglect, r.cognition_concern AS CognitionConcern, r.mental_capacity_concern AS MentalCapacityConcern,
                       (SELECT COUNT(*) FROM recontact rc WHERE rc.triage_task_id = t.id AND rc.done_at IS NULL) AS OpenRecontacts
                FROM triage_task t
                JOIN referral r ON r.id = t.referral_id
                JOIN person p ON p.id = r.person_id
                JOIN organisation o ON o.id = r.organisation_id
                LEFT JOIN staff_user u ON u.id = t.owner_user_id
                WHERE t.queue = @Queue AND t.status IN ({OpenTasks})
                """, new { query.Queue }, cancellationToken: cancellationToken));

            var now = clock.GetUtcNow();
            var today = LondonTime.Today(clock);
            var rows = raw.Select(r => ToRow(r, now, today, targets.CurrentValue)).ToList();
            var localities = rows.Select(r => r.Locality).OfType<string>().Distinct().Order(StringComparer.Ordinal).ToList();

            // Counts follow the filters but not the state tabs, so each tab's count says what it would show.
            var me = work.Scope.Actor.UserId;
            var filtered = rows.Where(r =>
                    (query.Source is null || r.Source == query.Source)
                    && (query.Pathway is null || r.Pathway == query.Pathway)
                    && (query.Locality is null || r.Locality == query.Locality)
                    && (!query.MineOnly || r.HeldByUserId == me))
                .ToList();
            var counts = new Counts(
                filtered.Count(r => r.State == State.Waiting),
                filtered.Count(r => r.State == State.Taken),
                filtered.Count(r => r.State == State.AwaitingInformation),
                filtered.Count(r => r.Clock.Breached && !r.Clock.Paused),
                filtered.Count(r => r.RecontactDue));
            var shown = filtered
                .Where(r => query.Show is null || r.State == query.Show)
                .OrderByDescending(r => r.Priority.Score)
                .ThenBy(r => r.QueuedAt)
                .ThenBy(r => r.TaskId)
                .ToList();
            return new Result(shown, counts, localities, asOf);
        }

        private static Row ToRow(Raw r, DateTimeOffset now, DateOnly today, CoordinationTargets targets)
        {
            var risks = Priority.Risks(r.SafeguardingConcern, r.InfectionStatus, r.FallsRisk, r.SelfNeglect, r.CognitionConcern, r.MentalCapacityConcern);
            var clock = TriageClock.Of(r.CreatedAt, r.TakenAt, r.OnHoldSince, r.PausedSeconds, now, targets);
            var urgency = r.Priority ?? r.Urgency;
            return new Row
            {
                TaskId = r.TaskId,
                ReferralId = r.ReferralId,
                PersonName = $"{r.GivenName} {r.FamilyName}",
                NhsNumber = NhsNumber.Format(r.NhsNumber),
                Age = ReferralText.Age(r.DateOfBirth, today),
                Locality = r.Locality,
                Organisation = r.Organisation,
                Source = r.Source,
                Pathway = r.Pathway,
                Urgency = urgency,
                Reprioritised = r.Priority is not null && r.Priority != r.Urgency,
                MedicallyOptimisedOn = r.MedicallyOptimisedOn,
                EarlyRequest = r.EarlyRequest,
                PossibleDuplicate = r.DuplicateOf is not null,
                InformationNeeded = Referrals.InformationNeeded.Read(r.InformationNeeded),
                Risks = risks,
                State = r.Status switch
                {
                    "on-hold" => State.AwaitingInformation,
                    _ when r.OwnerUserId is not null => State.Taken,
                    _ => State.Waiting,
                },
                HeldBy = r.HeldBy,
                HeldByUserId = r.OwnerUserId,
                Clock = clock,
                Priority = Priority.Of(urgency, r.MedicallyOptimisedOn, today, clock.Waited, risks),
                RecontactDue = r.OpenRecontacts > 0,
                QueuedAt = r.CreatedAt,
            };
        }
    }
}
