using System.Globalization;
using CareCoordination.Auth;
using CareCoordination.Features.Fhir.Profiles;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Hl7.Fhir.Model;
using Mediator;
using Task = System.Threading.Tasks.Task;

namespace CareCoordination.Features.Fhir;

/// <summary>
/// The FHIR write interactions: create and conditional create of a referral and of a person (a registration), a
/// referral's cancellation by update,
/// transaction and batch Bundles at POST /fhir, and BaRS-style messages at $process-message. What is
/// written is decided by FhirWriter; here each is read from HTTP, and answered with what was stored,
/// read back after the commit through the same queries (and audit) as a plain read.
/// </summary>
public static class FhirWrites
{
    internal static void MapWrites(this RouteGroupBuilder fhir)
    {
        fhir.MapPost("/ServiceRequest", async (HttpRequest request, HttpResponse response, FhirRequests body, FhirWriter writer, IMediator mediator,
            FhirProfiles profiles, CancellationToken cancellationToken) =>
        {
            var referral = await body.ReadAsync<ServiceRequest>(request, cancellationToken);
            profiles.CheckAhead(referral, body.Received);
            var ifNoneExist = request.Headers["If-None-Exist"].ToString();
            var written = await writer.CreateReferralAloneAsync(referral, string.IsNullOrWhiteSpace(ifNoneExist) ? null : ifNoneExist, cancellationToken);
            // The created resource is the body; a sender that wants the warnings (information needed) asks for the outcome instead.
            switch (Preferred(request))
            {
                case Return.OperationOutcome:
                    await AnswerAsync(request, response, mediator, written, cancellationToken); // for its Location and ETag
                    return FhirEndpoints.Fhir(Outcome(written), written.Status);
                case Return.Minimal:
                    return await MinimalAsync(request, response, mediator, written, cancellationToken);
                default:
                    return await AnswerAsync(request, response, mediator, written, cancellationToken);
            }
        });

        fhir.MapPost("/Patient", async (HttpRequest request, HttpResponse response, FhirRequests body, FhirWriter writer, IMediator mediator,
            FhirProfiles profiles, CancellationToken cancellationToken) =>
        {
            var patient = await body.ReadAsync<Patient>(request, cancellationToken);
            profiles.CheckAhead(patient, body.Received);
            var ifNoneExist = request.Headers["If-None-Exist"].ToString();
            var written = await writer.RegisterPersonAsync(patient, string.IsNullOrWhiteSpace(ifNoneExist) ? null : ifNoneExist, cancellationToken);
            return await AnswerAsPreferredAsync(request, response, mediator, written, cancellationToken);
        });

        fhir.MapPut("/ServiceRequest/{id}", async (string id, HttpRequest request, HttpResponse response, FhirRequests body, FhirWriter writer,
            IMediator mediator, CancellationToken cancellationToken) =>
        {
            var referralId = FhirEndpoints.ParseId(id, "ServiceRequest");
            var update = await body.ReadAsync<ServiceRequest>(request, cancellationToken);
            var expected = FhirWriter.ParseIfMatch(request.Headers.IfMatch.ToString())
                ?? throw new PreconditionRequired("Send If-Match with the ETag of your last read, so that a change made since is not overwritten.");
            var written = await writer.UpdateReferralAsync(referralId, update, expected, cancellationToken);
            return await AnswerAsPreferredAsync(request, response, mediator, written, cancellationToken);
        });

        fhir.MapPost("/", async (HttpRequest request, FhirRequests body, FhirWriter writer, IMediator mediator, FhirProfiles profiles,
            CancellationToken cancellationToken) =>
        {
            var bundle = await body.ReadAsync<Bundle>(request, cancellationToken);
            // Outside the write turn, so that other writers do not wait on it (the entries' checks are answered from it).
            profiles.CheckAhead(bundle, body.Received);
            var minimal = Preferred(request) == Return.Minimal;
            if (minimal)
            {
                SayMinimalApplied(request.HttpContext.Response);
            }
            if (bundle.Type == Bundle.BundleType.Transaction)
            {
                var written = await mediator.Send(new ProcessTransaction.Command(bundle) { Minimal = minimal }, cancellationToken);
                var reply = new Bundle { Type = Bundle.BundleType.TransactionResponse };
                foreach (var entry in written)
                {
                    reply.Entry.Add(await ResponseEntryAsync(request, mediator, entry, minimal, cancellationToken));
                }
                return FhirEndpoints.Fhir(reply);
            }
            if (bundle.Type == Bundle.BundleType.Batch)
            {
                var reply = new Bundle { Type = Bundle.BundleType.BatchResponse };
                foreach (var entry in bundle.Entry)
                {
                    try
                    {
                        var written = await writer.ApplyBatchEntryAsync(entry, cancellationToken);
                        reply.Entry.Add(await ResponseEntryAsync(request, mediator, written, minimal, cancellationToken));
                    }
                    catch (DomainFailure failure)
                    {
                        var (status, outcome) = FhirRequests.Answer(failure, write: true);
                        reply.Entry.Add(new Bundle.EntryComponent { Response = new Bundle.ResponseComponent { Status = StatusLine(status), Outcome = outcome } });
                    }
                }
                return FhirEndpoints.Fhir(reply);
            }
            throw new InvalidResource("Bundle.type", $"POST /fhir takes a Bundle of type transaction or batch, not {bundle.Type?.ToString().ToLowerInvariant() ?? "none"}.");
        });

        fhir.MapPost("/$process-message", async (HttpRequest request, FhirRequests body, IMediator mediator, FhirProfiles profiles,
            CancellationToken cancellationToken) =>
        {
            var message = await body.ReadAsync<Bundle>(request, cancellationToken);
            profiles.CheckAhead(message, body.Received);
            var processed = await mediator.Send(new ProcessMessage.Command(message), cancellationToken);
            var (resource, _) = await ReadBackAsync(request, mediator, processed.Written, cancellationToken);
            var referralUrl = $"ServiceRequest/{processed.Written.Id}";
            var reply = new Bundle
            {
                Id = Guid.NewGuid().ToString(),
                Type = Bundle.BundleType.Message,
                Timestamp = DateTimeOffset.UtcNow,
            };
            var header = new MessageHeader
            {
                Id = Guid.NewGuid().ToString(),
                Event = new Coding(ProcessMessage.EventSystem, ProcessMessage.ReferralEvent),
                Source = new MessageHeader.MessageSourceComponent { Name = "CareCoordination", Endpoint = FhirEndpoints.BaseUrl(request) },
                Response = new MessageHeader.ResponseComponent { Identifier = processed.MessageId, Code = MessageHeader.ResponseType.Ok },
                Focus = [new ResourceReference(referralUrl)],
            };
            reply.Entry.Add(new Bundle.EntryComponent { FullUrl = $"urn:uuid:{header.Id}", Resource = header });
            if (resource is not null)
            {
                reply.Entry.Add(new Bundle.EntryComponent { FullUrl = $"{FhirEndpoints.BaseUrl(request)}/{referralUrl}", Resource = resource });
            }
            if (processed.Written.Missing.Count > 0)
            {
                // MessageHeader.response.details is where a message reply carries its OperationOutcome.
                var outcome = Outcome(processed.Written);
                outcome.Id = Guid.NewGuid().ToString();
                header.Response.Details = new ResourceReference($"urn:uuid:{outcome.Id}");
                reply.Entry.Add(new Bundle.EntryComponent { FullUrl = $"urn:uuid:{outcome.Id}", Resource = outcome });
            }
            return FhirEndpoints.Fhir(reply);
        });
    }

