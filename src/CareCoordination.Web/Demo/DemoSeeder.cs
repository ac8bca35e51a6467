using System.Data.Common;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using CareCoordination.Auth;
using CareCoordination.Domain;
using CareCoordination.Features.Coordination;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;

namespace CareCoordination.Demo;

public sealed record DemoCredentials(string Password, string PartnerSecret);

public enum DemoSeedOutcome { Seeded, AlreadySeeded, RefusedRealData }

/// <summary>
/// Fills an empty store with the fictional county of Westmoor: organisations, staff, sites, beds,
/// services and two weeks (Demo:HistoryDays) of referral history ending now, so every queue, board and report has
/// something true-looking to show. All of it in one transaction, or nothing; never into a store
/// that already holds real data.
/// </summary>
public sealed class DemoSeeder(Database database, TimeProvider clock, ILogger<DemoSeeder> logger)
{
    public const string MarkerKey = "demo.seeded-at";

    private const string ReadMarker = "SELECT value FROM app_setting WHERE key = @Key";

    private const string HasRealData = """
        SELECT CASE WHEN EXISTS (SELECT 1 FROM organisation) OR EXISTS (SELECT 1 FROM staff_user)
                      OR EXISTS (SELECT 1 FROM person) OR EXISTS (SELECT 1 FROM referral) OR EXISTS (SELECT 1 FROM referral_draft)
                    THEN 1 ELSE 0 END
        """;

    /// <summary>Two weeks: every board and report has something to show, and a fresh demo starts in about two seconds.</summary>
    public const int DefaultHistoryDays = 14;

    public Task<DemoSeedOutcome> SeedAsync(DemoCredentials credentials, CancellationToken cancellationToken = default) =>
        SeedAsync(credentials, DefaultHistoryDays, cancellationToken);

    /// <param name="historyDays">Days of referral history ending now (Demo:HistoryDays); the forecast's backtest replays six weeks.</param>
    public async Task<DemoSeedOutcome> SeedAsync(DemoCredentials credentials, int historyDays, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(credentials);
        ArgumentOutOfRangeException.ThrowIfLessThan(historyDays, 7);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(historyDays, 63);
        var started = Stopwatch.GetTimestamp();

        // Every restart of a seeded store ends here: a read, no wait for the writer's lock (issue 14, restart time). The
        // marker is never removed, so what this read sees needs no lock.
        await using (var reader = await database.OpenAsync(cancellationToken))
        {
            if (await reader.ExecuteScalarAsync<string?>(new CommandDefinition(ReadMarker, new { Key = MarkerKey }, cancellationToken: cancellationToken)) is not null)
            {
                return DemoSeedOutcome.AlreadySeeded;
            }
        }
        await using var connection = await database.OpenForBulkWriteAsync(cancellationToken);
        await using var transaction = await database.BeginWriteAsync(connection, cancellationToken);
        // Change rows are written below; on PostgreSQL this also makes a second node that starts at the
        // same moment wait here and then find the marker, instead of failing on a unique code.
        if (database.ChangeWriterLock is { } lockSql)
        {
            await connection.ExecuteAsync(new CommandDefinition(lockSql, transaction: transaction, cancellationToken: cancellationToken));
        }

        var marker = await connection.ExecuteScalarAsync<string?>(
            new CommandDefinition(ReadMarker, new { Key = MarkerKey }, transaction, cancellationToken: cancellationToken));
        if (marker is not null)
        {
            return DemoSeedOutcome.AlreadySeeded;
        }
        var hasRealData = await connection.ExecuteScalarAsync<int>(
            new CommandDefinition(HasRealData, transaction: transaction, cancellationToken: cancellationToken));
        if (hasRealData != 0)
        {
            logger.LogWarning("Demo data not seeded: the store already holds organisations, staff, people or referrals that the demo did not write.");
            return DemoSeedOutcome.RefusedRealData;
        }

        var now = clock.GetUtcNow().ToUniversalTime();
        // PBKDF2 is slow on purpose: one hash shared by every demo account, one for the partner, each on a core of its own while
        // the county is planned (about 0.2 s of a cold start one after the other: issue 14).
        var passwordHash = Task.Run(() => Passwords.Hash(credentials.Password), cancellationToken);
        var secretHash = Task.Run(() => Passwords.Hash(credentials.PartnerSecret), cancellationToken);
        var county = new County(now, historyDays).Build();
        await WriteAsync(connection, transaction, county, now, (await passwordHash, await secretHash), cancellationToken);
        await connection.ExecuteAsync(new CommandDefinition(
            "INSERT INTO app_setting (key, value) VALUES (@Key, @Value)",
            new { Key = MarkerKey, Value = now.UtcDateTime.ToString("O", CultureInfo.InvariantCulture) },
            transaction, cancellationToken: cancellationToken));
        await transaction.CommitAsync(cancellationToken);

        logger.LogInformation(
            "Seeded the {County} demo in {Elapsed} ms: {Organisations} organisations, {Users} staff, {Sites} sites, {Beds} beds, {Services} services, {People} people, {Referrals} referrals, {Tasks} triage tasks, {Placements} placements, {Notes} notes, {Changes} changes",
            DemoCounty.Name, (long)Stopwatch.GetElapsedTime(started).TotalMilliseconds, county.Organisations.Count, county.Users.Count,
            county.Sites.Count, county.Beds.Count, county.Services.Count, county.People.Count, county.Referrals.Count,
            county.Tasks.Count, county.Placements.Count, county.Notes.Count, county.Changes.Count);
        return DemoSeedOutcome.Seeded;
    }

    // ---- Writing: parents first, ids from the store (PostgreSQL identities need not start at 1): see SeedWrites. ----

    private const string InsertOrganisation = """
        INSERT INTO organisation (code, name, kind, locality, cqc_rating, caution, caution_note, active, created_at)
        VALUES (@Code, @Name, @Kind, @Locality, @CqcRating, @Caution, @CautionNote, @Active, @CreatedAt)
        """;

    private const string InsertUser = """
        INSERT INTO staff_user (username, display_name, email, password_hash, role, organisation_id, active, created_at)
        VALUES (@Username, @DisplayName, @Email, @PasswordHash, @Role, @OrganisationId, @Active, @CreatedAt)
        """;

    private const string InsertPartner = """
        INSERT INTO partner_client (client_id, name, organisation_id, secret_hash, scopes, active, created_at)
        VALUES (@ClientId, @Name, @OrganisationId, @SecretHash, @Scopes, @Active, @CreatedAt)
        """;

    private const string InsertSite = """
        INSERT INTO site (organisation_id, name, kind, locality, postcode, active)
        VALUES (@OrganisationId, @Name, @Kind, @Locality, @Postcode, @Active)
        """;

    private const string InsertWard = "INSERT INTO ward (site_id, name) VALUES (@SiteId, @Name)";

    private const string InsertHospitalSite = """
        INSERT INTO hospital_site (organisation_id, code, name, active) VALUES (@OrganisationId, @Code, @Name, @Active)
        """;

    private const string InsertBed = """
        INSERT INTO bed (ward_id, label, bed_type, allowed_sex, status, closed_reason, confirmed_at, version, single_room)
        VALUES (@WardId, @Label, @BedType, @AllowedSex, @Status, @ClosedReason, @ConfirmedAt, @Version, @SingleRoom)
        """;

    private const string InsertService = """
        INSERT INTO service (organisation_id, name, kind, locality, capacity_unit, capacity_per_day, available_today, confirmed_at, active, version)
        VALUES (@OrganisationId, @Name, @Kind, @Locality, @CapacityUnit, @CapacityPerDay, @AvailableToday, @ConfirmedAt, @Active, @Version)
        """;

    private const string InsertPerson = """
        INSERT INTO person (nhs_number, given_name, family_name, date_of_birth, sex, address_line, postcode, locality, ethnicity,
                            interpreter_language, easy_read, bsl, lives_alone, carer_name, carer_contact, carer_wants_assessment,
                            gp_practice_code, version, created_at, updated_at)
        VALUES (@NhsNumber, @GivenName, @FamilyName, @DateOfBirth, @Sex, @AddressLine, @Postcode, @Locality, @Ethnicity,
                @InterpreterLanguage, @EasyRead, @Bsl, @LivesAlone, @CarerName, @CarerContact, @CarerWantsAssessment,
                @GpPracticeCode, @Version, @CreatedAt, @UpdatedAt)
        """;

    private const string InsertReferral = """
        INSERT INTO referral (person_id, organisation_id, referrer_user_id, partner_client_id, idempotency_key, status, source, pathway,
                              urgency, hospital_site_id, ward, bed_label, admitted_on, medically_optimised_on, expected_discharge_on, needs, strengths, goals,
                              safeguarding_concern, infection_status, falls_risk, self_neglect, cognition_concern, mental_capacity_concern,
                              best_interests_decision, self_funding, consent_to_share, consent_given_by, lawful_reason, person_wishes,
                              family_expectations, staff_expectations, summary, early_request, outcome_reason, version,
                              created_at, submitted_at, updated_at, triaged_at, first_decided_at, first_decision, first_decision_queue,
                              first_started_at, pathway_intended, discharged_at, discharge_recorded_from, pathway_at_discharge,
                              destination_at_discharge, destination_care_level)
        VALUES (@PersonId, @OrganisationId, @ReferrerUserId, @PartnerClientId, @IdempotencyKey, @Status, @Source, @Pathway,
                @Urgency, @HospitalSiteId, @Ward, @BedLabel, @AdmittedOn, @MedicallyOptimisedOn, @ExpectedDischargeOn, @Needs, @Strengths, @Goals,
                @SafeguardingConcern, @InfectionStatus, @FallsRisk, @SelfNeglect, @CognitionConcern, @MentalCapacityConcern,
                @BestInterestsDecision, @SelfFunding, @ConsentToShare, @ConsentGivenBy, @LawfulReason, @PersonWishes,
                @FamilyExpectations, @StaffExpectations, @Summary, @EarlyRequest, @OutcomeReason, @Version,
                @CreatedAt, @SubmittedAt, @UpdatedAt, @TriagedAt, @FirstDecidedAt, @FirstDecision, @FirstDecisionQueue,
                @FirstStartedAt, @PathwayIntended, @DischargedAt, @DischargeRecordedFrom, @PathwayAtDischarge,
                @DestinationAtDischarge, @DestinationCareLevel)
        """;

