using System.Text.Json;
using System.Text.Json.Serialization;
using CareCoordination.Auth;
using CareCoordination.Domain;
using CareCoordination.Features.Coordination;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Referrals;

/// <summary>
/// Sends the form: the person is found or recorded by NHS number, the referral is created, and the
/// triage task lands in the coordination centre's queue, all in one transaction.
/// </summary>
public static class SubmitReferral
{
    /// <summary>
    /// IdempotencyKey is made when the form is built, so a double click or a retry after a dropped
    /// connection finds the referral the first attempt made instead of making a second.
    /// DuplicateAnswer is the referrer's answer once shown an open referral for the same person.
    /// </summary>
    /// Sender is a partner system's own identifier for the referral (FHIR ServiceRequest.identifier), kept to
    /// be searched by and shown back. InformationNeeded (FHIR only) names the form's answers the sender did not
    /// give (InformationNeeded.Of): they are stored as absent and the referral is marked for the coordinator,
    /// instead of the form's rule refusing it; every other rule holds.
    /// PersonAsKnown (FHIR only): the sender named a person it has referred or registered before and said nothing about them
    /// (a ServiceRequest whose subject is Patient/{id} or an NHS number, with no Patient), so the form's person is what the
    /// store holds as that organisation's last word. The whole record is then left as it is: brought up to date from it, it
    /// would put one trust's older details over what another has said since, in the coordination centre's view. What the
    /// referral said of the person is that organisation's last word, as it was.
    [AllowRoles(Roles.Referrer)]
    [AllowPartnerScope("system/ServiceRequest.c")]
    public sealed record Command(ReferralForm Form, string IdempotencyKey, long? DraftId = null, string? DuplicateAnswer = null, long? DuplicateOf = null,
        SenderIdentifier? Sender = null, IReadOnlyList<string>? InformationNeeded = null, bool PersonAsKnown = false)
        : ICommand<Result>
    {
        /// <summary>The version of the draft (DraftId) the form was opened or last saved as: a colleague's later save of it is not thrown away.</summary>
        public int? DraftVersion { get; init; }
    }

    public sealed record SenderIdentifier(string System, string Value);

    /// <summary>
    /// A paper referral a coordinator enters after downtime (BackEnterReferral): the organisation that sent it and the
    /// time it was really made come from the paper; who typed it, and when, are kept beside them.
    /// </summary>
    public sealed record PaperReferral(long OrganisationId, DateTimeOffset ReceivedAt);

    /// <summary>
    /// Either the referral (new, or found again for a repeated key), or the open referrals to answer about first: the
    /// sender's own organisation's in full, and of another organisation's only that there is one.
    /// </summary>
    public sealed record Result(long? ReferralId, bool Repeated, OpenReferrals PossibleDuplicates)
    {
        /// <summary>The person the referral is for, once there is a referral.</summary>
        public long? PersonId { get; init; }

        /// <summary>
        /// The version of the person its organisation now reads (PersonRecord.VersionAsSaid), where the submission knows it
        /// without a read: 1 for a person new to the store; null for anyone known before (an answer that names it reads it).
        /// </summary>
        public int? PersonVersion { get; init; }

        /// <summary>A repeat (Repeated) whose referral is for another person than the form's NHS number names.</summary>
        public bool ForAnotherPerson { get; init; }
    }

    public sealed class Validator : AbstractValidator<Command>
    {
        public const string NoLawfulBasis = "There is no lawful basis for sharing: send the person's consent (a Consent naming them, or the consent-to-share extension), "
            + "or a lawful reason to share without it; or ask for your data-sharing agreement's lawful basis to be recorded on your registration.";