    /// <summary>What a write's sender asks to be given back: FHIR's http page reads RFC 7240's Prefer: return=minimal, representation or OperationOutcome.</summary>
    internal enum Return
    {
        Representation,
        Minimal,
        OperationOutcome,
    }

    /// <summary>The sender's return preference; representation, as before, when it states none this server knows.</summary>
    internal static Return Preferred(HttpRequest request)
    {
        foreach (var header in request.Headers["Prefer"])
        {
            foreach (var part in (header ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                // A preference may carry parameters after a semicolon (RFC 7240 2); none of these has any.
                var preference = part.Split(';', 2)[0];
                var (name, value) = preference.Split('=', 2, StringSplitOptions.TrimEntries) is [var n, var v] ? (n, v.Trim('"')) : (preference.Trim(), "");
                // Only the first instance of a preference counts (RFC 7240 2); one this server does not know is ignored.
                if (name.Equals("return", StringComparison.OrdinalIgnoreCase))
                {
                    return value.ToUpperInvariant() switch
                    {
                        "MINIMAL" => Return.Minimal,
                        "OPERATIONOUTCOME" => Return.OperationOutcome,
                        _ => Return.Representation,
                    };
                }
            }
        }
        return Return.Representation;
    }

    /// <summary>
    /// return=minimal: the status and where the resource is, with its version (FHIR's Location SHALL name it), and no body.
    /// A new referral knows its version, and so does the Patient sent with it when the person is new to the store; any other
    /// write (a match, an update, a registration) reads its version back as the full answer would.
    /// </summary>
    private static async Task<IResult> MinimalAsync(HttpRequest request, HttpResponse response, IMediator mediator, Written written,
        CancellationToken cancellationToken)
    {
        var version = await VersionAsync(request, mediator, written, cancellationToken);
        response.Headers.Location = $"{FhirEndpoints.BaseUrl(request)}/{Location(Named(request, written), version)}";
        if (version is { } known)
        {
            response.Headers.ETag = FhirMapping.ETag(known);
        }
        SayMinimalApplied(response);
        return Results.StatusCode(written.Status);
    }

    /// <summary>RFC 7240 3: the answer says which preference it honoured.</summary>
    private static void SayMinimalApplied(HttpResponse response) => response.Headers["Preference-Applied"] = "return=minimal";

    /// <summary>The version a write made: as the write knows it, else read back (null only for a token that may not read it).</summary>
    private static async Task<int?> VersionAsync(HttpRequest request, IMediator mediator, Written written, CancellationToken cancellationToken) =>
        written.Version ?? written.AnswerVersion ?? (await ReadBackAsync(request, mediator, written, cancellationToken)).Version;

    /// <summary>A create or update of one resource answered as its sender prefers: minimal, or the resource read back.</summary>
    private static async Task<IResult> AnswerAsPreferredAsync(HttpRequest request, HttpResponse response, IMediator mediator, Written written,
        CancellationToken cancellationToken) =>
        Preferred(request) == Return.Minimal
            ? await MinimalAsync(request, response, mediator, written, cancellationToken)
            : await AnswerAsync(request, response, mediator, written, cancellationToken);

    private static async Task<IResult> AnswerAsync(HttpRequest request, HttpResponse response, IMediator mediator, Written written, CancellationToken cancellationToken)
    {
        var (resource, version) = await ReadBackAsync(request, mediator, written, cancellationToken);
        var named = Named(request, written);
        response.Headers.Location = $"{FhirEndpoints.BaseUrl(request)}/{Location(named, version)}";
        if (resource is null)
        {
            return FhirEndpoints.Fhir(NotReadable(named, written), written.Status);
        }
        response.Headers.ETag = FhirMapping.ETag(version!.Value);
        return FhirEndpoints.Fhir(resource, written.Status);
    }

    /// <summary>
    /// A transaction or batch entry's answer: its response (status, location, any warnings) and the resource read back; under
    /// return=minimal no resource, and its version read back only where the write does not know it (<see cref="Written.Version"/>).
    /// </summary>
    private static async Task<Bundle.EntryComponent> ResponseEntryAsync(HttpRequest request, IMediator mediator, Written written, bool minimal,
        CancellationToken cancellationToken)
    {
        if (written.ReadWithEntry is not null)
        {
            return ReadWithEntry(written);
        }
        var (resource, version) = minimal ? ((Resource?)null, await VersionAsync(request, mediator, written, cancellationToken))
            : written.Answer is { } answer ? (answer, written.AnswerVersion)
            : await ReadBackAsync(request, mediator, written, cancellationToken);
        var named = Named(request, written);
        return new Bundle.EntryComponent
        {
            FullUrl = $"{FhirEndpoints.BaseUrl(request)}/{named}",
            Resource = resource,
            Response = new Bundle.ResponseComponent
            {
                Status = StatusLine(written.Status),
                Location = Location(named, version),
                Etag = version is { } v ? FhirMapping.ETag(v) : null,
                LastModified = resource?.Meta?.LastUpdated,
                Outcome = resource is null && !minimal ? NotReadable(named, written) : written.Missing.Count > 0 ? Outcome(written) : null,
            },
        };
    }

    private static Bundle.EntryComponent ReadWithEntry(Written written) => new()
    {
        Response = new Bundle.ResponseComponent
        {
            Status = StatusLine(written.Status),
            Outcome = FhirMapping.Outcome(OperationOutcome.IssueType.Informational,
                $"Read as part of the referral in Bundle.entry[{written.ReadWithEntry}]: what it says is stored with that referral, not as a {written.ResourceType} of its own.",
                OperationOutcome.IssueSeverity.Information),
        },
    };

    /// <summary>
    /// What a create did, as an OperationOutcome: one warning per answer the form needs and the sender did not give,
    /// naming the FHIR element that carries it. The referral is accepted all the same.
    /// </summary>
    private static OperationOutcome Outcome(Written written)
    {
        var outcome = new OperationOutcome();
        outcome.Issue.Add(new OperationOutcome.IssueComponent
        {
            Severity = OperationOutcome.IssueSeverity.Information,
            Code = OperationOutcome.IssueType.Informational,
            Diagnostics = written.Missing.Count == 0
                ? $"Accepted: {written.ResourceType}/{written.Id}."
                : $"Accepted: {written.ResourceType}/{written.Id}, marked information needed for the coordination centre, who will ask you for what is missing.",
        });
        foreach (var item in written.Missing)
        {
            outcome.Issue.Add(new OperationOutcome.IssueComponent
            {
                Severity = OperationOutcome.IssueSeverity.Warning,
                Code = OperationOutcome.IssueType.Incomplete,
                Diagnostics = $"Information needed: {item.Words}.",
                Details = new CodeableConcept { Text = item.Property },
                Expression = [item.FhirPath],
            });
        }
        return outcome;
    }

    /// <summary>
    /// What a write stored, read back through the plain read (its visibility check and audit). A token allowed to
    /// write but not to read gets no copy; the write has been made all the same, so it must not be told it failed. Nor is a
    /// read it never asked for tried for it: that would leave a refused read in the audit trail for every write it makes.
    /// </summary>
    private static async Task<(Resource? Resource, int? Version)> ReadBackAsync(HttpRequest request, IMediator mediator, Written written,
        CancellationToken cancellationToken)
    {
        if (!MayReadBack(request.HttpContext.RequestServices.GetRequiredService<ActorAccessor>().Current, written))
        {
            return (null, null);
        }
        try
        {
            var patients = FhirEndpoints.Patients(request.HttpContext);
            if (written.ResourceType == "Patient")
            {
                var person = await mediator.Send(new ReadPatient.Query(written.Id), cancellationToken);
                return (FhirMapping.ToPatient(person, patients), person.Version);
            }
            var read = await mediator.Send(new ReadServiceRequest.Query(written.Id), cancellationToken);
            return (FhirMapping.ToServiceRequest(read, patients), read.Version);
        }
        catch (AccessDenied)
        {
            return (null, null);
        }
    }

    /// <summary>Whether the caller may read what it wrote (a Patient, else a ServiceRequest) by the read the answer uses.</summary>
    internal static bool MayReadBack(Actor actor, Written written) => written.ResourceType == "Patient"
        ? AccessPolicy<ReadPatient.Query>.Policy.Allows(actor)
        : AccessPolicy<ReadServiceRequest.Query>.Policy.Allows(actor);

    /// <summary>What the write names, as the caller reads it (a Patient by its organisation's own id).</summary>
    private static string Named(HttpRequest request, Written written) => written.Named(FhirEndpoints.Patients(request.HttpContext));

    private static string Location(string named, int? version) => named + (version is { } v ? $"/_history/{v}" : "");

    private static OperationOutcome NotReadable(string named, Written written) => FhirMapping.Outcome(OperationOutcome.IssueType.Informational,
        $"Done: {named}. Your token may not read it back (it lacks system/{written.ResourceType}.r), so no copy is returned.",
        OperationOutcome.IssueSeverity.Information);

    private static string StatusLine(int status) =>
        $"{status.ToString(CultureInfo.InvariantCulture)} {Microsoft.AspNetCore.WebUtilities.ReasonPhrases.GetReasonPhrase(status)}";
}

/// <summary>
/// POST ServiceRequest with If-None-Exist on anything but the sender's identifier (FhirWriter.CreateReferralAloneAsync): the
/// condition's search and the referral it allows in one transaction, under the condition's lock, so that two requests with
/// one condition at the same moment make one referral, and the second is answered with it.
/// </summary>
public static class CreateReferralConditionally
{
    [AllowRoles(Roles.Referrer)]
    [AllowPartnerScope("system/ServiceRequest.c")]
    public sealed record Command(ServiceRequest Referral, string IfNoneExist) : ICommand<Written>;