    /// <summary>
    /// In the demo every referral of a person said the same about them, so each keeps the record; each made the next version,
    /// as a submission does, and the record is at the version its last referral made (written with the person).
    /// </summary>
    private const string InsertWhatEachReferralSaid = """
        INSERT INTO referral_person (referral_id, person_id, person_version, nhs_number, given_name, family_name, date_of_birth, sex,
            address_line, postcode, locality, ethnicity, interpreter_language, easy_read, bsl, lives_alone,
            carer_name, carer_relationship, carer_contact, carer_wants_assessment, gp_practice_code, recorded_at)
        SELECT r.id, p.id, (SELECT COUNT(*) FROM referral e WHERE e.person_id = r.person_id AND e.id <= r.id),
            p.nhs_number, p.given_name, p.family_name, p.date_of_birth, p.sex,
            p.address_line, p.postcode, p.locality, p.ethnicity, p.interpreter_language, p.easy_read, p.bsl, p.lives_alone,
            p.carer_name, p.carer_relationship, p.carer_contact, p.carer_wants_assessment, p.gp_practice_code, COALESCE(r.submitted_at, r.created_at)
        FROM referral r JOIN person p ON p.id = r.person_id
        """;

    private const string InsertDistrict = "INSERT INTO postcode_district (district, locality) VALUES (@District, @Locality)";

    private const string InsertDraft = """
        INSERT INTO referral_draft (organisation_id, author_user_id, author_name, person_label, form, version, created_at, updated_at)
        VALUES (@OrganisationId, @AuthorUserId, @AuthorName, @PersonLabel, @Form, 1, @CreatedAt, @CreatedAt)
        """;

    /// <summary>A draft as a busy referrer leaves it: the person and the ask filled in, the rest still to do.</summary>
    private static ReferralForm DraftForm(Referral r) => new()
    {
        NhsNumber = NhsNumber.Format(r.Person.NhsNumber),
        GivenName = r.Person.GivenName,
        FamilyName = r.Person.FamilyName,
        DateOfBirth = r.Person.DateOfBirth,
        Sex = r.Person.Sex,
        AddressLine = r.Person.AddressLine,
        Postcode = r.Person.Postcode,
        Ethnicity = r.Person.Ethnicity,
        LivesAlone = r.Person.LivesAlone,
        CarerName = r.Person.CarerName,
        CarerContact = r.Person.CarerContact,
        Source = r.Source,
        Pathway = r.Pathway,
        Urgency = r.Urgency,
        Ward = r.Ward,
        BedLabel = r.BedLabel,
        AdmittedOn = r.AdmittedOn,
        MedicallyOptimisedOn = r.MedicallyOptimisedOn,
        Needs = JsonSerializer.Deserialize<List<string>>(r.Needs) ?? [],
        Strengths = r.Strengths,
    };

    private const string InsertTask = """
        INSERT INTO triage_task (referral_id, queue, status, business_status, owner_user_id, taken_at, decision, reason, version,
                                 created_at, updated_at, completed_at, on_hold_since, paused_seconds, referring_organisation_id, owner_organisation_id)
        VALUES (@ReferralId, @Queue, @Status, @BusinessStatus, @OwnerUserId, @TakenAt, @Decision, @Reason, @Version,
                @CreatedAt, @UpdatedAt, @CompletedAt, @OnHoldSince, @PausedSeconds, @ReferringOrganisationId, @OwnerOrganisationId)
        """;

    private const string InsertPlacement = """
        INSERT INTO placement (referral_id, service_id, bed_id, status, start_on, reserved_until, started_at, ended_at, created_at, referral_submitted_at)
        VALUES (@ReferralId, @ServiceId, @BedId, @Status, @StartOn, @ReservedUntil, @StartedAt, @EndedAt, @CreatedAt, @ReferralSubmittedAt)
        """;

    private const string InsertNote = """
        INSERT INTO referral_note (referral_id, author_user_id, author_name, kind, text, at)
        VALUES (@ReferralId, @AuthorUserId, @AuthorName, @Kind, @Text, @At)
        """;

    private const string InsertChange = """
        INSERT INTO change (at, kind, entity_type, entity_id, organisation_id, actor, data)
        VALUES (@At, @Kind, @EntityType, @EntityId, @OrganisationId, @Actor, @Data)
        """;

    private const string InsertDelay = """
        INSERT INTO discharge_delay (referral_id, list_name, list_version, code, from_at, to_at, recorded_by_user_id, recorded_by_name, recorded_at)
        VALUES (@ReferralId, @ListName, @ListVersion, @Code, @From, @To, @UserId, @RecordedBy, @RecordedAt)
        """;

