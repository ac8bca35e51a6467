using System.Text.Json;
using CareCoordination.Auth;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Mediator;

namespace CareCoordination.Features.Referrals;

/// <summary>
/// One referral as its referrer follows it: everything that was sent, where it is now, what was asked and
/// answered, and every change with who and when. The same record prints as the one-page summary.
/// </summary>
public static class TrackReferral
{
    [AllowRoles(Roles.Referrer, Roles.Coordinator, Roles.BedBureau, Roles.Manager)]
    public sealed record Query(long ReferralId) : IQuery<Result>, IAudited;

    public sealed record Result(Referral Referral, IReadOnlyList<Note> Notes, IReadOnlyList<Event> Timeline)
    {
        public Note? OpenQuestion => Referral.Status == "awaiting-information"
            ? Notes.LastOrDefault(n => n.Kind == "information-request")
            : null;

        public bool CanCancel => ReferralAccess.Open.Contains(Referral.Status);
    }

    public sealed record Referral : ReferralContent
    {
        public long Id { get; init; }
        public string Status { get; init; } = "";
        public int Version { get; init; }
        public string Organisation { get; init; } = "";
        public long OrganisationId { get; init; }
        public string? ReferrerName { get; init; }
        public bool EarlyRequest { get; init; }
        public long? DuplicateOf { get; init; }
        public string? DuplicateAnswer { get; init; }
        public string? OutcomeReason { get; init; }
        public DateTimeOffset? SubmittedAt { get; init; }
        public DateTimeOffset UpdatedAt { get; init; }
        public string? Queue { get; init; }
        public string? HeldBy { get; init; }
        public string? Decision { get; init; }
        public string? PlacedWith { get; init; }
        public DateOnly? StartOn { get; init; }

        /// <summary>Whether the person agreed their carer is e-mailed (null: not asked), to which address, who recorded it and when.</summary>
        public string? CarerEmail { get; init; }
        public bool? CarerMayBeTold { get; init; }
        public string? CarerAgreementRecordedBy { get; init; }
        public DateTimeOffset? CarerAgreementRecordedAt { get; init; }

        public long PersonId { get; init; }

        /// <summary>
        /// For the coordination centre, the whole record as the store knows them now; for the referring organisation, the
        /// person as this referral described them, whatever another organisation has said since.
        /// </summary>
        public PersonRecord Person { get; init; } = null!;

        public string PersonName => Person.Name;
    }

    public sealed record Note
    {
        public string Kind { get; init; } = "";
        public string AuthorName { get; init; } = "";
        public string Text { get; init; } = "";
        public DateTimeOffset At { get; init; }
    }

    public sealed record Event
    {
        public long Seq { get; init; }
        public DateTimeOffset At { get; init; }
        public string Kind { get; init; } = "";
        public string? Actor { get; init; }

        /// <summary>The words a change carries for its timeline entry (a carer's message: to whom, or why not), else null.</summary>
        public string? Detail { get; init; }
    }

    private sealed record ChangeRow
    {
        public long Seq { get; init; }
        public DateTimeOffset At { get; init; }
        public string Kind { get; init; } = "";
        public string? Actor { get; init; }
        public string? Data { get; init; }

        // Only carers' messages put words in their data for the timeline; the rest of a change's data is not for display.
        public Event ToEvent() => new() { Seq = Seq, At = At, Kind = Kind, Actor = Actor, Detail = DetailOf() };

        private string? DetailOf()
        {
            if (!Kind.StartsWith("carer-message.", StringComparison.Ordinal) || Data is null)
            {
                return null;
            }
            using var data = JsonDocument.Parse(Data);
            return data.RootElement.TryGetProperty("detail", out var detail) ? detail.GetString() : null;
        }
    }