    public sealed class Handler(FhirWriter writer) : ICommandHandler<Command, Written>
    {
        public async ValueTask<Written> Handle(Command command, CancellationToken cancellationToken) =>
            await writer.CreateReferralAsync(command.Referral, FhirWriter.ContainedPatient(command.Referral), null, command.IfNoneExist, cancellationToken);
    }
}

/// <summary>
/// A transaction Bundle: every entry in one database transaction, so that one refused entry leaves nothing
/// stored. Each entry is the same command the pages send, and checks its own scope.
/// </summary>
public static class ProcessTransaction
{
    [AllowRoles(Roles.Referrer)]
    [AllowPartnerScope(AllowPartnerScopeAttribute.AnyScope)]
    public sealed record Command(Bundle Bundle) : ICommand<IReadOnlyList<Written>>
    {
        /// <summary>
        /// The sender asked for return=minimal: no resource is answered, and only an entry whose version the write does not
        /// know (a registration, the Patient of a referral of someone known before) is read, in the transaction, for its version.
        /// </summary>
        public bool Minimal { get; init; }
    }

    public sealed class Handler(FhirWriter writer, Work work, PatientIds patientIds) : ICommandHandler<Command, IReadOnlyList<Written>>
    {
        public async ValueTask<IReadOnlyList<Written>> Handle(Command command, CancellationToken cancellationToken)
        {
            var written = await writer.ApplyTransactionAsync(command.Bundle, cancellationToken);
            // A Patient's version is known without a read only when the person is new to the store (1): named to a token
            // that may not read the person, it would be there for the new and missing for the known, and so tell whether
            // anyone knew them before. Such a token is told where, with no version, whoever the person is.
            var told = written.Select(one => one.ResourceType == "Patient" && !FhirWrites.MayReadBack(work.Scope.Actor, one) ? one with { Version = null } : one).ToList();
            var reads = told.Select((one, entry) => (Entry: entry, Sql: command.Minimal && one.Version is not null ? null : ReadInTransaction(one, entry)))
                .Where(read => read.Sql is not null).ToList();
            if (reads.Count == 0)
            {
                return told;
            }
            // Every entry's read in one command: on PostgreSQL one round trip, where the answer to a referral and its Patient
            // was two (issue 14).
            var parameters = new DynamicParameters(new { OrganisationId = work.Scope.Actor.OrganisationId ?? -1 });
            foreach (var (entry, _) in reads)
            {
                parameters.Add($"Id{entry.ToString(CultureInfo.InvariantCulture)}", told[entry].Id);
            }
            await using var grids = await work.Connection.QueryMultipleAsync(string.Join(";\n", reads.Select(read => read.Sql)), parameters, work.Transaction);
            foreach (var (entry, _) in reads)
            {
                told[entry] = told[entry].ResourceType == "ServiceRequest"
                    ? Answered(told[entry], await grids.ReadSingleOrDefaultAsync<FhirReferral>())
                    : Answered(told[entry], await grids.ReadSingleOrDefaultAsync<FhirPerson>());
            }
            return told;
        }