    private static async Task WriteAsync(DbConnection connection, DbTransaction transaction, County county, DateTimeOffset now,
        (string Password, string PartnerSecret) hashes, CancellationToken cancellationToken)
    {
        var writes = new SeedWrites(connection, transaction, cancellationToken);
        await writes.InsertAsync(InsertOrganisation, county.Organisations, o => new
        {
            o.Spec.Code, o.Spec.Name, o.Spec.Kind, o.Spec.Locality, o.Spec.CqcRating, o.Spec.Caution, o.Spec.CautionNote,
            Active = true, o.CreatedAt,
        }, (o, id) => o.Id = id);
        await writes.InsertAsync(InsertUser, county.Users, u => new
        {
            u.Spec.Username, u.Spec.DisplayName, u.Email, PasswordHash = hashes.Password, u.Spec.Role, OrganisationId = u.Organisation.Id,
            Active = true, u.CreatedAt,
        }, (u, id) => u.Id = id);
        var partner = county.Partner;
        await writes.InsertAsync(InsertPartner, [partner], p => new
        {
            ClientId = DemoCounty.PartnerClientId, Name = DemoCounty.PartnerName, OrganisationId = p.Organisation.Id,
            SecretHash = hashes.PartnerSecret, Scopes = DemoCounty.PartnerScopes, Active = true, p.CreatedAt,
        }, (p, id) => p.Id = id);
        await writes.InsertAsync(InsertHospitalSite, county.HospitalSites, s => new
        {
            OrganisationId = s.Owner.Id, s.Spec.Code, s.Spec.Name, Active = true,
        }, (s, id) => s.Id = id);
        await writes.InsertAsync(InsertSite, county.Sites, s => new
        {
            OrganisationId = s.Owner.Id, s.Spec.Name, s.Spec.Kind, s.Spec.Locality, s.Spec.Postcode, Active = true,
        }, (s, id) => s.Id = id);
        await writes.InsertAsync(InsertWard, county.Wards, w => new { SiteId = w.Site.Id, w.Name }, (w, id) => w.Id = id);
        await writes.InsertAsync(InsertBed, county.Beds, b => new
        {
            WardId = b.Ward.Id, b.Label, BedType = b.Type, b.AllowedSex, b.Status, b.ClosedReason, b.ConfirmedAt, b.Version, b.SingleRoom,
        }, (b, id) => b.Id = id);
        // Each bed's state as the seed leaves it, held since it was last confirmed, as migration 0038 records beds already there.
        await connection.ExecuteAsync(new CommandDefinition(
            "INSERT INTO bed_state (bed_id, from_at, version, status, bed_type) SELECT id, confirmed_at, version, status, bed_type FROM bed",
            transaction: transaction, cancellationToken: cancellationToken));
        await writes.InsertAsync(InsertService, county.Services, s => new
        {
            OrganisationId = s.Owner.Id, s.Spec.Name, s.Spec.Kind, s.Spec.Locality, CapacityUnit = s.Spec.Unit,
            CapacityPerDay = s.Spec.Capacity, s.AvailableToday, s.ConfirmedAt, Active = true, Version = 1,
        }, (s, id) => s.Id = id);
        // What the commands keep beside what they write (a referral's triage and first decision, a task's owner, a person's
        // version, the discharges), worked out here so that each row is written once, whole (issue 14, cold start: a pass of
        // UPDATEs over every referral rewrote it and its fifteen indexes). Seed_WritesWhatTheCommandsKeep... checks them against
        // the commands' own rules.
        var written = county.Referrals.Where(r => r.Status != "draft").ToList();
        var tasksOf = county.Tasks.ToLookup(t => t.Referral);
        var placementsOf = county.Placements.ToLookup(p => p.Referral);
        var (discharges, delays) = await DemoDischarges.PlanAsync(connection, transaction, now, written.Select((r, i) =>
        {
            // The latest placement not cancelled, as the flows read it.
            var latest = placementsOf[r].LastOrDefault(p => p.Status != "cancelled");
            return (r, new DemoDischarges.Stay(i + 1, r.Source, r.Pathway, r.Status, r.MedicallyOptimisedOn, latest?.StartedAt,
                latest?.Service?.Spec.Kind, latest?.Bed?.Ward.Site.Spec.Kind));
        }));
        await writes.InsertAsync(InsertPerson, county.People, p =>
        {
            var made = p.Referrals.Where(r => r.Status != "draft").ToList();
            return new
            {
                p.NhsNumber, p.GivenName, p.FamilyName, p.DateOfBirth, p.Sex, p.AddressLine, p.Postcode, Locality = p.Locality.Name,
                p.Ethnicity, p.InterpreterLanguage, p.EasyRead, p.Bsl, p.LivesAlone, p.CarerName, p.CarerContact,
                p.CarerWantsAssessment, GpPracticeCode = p.Locality.GpPractice, Version = Math.Max(1, made.Count), p.CreatedAt,
                UpdatedAt = made.Count == 0 ? p.CreatedAt : made.Max(r => r.SubmittedAt ?? r.CreatedAt),
            };
        }, (p, id) => p.Id = id);
        await writes.InsertAsync(InsertDistrict, DemoCounty.Localities.SelectMany(l => l.Districts.Select(d => (District: d, Locality: l.Name))),
            d => new { d.District, d.Locality });
        // A draft is a form in progress, kept apart from referrals until it is sent.
        await writes.InsertAsync(InsertDraft, county.Referrals.Where(r => r.Status == "draft"), d =>
        {
            var form = DraftForm(d);
            return new
            {
                OrganisationId = d.Organisation.Id, AuthorUserId = d.Responder.Id, AuthorName = d.Responder.Spec.DisplayName,
                PersonLabel = form.PersonLabel(), Form = JsonSerializer.Serialize(form, JsonDefaults.Options), d.CreatedAt,
            };
        }, (d, id) => d.Id = id);
        await writes.InsertAsync(InsertReferral, written, r =>
        {
            var tasks = tasksOf[r];
            // Triage ends with the coordination centre's first decision (TriageTasks); the first decision that counts, of equal
            // times the task made first, and the first start of any placement (ReferralFirsts).
            var triagedAt = tasks.Where(t => t.Queue == "coordination" && t.Status is "completed" or "rejected").Min(t => t.CompletedAt);
            var first = tasks.Where(t => t.CompletedAt is not null
                    && ((t.Status == "completed" && t.Decision?.StartsWith("accepted", StringComparison.Ordinal) == true) || t.Status == "rejected"))
                .OrderBy(t => t.CompletedAt).FirstOrDefault();
            var discharge = discharges[r];
            return new
            {
                PersonId = r.Person.Id, OrganisationId = r.Organisation.Id, ReferrerUserId = r.Referrer?.Id,
                PartnerClientId = r.ViaPartner ? partner.Id : (long?)null, r.IdempotencyKey, r.Status, r.Source, r.Pathway,
                r.Urgency, HospitalSiteId = r.HospitalSite?.Id, r.Ward, r.BedLabel, r.AdmittedOn, r.MedicallyOptimisedOn, r.ExpectedDischargeOn, r.Needs, r.Strengths, r.Goals,
                r.SafeguardingConcern, r.InfectionStatus, r.FallsRisk, r.SelfNeglect, r.CognitionConcern, r.MentalCapacityConcern,
                r.BestInterestsDecision, r.SelfFunding, r.ConsentToShare, r.ConsentGivenBy, r.LawfulReason, r.PersonWishes,
                r.FamilyExpectations, r.StaffExpectations, r.Summary, r.EarlyRequest, r.OutcomeReason, r.Version,
                r.CreatedAt, r.SubmittedAt, r.UpdatedAt, TriagedAt = triagedAt, FirstDecidedAt = first?.CompletedAt, FirstDecision = first?.Decision,
                FirstDecisionQueue = first?.Queue, FirstStartedAt = placementsOf[r].Min(p => p.StartedAt), discharge.PathwayIntended,
                DischargedAt = discharge.LeftAt, DischargeRecordedFrom = discharge.RecordedFrom, discharge.PathwayAtDischarge,
                DestinationAtDischarge = discharge.Destination, DestinationCareLevel = discharge.CareLevel,
            };
        }, (r, id) => r.Id = id);
        await connection.ExecuteAsync(new CommandDefinition(InsertWhatEachReferralSaid, transaction: transaction, cancellationToken: cancellationToken));
        // A task's owner as TriageTasks keeps it: the organisation of whoever holds it; else the bed bureau, or the coordination
        // centre where the person lives.
        var bedBureau = county.Organisations.Where(o => o.Spec.Kind == "bed-bureau").Select(o => (long?)o.Id).Min();
        var centreOf = county.Organisations.Where(o => o.Spec.Kind == "coordination-centre" && o.Spec.Locality is not null)
            .GroupBy(o => o.Spec.Locality!).ToDictionary(g => g.Key, g => g.Min(o => o.Id));
        await writes.InsertAsync(InsertTask, county.Tasks, t => new
        {
            ReferralId = t.Referral.Id, t.Queue, t.Status, BusinessStatus = (string?)null, OwnerUserId = t.Owner?.Id, t.TakenAt,
            t.Decision, t.Reason, t.Version, t.CreatedAt, t.UpdatedAt, t.CompletedAt, t.OnHoldSince, t.PausedSeconds,
            ReferringOrganisationId = t.Referral.Organisation.Id,
            OwnerOrganisationId = t.Owner?.Organisation.Id ?? (t.Queue == "bed-bureau" ? bedBureau
                : t.Queue == "coordination" && centreOf.TryGetValue(t.Referral.Person.Locality.Name, out var centre) ? centre : null),
        }, (t, id) => t.Id = id);
        await writes.InsertAsync(InsertPlacement, county.Placements, p => new
        {
            ReferralId = p.Referral.Id, ServiceId = p.Service?.Id, BedId = p.Bed?.Id, p.Status, p.StartOn, p.ReservedUntil,
            p.StartedAt, p.EndedAt, p.CreatedAt, ReferralSubmittedAt = p.Referral.SubmittedAt,
        }, (p, id) => p.Id = id);
        await writes.InsertAsync(InsertNote, county.Notes, n => new
        {
            ReferralId = n.Referral.Id, AuthorUserId = n.Author.Id, AuthorName = n.Author.Spec.DisplayName, n.Kind, n.Text, n.At,
        });
        // The reasons for each wait past the discharge ready date, recorded by the coordination centre.
        var recorder = county.Users.FirstOrDefault(u => u.Spec.Role == "coordinator");
        await writes.InsertAsync(InsertDelay, delays, d => new
        {
            ReferralId = d.Referral.Id, d.Delay.ListName, d.Delay.ListVersion, d.Delay.Code, d.Delay.From, d.Delay.To, UserId = recorder?.Id,
            RecordedBy = recorder?.Spec.DisplayName ?? "Coordination centre", d.Delay.RecordedAt,
        });

        // seq is the order live screens resync by, so it must follow time: oldest first.
        await writes.InsertAsync(InsertChange, county.Changes.OrderBy(c => c.At), c => new
        {
            c.At, c.Kind, c.EntityType, EntityId = c.Entity.Id, OrganisationId = c.Organisation.Id, c.Actor,
            Data = c.Data is null ? null : JsonSerializer.Serialize(c.Data(), JsonDefaults.Options),
        }, key: "seq");
    }

    // ---- The in-memory county: everything decided before the first INSERT. ----

    private abstract class Row
    {
        public long Id { get; set; }
    }

    private sealed class Organisation(DemoCounty.OrganisationSpec spec, DateTimeOffset createdAt) : Row
    {
        public DemoCounty.OrganisationSpec Spec { get; } = spec;
        public DateTimeOffset CreatedAt { get; } = createdAt;
        public string Code => Spec.Code;
    }

    private sealed class StaffUser(DemoCounty.UserSpec spec, Organisation organisation, DateTimeOffset createdAt) : Row
    {
        public DemoCounty.UserSpec Spec { get; } = spec;
        public Organisation Organisation { get; } = organisation;
        public DateTimeOffset CreatedAt { get; } = createdAt;
        public string Email => Spec.Username + "@westmoor.example";
        public string Username => Spec.Username;
    }

    private sealed class PartnerClient(Organisation organisation, DateTimeOffset createdAt) : Row
    {
        public Organisation Organisation { get; } = organisation;
        public DateTimeOffset CreatedAt { get; } = createdAt;
    }

    private sealed class HospitalSite(DemoCounty.HospitalSiteSpec spec, Organisation owner) : Row
    {
        public DemoCounty.HospitalSiteSpec Spec { get; } = spec;
        public Organisation Owner { get; } = owner;
    }

    private sealed class Site(DemoCounty.SiteSpec spec, Organisation owner) : Row
    {
        public DemoCounty.SiteSpec Spec { get; } = spec;
        public Organisation Owner { get; } = owner;
        // A red caution is an embargo: no new placements there.
        public bool Embargoed => Owner.Spec.Caution == "red";
    }

    private sealed class Ward(Site site, string name) : Row
    {
        public Site Site { get; } = site;
        public string Name { get; } = name;
    }

    private sealed class Bed(Ward ward, string label, string type, string allowedSex) : Row
    {
        private readonly List<(DateTimeOffset From, DateTimeOffset? To)> _held = [];

        public Ward Ward { get; } = ward;
        public string Label { get; } = label;
        public string Type { get; } = type;
        public string AllowedSex { get; } = allowedSex;
        public string Status { get; set; } = "available";
        public string? ClosedReason { get; set; }
        public DateTimeOffset ConfirmedAt { get; set; }
        public int Version { get; set; } = 1;
        public bool HasLivePlacement { get; set; }
        public bool SingleRoom { get; init; }