        public Validator(ReferralForm.SubmissionRules rules)
        {
            RuleFor(c => c.Form).SetValidator(rules).When(c => c.InformationNeeded is null);
            // The same rules, less the "missing" failures of the answers the sender was told are needed: an unknown
            // code or a date in the past is still refused.
            RuleFor(c => c.Form).Custom((form, context) =>
            {
                var needed = context.InstanceToValidate.InformationNeeded!;
                var failures = rules.Validate(form).Errors.Where(f => !needed.Contains(f.PropertyName, StringComparer.Ordinal)).ToList();
                // A partner's message cannot be asked "does the person consent?": without consent or a lawful reason
                // (its own, or its registration's) there is nothing to share on, said once.
                if (form.ConsentToShare != true && string.IsNullOrWhiteSpace(form.LawfulReason))
                {
                    failures.RemoveAll(f => f.PropertyName is nameof(ReferralForm.ConsentToShare) or nameof(ReferralForm.LawfulReason));
                    context.AddFailure($"{context.PropertyPath}.LawfulBasis", NoLawfulBasis);
                }
                foreach (var failure in failures)
                {
                    context.AddFailure(new FluentValidation.Results.ValidationFailure($"{context.PropertyPath}.{failure.PropertyName}", failure.ErrorMessage));
                }
            }).When(c => c.InformationNeeded is not null);
            RuleFor(c => c.IdempotencyKey).NotEmpty().MaximumLength(100);
            RuleFor(c => c.DraftVersion).NotNull().When(c => c.DraftId is not null).WithMessage("Say which version of the draft this sends.");
            RuleFor(c => c.DuplicateAnswer).Must(a => a is null or "new-need" or "update")
                .WithMessage("Say whether this is a new need or an update to the open referral.");
            RuleFor(c => c.Sender!.System).NotEmpty().MaximumLength(ReferralForm.ShortText).When(c => c.Sender is not null)
                .WithMessage("The referral's identifier needs a system (a URI) of at most 200 characters.");
            RuleFor(c => c.Sender!.Value).NotEmpty().MaximumLength(ReferralForm.ShortText).When(c => c.Sender is not null)
                .WithMessage("The referral's identifier needs a value of at most 200 characters.");
        }
    }

