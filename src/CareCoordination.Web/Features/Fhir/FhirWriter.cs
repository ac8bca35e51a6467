using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using CareCoordination.Auth;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Hl7.Fhir.Model;
using Mediator;
using Task = System.Threading.Tasks.Task;

namespace CareCoordination.Features.Fhir;

/// <summary>What one write did: the resource it names, and the status to answer (201 created, 200 found or changed).</summary>
public sealed record Written(string ResourceType, long Id, int Status)
{
    /// <summary>For a referral: the person it is for, the id of a transaction's Patient entry.</summary>
    public long PersonId { get; init; }

    /// <summary>
    /// For a referral its condition found (a retry): the person sent with it is known to be someone else than the referral's.
    /// False where that cannot be told (the person named only by reference, or sent without an NHS number).
    /// </summary>
    public bool ForAnotherPerson { get; init; }

    /// <summary>For a new referral: what the form needs and the sender did not say, answered as warnings.</summary>
    public IReadOnlyList<InformationNeeded.Item> Missing { get; init; } = [];

    /// <summary>For a transaction entry read as part of a referral (a Consent, an Observation ...): the entry of that referral.</summary>
    public int? ReadWithEntry { get; init; }

    /// <summary>
    /// The version the write made, where the write knows it (a new referral, and the Patient sent with it when the person is
    /// new to the store); else null, and an answer that names it reads it.
    /// </summary>
    public int? Version { get; init; }

    /// <summary>For a new referral: the version of the person its organisation now reads, where known without a read (SubmitReferral.Result).</summary>
    public int? PersonVersion { get; init; }

    /// <summary>The answer, read in the write's own transaction where its audit rows name it (ProcessTransaction); else read back after.</summary>
    public Resource? Answer { get; init; }
    public int? AnswerVersion { get; init; }

    /// <summary>What the write names, as its sender reads it: a Patient by the sender's own id for the person (PatientIds).</summary>
    public string Named(PatientIdSpace patients) => ResourceType == "Patient" ? patients.Reference(Id) : $"{ResourceType}/{FhirMapping.Id(Id)}";
}