        /// <summary>
        /// What the transaction made, read for the answer in its own transaction with the read's own query, where this
        /// command's audit rows already name it (the submission's row names the referral and its person): the sender is
        /// given back what it has just written, and a second, audited read of it would be neither needed nor honest as a
        /// read (issue 14: two audit rows and two write turns a referral). Anything else (a referral found by
        /// If-None-Exist, an update, a token that may not read) is read back after the commit through the audited read:
        /// null here. The query names the entry's id @Id{entry}.
        /// </summary>
        private string? ReadInTransaction(Written written, int entry)
        {
            var actor = work.Scope.Actor;
            var subjects = work.Scope.Subjects;
            var id = $"@Id{entry.ToString(CultureInfo.InvariantCulture)}";
            if (written is { ResourceType: "ServiceRequest", Status: StatusCodes.Status201Created }
                && subjects.Any(s => s.EntityType == "referral" && s.EntityId == written.Id)
                && FhirWrites.MayReadBack(actor, written))
            {
                return $"{FhirReferral.Select} AND r.id = {id}";
            }
            // 200 too: the Patient sent with a referral of someone known before, whose record that referral has just written.
            if (written is { ResourceType: "Patient", Status: StatusCodes.Status201Created or StatusCodes.Status200OK }
                && subjects.Any(s => s.PersonId == written.Id)
                && FhirWrites.MayReadBack(actor, written))
            {
                return $"{FhirPerson.SelectFor(actor)} AND p.id = {id}";
            }
            return null;
        }