        public bool IsFree(DateTimeOffset from, DateTimeOffset? to) =>
            _held.TrueForAll(h => (to is { } end && end <= h.From) || (h.To is { } heldEnd && heldEnd <= from));

        public void Hold(DateTimeOffset from, DateTimeOffset? to) => _held.Add((from, to));

        /// <summary>A placement event is also a bed update: it confirms the bed's state at that time.</summary>
        public void Touch(DateTimeOffset at)
        {
            Version++;
            if (at > ConfirmedAt)
            {
                ConfirmedAt = at;
            }
        }
    }

    private sealed class Service(DemoCounty.ServiceSpec spec, Organisation owner) : Row
    {
        public DemoCounty.ServiceSpec Spec { get; } = spec;
        public Organisation Owner { get; } = owner;
        public int AvailableToday { get; set; }
        public DateTimeOffset ConfirmedAt { get; set; }
    }

    private sealed class Person : Row
    {
        public required DemoCounty.Locality Locality { get; init; }
        public required string NhsNumber { get; init; }
        public required string GivenName { get; init; }
        public required string FamilyName { get; init; }
        public required DateOnly DateOfBirth { get; init; }
        public required string Sex { get; init; }
        public required string AddressLine { get; init; }
        public required string Postcode { get; init; }
        public required string Ethnicity { get; init; }
        public string? InterpreterLanguage { get; init; }
        public bool EasyRead { get; init; }
        public bool Bsl { get; init; }
        public bool LivesAlone { get; init; }
        public string? CarerName { get; init; }
        public string? CarerContact { get; init; }
        public bool CarerWantsAssessment { get; init; }
        public DateTimeOffset CreatedAt { get; init; }
        public List<Referral> Referrals { get; } = [];
    }

    /// <summary>Where triage sends the referral: a community service, or a bed of one of these types.</summary>
    private sealed record Route(Service? Service, string[] BedTypes, string? RedirectReason);

    private enum StepKind
    {
        Drafted, Submitted, Taken, InformationRequested, InformationReceived, RedirectedToBedBureau, HandedBack,
        Accepted, Placed, Completed, Declined, Cancelled,
    }

    /// <summary>One transition in a referral's life; By is null when a partner system did it.</summary>
    private sealed record Step(StepKind Kind, DateTimeOffset At, StaffUser? By, string Actor);

    private sealed class Referral : Row
    {
        public required Person Person { get; init; }
        public required Organisation Organisation { get; init; }
        public StaffUser? Referrer { get; init; }
        // Who answers questions and cancels for the referring organisation: the referrer, or for an
        // EPR referral a member of the trust's discharge team.
        public required StaffUser Responder { get; init; }
        public bool ViaPartner { get; init; }
        public string? IdempotencyKey { get; init; }
        public required string Source { get; init; }
        public required string Pathway { get; init; }
        public required string Urgency { get; init; }
        public string? Ward { get; init; }
        public string? BedLabel { get; init; }
        public HospitalSite? HospitalSite { get; init; }
        public DateOnly? AdmittedOn { get; init; }
        public DateOnly? MedicallyOptimisedOn { get; init; }
        public DateOnly? ExpectedDischargeOn { get; init; }
        public bool EarlyRequest { get; init; }
        public required string Needs { get; init; }
        public string? Strengths { get; init; }
        public string? Goals { get; init; }
        public bool SafeguardingConcern { get; init; }
        public string? InfectionStatus { get; init; }
        public bool FallsRisk { get; init; }
        public bool SelfNeglect { get; init; }
        public bool CognitionConcern { get; init; }
        public bool MentalCapacityConcern { get; init; }
        public string? BestInterestsDecision { get; init; }
        public bool SelfFunding { get; init; }
        public bool ConsentToShare { get; init; }
        public string? ConsentGivenBy { get; init; }
        public string? LawfulReason { get; init; }
        public string? PersonWishes { get; init; }
        public string? FamilyExpectations { get; init; }
        public string? StaffExpectations { get; init; }
        public required string Summary { get; init; }
        public required DateTimeOffset CreatedAt { get; init; }

        // Planned by the history, then cut at now.
        public Route Route { get; set; } = null!;
        public List<Step> Steps { get; set; } = [];
        public DateTimeOffset PlannedStart { get; set; }
        public string? OutcomeReason { get; set; }
        public (string Request, string Response)? InformationExchange { get; set; }
        public bool Pinned { get; set; }

        // Filled in when the steps are played.
        public string Status { get; set; } = "draft";
        public int Version { get; set; }
        public DateTimeOffset? SubmittedAt { get; set; }
        public DateTimeOffset UpdatedAt { get; set; }

        public string CurrentStatus => County.StatusAfter(Steps[^1].Kind);
    }

    private sealed class TriageTask(Referral referral, string queue, DateTimeOffset createdAt) : Row
    {
        public Referral Referral { get; } = referral;
        public string Queue { get; } = queue;
        public string Status { get; private set; } = "requested";
        public StaffUser? Owner { get; private set; }
        public DateTimeOffset? TakenAt { get; private set; }
        public string? Decision { get; private set; }
        public string? Reason { get; private set; }
        public int Version { get; private set; } = 1;
        public DateTimeOffset CreatedAt { get; } = createdAt;
        public DateTimeOffset UpdatedAt { get; private set; } = createdAt;
        public DateTimeOffset? CompletedAt { get; private set; }

        public void Take(Step step)
        {
            Owner = step.By;
            TakenAt = step.At;
            Move("in-progress", step.At);
        }

        public DateTimeOffset? OnHoldSince { get; private set; }
        public int PausedSeconds { get; private set; }

        public void Move(string status, DateTimeOffset at)
        {
            // The triage clock stops while on hold, as it does in the coordination commands.
            if (OnHoldSince is { } since && status != "on-hold")
            {
                PausedSeconds += (int)(at - since).TotalSeconds;
                OnHoldSince = null;
            }
            else if (status == "on-hold")
            {
                OnHoldSince = at;
            }
            Status = status;
            UpdatedAt = at;
            Version++;
        }

        public void Close(string status, DateTimeOffset at, string? decision, string? reason)
        {
            Move(status, at);
            Decision = decision;
            Reason = reason;
            CompletedAt = at;
        }
    }

    private sealed class Placement(Referral referral, Service? service, Bed? bed, DateOnly startOn, DateTimeOffset createdAt) : Row
    {
        public Referral Referral { get; } = referral;
        public Service? Service { get; } = service;
        public Bed? Bed { get; } = bed;
        public string Status { get; set; } = "reserved";
        public DateOnly StartOn { get; set; } = startOn;
        public DateTimeOffset? ReservedUntil { get; set; }
        public DateTimeOffset? StartedAt { get; set; }
        public DateTimeOffset? EndedAt { get; set; }
        public DateTimeOffset CreatedAt { get; } = createdAt;
    }

    private sealed record Note(Referral Referral, StaffUser Author, string Kind, string Text, DateTimeOffset At);

    /// <summary>Data is built at insert time, when the ids it names exist.</summary>
    private sealed record PendingChange(DateTimeOffset At, string Kind, string EntityType, Row Entity, Organisation Organisation, string Actor, Func<object>? Data);

    /// <summary>
    /// Plans Westmoor and its last fortnight (or as many days as asked). Each referral's whole life is planned from its creation
    /// (triage on shift, home first, beds through the bureau), then cut at now: what had happened by
    /// now is its state, so old referrals have finished and recent ones are still open.
    /// </summary>
    private sealed class County(DateTimeOffset now, int days)
    {

        private static readonly (string Source, double Weight)[] Sources =
            [("acute-hospital", 55), ("community-hospital", 15), ("gp", 18), ("community-step-up", 12)];

        private static readonly (string Pathway, double Weight)[] AcutePathways = [("0", 5), ("1", 55), ("2", 28), ("3", 12)];
        private static readonly (string Pathway, double Weight)[] CommunityHospitalPathways = [("1", 55), ("2", 15), ("3", 30)];
        private static readonly (string Urgency, double Weight)[] HospitalUrgency = [("routine", 55), ("urgent", 38), ("immediate", 7)];
        private static readonly (string Urgency, double Weight)[] CommunityUrgency = [("routine", 25), ("urgent", 55), ("immediate", 20)];
        private static readonly (string Kind, double Weight)[] HomeServices = [("reablement", 60), ("home-care", 28), ("therapy", 7), ("voluntary-sector", 5)];
        private static readonly (string Kind, double Weight)[] StepUpServices = [("reablement", 40), ("therapy", 20), ("home-care", 12), ("voluntary-sector", 8)];
        private static readonly string[] Rehabilitation = ["rehabilitation"];
        private static readonly string[] StepDownNursing = ["step-down-nursing"];
        private static readonly string[] Dementia = ["dementia"];
        private static readonly string[] Nursing = ["nursing"];
        private static readonly string[] Residential = ["residential"];

        private static readonly (string Status, int Minimum)[] StatusesToShow =
        [
            ("draft", 3), ("submitted", 3), ("in-triage", 3), ("awaiting-information", 2), ("redirected", 1),
            ("accepted", 3), ("placed", 3), ("completed", 3), ("declined", 2), ("cancelled", 2),
        ];

        private readonly Random _random = new(2026);

        /// <summary>Admissions drawn apart from everything else, so adding them left the rest of the county as it was.</summary>
        private readonly Random _admissions = new(13);
        private readonly Random _longStays = new(2027);
        private readonly HashSet<string> _nhsNumbers = [];
        private readonly Dictionary<string, Organisation> _organisations = [];
        private readonly DateOnly _today = DateOnly.FromDateTime(now.UtcDateTime);
        private int _partnerMessages;