    /// <summary>
    /// The change a submission records, pushed to live screens as it is. A possible duplicate and the information needed are
    /// said only when there are any: most referrals have neither, and every one kept both as null (issue 14, store growth).
    /// The duplicate is said, not named: the referral it may repeat can be another organisation's, whose id the sender's
    /// organisation (its staff and its partner system on referrals/mine) may not learn; coordinators read it from the store.
    /// </summary>
    private sealed record Submitted(string Status, string? Source, string? Pathway, string? Urgency, bool EarlyRequest,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] bool? PossibleDuplicate,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<string>? InformationNeeded);

    public sealed class Handler(Database database, Work work, Fhir.ReceivedMessage received) : ICommandHandler<Command, Result>
    {
        public ValueTask<Result> Handle(Command command, CancellationToken cancellationToken) => SubmitAsync(command, paper: null, cancellationToken);

        /// <summary>Sends the form for the signed-in referrer, or, with <paramref name="paper"/>, for the organisation whose paper form it was.</summary>
        internal async ValueTask<Result> SubmitAsync(Command command, PaperReferral? paper, CancellationToken cancellationToken)
        {
            var scope = work.Scope;
            var (connection, transaction) = (work.Connection, work.Transaction);
            var organisationId = paper?.OrganisationId ?? scope.Actor.OrganisationId
                ?? throw new AccessDenied("Only a member of a referring organisation can submit a referral.");
            // The queue's clock and order, and every report, count a referral from when it was made.
            var madeAt = paper?.ReceivedAt ?? scope.Now;
            var form = command.Form;
            var nhsNumber = NhsNumber.Normalise(form.NhsNumber)!;

            // A partner's referral is known by its own identifier, kept (and uniquely indexed) anyway: its key, a hash of
            // that identifier, is not stored beside it (issue 14, store growth: a 69-character key and its index entry).
            // The person and the referral's key are each locked before they are looked for, the person first, as a registration
            // (RegisterPerson) locks them, so that a transaction Bundle registering the person before its referral and a resend
            // of that referral alone take the two in the same order. On PostgreSQL both locks and searches, and a hospital
            // referral's site, are one round trip.
            var fromHospital = ReferralCodes.IsHospital(form.Source);
            var (people, earlier, sites) = await database.LockThenQueryAsync<long, (long Id, long PersonId), HospitalSites.Candidate>(connection, transaction,
                ($"person:{nhsNumber}", "SELECT id FROM person WHERE nhs_number = @nhsNumber"),
                ($"referral-key:{organisationId}:{command.IdempotencyKey}", command.Sender is null
                    ? "SELECT id, person_id FROM referral WHERE organisation_id = @organisationId AND idempotency_key = @key"
                    : "SELECT id, person_id FROM referral WHERE organisation_id = @organisationId AND sender_system = @System AND sender_value = @Value"),
                fromHospital ? HospitalSites.CandidatesSql(form.HospitalSite) : null,
                new { organisationId, key = command.IdempotencyKey, command.Sender?.System, command.Sender?.Value, nhsNumber,
                    HospitalSiteCode = HospitalSites.CodeOf(form.HospitalSite) });
            if (earlier.Count > 0)
            {
                var repeated = earlier[0];
                scope.AuditDetail = "repeated submission: the referral already exists";
                scope.Touch("referral", repeated.Id);
                return new Result(repeated.Id, Repeated: true, OpenReferrals.None)
                {
                    PersonId = repeated.PersonId, ForAnotherPerson = people.Count == 0 || people[0] != repeated.PersonId,
                };
            }

            long? personId = people.Count > 0 ? people[0] : null;
            var open = personId is null ? [] : await ReferralAccess.OpenReferralsAsync(connection, transaction, personId.Value);
            var shown = OpenReferrals.For(scope.Actor, open);
            if (shown.Any && command.DuplicateAnswer is null)
            {
                // Nothing is written: the referrer is asked first, and the answer comes back with the retry.
                scope.AuditDetail = "possible duplicate shown to the referrer";
                scope.Touch("person", personId!.Value, personId);
                return new Result(null, Repeated: false, shown);
            }
            // Only a referral the sender was shown can be named; with none named, the link goes to the latest open one. One that
            // has closed since (or another person's: the NHS number changed) is not linked to: with another still open the
            // referrer is shown the picture as it is now and asked again, as on a first send; with none, it goes as a new referral.
            // Refused instead, the page named it again at every send and the referral could not be sent at all.
            if (command.DuplicateOf is { } duplicateOf && !shown.Visible.Any(o => o.Id == duplicateOf) && shown.Any)
            {
                scope.AuditDetail = "possible duplicate shown to the referrer again: the one answered about is no longer open";
                scope.Touch("person", personId!.Value, personId);
                return new Result(null, Repeated: false, shown);
            }

            var hospitalSiteId = fromHospital ? HospitalSites.Resolve(sites, organisationId, form.HospitalSite) : null;
            var knownBefore = personId is not null;
            var sayingNothingNew = knownBefore && command.PersonAsKnown;
            if (personId is { } known && !sayingNothingNew)
            {
                await UpdatePersonAsync(connection, transaction, known, nhsNumber, form, scope.Now);
            }
            var today = DateOnly.FromDateTime(LondonTime.ToLocal(madeAt).DateTime);
            var referral = new
            {
                PersonId = personId,
                OrganisationId = organisationId,
                ReferrerUserId = paper is null ? scope.Actor.UserId : null,
                PartnerClientId = scope.Actor.Kind == ActorKind.Partner ? scope.Actor.Id : null,
                SenderSystem = command.Sender?.System,
                SenderValue = command.Sender?.Value,
                IdempotencyKey = command.Sender is null ? command.IdempotencyKey : null,
                form.Source,
                form.Pathway,
                form.Urgency,
                Ward = fromHospital ? form.Ward?.Trim() : null,
                BedLabel = fromHospital ? form.BedLabel?.Trim() : null,
                HospitalSiteId = hospitalSiteId,
                AdmittedOn = fromHospital ? form.AdmittedOn : null,
                MedicallyOptimisedOn = fromHospital ? form.MedicallyOptimisedOn : null,
                form.ExpectedDischargeOn,
                Needs = JsonSerializer.Serialize(form.Needs.Distinct(), JsonDefaults.Options),
                form.Strengths,
                form.Goals,
                form.SafeguardingConcern,
                InfectionStatus = string.IsNullOrWhiteSpace(form.InfectionStatus) ? null : form.InfectionStatus.Trim(),
                form.FallsRisk,
                form.SelfNeglect,
                form.CognitionConcern,
                form.MentalCapacityConcern,
                BestInterestsDecision = form.MentalCapacityConcern ? form.BestInterestsDecision : null,
                form.SelfFunding,
                ConsentToShare = form.ConsentToShare == true,
                ConsentGivenBy = form.ConsentToShare == true ? form.ConsentGivenBy : null,
                LawfulReason = form.ConsentToShare == true ? null : form.LawfulReason,
                form.PersonWishes,
                form.FamilyExpectations,
                form.StaffExpectations,
                form.Summary,
                InformationNeeded = InformationNeeded.Store(command.InformationNeeded ?? []),
                EarlyRequest = form.IsEarlyRequest(today),
                DuplicateOf = open.Count > 0 ? command.DuplicateOf ?? open[^1].Id : (long?)null,
                DuplicateAnswer = open.Count > 0 ? command.DuplicateAnswer : null,
                MadeAt = madeAt,
                Now = scope.Now,
                // What it said of the person and its triage task (TriageTasks.InsertOpenWhere) name these so.
                now = scope.Now,
                queue = "coordination",
                priority = (string?)null,
                createdAt = madeAt,
                EnteredFromPaper = paper is not null,
                EnteredAt = paper is null ? (DateTimeOffset?)null : scope.Now,
                EnteredByUserId = paper is null ? null : scope.Actor.UserId,
            };
            // The person (when new to the store), the referral with the partner's message that made it (migration 0039), what the
            // referral said of the person and its triage task: on PostgreSQL one command, one round trip where they were four
            // (issue 14); on SQLite a command each. The statements after the referral's find it by its key, which the search
            // above found nobody holding.
            var parameters = new TemplateParameters(referral);
            var person = knownBefore ? null : PersonDetails.From(nhsNumber, form, scope.Now);
            if (person is not null)
            {
                parameters.AddDynamicParams(person);
            }
            var message = await received.KeepWithReferralAsync(work, parameters);
            var writes = WriteSql(person is not null, message, bySender: command.Sender is not null, sayingNothingNew);
            long referralId, taskId;
            if (database.Provider == StoreProvider.PostgreSQL)
            {
                await using var written = await connection.QueryMultipleAsync(writes.AsOne, parameters, transaction);
                if (person is not null)
                {
                    personId = await written.ReadSingleAsync<long>();
                }
                var made = await written.ReadSingleAsync<(long Id, long? ReceivedId)>();
                received.Kept(made.ReceivedId);
                (referralId, taskId) = (made.Id, await written.ReadSingleAsync<long>());
            }
            else
            {
                // SQLite: the same statements, a command each. A round trip costs nothing here, and Microsoft.Data.Sqlite binds
                // every parameter of a command to each of its statements (about 80 to each of four, where Dapper gives a command
                // of its own little more than the parameters its text names).
                if (person is not null)
                {
                    personId = await connection.QuerySingleAsync<long>(writes.Person!, parameters, transaction);
                }
                var made = await connection.QuerySingleAsync<(long Id, long? ReceivedId)>(writes.Referral, parameters, transaction);
                received.Kept(made.ReceivedId);
                await connection.ExecuteAsync(writes.WhatItSaid, parameters, transaction);
                (referralId, taskId) = (made.Id, await connection.QuerySingleAsync<long>(writes.Task, parameters, transaction));
            }
            if (person is not null)
            {
                scope.RecordChange("person.created", "person", personId!.Value, null);
            }
            await Carers.CarerAgreement.RecordAsync(work, referralId, form);

            if (command.DraftId is { } draftId)
            {
                // Only the version the form came from, or the page's own later save (its answer lost: the page's key is the
                // referral's): a colleague's later save is theirs, and is not deleted unseen (SaveDraft refuses to save over it
                // for the same reason). Refused, nothing of this send is kept.
                var removed = await connection.ExecuteAsync(
                    $"DELETE FROM referral_draft WHERE id = @draftId AND organisation_id = @organisationId AND {SaveDraft.AtVersionOrOwnPage}",
                    new { draftId, organisationId, Version = command.DraftVersion, PageKey = command.IdempotencyKey, AuthorUserId = scope.Actor.UserId }, transaction);
                if (removed == 1)
                {
                    scope.RecordChange("draft.submitted", "referral_draft", draftId, organisationId, new { referralId });
                }
                else if (await SaveDraft.SavedLastByAsync(work, draftId, organisationId) is { } other)
                {
                    throw new Conflict($"{other} saved this draft after you opened it, so nothing was sent. Open it again to see their changes, then send it.");
                }
            }
            else if (paper is null && command.Sender is null && scope.Actor.Kind == ActorKind.Staff)
            {
                // A new form's draft whose save's answer was lost: the page never heard its id, but the draft is the page's (its
                // key is this referral's), and goes with the send rather than staying in the drafts to be sent again.
                if (await connection.ExecuteScalarAsync<long?>(
                    """
                    DELETE FROM referral_draft WHERE organisation_id = @organisationId AND page_key = @IdempotencyKey AND author_user_id = @UserId
                    RETURNING id
                    """, new { organisationId, command.IdempotencyKey, scope.Actor.UserId }, transaction) is { } lost)
                {
                    scope.RecordChange("draft.submitted", "referral_draft", lost, organisationId, new { referralId });
                }
            }
            scope.RecordChange("referral.submitted", "referral", referralId, organisationId, new Submitted(
                "submitted", form.Source, form.Pathway, form.Urgency, referral.EarlyRequest, referral.DuplicateOf is null ? null : true,
                command.InformationNeeded is { Count: > 0 } needed ? needed : null));
            scope.RecordChange("task.created", "triage_task", taskId, organisationId, new { referralId, queue = "coordination", status = "requested" });
            if (paper is not null)
            {
                scope.RecordChange("referral.entered-from-paper", "referral", referralId, organisationId, new { receivedAt = paper.ReceivedAt });
            }
            scope.Touch("referral", referralId, personId);
            return new Result(referralId, Repeated: false, OpenReferrals.None) { PersonId = personId, PersonVersion = knownBefore ? null : 1 };
        }

        /// <summary>
        /// The statements that write a submission (see SubmitAsync), by whether the person is new to the store, how the message
        /// that made the referral is kept (ReceivedMessage.KeepWithReferralAsync) and which key the referral has: a partner's
        /// own identifier, or the form's idempotency key, and whether the referral said nothing new of a person known before
        /// (Command.PersonAsKnown). Made once for each.
        /// </summary>
        private static Writes WriteSql(bool newPerson, (string With, string Id) message, bool bySender, bool asLastSaid) =>
            // Keyed by whether the message is kept by a WITH (its two forms are constants): hashing the WITH's text would be
            // work on every submission.
            WriteSqls.GetOrAdd((newPerson, message.With.Length > 0, bySender, asLastSaid), (key, kept) =>
            {
                var (isNew, _, sender, lastSaid) = key;
                var (with, receivedId) = kept;
                var theReferral = sender
                    ? "r.organisation_id = @OrganisationId AND r.sender_system = @SenderSystem AND r.sender_value = @SenderValue"
                    : "r.organisation_id = @OrganisationId AND r.idempotency_key = @IdempotencyKey";
                return new Writes(
                    isNew ? PersonDetails.InsertPerson : null,
                    $"""
                    {with}INSERT INTO referral (person_id, organisation_id, referrer_user_id, partner_client_id, sender_system, sender_value, idempotency_key, status, source, pathway, urgency,
                        hospital_site_id, ward, bed_label, admitted_on, medically_optimised_on, expected_discharge_on, needs, strengths, goals, safeguarding_concern,
                        infection_status, falls_risk, self_neglect, cognition_concern, mental_capacity_concern, best_interests_decision,
                        self_funding, consent_to_share, consent_given_by, lawful_reason, person_wishes, family_expectations,
                        staff_expectations, summary, information_needed, early_request, duplicate_of_referral_id, duplicate_answer, version,
                        created_at, submitted_at, updated_at, entered_from_paper, entered_at, entered_by_user_id, received_id)
                    VALUES ({(isNew ? "(SELECT id FROM person WHERE nhs_number = @NhsNumber)" : "@PersonId")}, @OrganisationId, @ReferrerUserId,
                        (SELECT id FROM partner_client WHERE client_id = @PartnerClientId), @SenderSystem, @SenderValue, @IdempotencyKey, 'submitted', @Source, @Pathway, @Urgency,
                        @HospitalSiteId, @Ward, @BedLabel, @AdmittedOn, @MedicallyOptimisedOn, @ExpectedDischargeOn, @Needs, @Strengths, @Goals, @SafeguardingConcern,
                        @InfectionStatus, @FallsRisk, @SelfNeglect, @CognitionConcern, @MentalCapacityConcern, @BestInterestsDecision,
                        @SelfFunding, @ConsentToShare, @ConsentGivenBy, @LawfulReason, @PersonWishes, @FamilyExpectations,
                        @StaffExpectations, @Summary, @InformationNeeded, @EarlyRequest, @DuplicateOf, @DuplicateAnswer, 1,
                        @MadeAt, @MadeAt, @Now, @EnteredFromPaper, @EnteredAt, @EnteredByUserId, {receivedId})
                    RETURNING id, received_id
                    """,
                    $"{(lastSaid ? KeepWhatItLastSaid : KeepWhatItSaid)} WHERE {theReferral}",
                    TriageTasks.InsertOpenWhere(theReferral));
            }, message);

        private static readonly System.Collections.Concurrent.ConcurrentDictionary<(bool NewPerson, bool KeptByWith, bool BySender, bool AsLastSaid), Writes> WriteSqls = new();

        /// <summary>
        /// A submission's writes, in order: the person when new (answering its id), the referral (its id and its message's),
        /// what it said of the person, its triage task (its id). The statements after the referral's find it by its key.
        /// </summary>
        private sealed record Writes(string? Person, string Referral, string WhatItSaid, string Task)
        {
            /// <summary>All of them as one command: on PostgreSQL one round trip, where they were four (issue 14).</summary>
            public string AsOne { get; } = string.Join(";\n", new[] { Person, Referral, WhatItSaid, Task }.OfType<string>());
        }

        /// <summary>What a referral said of its person: referral_person's columns after the referral and the person (and its version).</summary>
        private static readonly string[] Said =
        [
            "nhs_number", "given_name", "family_name", "date_of_birth", "sex", "address_line", "postcode", "locality", "ethnicity",
            "interpreter_language", "easy_read", "bsl", "lives_alone", "carer_name", "carer_relationship", "carer_contact",
            "carer_wants_assessment", "gp_practice_code", "names", "other_identifiers",
        ];

        /// <summary>A copy, for referral r, of what <paramref name="from"/> (a person row, or a row of what was said) holds, versioned as it is.</summary>
        private static string KeepFrom(string from, string tables) => $"""
            INSERT INTO referral_person (referral_id, person_id, person_version, {string.Join(", ", Said)}, recorded_at)
            SELECT r.id, {from}.{(from == "p" ? "id" : "person_id")}, {from}.{(from == "p" ? "version" : "person_version")}, {string.Join(", ", Said.Select(c => $"{from}.{c}"))}, @now
            FROM {tables}
            """;

        /// <summary>
        /// The person as this referral described them, with the version of the record it made: the person row was just
        /// written from this form alone, so a copy of it now is exactly what the referrer said. What its organisation reads.
        /// Followed by a condition on the referral r.
        /// </summary>
        private static readonly string KeepWhatItSaid = KeepFrom("p", "referral r JOIN person p ON p.id = r.person_id");

        /// <summary>
        /// For a referral that said nothing new of a person known before (Command.PersonAsKnown): a copy of what its organisation
        /// last said of them, its version too, so that it stays that organisation's latest word (PersonRecord.LatestAsReferredBy
        /// breaks a tie by the referral). There is always one: the sender could name the person only because it had said something
        /// of them, and nothing said is ever removed. Followed by a condition on the referral r.
        /// </summary>
        private static readonly string KeepWhatItLastSaid = KeepFrom("rp", $"referral r JOIN person p ON p.id = r.person_id {PersonRecord.LatestAsReferredBy}");

        /// <summary>
        /// A referral that describes the person carries the latest word on them, so the whole record (the coordination centre's) of someone known
        /// before is brought up to date with it; what each referral said is kept with it too (KeepWhatItSaid), for its own
        /// organisation. A person new to the store is written with the referral (WriteSql).
        /// </summary>
        private async Task UpdatePersonAsync(System.Data.Common.DbConnection connection, System.Data.Common.DbTransaction transaction,
            long personId, string nhsNumber, ReferralForm form, DateTimeOffset now)
        {
            await Fhir.FhirVersions.KeepSupersededAsync(work, "person", personId);
            var update = new DynamicParameters(PersonDetails.From(nhsNumber, form, now));
            update.Add("Id", personId);
            await connection.ExecuteAsync(
                $"""
                UPDATE person SET given_name = @GivenName, family_name = @FamilyName, date_of_birth = @DateOfBirth, sex = @Sex,
                    address_line = @AddressLine, postcode = @Postcode, locality = {PersonDetails.LocalityOfDistrict}, ethnicity = @Ethnicity,
                    interpreter_language = @InterpreterLanguage, easy_read = @EasyRead, bsl = @Bsl, lives_alone = @LivesAlone,
                    carer_name = @CarerName, carer_relationship = @CarerRelationship, carer_contact = @CarerContact,
                    carer_wants_assessment = @CarerWantsAssessment, gp_practice_code = @GpPracticeCode,
                    names = @Names, other_identifiers = @OtherIdentifiers, version = version + 1, updated_at = @Now
                WHERE id = @Id
                """, update, transaction);
            await TriageTasks.KeepOwnersOfPersonAsync(connection, transaction, personId);
            work.Scope.RecordChange("person.updated", "person", personId, null);
        }
    }
}