        private Written Answered(Written written, FhirReferral? referral) =>
            referral is not null && ReferralAccess.MaySee(work.Scope.Actor, referral.OrganisationId)
                ? written with { Answer = FhirMapping.ToServiceRequest(referral, patientIds.For(work.Scope.Actor)), AnswerVersion = referral.Version }
                : written;

        private Written Answered(Written written, FhirPerson? person) =>
            person is not null ? written with { Answer = FhirMapping.ToPatient(person, patientIds.For(work.Scope.Actor)), AnswerVersion = person.Version } : written;
    }
}

/// <summary>
/// POST /fhir/$process-message: a referral message in the BaRS pattern. The MessageHeader's event is
/// servicerequest-request and its focus the ServiceRequest; its reason says new (a referral), update (a
/// cancellation when the ServiceRequest is revoked, else an answer or note) or delete (a cancellation).
/// The message id (the Bundle's id) is recorded in the same transaction as what it did, so a repeat is
/// refused as a duplicate and does nothing.
/// </summary>
public static class ProcessMessage
{
    public const string EventSystem = "https://fhir.nhs.uk/CodeSystem/message-events-bars";

    /// <summary>The event code system of earlier BaRS releases, still sent by partners on them.</summary>
    public const string EarlierEventSystem = "https://fhir.nhs.uk/CodeSystem/message-event-servicerequest";
    public const string ReasonSystem = "https://fhir.nhs.uk/CodeSystem/message-reason-bars";
    public const string ReferralEvent = "servicerequest-request";