        public List<Organisation> Organisations { get; } = [];
        public List<StaffUser> Users { get; } = [];
        public PartnerClient Partner { get; private set; } = null!;
        public List<HospitalSite> HospitalSites { get; } = [];
        public List<Site> Sites { get; } = [];
        public List<Ward> Wards { get; } = [];
        public List<Bed> Beds { get; } = [];
        public List<Service> Services { get; } = [];
        public List<Person> People { get; } = [];
        public List<Referral> Referrals { get; } = [];
        public List<TriageTask> Tasks { get; } = [];
        public List<Placement> Placements { get; } = [];
        public List<Note> Notes { get; } = [];
        public List<PendingChange> Changes { get; } = [];

        public County Build()
        {
            AddOrganisationsAndStaff();
            AddSitesAndBeds();
            AddServices();
            PlanReferrals();
            EnsureEveryStatusShows();
            foreach (var referral in Referrals)
            {
                Play(referral);
            }
            // A reservation nobody holds would be a bed lost to the board.
            foreach (var bed in Beds.Where(b => b.Status == "reserved" && !b.HasLivePlacement))
            {
                bed.Status = "available";
            }
            return this;
        }

        public static string StatusAfter(StepKind kind) => kind switch
        {
            StepKind.Drafted => "draft",
            StepKind.Submitted => "submitted",
            StepKind.Taken or StepKind.InformationReceived => "in-triage",
            StepKind.InformationRequested => "awaiting-information",
            StepKind.RedirectedToBedBureau or StepKind.HandedBack => "redirected",
            StepKind.Accepted => "accepted",
            StepKind.Placed => "placed",
            StepKind.Completed => "completed",
            StepKind.Declined => "declined",
            StepKind.Cancelled => "cancelled",
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };

        // ---- Reference data ----

        private void AddOrganisationsAndStaff()
        {
            foreach (var spec in DemoCounty.Organisations)
            {
                var organisation = new Organisation(spec, now.AddDays(-180));
                Organisations.Add(organisation);
                _organisations.Add(spec.Code, organisation);
            }
            foreach (var spec in DemoCounty.Users)
            {
                Users.Add(new StaffUser(spec, _organisations[spec.Organisation], now.AddDays(-_random.Next(30, 120))));
            }
            Partner = new PartnerClient(_organisations[DemoCounty.MainAcuteTrust], now.AddDays(-60));
        }

        private void AddSitesAndBeds()
        {
            HospitalSites.AddRange(DemoCounty.HospitalSites.Select(spec => new HospitalSite(spec, _organisations[spec.Owner])));
            foreach (var spec in DemoCounty.Sites)
            {
                var site = new Site(spec, _organisations[spec.Owner]);
                Sites.Add(site);
                foreach (var wardSpec in spec.Wards)
                {
                    var ward = new Ward(site, wardSpec.Name);
                    Wards.Add(ward);
                    for (var i = 1; i <= wardSpec.Beds; i++)
                    {
                        var sex = i <= wardSpec.FemaleBay ? "female" : i <= wardSpec.FemaleBay + wardSpec.MaleBay ? "male" : "any";
                        var bed = new Bed(ward, "B" + i.ToString("D2", CultureInfo.InvariantCulture), wardSpec.BedType, sex)
                        {
                            // The last two beds of each ward are side rooms, for people who must be isolated.
                            SingleRoom = sex == "any" && i > wardSpec.Beds - 2,
                        };
                        bed.Status = DrawBedStatus(site.Embargoed);
                        bed.ClosedReason = bed.Status == "closed" ? (Chance(0.6) ? "infection" : "staffing") : null;
                        // About one bed in twenty has not been confirmed for days: the board shows it as stale.
                        bed.ConfirmedAt = Chance(0.05) ? now - Minutes(2 * 24 * 60 + 30, 5 * 24 * 60) : now - Minutes(3, 6 * 60);
                        Beds.Add(bed);
                    }
                }
            }
        }

        private string DrawBedStatus(bool embargoed)
        {
            var draw = _random.NextDouble();
            var status = draw switch
            {
                < 0.70 => "occupied",
                < 0.82 => "available",
                < 0.87 => "reserved",
                < 0.93 => "closed",
                < 0.97 => "cleaning",
                _ => "available",
            };
            return embargoed && status == "reserved" ? "available" : status;
        }

        private void AddServices()
        {
            foreach (var spec in DemoCounty.Services)
            {
                var service = new Service(spec, _organisations[spec.Owner])
                {
                    // Some services are full today; most have a little room.
                    AvailableToday = Chance(0.2) ? 0 : _random.Next(1, spec.Capacity / 2 + 2),
                    ConfirmedAt = now - Minutes(10, 8 * 60),
                };
                service.AvailableToday = Math.Min(service.AvailableToday, spec.Capacity);
                Services.Add(service);
            }
        }

        // ---- People ----

        private Person NewPerson(DemoCounty.Locality locality, DateTimeOffset firstSeen)
        {
            var group = PickWeighted(DemoCounty.NameGroups, g => g.Weight);
            var sexDraw = _random.NextDouble();
            var sex = sexDraw switch { < 0.58 => "female", < 0.994 => "male", < 0.997 => "other", _ => "unknown" };
            var female = sex == "female" || (sex != "male" && Chance(0.5));
            var given = Pick(female ? group.Female : group.Male);
            var family = Pick(group.Family);
            var age = Chance(0.07) ? _random.Next(45, 65) : 65 + _random.Next(0, 17) + _random.Next(0, 17) + (Chance(0.02) ? 1 : 0);
            var livesAlone = Chance(0.45);
            var carer = Carer(group, female, family, livesAlone);
            var person = new Person
            {
                Locality = locality,
                NhsNumber = NewNhsNumber(),
                GivenName = given,
                FamilyName = family,
                DateOfBirth = _today.AddYears(-age).AddDays(-_random.Next(0, 365)),
                Sex = sex,
                AddressLine = Chance(0.15)
                    ? $"Flat {Number(1, 24)}, {Pick(DemoCounty.Courts)}"
                    : $"{Number(1, 120)} {Pick(DemoCounty.Streets)}",
                Postcode = NewPostcode(locality),
                Ethnicity = Pick(group.Ethnicities),
                InterpreterLanguage = group.Language is not null && Chance(group.InterpreterShare) ? group.Language : null,
                EasyRead = Chance(0.04),
                Bsl = Chance(0.008),
                LivesAlone = livesAlone,
                CarerName = carer,
                CarerContact = carer is null ? null : "07700 900" + Number(0, 999).PadLeft(3, '0'),
                CarerWantsAssessment = carer is not null && Chance(0.3),
                CreatedAt = firstSeen,
            };
            People.Add(person);
            return person;
        }

        private string? Carer(DemoCounty.NameGroup group, bool female, string family, bool livesAlone)
        {
            var majority = group.Ethnicities[0] is "A" or "Z" or "B" or "D";
            if (!livesAlone && Chance(0.7))
            {
                var spouse = Pick(female ? group.Male : group.Female);
                return $"{spouse} {family} ({(female ? "husband" : "wife")})";
            }
            if (Chance(livesAlone ? 0.5 : 0.6))
            {
                var daughter = Chance(0.6);
                var childGiven = majority
                    ? Pick(daughter ? DemoCounty.ChildrenFemale : DemoCounty.ChildrenMale)
                    : Pick(daughter ? group.Female : group.Male);
                // Daughters have often married and changed name.
                var childFamily = daughter && majority && Chance(0.5) ? Pick(DemoCounty.NameGroups[0].Family) : family;
                return $"{childGiven} {childFamily} ({(daughter ? "daughter" : "son")})";
            }
            return livesAlone && Chance(0.15) ? $"{Pick(DemoCounty.ChildrenFemale)} {Pick(DemoCounty.NameGroups[0].Family)} (neighbour)" : null;
        }

        /// <summary>Synthetic numbers in the 999 test range, each with a valid modulus-11 check digit.</summary>
        private string NewNhsNumber()
        {
            while (true)
            {
                var stem = "999" + _random.Next(0, 1_000_000).ToString("D6", CultureInfo.InvariantCulture);
                var check = NhsNumber.CheckDigit(stem);
                if (check < 0)
                {
                    continue;
                }
                var number = stem + check.ToString(CultureInfo.InvariantCulture);
                if (_nhsNumbers.Add(number))
                {
                    return number;
                }
            }
        }

        private string NewPostcode(DemoCounty.Locality locality) =>
            $"{Pick(locality.Districts)} {Number(1, 9)}{DemoCounty.InwardLetters[_random.Next(DemoCounty.InwardLetters.Length)]}{DemoCounty.InwardLetters[_random.Next(DemoCounty.InwardLetters.Length)]}";

        // ---- Referrals: plan each life, then cut at now ----

        private void PlanReferrals()
        {
            var firstDay = new DateTimeOffset(now.UtcDateTime.Date, TimeSpan.Zero).AddDays(-(days - 1));
            for (var day = 0; day < days; day++)
            {
                var dayStart = firstDay.AddDays(day);
                var weekend = dayStart.DayOfWeek is DayOfWeek.Saturday or DayOfWeek.Sunday;
                var count = weekend ? _random.Next(50, 57) : _random.Next(55, 71);
                // Referrals come in through the working day, busiest around midday.
                var times = new List<DateTimeOffset>(count);
                for (var i = 0; i < count; i++)
                {
                    times.Add(dayStart + TimeSpan.FromHours(7.5 + 12 * (_random.NextDouble() + _random.NextDouble()) / 2));
                }
                times.Sort();
                foreach (var createdAt in times.Where(t => t < now - TimeSpan.FromMinutes(3)))
                {
                    PlanReferral(createdAt);
                }
            }
        }