/// <summary>
/// Turns partners' FHIR writes into the same Mediator commands the pages send (SubmitReferral, CancelReferral, RecordDischarge;
/// an update's note through AddReferrersUpdate, which answers or notes as the pages' two commands do): one set of rules, one audit. Used by create and update, by
/// each entry of a batch or transaction, and by $process-message. Inside a transaction's command the
/// commands it sends join that command's database transaction, so one failing entry undoes them all.
/// </summary>
public sealed class FhirWriter(IMediator mediator, Database database, ActorAccessor actors, Profiles.FhirProfiles profiles, IHttpContextAccessor http,
    PatientIds patientIds)
{
    /// <summary>The caller's organisation's Patient ids: those it reads, and those it may name.</summary>
    private PatientIdSpace Patients => patientIds.For(actors.Current);

    /// <summary>
    /// POST ServiceRequest. The person is the Patient given (contained, or an entry of the same transaction)
    /// or, by reference, one the caller has referred or registered before. With If-None-Exist (identifier=system|value)
    /// an existing referral of the caller's with that identifier is answered instead (200), even under a race:
    /// the identifier is SubmitReferral's idempotency key, taken under a lock.
    /// </summary>
    public async Task<Written> CreateReferralAsync(ServiceRequest request, Patient? patient, PersonRecord? knownPerson, string? ifNoneExist,
        CancellationToken cancellationToken, Sent? sent = null)
    {
        // The precondition first, as FHIR servers check it: a referral the condition finds is the answer, whatever the body says.
        // Counted whatever the condition's _total says: how many it matches is the answer.
        var condition = ifNoneExist is null ? null : ReferralCondition(ifNoneExist);
        if (condition is not null)
        {
            // An identifier with its system is SubmitReferral's idempotency key, searched again under its lock: a race makes one
            // referral. Any other condition is checked and acted on under a lock of its own, in the transaction that creates.
            if (ConditionLock(actors.Current.OrganisationId, condition) is { } conditionLock)
            {
                if (Work.Current is not { Connection: { } connection, Transaction: { } transaction })
                {
                    throw new InvalidOperationException("A conditional create is made inside a command (CreateReferralAloneAsync, a transaction Bundle).");
                }
                await database.LockAsync(connection, transaction, conditionLock);
            }
            var matches = await mediator.Send(condition, cancellationToken);
            if (matches.Total > 1)
            {
                throw new PreconditionFailed($"If-None-Exist {ifNoneExist} matches {matches.Total} of your referrals: it must match one at most.");
            }
            if (matches.Items.Count == 1)
            {
                // Found in what this transaction has made: two of its entries are one referral (FHIR fails such a transaction).
                if (Work.Current?.Changes.Any(c => c.Kind == "referral.submitted" && c.EntityId == matches.Items[0].Id) == true)
                {
                    throw new InvalidResource("Bundle.entry.request.ifNoneExist",
                        $"If-None-Exist {ifNoneExist} finds the referral another entry of this transaction makes: send each referral once.");
                }
                return new Written("ServiceRequest", matches.Items[0].Id, StatusCodes.Status200OK)
                {
                    PersonId = matches.Items[0].PersonId,
                    ForAnotherPerson = !SamePerson(patient, knownPerson, matches.Items[0].PersonId, matches.Items[0].NhsNumber),
                };
            }
        }
        sent ??= new Sent(request);
        // Then the published profiles: a partner learns every structural fault at once, against its element.
        profiles.Require(request);
        if (patient is not null)
        {
            profiles.Require(patient);
        }
        var organisationKind = await RequireOwnOrganisationAsync(request, sent, cancellationToken);
        if (request.Status != RequestStatus.Active)
        {
            throw new RuleBroken($"A new referral is sent with status active, not {request.Status?.ToString().ToLowerInvariant() ?? "none"}.");
        }
        if (request.Intent is not (RequestIntent.Plan or RequestIntent.Proposal or RequestIntent.Order))
        {
            throw new InvalidResource("ServiceRequest.intent", $"A referral is a request with intent plan, proposal or order, not {request.Intent?.ToString().ToLowerInvariant() ?? "none"}.");
        }
        var sender = ReferralIntake.Sender(request);
        if (condition?.Identifier is { System.Length: > 0 } wanted)
        {
            if (sender is null)
            {
                sender = wanted;
            }
            else if (sender != wanted)
            {
                throw new InvalidResource("ServiceRequest.identifier",
                    $"If-None-Exist names identifier {wanted.System}|{wanted.Value}, but the ServiceRequest carries {sender.System}|{sender.Value}: they must be the same.");
            }
        }

        var known = patient is null ? knownPerson ?? await KnownPersonAsync(request.Subject, cancellationToken) : null;
        var form = known is null ? ReferralIntake.ToForm(request, patient!, sent) : ReferralIntake.ToForm(request, known, sent);
        // Not stated: the referral source follows from what kind of organisation the referrer is in our directory.
        form.Source ??= SourceOf(organisationKind);
        await ApplyStandingLawfulBasisAsync(form, cancellationToken);
        // What the form asks for and the sender did not say is marked for the coordinator, not refused.
        var missing = InformationNeeded.Of(form);
        // A machine sender cannot be asked "new need or update?" as the page asks a person: the referral goes in
        // as a new need and the coordination centre sees it flagged as a possible duplicate.
        var key = sender is null ? Guid.NewGuid().ToString("N") : "fhir:" + Hash(sender);
        var result = await mediator.Send(new SubmitReferral.Command(form, key, DuplicateAnswer: "new-need", Sender: sender,
            // Said nothing new of the person: what the store holds of them is left as it is. A message that says something of them
            // after all (that they live alone, need BSL or easy read: an Observation or a Flag) is their word on the person.
            InformationNeeded: [.. missing.Select(m => m.Property)], PersonAsKnown: known?.StillIn(form) == true), cancellationToken);
        var referralId = result.ReferralId!.Value;
        if (result.Repeated)
        {
            // A retry that raced the first: answered as the conditional create it was, else refused as a duplicate.
            return condition is not null
                ? new Written("ServiceRequest", referralId, StatusCodes.Status200OK) { PersonId = result.PersonId!.Value, ForAnotherPerson = result.ForAnotherPerson }
                : throw new Conflict($"You have already sent a referral with identifier {sender!.System}|{sender.Value}: ServiceRequest/{referralId}. "
                    // A message cannot carry If-None-Exist: its retry is the same message (its Bundle.id), its change an update.
                    + (sent.Header is not null
                        ? $"To change that referral, send reason update naming ServiceRequest/{referralId}; a different referral needs an identifier of its own. "
                            + "(A retry of a message keeps its Bundle.id, and is recognised as a repeat.)"
                        : "To make a retry safe, send If-None-Exist: identifier=system|value."), duplicate: true);
        }
        // SubmitReferral inserts a new referral as its version 1, and nothing in the command changes it after.
        return new Written("ServiceRequest", referralId, StatusCodes.Status201Created)
        {
            PersonId = result.PersonId!.Value, Missing = missing, Version = 1, PersonVersion = result.PersonVersion,
        };
    }

    /// <summary>
    /// POST ServiceRequest on its own (or as a batch entry): with If-None-Exist on anything but the sender's identifier, the
    /// condition's search and the referral it allows run in one command (CreateReferralConditionally), under the condition's
    /// lock. An identifier's condition needs none: SubmitReferral's lock on the key makes a race one referral.
    /// </summary>
    public async Task<Written> CreateReferralAloneAsync(ServiceRequest request, string? ifNoneExist, CancellationToken cancellationToken) =>
        ifNoneExist is not null && ConditionLock(ifNoneExist) is not null
            ? await mediator.Send(new CreateReferralConditionally.Command(request, ifNoneExist), cancellationToken)
            : await CreateReferralAsync(request, ContainedPatient(request), null, ifNoneExist, cancellationToken);

    private SearchServiceRequests.Query ReferralCondition(string ifNoneExist) => ReferralCondition(ifNoneExist, Patients);

    private static SearchServiceRequests.Query ReferralCondition(string ifNoneExist, PatientIdSpace patients) =>
        Conditional(ifNoneExist, SearchServiceRequests.Parameters, search => SearchServiceRequests.From(search, patients)) with { Count = 2, Offset = 0, WithTotal = true };

    /// <summary>The lock a conditional create's condition takes, or null for an identifier with its system (see CreateReferralAloneAsync).</summary>
    private string? ConditionLock(string ifNoneExist) => ConditionLock(actors.Current.OrganisationId, Patients, ifNoneExist);

    /// <summary>The key of the lock an organisation's If-None-Exist takes (null: none); a test holds it to make two creates meet there.</summary>
    internal static string? ConditionLock(long? organisationId, PatientIdSpace patients, string ifNoneExist) =>
        ConditionLock(organisationId, ReferralCondition(ifNoneExist, patients));

    /// <summary>
    /// Read from the search the condition asks for, not its text, so that one search written two ways (its parameters in
    /// another order, patient or subject, its statuses listed otherwise) is one lock, taken within the caller's organisation.
    /// </summary>
    private static string? ConditionLock(long? organisationId, SearchServiceRequests.Query condition) => condition.Identifier is { System.Length: > 0 } ? null
        : string.Join('|', "fhir-if-none-exist", organisationId, condition.NhsNumber, condition.PersonId, condition.Identifier?.Value,
            string.Join(',', condition.ReferralStatuses.Order(StringComparer.Ordinal)), string.Join(',', condition.LastUpdated.Select(b => $"{b.Operator}{b.At:O}").Order(StringComparer.Ordinal)));

    /// <summary>The referral source an organisation of this kind sends from, when the referral does not say.</summary>
    private static string? SourceOf(string? organisationKind) => organisationKind switch
    {
        "acute-trust" => "acute-hospital",
        "community-hospital" => "community-hospital",
        "gp-practice" => "gp",
        "community-trust" => "community-step-up",
        _ => null,
    };

    /// <summary>
    /// Sharing needs a lawful basis: the person's consent (a Consent, or our extension), a recorded lawful reason, or
    /// else the standing basis an administrator recorded for this partner from its data-sharing agreement, applied
    /// here. With none of these SubmitReferral refuses the referral, and nothing is stored.
    /// </summary>
    private async Task ApplyStandingLawfulBasisAsync(ReferralForm form, CancellationToken cancellationToken)
    {
        var actor = actors.Current;
        if (form.ConsentToShare == true || !string.IsNullOrWhiteSpace(form.LawfulReason) || actor.Kind != ActorKind.Partner)
        {
            return;
        }
        await using var connection = await database.OpenAsync(cancellationToken);
        var standing = await connection.QuerySingleOrDefaultAsync<(string? Basis, string? Agreement)>(
            "SELECT default_lawful_basis, data_sharing_agreement FROM partner_client WHERE client_id = @id", new { id = actor.Id });
        if (!string.IsNullOrWhiteSpace(standing.Basis))
        {
            form.ConsentToShare = false;
            form.LawfulReason = string.IsNullOrWhiteSpace(standing.Agreement) ? standing.Basis : $"{standing.Basis} (data-sharing agreement {standing.Agreement})";
        }
    }

    /// <summary>
    /// POST Patient: the caller's organisation registers the person (RegisterPerson), its own record of them. With
    /// If-None-Exist (identifier=NHS number) its own earlier registration or referral of the person is answered instead
    /// (200), before anything in the body is checked; a person only another organisation knows is registered as the
    /// caller's own (201), so that the answer never says who else knows them.
    /// </summary>
    public async Task<Written> RegisterPersonAsync(Patient patient, string? ifNoneExist, CancellationToken cancellationToken)
    {
        string? wanted = null;
        if (ifNoneExist is not null)
        {
            wanted = ConditionalNhsNumber(ifNoneExist);
            if (await ExistingPersonAsync(wanted, ifNoneExist, cancellationToken) is { } existing)
            {
                return new Written("Patient", existing.Id, StatusCodes.Status200OK) { PersonId = existing.Id };
            }
        }
        profiles.Require(patient);
        var form = ReferralIntake.ToForm(patient);
        if (wanted is not null && Domain.NhsNumber.Normalise(form.NhsNumber) != wanted)
        {
            throw new InvalidResource("Patient.identifier",
                $"If-None-Exist names NHS number {wanted}, but the Patient carries {form.NhsNumber ?? "none"}: they must be the same.");
        }
        var registered = await mediator.Send(new RegisterPerson.Command(form, OnlyIfNew: ifNoneExist is not null), cancellationToken);
        return new Written("Patient", registered.PersonId, registered.Created ? StatusCodes.Status201Created : StatusCodes.Status200OK)
        {
            PersonId = registered.PersonId,
        };
    }

    /// <summary>
    /// PUT ServiceRequest/{id}: a partner may cancel its own referral while it is being worked, by sending it
    /// back with status revoked and a note saying why. Nothing else about a sent referral is changed by update.
    /// </summary>
    public async Task<Written> UpdateReferralAsync(long referralId, ServiceRequest request, int? expectedVersion, CancellationToken cancellationToken)
    {
        await RequireVersionAsync(referralId, expectedVersion, cancellationToken);
        if (request.Id is { } bodyId && bodyId != FhirMapping.Id(referralId))
        {
            throw new InvalidResource("ServiceRequest.id", $"The body is ServiceRequest/{bodyId} but was sent to ServiceRequest/{referralId}.");
        }
        if (request.Status != RequestStatus.Revoked)
        {
            throw new RuleBroken("This server changes a sent referral by update only to cancel it: send status revoked with a note saying why. "
                + "To answer a question or add information, send a $process-message update.");
        }
        var why = NewestNote(request, request.Note.Count == 1 ? await ReferralNowAsync<CancelReferral.Command>(referralId, cancellationToken) : null);
        await mediator.Send(new CancelReferral.Command(referralId, why ?? "", expectedVersion), cancellationToken);
        return new Written("ServiceRequest", referralId, StatusCodes.Status200OK);
    }

    /// <summary>
    /// A BaRS update that is not a cancellation: the referrer's newest note answers an open question, or is added as a note; and
    /// the hospital Encounter the message carries (the one the ServiceRequest's encounter names, else its only Encounter), when it
    /// has period.end, records the person's discharge from hospital at that time (RecordDischarge, as from the partner).
    /// With the version it was read at (meta.versionId), a referral changed since is refused (412) before anything else.
    /// </summary>
    public async Task<Written> AddToReferralAsync(long referralId, ServiceRequest request, int? expectedVersion, CancellationToken cancellationToken, Sent? sent = null)
    {
        await RequireVersionAsync(referralId, expectedVersion, cancellationToken);
        var discharged = Discharged(sent);
        var referral = await ReferralNowAsync<AddReferrersUpdate.Command>(referralId, cancellationToken);
        var text = NewestNote(request, referral);
        if (discharged is { } at)
        {
            await mediator.Send(new Discharges.RecordDischarge.Command(referralId, at, ExpectedVersion: expectedVersion), cancellationToken);
            // The version named is checked by the first write; from there the message's transaction holds the referral (PostgreSQL's
            // row lock, SQLite's writer turn), and the note's command below finds it at the version this one made.
            expectedVersion = null;
        }
        if (text is null)
        {
            return discharged is not null
                ? new Written("ServiceRequest", referralId, StatusCodes.Status200OK)
                : throw new RuleBroken("An update carries what is new as the ServiceRequest's last note, or the hospital Encounter with period.end "
                    + "once the person has left hospital: there is neither.");
        }
        // Answer or note is decided by the command, on the referral as the writing transaction reads it.
        await mediator.Send(new AddReferrersUpdate.Command(referralId, text, expectedVersion), cancellationToken);
        return new Written("ServiceRequest", referralId, StatusCodes.Status200OK);
    }

    /// <summary>
    /// If-Match (or a message's meta.versionId), checked before the body, as FHIR servers check preconditions: a stale
    /// version is 412 whatever else the update says. The command checks it again in its transaction, for a change made
    /// in between.
    /// </summary>
    private async Task RequireVersionAsync(long referralId, int? expectedVersion, CancellationToken cancellationToken)
    {
        if (expectedVersion is { } expected)
        {
            await mediator.Send(new CheckReferralVersion.Query(referralId, expected), cancellationToken);
        }
    }

    /// <summary>
    /// The entries of a transaction or batch, POSTs before PUTs as FHIR orders them. In a transaction a
    /// ServiceRequest may name its Patient entry by urn:uuid, and a Patient entry's ifNoneExist finds a
    /// person the caller has referred or registered before; a Patient entry no referral names is a registration
    /// of its own. In a batch every entry stands alone. A failure names its entry.
    /// </summary>
    public async Task<IReadOnlyList<Written>> ApplyTransactionAsync(Bundle bundle, CancellationToken cancellationToken)
    {
        var results = new Written?[bundle.Entry.Count];
        int? referralEntry = null;
        var patients = new Dictionary<string, (int Index, Patient Patient, PersonRecord? Known)>(StringComparer.Ordinal);
        // The Patient entries a new referral here is for: each is recorded with its referral, any other registered on its own.
        var subjects = bundle.Entry.Where(e => Route(e) is (Bundle.HTTPVerb.POST, "ServiceRequest"))
            .Select(e => (e.Resource as ServiceRequest)?.Subject?.Reference).OfType<string>().ToHashSet(StringComparer.Ordinal);
        // Every condition's lock first, in one order: taken entry by entry, after earlier entries' person and key locks, two
        // transactions (or one and a conditional create alone, which takes its condition's first) could each wait for the
        // other. A condition that does not parse is left to its entry, which says so with its place in the Bundle.
        var conditionLocks = bundle.Entry.Where(e => Route(e) is (Bundle.HTTPVerb.POST, "ServiceRequest"))
            .Select(e => e.Request?.IfNoneExist is { } condition ? TryConditionLock(condition) : null).OfType<string>().Distinct().Order(StringComparer.Ordinal);
        if (Work.Current is { Connection: { } connection, Transaction: { } transaction })
        {
            foreach (var conditionLock in conditionLocks)
            {
                await database.LockAsync(connection, transaction, conditionLock);
            }
        }
        foreach (var (entry, index) in bundle.Entry.Select((e, i) => (e, i)))
        {
            await AtEntry(index, async () =>
            {
                var (method, url) = Route(entry);
                if (method == Bundle.HTTPVerb.POST && url == "Patient" && entry.Resource is Patient patient && subjects.Contains(entry.FullUrl ?? $"#entry{index}"))
                {
                    var known = entry.Request?.IfNoneExist is { } condition ? await ExistingPersonAsync(ConditionalNhsNumber(condition), condition, cancellationToken) : null;
                    patients[entry.FullUrl ?? $"#entry{index}"] = (index, patient, known);
                }
            });
        }
        foreach (var (entry, index) in bundle.Entry.Select((e, i) => (e, i)).OrderBy(e => Route(e.e).Method == Bundle.HTTPVerb.POST ? 0 : 1))
        {
            await AtEntry(index, async () =>
            {
                var (method, url) = Route(entry);
                if (method == Bundle.HTTPVerb.POST && (url == "Patient" || ReadWithReferral.Contains(url)))
                {
                    if (entry.Resource is Patient alone && !subjects.Contains(entry.FullUrl ?? $"#entry{index}"))
                    {
                        results[index] = await RegisterPersonAsync(alone, entry.Request?.IfNoneExist, cancellationToken);
                    }
                    return;
                }
                if (method == Bundle.HTTPVerb.POST && url == "ServiceRequest" && entry.Resource is ServiceRequest request)
                {
                    var named = request.Subject?.Reference is { } reference && patients.TryGetValue(reference, out var subject) ? subject : default;
                    // The person as an entry of the Bundle, else contained in the referral (#id), as a ServiceRequest posted alone may carry it.
                    var written = await CreateReferralAsync(request, named.Known is null ? named.Patient ?? ContainedPatient(request) : null, named.Known, entry.Request?.IfNoneExist,
                        cancellationToken, new Sent(request, bundle));
                    results[index] = written;
                    referralEntry ??= index;
                    if (named.Patient is not null)
                    {
                        if (written.ForAnotherPerson)
                        {
                            throw new Conflict($"If-None-Exist {entry.Request?.IfNoneExist} finds ServiceRequest/{written.Id}, a referral for another person "
                                + $"than your Patient entry {request.Subject?.Reference}: a different referral needs an identifier of its own. "
                                + "(A retry of the transaction that made it names the same person, and is answered with what it made.)", duplicate: true);
                        }
                        // Made only with a referral made: a referral the condition found (a retry) made no person either.
                        var made = named.Known is null && written.Status == StatusCodes.Status201Created;
                        results[named.Index] = new Written("Patient", written.PersonId, made ? StatusCodes.Status201Created : StatusCodes.Status200OK)
                        {
                            Version = written.PersonVersion,
                        };
                    }
                    return;
                }
                results[index] = await ApplyUpdateAsync(entry, cancellationToken);
            });
        }
        // A Consent, Observation, Flag ... sent beside the referral is read into it, not kept as a resource of its own.
        foreach (var (entry, index) in bundle.Entry.Select((e, i) => (e, i)))
        {
            if (results[index] is null && referralEntry is { } readWith && Route(entry) is (Bundle.HTTPVerb.POST, var url) && ReadWithReferral.Contains(url))
            {
                results[index] = new Written(url, 0, StatusCodes.Status200OK) { ReadWithEntry = readWith };
            }
        }
        var orphan = Array.FindIndex(results, r => r is null);
        if (orphan >= 0)
        {
            throw new EntryFailure(orphan, Route(bundle.Entry[orphan]).Url == "Patient"
                ? new InvalidResource("Bundle.entry.resource", "A POST Patient entry carries the Patient to register.")
                : new RuleBroken("This is read only as part of a referral: send it in the same transaction as the ServiceRequest it supports."));
        }
        return results!;
    }

    /// <summary>The resources a transaction may carry beside a referral for what they say about it (StandardShapes), not to be stored.</summary>
    private static readonly HashSet<string> ReadWithReferral = new(StringComparer.Ordinal)
    {
        "Consent", "Observation", "QuestionnaireResponse", "Flag", "Encounter", "Location", "Organization", "PractitionerRole", "Practitioner", "RelatedPerson",
    };

    private string? TryConditionLock(string ifNoneExist)
    {
        try
        {
            return ConditionLock(ifNoneExist);
        }
        catch (DomainFailure)
        {
            return null;
        }
    }

    /// <summary>One batch entry on its own: a create or an update, each in its own database transaction.</summary>
    public async Task<Written> ApplyBatchEntryAsync(Bundle.EntryComponent entry, CancellationToken cancellationToken)
    {
        var (method, url) = Route(entry);
        if (method == Bundle.HTTPVerb.POST && url == "Patient" && entry.Resource is Patient patient)
        {
            return await RegisterPersonAsync(patient, entry.Request?.IfNoneExist, cancellationToken);
        }
        if (method == Bundle.HTTPVerb.POST && url == "ServiceRequest" && entry.Resource is ServiceRequest request)
        {
            return await CreateReferralAloneAsync(request, entry.Request?.IfNoneExist, cancellationToken);
        }
        return await ApplyUpdateAsync(entry, cancellationToken);
    }

    private async Task<Written> ApplyUpdateAsync(Bundle.EntryComponent entry, CancellationToken cancellationToken)
    {
        var (method, url) = Route(entry);
        if (method == Bundle.HTTPVerb.PUT && url.StartsWith("ServiceRequest/", StringComparison.Ordinal) && entry.Resource is ServiceRequest update
            && long.TryParse(url["ServiceRequest/".Length..], NumberStyles.None, CultureInfo.InvariantCulture, out var referralId))
        {
            // As PUT ServiceRequest/{id} on its own: without the version last read, a change made since would be overwritten.
            var expected = ParseIfMatch(entry.Request?.IfMatch)
                ?? throw new PreconditionRequired("Give the entry request.ifMatch with the ETag of your last read, so that a change made since is not overwritten.");
            return await UpdateReferralAsync(referralId, update, expected, cancellationToken);
        }
        throw new InvalidResource("Bundle.entry.request",
            $"This server does not support {method} {url} with a {entry.Resource?.TypeName ?? "missing"} resource in a Bundle: "
            + "it takes POST Patient, POST ServiceRequest and PUT ServiceRequest/{id}.");
    }

    /// <summary>The Patient a ServiceRequest contains and names as its subject (#id), if it does.</summary>
    public static Patient? ContainedPatient(ServiceRequest request) =>
        request.Subject?.Reference is ['#', .. var id] ? request.Contained.OfType<Patient>().FirstOrDefault(p => p.Id == id) : null;

    /// <summary>If-Match: W/"3" (or "3"). Null when absent; anything else cannot name a version.</summary>
    public static int? ParseIfMatch(string? ifMatch)
    {
        if (string.IsNullOrWhiteSpace(ifMatch))
        {
            return null;
        }
        var value = ifMatch.Trim();
        value = value.StartsWith("W/", StringComparison.Ordinal) ? value[2..] : value;
        value = value.Trim('"');
        return int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var version)
            ? version
            : throw new InvalidResource(null, $"If-Match '{ifMatch}' is not a version this server gave out: use the ETag of your last read, like W/\"3\".");
    }

    private static async Task AtEntry(int index, Func<Task> apply)
    {
        try
        {
            await apply();
        }
        catch (DomainFailure failure) when (failure is not EntryFailure)
        {
            throw new EntryFailure(index, failure);
        }
    }

    private static (Bundle.HTTPVerb? Method, string Url) Route(Bundle.EntryComponent entry) =>
        (entry.Request?.Method, (entry.Request?.Url ?? "").Split('?')[0].Trim('/'));

    /// <summary>
    /// The caller's organisation's ODS code and kind: as this request's token check read them (PartnerTokens.AcceptAsync puts
    /// them on the principal it makes), or else read now.
    /// </summary>
    private async Task<(string? Code, string? Kind)> OwnOrganisationAsync(Actor actor, CancellationToken cancellationToken)
    {
        if (actor.Kind == ActorKind.Partner && actors.Principal?.FindFirst(CareClaims.OrganisationCode) is { } code
            && actors.Principal.FindFirst(CareClaims.OrganisationKind) is { } kind)
        {
            return (code.Value, kind.Value);
        }
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<(string? Code, string? Kind)>(new CommandDefinition(
            "SELECT code, kind FROM organisation WHERE id = @id", new { id = actor.OrganisationId ?? -1 }, cancellationToken: cancellationToken));
    }

    /// <summary>
    /// The referrer's organisation must be the caller's: by ODS code (requester, its PractitionerRole's organization,
    /// or the MessageHeader's sender) or by reference to our Organization. Answers the caller's organisation kind.
    /// </summary>
    private async Task<string?> RequireOwnOrganisationAsync(ServiceRequest request, Sent sent, CancellationToken cancellationToken)
    {
        var actor = actors.Current;
        var own = await OwnOrganisationAsync(actor, cancellationToken);
        var ownCode = own.Code;
        var named = sent.RequestingOrganisation();
        var byOdsCode = named is not null;
        if (named is { } requester && requester.Code != ownCode)
        {
            throw new ForeignRequester($"You may send referrals only for your own organisation ({ownCode}), not for {requester.Code} ({requester.Expression}).",
                requester.Expression);
        }
        // A PractitionerRole, Practitioner or Organization sent with the referral: its ODS code, if any, was checked above.
        if (request.Requester?.Reference is not { } reference || sent.Resolve(request.Requester) is not null)
        {
            return own.Kind;
        }
        switch (Locate(reference, "Organization"))
        {
            case Here { Id: { } id } when id == actor.OrganisationId:
                return own.Kind;
            case Here { Id: not null }:
                throw new ForeignRequester($"You may send referrals only for your own organisation (Organization/{actor.OrganisationId}), not for {reference}.",
                    "ServiceRequest.requester");
            // The sender's own record of its organisation: the ODS code, checked above, says who it is here.
            case Elsewhere when byOdsCode:
                return own.Kind;
            case Elsewhere elsewhere:
                throw new InvalidResource("ServiceRequest.requester", $"{reference} is an Organization on another server ({elsewhere.Base}), "
                    + "which this server cannot read: name your organisation by its ODS code (requester.identifier).");
            default:
                throw new InvalidResource("ServiceRequest.requester", $"'{reference}' is not a reference to an Organization here: give Organization/{{id}}, or your ODS code as requester.identifier.");
        }
    }

    /// <summary>
    /// The person a referral by reference is for: the subject's Patient on this server, one the caller has referred
    /// before; or, for a Patient on another server (whose id there names nobody here) or no reference at all, the
    /// person with the NHS number given as subject.identifier. Given both, they must name the same person.
    /// </summary>
    private async Task<PersonRecord> KnownPersonAsync(ResourceReference? subject, CancellationToken cancellationToken)
    {
        const string Expression = "ServiceRequest.subject";
        const string SayWho = "Say who the referral is for: contain the Patient (#id), send it in the same transaction (urn:uuid), "
            + "refer to Patient/{id} you have referred before, or give their NHS number as subject.identifier.";
        var reference = subject?.Reference;
        var nhsNumber = subject?.Identifier is { System: FhirMapping.NhsNumberSystem } identifier ? identifier.Value ?? "" : null;
        if (nhsNumber is not null && !FhirEndpoints.IsNhsNumberShape(nhsNumber))
        {
            throw new InvalidResource($"{Expression}.identifier", $"'{nhsNumber}' is not an NHS number (10 digits).");
        }
        PersonRecord? named = null;
        switch (reference is null ? null : Locate(reference, "Patient"))
        {
            case null:
                break;
            case Here { Id: { } personId }:
                named = await VisiblePersonAsync(new ReadPatient.Query(personId), $"{reference} is not a person your organisation has referred", cancellationToken);
                break;
            case Elsewhere when nhsNumber is not null:
                break;
            case Elsewhere elsewhere:
                throw new InvalidResource(Expression, $"{reference} is a Patient on another server ({elsewhere.Base}), which this server cannot read: "
                    + "its id there names nobody here. Send the Patient itself (contained, or in a transaction), or give their NHS number as subject.identifier.");
            default:
                throw new InvalidResource(Expression, SayWho);
        }
        if (nhsNumber is null)
        {
            return named ?? throw new InvalidResource(Expression, SayWho);
        }
        if (named is not null)
        {
            return named.NhsNumber == nhsNumber
                ? named
                : throw new InvalidResource(Expression, $"subject.reference ({reference}) and subject.identifier (NHS number {nhsNumber}) name two different persons: name one.");
        }
        var found = await mediator.Send(new SearchPatients.Query(nhsNumber, 1, 0), cancellationToken);
        return found.Items.SingleOrDefault()
            ?? throw new RuleBroken($"NHS number {nhsNumber} is not a person your organisation has referred: send the Patient itself, contained or in a transaction.");
    }

    private async Task<PersonRecord> VisiblePersonAsync(ReadPatient.Query read, string unknown, CancellationToken cancellationToken)
    {
        try
        {
            return await mediator.Send(read, cancellationToken);
        }
        catch (NotFound)
        {
            throw new RuleBroken($"{unknown}: send the Patient itself, contained or in a transaction.");
        }
    }

    private abstract record Located;

    /// <summary>A resource on this server, by a relative reference or an absolute one under this server's base; no id when it names none.</summary>
    private sealed record Here(long? Id) : Located;

    /// <summary>A resource on another FHIR server: its id there says nothing about ids here.</summary>
    private sealed record Elsewhere(string Base) : Located;

    /// <summary>Not a reference this server can follow: a urn or fragment that names nothing in what was sent, or not a URL at all.</summary>
    private sealed record Unreadable : Located;

    /// <summary>
    /// Where a literal reference to a resource of the given type points. An absolute URL is this server's only under
    /// this server's base as the caller reached it (scheme, host, port and path); a relative one always is, as FHIR
    /// resolves it against the server it was sent to.
    /// </summary>
    private Located Locate(string reference, string type)
    {
        var relative = reference;
        if (Uri.TryCreate(reference, UriKind.Absolute, out var absolute))
        {
            if (absolute.Scheme is not ("http" or "https"))
            {
                return new Unreadable();
            }
            var ours = new Uri(ServerBase + "/");
            if (absolute.GetLeftPart(UriPartial.Authority) != ours.GetLeftPart(UriPartial.Authority)
                || !absolute.AbsolutePath.StartsWith(ours.AbsolutePath, StringComparison.Ordinal))
            {
                var path = absolute.GetLeftPart(UriPartial.Path);
                var marker = path.LastIndexOf($"/{type}/", StringComparison.Ordinal);
                return new Elsewhere(marker < 0 ? absolute.GetLeftPart(UriPartial.Authority) : path[..marker]);
            }
            relative = absolute.Query.Length > 0 || absolute.Fragment.Length > 0 ? "" : absolute.AbsolutePath[ours.AbsolutePath.Length..];
        }
        if (!relative.StartsWith($"{type}/", StringComparison.Ordinal))
        {
            return new Unreadable();
        }
        var idText = relative[(type.Length + 1)..];
        if (type == "Patient")
        {
            // The caller's own id for the person (PatientIds); one it was not given names nobody it has referred.
            return new Here(idText.Length == 0 || idText.Contains('/') ? null : Patients.PersonIdOrNobody(idText));
        }
        return long.TryParse(idText, NumberStyles.None, CultureInfo.InvariantCulture, out var id) ? new Here(id) : new Here(null);
    }

    /// <summary>
    /// Whether the referral a condition found is for the person sent with the retry: the person its own condition found, by id;
    /// else the Patient sent, by NHS number. A Patient without one could not have made the referral (its form needs one), and a
    /// person named only by reference is not read for this: both count as the same, and the found referral is the answer.
    /// </summary>
    private static bool SamePerson(Patient? patient, PersonRecord? known, long foundPersonId, string foundNhsNumber) =>
        known is not null ? known.Id == foundPersonId
            : Domain.NhsNumber.Normalise(patient?.Identifier.FirstOrDefault(i => i.System == FhirMapping.NhsNumberSystem)?.Value) is not { } sent
                || sent == Domain.NhsNumber.Normalise(foundNhsNumber);

    /// <summary>This server's FHIR base as the caller reached it (behind a proxy, as its forwarded headers say).</summary>
    private string ServerBase => FhirEndpoints.BaseUrl(http.HttpContext?.Request ?? throw new InvalidOperationException("A FHIR write is made within an HTTP request."));

    /// <summary>A Patient's If-None-Exist (identifier=NHS number): the person, if the caller's organisation has referred or registered them before.</summary>
    /// <param name="nhsNumber">The condition's NHS number (ConditionalNhsNumber): a person is found by nothing else, where a
    /// condition without one (_count=1 alone) would search every person the caller knows.</param>
    private async Task<PersonRecord?> ExistingPersonAsync(string nhsNumber, string condition, CancellationToken cancellationToken)
    {
        var found = await mediator.Send(new SearchPatients.Query(nhsNumber, 2, 0), cancellationToken);
        return found.Total switch
        {
            0 => null,
            1 => found.Items[0],
            _ => throw new PreconditionFailed($"ifNoneExist {condition} matches {found.Total} persons."),
        };
    }

    /// <summary>The NHS number a Patient's If-None-Exist names: the only condition a person is found by here.</summary>
    private static string ConditionalNhsNumber(string condition)
    {
        var nhsNumber = Conditional(condition, ["identifier"],
            search => search.Token("identifier", FhirMapping.NhsNumberSystem, FhirEndpoints.IsNhsNumberShape, "an NHS number (10 digits)"));
        return string.IsNullOrEmpty(nhsNumber)
            ? throw new InvalidResource("If-None-Exist", $"Find the person by their NHS number: identifier={FhirMapping.NhsNumberSystem}|{{NHS number}}.")
            : nhsNumber;
    }

    /// <summary>
    /// A conditional create's criteria are a search, read as strictly as one; a fault in them is a fault in the
    /// request (400), not a business rule.
    /// </summary>
    private static T Conditional<T>(string condition, string[] supported, Func<FhirSearch, T> read)
    {
        var query = Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(condition.StartsWith('?') ? condition : "?" + condition);
        if (query.Count == 0)
        {
            throw new InvalidResource("If-None-Exist", $"'{condition}' names no search: give, for example, identifier=system|value.");
        }
        try
        {
            return read(new FhirSearch(new QueryCollection(query), supported));
        }
        catch (ValidationFailed invalid)
        {
            throw new InvalidResource([.. invalid.Errors.SelectMany(e => e.Value).Select(message => new FhirIssue("If-None-Exist", message))]);
        }
    }

    /// <summary>The end of the hospital stay a message carries: Encounter.period.end, to the second, with its time zone.</summary>
    private static DateTimeOffset? Discharged(Sent? sent)
    {
        var encounter = sent is null ? null : sent.Resolve(sent.Request.Encounter) as Encounter ?? sent.All<Encounter>().FirstOrDefault();
        if (encounter?.Period?.EndElement is not { } end)
        {
            return null;
        }
        // A date alone cannot say when on the day, nor in which zone: the returns count London days from the time.
        if (end.Value is not { Length: > 10 } || !end.TryToDateTimeOffset(out var at))
        {
            throw new InvalidResource("Encounter.period.end", "Give the time the person left hospital with its time zone, e.g. 2026-12-03T14:30:00Z, not a date alone.");
        }
        return at.ToUniversalTime();
    }

    /// <summary>
    /// The note the partner added: the body is the referral as read with a last note of its own, and a referral reads with its
    /// summary as its only note, or none when it was sent without one. So a single note is new unless it is that summary (a
    /// cancellation of a referral sent without a summary gives one note; an update message may carry the new note alone).
    /// </summary>
    private static string? NewestNote(ServiceRequest request, ReferralNow? referral)
    {
        if (request.Note.Count == 0 || request.Note[^1].Text is not { } last || string.IsNullOrWhiteSpace(last))
        {
            return null;
        }
        var text = last.Trim();
        return request.Note.Count == 1 && referral?.Summary?.Trim() == text ? null : text;
    }

    /// <summary>Whose the referral is and its summary: what an update's newest note is judged by.</summary>
    private sealed record ReferralNow
    {
        public long OrganisationId { get; init; }
        public string? Summary { get; init; }
    }

    /// <summary>
    /// The referral as an update is judged, checking whose it is first: another organisation's is not found (404), as the
    /// command would say, whatever the update carries (a 422 for a note equal to its summary would confirm a guess at it).
    /// Inside a message or a transaction Bundle it is read on that transaction's connection, seeing what its earlier entries
    /// did, with no second connection beside the write; not audited, since the sender's own summary is not disclosed by it.
    /// </summary>
    /// <typeparam name="TCommand">The command the update goes on to send, whose callers alone are told anything here.</typeparam>
    private async Task<ReferralNow> ReferralNowAsync<TCommand>(long referralId, CancellationToken cancellationToken)
    {
        // Only a caller that may change the referral is told anything by it: without the update scope, a one-note update
        // answered 422 where the summary matched and 403 elsewhere.
        if (!AccessPolicy<TCommand>.Policy.Allows(actors.Current))
        {
            throw new AccessDenied($"{actors.Current.Name} may not change a referral (it needs system/ServiceRequest.u).");
        }
        const string sql = "SELECT organisation_id AS OrganisationId, summary AS Summary FROM referral WHERE id = @referralId";
        ReferralNow? referral;
        if (Work.Current is { Connection: { } connection, Transaction: { } transaction })
        {
            referral = await connection.QuerySingleOrDefaultAsync<ReferralNow>(new CommandDefinition(sql, new { referralId }, transaction, cancellationToken: cancellationToken));
        }
        else
        {
            await using var own = await database.OpenAsync(cancellationToken);
            referral = await own.QuerySingleOrDefaultAsync<ReferralNow>(new CommandDefinition(sql, new { referralId }, cancellationToken: cancellationToken));
        }
        return referral is not null && ReferralAccess.MaySee(actors.Current, referral.OrganisationId) ? referral : throw new NotFound($"Referral {referralId}");
    }

    /// <summary>The sender's identifier as an idempotency key: fixed length, whatever the system URI.</summary>
    private static string Hash(SubmitReferral.SenderIdentifier sender) =>
        Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes($"{sender.System}|{sender.Value}")));
}

/// <summary>A failure of one entry of a Bundle: answered with the entry's own failure, saying which entry.</summary>
public sealed class EntryFailure(int index, DomainFailure failure) : DomainFailure($"Bundle.entry[{index}]: {failure.Message}")
{
    public int Index { get; } = index;

    public DomainFailure Failure { get; } = failure;
}