    [AllowRoles(Roles.Referrer)]
    [AllowPartnerScope(AllowPartnerScopeAttribute.AnyScope)]
    public sealed record Command(Bundle Message) : ICommand<Result>;

    public sealed record Result(string MessageId, Written Written);

    public sealed class Handler(FhirWriter writer, Database database, Work work) : ICommandHandler<Command, Result>
    {
        public async ValueTask<Result> Handle(Command command, CancellationToken cancellationToken)
        {
            var message = command.Message;
            if (message.Type != Bundle.BundleType.Message)
            {
                throw new InvalidResource("Bundle.type", "$process-message takes a Bundle of type message.");
            }
            var header = message.Entry.FirstOrDefault()?.Resource as MessageHeader
                ?? throw new InvalidResource("Bundle.entry[0]", "A message Bundle starts with its MessageHeader.");
            var messageId = message.Id ?? throw new InvalidResource("Bundle.id", "Give the message an id (Bundle.id): a repeat of the same id is recognised and refused.");
            if (header.Event is not Coding { System: EventSystem or EarlierEventSystem, Code: ReferralEvent })
            {
                throw new InvalidResource("MessageHeader.event", $"This server takes the event {ReferralEvent} of {EventSystem} (or the earlier {EarlierEventSystem}) only.");
            }
            var reason = header.Reason?.Coding.FirstOrDefault(c => c.System == ReasonSystem)?.Code;
            if (reason is not ("new" or "update" or "delete"))
            {
                throw new InvalidResource("MessageHeader.reason", $"Say why the message is sent: reason {ReasonSystem} new, update or delete.");
            }
            var focus = header.Focus.FirstOrDefault()?.Reference;
            var request = message.Entry.FirstOrDefault(e => e.FullUrl == focus || (e.Resource is ServiceRequest && focus == $"ServiceRequest/{e.Resource.Id}"))?.Resource as ServiceRequest
                ?? throw new InvalidResource("MessageHeader.focus", "The MessageHeader's focus must be the ServiceRequest entry of this message.");

            var scope = work.Scope;
            var organisationId = scope.Actor.OrganisationId ?? throw new AccessDenied("Only a member of a referring organisation can send referral messages.");
            await database.LockAsync(work.Connection, work.Transaction, $"fhir-message:{organisationId}:{messageId}");
            // 0 stands for a message that was processed but named no referral.
            var earlier = await work.Connection.ExecuteScalarAsync<long?>(
                "SELECT COALESCE(referral_id, 0) FROM fhir_message WHERE organisation_id = @organisationId AND message_id = @messageId",
                new { organisationId, messageId }, work.Transaction);
            if (earlier is { } processed)
            {
                throw new Conflict($"Message {messageId} was processed already{(processed == 0 ? "" : $" (ServiceRequest/{processed})")}: a repeated message changes nothing.", duplicate: true);
            }

            var written = reason == "new"
                ? await writer.CreateReferralAsync(request, SubjectOf(message, request), null, null, cancellationToken, new Sent(request, message))
                : await UpdateAsync(writer, message, request, reason, cancellationToken);
            await work.Connection.ExecuteAsync(
                """
                INSERT INTO fhir_message (organisation_id, message_id, event, reason, referral_id, received_at)
                VALUES (@organisationId, @messageId, @ReferralEvent, @reason, @referralId, @now)
                """, new { organisationId, messageId, ReferralEvent, reason, referralId = written.Id, now = scope.Now }, work.Transaction);
            scope.AuditDetail = $"message {messageId} ({reason})";
            return new Result(messageId, written);
        }

        private static async Task<Written> UpdateAsync(FhirWriter writer, Bundle message, ServiceRequest request, string reason, CancellationToken cancellationToken)
        {
            if (!long.TryParse(request.Id, NumberStyles.None, CultureInfo.InvariantCulture, out var referralId))
            {
                throw new InvalidResource("ServiceRequest.id", "An update or delete names the referral it is about: the ServiceRequest's id as this server gave it.");
            }
            var version = FhirWriter.ParseIfMatch(request.Meta?.VersionId);
            if (reason == "delete" || request.Status == RequestStatus.Revoked)
            {
                request.Status = RequestStatus.Revoked;
                return await writer.UpdateReferralAsync(referralId, request, version, cancellationToken);
            }
            return await writer.AddToReferralAsync(referralId, request, version, cancellationToken, new Sent(request, message));
        }

        /// <summary>The Patient the ServiceRequest names: an entry of the message, or contained in it.</summary>
        private static Patient? SubjectOf(Bundle message, ServiceRequest request) =>
            new Sent(request, message).Resolve(request.Subject) as Patient;
    }
}