        private void PlanReferral(DateTimeOffset createdAt)
        {
            var person = Rereferral(createdAt) ?? NewPerson(PickWeighted(DemoCounty.Localities, l => l.Weight), createdAt);
            var locality = person.Locality;
            var source = PickWeighted(Sources, s => s.Weight).Source;
            var organisation = source switch
            {
                "acute-hospital" => _organisations[Chance(0.85) ? locality.AcuteTrust
                    : locality.AcuteTrust == DemoCounty.MainAcuteTrust ? DemoCounty.OtherAcuteTrust : DemoCounty.MainAcuteTrust],
                "community-hospital" => _organisations[Chance(locality.Name == "Kelworth" ? 0.7 : 0.1) ? DemoCounty.CommunityHospital : DemoCounty.CommunityTrust],
                "gp" => _organisations[locality.GpPractice],
                _ => _organisations[DemoCounty.CommunityTrust],
            };
            // Part of the main trust's discharges arrive from its EPR over FHIR rather than the form.
            var viaPartner = source == "acute-hospital" && organisation.Code == DemoCounty.MainAcuteTrust && Chance(0.2);
            var staff = PickUser("referrer", organisation);
            var pathway = source switch
            {
                "acute-hospital" => PickWeighted(AcutePathways, p => p.Weight).Pathway,
                "community-hospital" => PickWeighted(CommunityHospitalPathways, p => p.Weight).Pathway,
                _ => Chance(0.8) ? "step-up" : "1",
            };
            var inHospital = source is "acute-hospital" or "community-hospital";
            var urgency = PickWeighted(inHospital ? HospitalUrgency : CommunityUrgency, u => u.Weight).Urgency;

            var createdOn = DateOnly.FromDateTime(createdAt.UtcDateTime);
            DateOnly? optimisedOn = null;
            DateOnly? dischargeOn = null;
            DateOnly? admittedOn = null;
            string? ward; // drawn where it always was, among the referral's fields, so the rest of the county stays as it was
            if (inHospital)
            {
                // Some referrals are sent early, before the person is medically optimised, to save days.
                optimisedOn = Chance(0.15) ? createdOn.AddDays(_random.Next(1, 4)) : createdOn.AddDays(-_random.Next(0, 4));
                var expected = optimisedOn.Value.AddDays(_random.Next(0, 3));
                dischargeOn = expected < createdOn ? createdOn.AddDays(_random.Next(0, 2)) : expected;
                // Most stays are a few days to three weeks before the person is ready; some referrers leave it out.
                var admitted = optimisedOn.Value.AddDays(-_admissions.Next(1, 22));
                admittedOn = _admissions.NextDouble() < 0.85 ? (admitted < createdOn ? admitted : createdOn) : null;
            }

            var cognition = Chance(pathway == "3" ? 0.6 : 0.22);
            var capacityConcern = cognition && Chance(0.4);
            var safeguarding = Chance(0.05);
            var consent = Chance(0.95);
            var age = Age(person.DateOfBirth, createdOn);
            var reasons = source switch
            {
                "acute-hospital" => DemoCounty.AcuteReasons,
                "community-hospital" => DemoCounty.CommunityHospitalReasons,
                _ => DemoCounty.CommunityReasons,
            };
            var reason = Pick(reasons);
            var noun = person.Sex switch { "female" => "woman", "male" => "man", _ => "person" };
            var home = person.LivesAlone ? "Lives alone." : "Lives with family.";

            var referral = new Referral
            {
                Person = person,
                Organisation = organisation,
                Referrer = viaPartner ? null : staff,
                Responder = staff,
                ViaPartner = viaPartner,
                IdempotencyKey = viaPartner ? "EPR-" + (++_partnerMessages).ToString("D6", CultureInfo.InvariantCulture) : null,
                Source = source,
                Pathway = pathway,
                Urgency = urgency,
                Ward = ward = inHospital ? Pick(DemoCounty.HospitalWards[organisation.Code]) : null,
                HospitalSite = ward is null ? null : HospitalSites.Single(s => s.Owner == organisation && s.Spec.Wards.Contains(ward)),
                BedLabel = !inHospital ? null
                    : source == "community-hospital" ? "B" + Number(1, 20).PadLeft(2, '0')
                    : Chance(0.15) ? $"Side room {Number(1, 8)}" : $"Bay {Number(1, 6)} Bed {Number(1, 6)}",
                AdmittedOn = admittedOn,
                MedicallyOptimisedOn = optimisedOn,
                ExpectedDischargeOn = dischargeOn,
                EarlyRequest = optimisedOn > createdOn,
                Needs = JsonSerializer.Serialize(PickNeeds(pathway == "3" ? 4 : 2, pathway == "3" ? 6 : 5)),
                Strengths = Chance(0.85) ? Pick(DemoCounty.Strengths) : null,
                Goals = Chance(0.85) ? Pick(DemoCounty.Goals) : null,
                SafeguardingConcern = safeguarding,
                InfectionStatus = inHospital && Chance(0.07) ? Pick(DemoCounty.InfectionStatuses) : null,
                FallsRisk = Chance(inHospital ? 0.4 : 0.6),
                SelfNeglect = reason.Contains("self-neglect", StringComparison.Ordinal) || Chance(0.03),
                CognitionConcern = cognition,
                MentalCapacityConcern = capacityConcern,
                BestInterestsDecision = capacityConcern && Chance(0.6) ? Pick(DemoCounty.BestInterests) : null,
                SelfFunding = Chance(0.12),
                ConsentToShare = consent,
                ConsentGivenBy = !consent ? null : capacityConcern ? "Lasting power of attorney (health and welfare)" : "Person",
                LawfulReason = consent ? null
                    : capacityConcern ? DemoCounty.LawfulReasons[0]
                    : safeguarding ? DemoCounty.LawfulReasons[1]
                    : Pick(DemoCounty.LawfulReasons),
                // The form cannot be sent without the person's own wishes: nor can a seeded referral.
                PersonWishes = Wishes(pathway),
                FamilyExpectations = Chance(0.7) ? Pick(DemoCounty.FamilyExpectations) : null,
                StaffExpectations = Chance(0.85) ? StaffView(pathway) : null,
                Summary = $"{age.ToString(CultureInfo.InvariantCulture)}-year-old {noun} {reason}. {Pick(DemoCounty.Mobility)} {home}",
                CreatedAt = createdAt,
            };
            referral.Route = ChooseRoute(referral);
            referral.Steps = PlanSteps(referral).TakeWhile(s => s.At <= now).ToList();
            person.Referrals.Add(referral);
            Referrals.Add(referral);
        }

        /// <summary>Now and then someone comes back: a new referral for a person whose last one has closed.</summary>
        private Person? Rereferral(DateTimeOffset createdAt)
        {
            if (!Chance(0.04))
            {
                return null;
            }
            var closed = Referrals
                .Where(r => r.Person.Referrals.Count == 1 && r.CurrentStatus is "completed" or "declined" or "cancelled"
                    && r.Steps[^1].At < createdAt.AddDays(-1))
                .ToList();
            return closed.Count == 0 ? null : Pick(closed).Person;
        }

        private Route ChooseRoute(Referral referral)
        {
            var locality = referral.Person.Locality.Name;
            Route ToService(string kind)
            {
                var candidates = Services.Where(s => s.Spec.Kind == kind && s.Spec.Covers.Contains(locality)).ToList();
                // Age Well's hospital scheme for discharges; its befriending for people already at home.
                if (kind == "voluntary-sector")
                {
                    var fromHospital = referral.Source is "acute-hospital" or "community-hospital";
                    candidates = candidates.Where(s => s.Spec.Name.Contains("hospital", StringComparison.Ordinal) == fromHospital).ToList();
                }
                return new Route(Pick(candidates), [], null);
            }
            Route ToBed(string[] types, string why) => new(null, types, why);

            return referral.Pathway switch
            {
                "0" => ToService("voluntary-sector"),
                "1" => ToService(PickWeighted(HomeServices, k => k.Weight).Kind),
                // Home first: a fair share of bed requests go home with reablement instead.
                "2" => Chance(0.3) ? ToService("reablement")
                    : ToBed(Chance(0.75) ? Rehabilitation : StepDownNursing, "Needs a rehabilitation bed: not yet safe at home, even with reablement."),
                "3" => Chance(0.2) ? ToService("home-care")
                    : ToBed(referral.CognitionConcern && Chance(0.6) ? Dementia : Chance(0.5) ? Nursing : Residential,
                        "Likely long-term care needs: assessment in a care home bed (discharge to assess)."),
                _ => Chance(0.2)
                    ? ToBed(Rehabilitation, "Needs a step-up community hospital bed to avoid an acute admission.")
                    : ToService(PickWeighted(StepUpServices, k => k.Weight).Kind),
            };
        }