    /// <summary>
    /// The referral's own changes and those of its tasks, placements, cautions' approvals and carer's messages: each kind
    /// found by its records' ids, one seek of ix_change_entity per record. As one OR of "entity_id IN (subquery)" terms,
    /// PostgreSQL read the index by kind alone, every task's and every placement's change in the store (millions at scale).
    /// CROSS JOIN makes SQLite, which keeps no statistics here, start from the referral's records (PostgreSQL plans it as any join).
    /// </summary>
    internal static readonly string Timeline =
        """
        SELECT c.seq AS Seq, c.at AS At, c.kind AS Kind, c.actor AS Actor, c.data AS Data FROM change c
        WHERE c.entity_type = 'referral' AND c.entity_id = @ReferralId
        """
        + string.Concat(new[] { "triage_task", "placement", "caution_approval", "carer_message" }.Select(kind => $"""

            UNION ALL
            SELECT c.seq, c.at, c.kind, c.actor, c.data FROM {kind} x CROSS JOIN change c
            WHERE x.referral_id = @ReferralId AND c.entity_type = '{kind}' AND c.entity_id = x.id
            """))
        + "\nORDER BY 1";

    public sealed class Handler(Database database, Work work) : IQueryHandler<Query, Result>
    {
        public async ValueTask<Result> Handle(Query query, CancellationToken cancellationToken)
        {
            await using var connection = await database.OpenAsync(cancellationToken);
            var person = ReferralAccess.SeesEveryOrganisation(work.Scope.Actor) ? PersonRecord.Columns : PersonRecord.AsReferredColumns;
            // The person's columns come last, from their id on: Dapper splits the row there.
            var referral = (await connection.QueryAsync<Referral, PersonRecord, Referral>(
                $"""
                SELECT r.id AS Id, r.status AS Status, r.version AS Version, o.name AS Organisation, ru.display_name AS ReferrerName,
                       {ReferralContent.Columns}, r.early_request AS EarlyRequest, r.duplicate_of_referral_id AS DuplicateOf,
                       r.duplicate_answer AS DuplicateAnswer, r.outcome_reason AS OutcomeReason, r.submitted_at AS SubmittedAt,
                       r.updated_at AS UpdatedAt, r.organisation_id AS OrganisationId,
                       t.queue AS Queue, tu.display_name AS HeldBy, t.decision AS Decision,
                       COALESCE(s.name, st.name || ', ' || w.name || ' bed ' || b.label) AS PlacedWith, pl.start_on AS StartOn,
                       rc.email AS CarerEmail, rc.agreed AS CarerMayBeTold, rc.recorded_by AS CarerAgreementRecordedBy,
                       rc.recorded_at AS CarerAgreementRecordedAt,
                       r.person_id AS PersonId,
                       {person}
                FROM referral r
                JOIN person p ON p.id = r.person_id
                JOIN referral_person rp ON rp.referral_id = r.id
                JOIN organisation o ON o.id = r.organisation_id
                LEFT JOIN staff_user ru ON ru.id = r.referrer_user_id
                LEFT JOIN triage_task t ON t.id = (SELECT MAX(id) FROM triage_task WHERE referral_id = r.id)
                LEFT JOIN staff_user tu ON tu.id = t.owner_user_id AND t.status IN ('in-progress', 'on-hold')
                LEFT JOIN placement pl ON pl.id = (SELECT MAX(id) FROM placement WHERE referral_id = r.id AND status <> 'cancelled')
                LEFT JOIN service s ON s.id = pl.service_id
                LEFT JOIN bed b ON b.id = pl.bed_id
                LEFT JOIN ward w ON w.id = b.ward_id
                LEFT JOIN site st ON st.id = w.site_id
                LEFT JOIN referral_carer rc ON rc.referral_id = r.id
                WHERE r.id = @ReferralId
                """, (referral, person) => referral with { Person = person }, new { query.ReferralId }, splitOn: "Id")).SingleOrDefault();
            if (referral is null || !ReferralAccess.MaySee(work.Scope.Actor, referral.OrganisationId))
            {
                throw new NotFound($"Referral {query.ReferralId}");
            }
            work.Scope.Touch("referral", referral.Id, referral.PersonId);

            var notes = await connection.QueryAsync<Note>(
                "SELECT kind AS Kind, author_name AS AuthorName, text AS Text, at AS At FROM referral_note WHERE referral_id = @ReferralId ORDER BY at, id",
                new { query.ReferralId });
            var timeline = await connection.QueryAsync<ChangeRow>(Timeline, new { query.ReferralId });
            return new Result(referral, notes.ToList(), timeline.Select(e => e.ToEvent()).ToList());
        }
    }
}