        private List<Step> PlanSteps(Referral referral)
        {
            var steps = new List<Step>();
            var referrer = referral.Responder;
            var coordinator = PickCoordinator(referral.Person.Locality);
            var t = referral.CreatedAt;
            var age = now - referral.CreatedAt;

            if (!referral.ViaPartner)
            {
                var neverSubmitted = Chance(age < TimeSpan.FromDays(3) ? 0.05 : 0.01);
                if (neverSubmitted || Chance(0.08))
                {
                    steps.Add(By(StepKind.Drafted, t, referrer));
                    if (neverSubmitted)
                    {
                        return steps;
                    }
                    t = Within(t + Minutes(15, 20 * 60), 7, 21);
                }
            }
            steps.Add(referral.ViaPartner
                ? new Step(StepKind.Submitted, t, null, DemoCounty.PartnerClientId)
                : By(StepKind.Submitted, t, referrer));

            if (Chance(0.03))
            {
                referral.OutcomeReason = Pick(DemoCounty.CancelReasons);
                steps.Add(By(StepKind.Cancelled, t + Minutes(20, 300), referrer));
                return steps;
            }
            t = OnShift(t + Minutes(10, 240));
            steps.Add(By(StepKind.Taken, t, coordinator));
            t = OnShift(t + Minutes(20, 180));

            if (Chance(0.14))
            {
                referral.InformationExchange = Pick(DemoCounty.InformationExchanges);
                steps.Add(By(StepKind.InformationRequested, t, coordinator));
                if (Chance(0.1))
                {
                    referral.OutcomeReason = DemoCounty.NoResponseReason;
                    steps.Add(By(StepKind.Cancelled, OnShift(t + TimeSpan.FromHours(72)), coordinator));
                    return steps;
                }
                t = Within(t + Minutes(60, 26 * 60), 7, 21);
                steps.Add(By(StepKind.InformationReceived, t, referrer));
                t = OnShift(t + Minutes(15, 150));
            }

            if (Chance(referral.Pathway == "0" ? 0.2 : 0.04))
            {
                referral.OutcomeReason = Pick(DemoCounty.DeclineReasons);
                steps.Add(By(StepKind.Declined, t, coordinator));
                return steps;
            }
            if (Chance(0.025))
            {
                referral.OutcomeReason = Pick(DemoCounty.CancelReasons);
                steps.Add(By(StepKind.Cancelled, t, referrer));
                return steps;
            }

            var placer = coordinator;
            if (referral.Route.Service is null)
            {
                steps.Add(By(StepKind.RedirectedToBedBureau, t, coordinator));
                var bureau = PickUser("bed-bureau", _organisations[DemoCounty.BedBureau]);
                t = OnShift(t + Minutes(15, 240));
                steps.Add(By(StepKind.Taken, t, bureau));
                t = OnShift(t + Minutes(30, 300));
                placer = bureau;
                if (referral.Pathway != "3" && Chance(0.1))
                {
                    // The bureau hands it back: with reablement and equipment, home is possible after all.
                    steps.Add(By(StepKind.HandedBack, t, bureau));
                    referral.Route = new Route(
                        Pick(Services.Where(s => s.Spec.Kind == "reablement" && s.Spec.Covers.Contains(referral.Person.Locality.Name)).ToList()),
                        [], null);
                    placer = PickCoordinator(referral.Person.Locality);
                    t = OnShift(t + Minutes(10, 120));
                    steps.Add(By(StepKind.Taken, t, placer));
                    t = OnShift(t + Minutes(20, 120));
                }
            }
            steps.Add(By(StepKind.Accepted, t, placer));

            var start = Within(t + (referral.Route.Service is null ? Minutes(240, 36 * 60) : Minutes(240, 40 * 60)), 9, 18);
            referral.PlannedStart = start;
            if (Chance(0.02))
            {
                referral.OutcomeReason = Pick(DemoCounty.CancelReasons);
                steps.Add(By(StepKind.Cancelled, t + (start - t) / 2, referrer));
                return steps;
            }
            steps.Add(By(StepKind.Placed, start, placer));

            var completes = referral.Route.Service is not null ? 0.7 : referral.Pathway == "3" ? 0.08 : 0.55;
            if (Chance(completes))
            {
                steps.Add(By(StepKind.Completed, Within(start + Minutes(2 * 24 * 60, 9 * 24 * 60), 9, 18), placer));
            }
            else if (referral.Route.Service is null)
            {
                // A longer bed stay ends with the long-term decision, 15 to 49 days in (start is in working hours, so whole days
                // keep it there). Only a history longer than a fortnight reaches that day; without it, six weeks of stays would
                // fill the county. Its own random source leaves the fortnight's draws, and so the default demo, as they were.
                steps.Add(By(StepKind.Completed, start + TimeSpan.FromDays(_longStays.Next(15, 50)), placer));
            }
            return steps;
        }

        /// <summary>
        /// Whatever the time of day the demo is seeded, every state of the lifecycle is on screen:
        /// where one is missing, the most recent suitable referral stops at that state instead.
        /// </summary>
        private void EnsureEveryStatusShows()
        {
            var minimum = StatusesToShow.ToDictionary(s => s.Status, s => s.Minimum);
            int Count(string status) => Referrals.Count(r => r.CurrentStatus == status);
            bool Spare(Referral r) => !r.Pinned && r.Person.Referrals.Count == 1
                && Count(r.CurrentStatus) > minimum.GetValueOrDefault(r.CurrentStatus);

            foreach (var (status, wanted) in StatusesToShow)
            {
                while (Count(status) < wanted)
                {
                    var candidate = Referrals.AsEnumerable().Reverse().Where(Spare).FirstOrDefault(r => CanStopAt(r, status));
                    if (candidate is null)
                    {
                        break;
                    }
                    StopAt(candidate, status);
                    candidate.Pinned = true;
                }
            }
        }

        private bool CanStopAt(Referral referral, string status) => status switch
        {
            "draft" => !referral.ViaPartner,
            "declined" or "cancelled" => referral.Steps.Exists(s => s.Kind == StepKind.Taken && s.At + TimeSpan.FromMinutes(30) <= now),
            _ => referral.Steps.Exists(s => StatusAfter(s.Kind) == status),
        };

        private void StopAt(Referral referral, string status)
        {
            var steps = referral.Steps;
            if (status is not ("declined" or "cancelled"))
            {
                referral.OutcomeReason = null;
            }
            switch (status)
            {
                case "draft":
                    referral.Steps = [By(StepKind.Drafted, referral.CreatedAt, referral.Responder)];
                    return;
                case "declined" or "cancelled" when !steps.Exists(s => StatusAfter(s.Kind) == status):
                    var taken = steps.FindIndex(s => s.Kind == StepKind.Taken);
                    var coordinator = steps[taken].By!;
                    referral.Steps = steps.Take(taken + 1).ToList();
                    referral.OutcomeReason = Pick(status == "declined" ? DemoCounty.DeclineReasons : DemoCounty.CancelReasons);
                    referral.Steps.Add(By(status == "declined" ? StepKind.Declined : StepKind.Cancelled, steps[taken].At + TimeSpan.FromMinutes(30), coordinator));
                    return;
                default:
                    var last = steps.FindLastIndex(s => StatusAfter(s.Kind) == status);
                    referral.Steps = steps.Take(last + 1).ToList();
                    return;
            }
        }

        // ---- Playing the steps: tasks, placements, notes and change rows ----

        private void Play(Referral referral)
        {
            TriageTask? open = null;
            Placement? placement = null;
            foreach (var step in referral.Steps)
            {
                var status = StatusAfter(step.Kind);
                switch (step.Kind)
                {
                    case StepKind.Drafted when referral.Steps.Count == 1:
                        Changes.Add(new PendingChange(step.At, "draft.saved", "referral_draft", referral, referral.Organisation, step.Actor, () => new { version = 1 }));
                        break;
                    case StepKind.Drafted:
                        ReferralChange(referral, step, "referral.drafted", () => new { status });
                        break;
                    case StepKind.Submitted:
                        referral.SubmittedAt = step.At;
                        ReferralChange(referral, step, "referral.submitted", () => new { status, referral.Source, referral.Pathway, referral.Urgency });
                        open = OpenTask(referral, "coordination", step);
                        break;
                    case StepKind.Taken:
                        open = Required(open);
                        open.Take(step);
                        TaskChange(open, step, "task.taken");
                        var takenQueue = open.Queue;
                        ReferralChange(referral, step, "referral.triage-started", () => new { status, queue = takenQueue });
                        break;
                    case StepKind.InformationRequested:
                        open = Required(open);
                        open.Move("on-hold", step.At);
                        TaskChange(open, step, "task.on-hold");
                        Notes.Add(new Note(referral, step.By!, "information-request", referral.InformationExchange!.Value.Request, step.At));
                        ReferralChange(referral, step, "referral.information-requested", () => new { status });
                        break;
                    case StepKind.InformationReceived:
                        open = Required(open);
                        open.Move("in-progress", step.At);
                        TaskChange(open, step, "task.resumed");
                        Notes.Add(new Note(referral, step.By!, "information-response", referral.InformationExchange!.Value.Response, step.At));
                        ReferralChange(referral, step, "referral.information-received", () => new { status });
                        break;
                    case StepKind.RedirectedToBedBureau:
                    case StepKind.HandedBack:
                        var toBureau = step.Kind == StepKind.RedirectedToBedBureau;
                        open = Required(open);
                        open.Close("completed", step.At,
                            toBureau ? "redirected to bed bureau" : "returned to coordination: home first is possible",
                            toBureau ? referral.Route.RedirectReason : "Safe to go home with reablement and equipment.");
                        TaskChange(open, step, "task.completed");
                        var queue = toBureau ? "bed-bureau" : "coordination";
                        ReferralChange(referral, step, "referral.redirected", () => new { status, queue });
                        open = OpenTask(referral, queue, step);
                        break;
                    case StepKind.Accepted:
                        open = Required(open);
                        placement = Place(referral, step);
                        open.Close("completed", step.At, placement.Bed is { } bed
                            ? $"accepted: {bed.Type} bed, {bed.Ward.Site.Spec.Name}"
                            : $"accepted: {placement.Service!.Spec.Kind}", null);
                        TaskChange(open, step, "task.completed");
                        open = null;
                        var accepted = placement;
                        ReferralChange(referral, step, "referral.accepted", () => new { status, placementId = accepted.Id });
                        PlacementChange(accepted, step, "placement.reserved");
                        break;
                    case StepKind.Placed:
                        placement = Required(placement);
                        placement.Status = "active";
                        placement.StartedAt = step.At;
                        placement.Bed?.Touch(step.At);
                        ReferralChange(referral, step, "referral.placed", () => new { status });
                        PlacementChange(placement, step, "placement.started");
                        break;
                    case StepKind.Completed:
                        placement = Required(placement);
                        placement.Status = "ended";
                        placement.EndedAt = step.At;
                        placement.Bed?.Touch(step.At);
                        ReferralChange(referral, step, "referral.completed", () => new { status });
                        PlacementChange(placement, step, "placement.ended");
                        break;
                    case StepKind.Declined:
                        open = Required(open);
                        open.Close("rejected", step.At, "declined", referral.OutcomeReason);
                        TaskChange(open, step, "task.rejected");
                        open = null;
                        ReferralChange(referral, step, "referral.declined", () => new { status, reason = referral.OutcomeReason });
                        break;
                    case StepKind.Cancelled:
                        if (open is not null)
                        {
                            open.Close("cancelled", step.At, null, referral.OutcomeReason);
                            TaskChange(open, step, "task.cancelled");
                            open = null;
                        }
                        if (placement is { Status: "reserved" })
                        {
                            placement.Status = "cancelled";
                            placement.EndedAt = step.At;
                            placement.Bed?.Touch(step.At);
                            PlacementChange(placement, step, "placement.cancelled");
                        }
                        ReferralChange(referral, step, "referral.cancelled", () => new { status, reason = referral.OutcomeReason });
                        break;
                    default:
                        throw new InvalidOperationException($"No play for {step.Kind}.");
                }
                referral.Status = status;
                referral.UpdatedAt = step.At;
            }

            // A coordinator's working note on a few of the referrals being worked.
            if (referral.Steps.Find(s => s.Kind == StepKind.Taken) is { By: { } author } taken && Chance(0.06))
            {
                var at = taken.At + Minutes(10, 60);
                if (at <= now)
                {
                    Notes.Add(new Note(referral, author, "note", Pick(DemoCounty.CoordinatorNotes), at));
                }
            }
        }

        private TriageTask OpenTask(Referral referral, string queue, Step step)
        {
            var task = new TriageTask(referral, queue, step.At);
            Tasks.Add(task);
            TaskChange(task, step, "task.created");
            return task;
        }

        private Placement Place(Referral referral, Step accepted)
        {
            var later = referral.Steps.SkipWhile(s => s != accepted).Skip(1).ToList();
            var placed = later.Find(s => s.Kind == StepKind.Placed);
            var ended = later.Find(s => s.Kind is StepKind.Completed or StepKind.Cancelled);
            // A reservation still open now starts today at the earliest.
            var startAt = placed?.At ?? (referral.PlannedStart > now ? referral.PlannedStart : now);
            var startOn = DateOnly.FromDateTime(startAt.UtcDateTime);

            Placement placement;
            if (referral.Route.Service is { } service)
            {
                placement = new Placement(referral, service, null, startOn, accepted.At);
            }
            else
            {
                var live = ended is null;
                var bed = AllocateBed(referral, live ? (placed is null ? "reserved" : "occupied") : null, accepted.At, ended?.At);
                bed.Touch(accepted.At);
                bed.HasLivePlacement |= live;
                placement = new Placement(referral, null, bed, startOn, accepted.At)
                {
                    ReservedUntil = live && placed is null && accepted.At.AddHours(24) <= now ? now + Minutes(120, 600) : accepted.At.AddHours(24),
                };
            }
            Placements.Add(placement);
            return placement;
        }

        /// <summary>
        /// A bed the referral fits (type, bay sex) that nobody else held over the same time. A live
        /// placement takes a bed already shown in its state (occupied or reserved), or turns a free one.
        /// </summary>
        private Bed AllocateBed(Referral referral, string? wantedStatus, DateTimeOffset from, DateTimeOffset? to)
        {
            var sex = referral.Person.Sex;
            for (var relax = 0; relax < 2; relax++)
            {
                var fits = Beds.Where(b => !b.Ward.Site.Embargoed
                        && (relax > 0 || referral.Route.BedTypes.Contains(b.Type))
                        && (b.AllowedSex == "any" || b.AllowedSex == sex)
                        && b.IsFree(from, to))
                    .ToList();
                var candidates = wantedStatus is null ? fits : fits.Where(b => b.Status == wantedStatus).ToList();
                if (candidates.Count == 0 && wantedStatus is not null)
                {
                    candidates = fits.Where(b => b.Status is "available" or "cleaning").ToList();
                }
                if (candidates.Count == 0)
                {
                    continue;
                }
                var local = candidates.Where(b => b.Ward.Site.Spec.Locality == referral.Person.Locality.Name).ToList();
                var bed = Pick(local.Count > 0 && Chance(0.6) ? local : candidates);
                if (wantedStatus is not null)
                {
                    bed.Status = wantedStatus;
                    bed.ClosedReason = null;
                }
                bed.Hold(from, to);
                return bed;
            }
            throw new InvalidOperationException($"The demo county has no bed for referral planned at {from:O}.");
        }

        private void ReferralChange(Referral referral, Step step, string kind, Func<object> data)
        {
            referral.Version++;
            Changes.Add(new PendingChange(step.At, kind, "referral", referral, referral.Organisation, step.Actor, data));
        }

        private void TaskChange(TriageTask task, Step step, string kind)
        {
            var status = task.Status;
            Changes.Add(new PendingChange(step.At, kind, "triage_task", task, task.Referral.Organisation, step.Actor,
                () => new { referralId = task.Referral.Id, task.Queue, status }));
        }

        private void PlacementChange(Placement placement, Step step, string kind)
        {
            var status = placement.Status;
            Changes.Add(new PendingChange(step.At, kind, "placement", placement, placement.Referral.Organisation, step.Actor,
                () => new { referralId = placement.Referral.Id, serviceId = placement.Service?.Id, bedId = placement.Bed?.Id, status }));
        }

        private static T Required<T>(T? value) where T : class =>
            value ?? throw new InvalidOperationException($"The demo history expected a {typeof(T).Name} here.");

        // ---- Small helpers ----

        private static Step By(StepKind kind, DateTimeOffset at, StaffUser user) => new(kind, at, user, user.Username);

        private StaffUser PickUser(string role, Organisation organisation) =>
            PickWeighted(Users.Where(u => u.Spec.Role == role && u.Organisation == organisation).ToList(), u => u.Spec.Share);

        private StaffUser PickCoordinator(DemoCounty.Locality locality) =>
            PickUser("coordinator", _organisations[locality.CoordinationCentre]);

        /// <summary>The coordination centre and bed bureau work 08:00-20:00; what arrives after waits for the morning.</summary>
        private DateTimeOffset OnShift(DateTimeOffset at) => Within(at, 8, 20);

        private DateTimeOffset Within(DateTimeOffset at, int fromHour, int toHour)
        {
            var hour = at.UtcDateTime.Hour;
            if (hour >= fromHour && hour < toHour)
            {
                return at;
            }
            var day = new DateTimeOffset(at.UtcDateTime.Date, TimeSpan.Zero);
            return (hour >= toHour ? day.AddDays(1) : day).AddHours(fromHour) + Minutes(5, 90);
        }

        private static int Age(DateOnly born, DateOnly on) =>
            on.Year - born.Year - (on < born.AddYears(on.Year - born.Year) ? 1 : 0);

        private List<string> PickNeeds(int least, int most)
        {
            var count = _random.Next(least, most + 1);
            var chosen = new HashSet<string>();
            while (chosen.Count < count)
            {
                chosen.Add(Pick(DemoCounty.Needs));
            }
            // Keep the form's order so screens list them the same way every time.
            return DemoCounty.Needs.Where(chosen.Contains).ToList();
        }

        private string Wishes(string pathway) => pathway switch
        {
            "3" => Pick(DemoCounty.PersonWishes),
            "2" => Chance(0.5) ? DemoCounty.PersonWishes[3] : DemoCounty.PersonWishes[0],
            _ => DemoCounty.PersonWishes[Chance(0.6) ? 0 : 1],
        };

        private static string StaffView(string pathway) => pathway switch
        {
            "0" => "Ward team expect home without new support; Age Well to help settle in.",
            "1" => "Therapy team recommend reablement at home.",
            "2" => "Ward team feel a rehabilitation bed would help before home.",
            "3" => "MDT recommends a care home assessment bed (discharge to assess).",
            _ => "Urgent community support asked for to avoid a hospital admission.",
        };

        private bool Chance(double probability) => _random.NextDouble() < probability;

        private TimeSpan Minutes(int least, int most) => TimeSpan.FromMinutes(_random.Next(least, most + 1));

        private string Number(int least, int most) => _random.Next(least, most + 1).ToString(CultureInfo.InvariantCulture);

        private T Pick<T>(IReadOnlyList<T> items) => items[_random.Next(items.Count)];

        private T PickWeighted<T>(IReadOnlyList<T> items, Func<T, double> weight)
        {
            var total = items.Sum(weight);
            var draw = _random.NextDouble() * total;
            foreach (var item in items)
            {
                draw -= weight(item);
                if (draw < 0)
                {
                    return item;
                }
            }
            return items[^1];
        }
    }
}
