// Firely's model marks every element nullable; here a missing element fails the test just as an assert would.
#pragma warning disable CS8600, CS8602, CS8604

using System.Net;
using System.Text;
using System.Text.Json;
using CareCoordination.Domain;
using CareCoordination.Features.Coordination;
using CareCoordination.Features.Fhir;
using CareCoordination.Tests.Support;
using Dapper;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Hl7.Fhir.Model;
using Hl7.Fhir.Rest;
using Hl7.Fhir.Serialization;
using Profiles = CareCoordination.Features.Fhir.Profiles.FhirProfiles;
using FhirTask = Hl7.Fhir.Model.Task;
using Task = System.Threading.Tasks.Task;

namespace CareCoordination.Tests.Features.Fhir;

/// <summary>
/// Partners sending referrals over FHIR: create, conditional create, cancel by update, transaction and
/// batch Bundles, BaRS messages, and every way a bad request is refused without changing anything.
/// </summary>
public abstract class FhirWriteTests(AppFactory app)
{
    private const string Sender = "https://fhir.westmoor-general.nhs.uk/Id/referral";
    private const string Canonical = "https://carecoordination.example.org/fhir";

    private DateOnly Today => LondonTime.Today(app.Clock);

    /// <summary>A person as a hospital EPR would send them, built by hand (not by our mapping) so that the mapping is what is tested.</summary>
    private static Patient NewPatient(string nhs, string? id = null) => new()
    {
        Id = id,
        Identifier = [new Identifier("https://fhir.nhs.uk/Id/nhs-number", nhs)],
        Name = [new HumanName { Use = HumanName.NameUse.Official, Family = "Penhallow", Given = ["Morwenna"] }],
        Gender = AdministrativeGender.Female,
        BirthDate = "1941-03-09",
        Address = [new Address { Use = Address.AddressUse.Home, Line = ["2 Harbour Terrace"], PostalCode = "WM1 4QT" }],
        Extension =
        [
            new Extension("https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory",
                new CodeableConcept("https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategoryEngland", "B", "White: Irish")),
            new Extension($"{Canonical}/StructureDefinition/lives-alone", new FhirBoolean(true)),
        ],
        Contact = [new Patient.ContactComponent
        {
            Name = new HumanName { Text = "Jory Penhallow" },
            Relationship = [new CodeableConcept { Text = "son" }],
            Telecom = [new ContactPoint(ContactPoint.ContactPointSystem.Phone, null, "07700 900456")],
        }],
    };

    private ServiceRequest NewReferral(string subject, string? identifier = null) => new()
    {
        Identifier = identifier is null ? [] : [new Identifier(Sender, identifier)],
        Status = RequestStatus.Active,
        Intent = RequestIntent.Order,
        Code = new CodeableConcept($"{Canonical}/CodeSystem/discharge-pathway", "1"),
        Priority = RequestPriority.Urgent,
        Subject = new ResourceReference(subject),
        Requester = new ResourceReference { Identifier = new Identifier("https://fhir.nhs.uk/Id/ods-organization-code", "RWM") },
        Occurrence = new FhirDateTime(Today.AddDays(2).ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture)),
        OrderDetail = [new CodeableConcept($"{Canonical}/CodeSystem/need", "dressing"), new CodeableConcept($"{Canonical}/CodeSystem/need", "mobility")],
        Note = [new Annotation { Text = "Fell at home; now walking with a frame. Needs help washing and dressing for a few weeks." }],
        Extension =
        [
            new Extension($"{Canonical}/StructureDefinition/referral-source", new Coding($"{Canonical}/CodeSystem/referral-source", "acute-hospital")),
            new Extension
            {
                Url = $"{Canonical}/StructureDefinition/hospital-stay",
                Extension =
                [
                    new Extension("ward", new FhirString("Ward 4")),
                    new Extension("bed", new FhirString("B9")),
                    new Extension("site", new Identifier("https://fhir.nhs.uk/Id/ods-site-code", "RWM02")),
                    new Extension("admitted", new Date(Today.AddDays(-9).ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture))),
                    new Extension("medicallyOptimised", new Date(Today.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture))),
                ],
            },
            new Extension($"{Canonical}/StructureDefinition/referral-risk", new CodeableConcept($"{Canonical}/CodeSystem/risk", "falls")),
            new Extension
            {
                Url = $"{Canonical}/StructureDefinition/consent-to-share",
                Extension = [new Extension("shared", new FhirBoolean(true)), new Extension("givenBy", new FhirString("Morwenna Penhallow"))],
            },
            new Extension
            {
                Url = $"{Canonical}/StructureDefinition/what-matters",
                Extension = [new Extension("personWishes", new FhirString("To go home to her cat."))],
            },
        ],
    };

    private ServiceRequest WithContainedPatient(string nhs, string? identifier = null)
    {
        var request = NewReferral("#person", identifier);
        request.Contained.Add(NewPatient(nhs, "person"));
        return request;
    }

    private static StringContent Json(Resource resource) =>
        new(FhirMapping.Serialize(resource), Encoding.UTF8, "application/fhir+json");

    /// <summary>What a refused request may not change: referrals, persons, tasks and processed messages.</summary>
    private async Task<(long, long, long, long)> SnapshotAsync()
    {
        await using var connection = await app.OpenAsync();
        return (await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM referral"),
            await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM person"),
            await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM triage_task"),
            await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM fhir_message"));
    }

    private static string Nhs(string formatted) => formatted.Replace(" ", "", StringComparison.Ordinal);

    [Fact]
    public async Task Create_StoresTheReferralThroughTheFormsCommand_AndReadsBackWhatWasSent()
    {
        using var client = await app.PartnerAsync();
        var nhs = Nhs(await app.NewNhsNumberAsync());
        var sent = WithContainedPatient(nhs, "R-" + Guid.NewGuid().ToString("N"));

        var response = await client.PostAsync("/fhir/ServiceRequest", Json(sent));
        var created = await FhirPartner.ParseAsync<ServiceRequest>(response, HttpStatusCode.Created);

        Assert.EndsWith($"/fhir/ServiceRequest/{created.Id}/_history/1", response.Headers.Location!.ToString(), StringComparison.Ordinal);
        Assert.Equal("W/\"1\"", response.Headers.ETag!.ToString());
        Assert.Equal("1", created.Meta.VersionId);
        // Everything sent comes back where it was put: the extensions, needs, priority, pathway, identifier and summary.
        Assert.True(new FhirExtensions(sent.Extension).IsExactly(new FhirExtensions(created.Extension)),
            $"sent {FhirMapping.Serialize(new Basic { Extension = sent.Extension })}\nread {FhirMapping.Serialize(new Basic { Extension = created.Extension })}");
        Assert.Equal(new[] { "dressing", "mobility" }, created.OrderDetail.Select(d => d.Coding[0].Code));
        Assert.Equal(RequestPriority.Urgent, created.Priority);
        Assert.Equal("1", created.Code.Coding[0].Code);
        Assert.True(sent.Identifier[0].IsExactly(created.Identifier.Single()));
        Assert.Equal(sent.Note[0].Text, created.Note[0].Text);
        Assert.Equal(sent.Occurrence.ToString(), created.Occurrence.ToString());
        Assert.Equal(RequestStatus.Active, created.Status);
        var since = Uri.EscapeDataString(created.Meta.LastUpdated!.Value.ToString("o", System.Globalization.CultureInfo.InvariantCulture));
        var changed = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync($"/fhir/ServiceRequest?_lastUpdated=ge{since}&_count=100"), HttpStatusCode.OK);
        Assert.Contains(changed.Entry, e => e.Resource.Id == created.Id);
        var before = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync($"/fhir/ServiceRequest?_lastUpdated=lt{since}&_count=100"), HttpStatusCode.OK);
        Assert.DoesNotContain(before.Entry, e => e.Resource.Id == created.Id);

        // The same command as the form: a triage task in the coordination queue, the partner recorded as sender.
        await using var connection = await app.OpenAsync();
        var row = await connection.QuerySingleAsync<(string Queue, string Status, long? PartnerClientId)>(
            """
            SELECT t.queue, t.status, r.partner_client_id FROM referral r JOIN triage_task t ON t.referral_id = r.id WHERE r.id = @id
            """, new { id = long.Parse(created.Id, System.Globalization.CultureInfo.InvariantCulture) });
        Assert.Equal(("coordination", "requested"), (row.Queue, row.Status));
        Assert.NotNull(row.PartnerClientId);

        // The person, read back as a Patient, is the person sent.
        var patient = await FhirPartner.ParseAsync<Patient>(await client.GetAsync($"/fhir/{created.Subject.Reference}"), HttpStatusCode.OK);
        var expected = NewPatient(nhs);
        Assert.Equal(nhs, patient.Identifier.Single().Value);
        Assert.Equal("Penhallow", patient.Name[0].Family);
        Assert.Equal("1941-03-09", patient.BirthDate);
        Assert.True(new FhirExtensions(expected.Extension).IsExactly(new FhirExtensions(patient.Extension)));
        Assert.Equal("Jory Penhallow", patient.Contact.Single().Name.Text);
        Assert.Equal("07700 900456", patient.Contact.Single().Telecom.Single().Value);

        // A round trip: what was read parses, serialises and parses again to the same resource.
        var again = JsonSerializer.Deserialize<ServiceRequest>(FhirMapping.Serialize(created), FhirMapping.Json);
        Assert.True(created.IsExactly(again));
    }

    [Fact]
    public async Task ConditionalCreate_FindsTheExistingReferral_AndUnderConcurrentDuplicatesExactlyOneIsCreated()
    {
        using var client = await app.PartnerAsync();
        var nhs = Nhs(await app.NewNhsNumberAsync());
        var identifier = "R-" + Guid.NewGuid().ToString("N");
        var body = FhirMapping.Serialize(WithContainedPatient(nhs, identifier));

        async Task<HttpResponseMessage> PostAsync()
        {
            var message = new HttpRequestMessage(HttpMethod.Post, "/fhir/ServiceRequest") { Content = new StringContent(body, Encoding.UTF8, "application/fhir+json") };
            message.Headers.Add("If-None-Exist", $"identifier={Sender}|{identifier}");
            return await client.SendAsync(message);
        }

        var responses = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => PostAsync()));

        Assert.Equal(1, responses.Count(r => r.StatusCode == HttpStatusCode.Created));
        Assert.Equal(5, responses.Count(r => r.StatusCode == HttpStatusCode.OK));
        var ids = await Task.WhenAll(responses.Select(async r => JsonSerializer.Deserialize<ServiceRequest>(await r.Content.ReadAsStringAsync(), FhirMapping.Json)!.Id));
        Assert.Single(ids.Distinct());
        await using var connection = await app.OpenAsync();
        Assert.Equal(1, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM referral WHERE sender_value = @identifier", new { identifier }));

        // Any search can be the condition: one of the partner's active referrals for this person matches (200)...
        var byPerson = new HttpRequestMessage(HttpMethod.Post, "/fhir/ServiceRequest") { Content = Json(WithContainedPatient(nhs)) };
        byPerson.Headers.Add("If-None-Exist", $"patient.identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}&status=active");
        Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(byPerson)).StatusCode);
        // ...and once there are two, the condition is ambiguous: 412, nothing created.
        Assert.Equal(HttpStatusCode.Created, (await client.PostAsync("/fhir/ServiceRequest", Json(WithContainedPatient(nhs, "R-" + Guid.NewGuid().ToString("N"))))).StatusCode);
        var ambiguous = new HttpRequestMessage(HttpMethod.Post, "/fhir/ServiceRequest") { Content = Json(WithContainedPatient(nhs)) };
        ambiguous.Headers.Add("If-None-Exist", $"patient.identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}&status=active");
        var beforeAmbiguous = await SnapshotAsync();
        Assert.Equal(HttpStatusCode.PreconditionFailed, (await client.SendAsync(ambiguous)).StatusCode);
        Assert.Equal(beforeAmbiguous, await SnapshotAsync());
        // A condition that says it needs no total is still counted: two matches are two, whatever the search's _total.
        var uncounted = new HttpRequestMessage(HttpMethod.Post, "/fhir/ServiceRequest") { Content = Json(WithContainedPatient(nhs)) };
        uncounted.Headers.Add("If-None-Exist", $"patient.identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}&status=active&_total=none");
        Assert.Equal(HttpStatusCode.PreconditionFailed, (await client.SendAsync(uncounted)).StatusCode);
        Assert.Equal(beforeAmbiguous, await SnapshotAsync());

        // A condition this server cannot search by is a bad request, not a business rule.
        var unsupported = new HttpRequestMessage(HttpMethod.Post, "/fhir/ServiceRequest") { Content = Json(WithContainedPatient(nhs)) };
        unsupported.Headers.Add("If-None-Exist", "requester=Organization/1");
        Assert.Equal(HttpStatusCode.BadRequest, (await client.SendAsync(unsupported)).StatusCode);

        // Searching by the identifier finds it; sending the same identifier without If-None-Exist is a duplicate.
        var found = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync($"/fhir/ServiceRequest?identifier={Uri.EscapeDataString($"{Sender}|{identifier}")}"), HttpStatusCode.OK);
        Assert.Equal(ids[0], found.Entry.Single().Resource.Id);
        var before = await SnapshotAsync();
        var repeat = await FhirPartner.ParseAsync<OperationOutcome>(await client.PostAsync("/fhir/ServiceRequest", new StringContent(body, Encoding.UTF8, "application/fhir+json")),
            HttpStatusCode.Conflict);
        Assert.Contains("If-None-Exist", repeat.Issue[0].Diagnostics, StringComparison.Ordinal);
        Assert.Equal(OperationOutcome.IssueType.Duplicate, repeat.Issue[0].Code);
        Assert.Equal(before, await SnapshotAsync());
    }

    /// <summary>
    /// A condition other than the partner's identifier ("this person's active referral"), sent six times at once: one
    /// referral is made and the other five are answered with it, as with an identifier. Each had searched on its own before
    /// writing, so requests at the same moment all found nothing and each made a referral.
    /// </summary>
    [Fact]
    public async Task ConditionalCreate_OnAnyCondition_UnderConcurrentDuplicates_MakesExactlyOne()
    {
        using var client = await app.PartnerAsync();
        var nhs = Nhs(await app.NewNhsNumberAsync());
        var body = FhirMapping.Serialize(WithContainedPatient(nhs));

        async Task<HttpResponseMessage> PostAsync(int i)
        {
            var message = new HttpRequestMessage(HttpMethod.Post, "/fhir/ServiceRequest") { Content = new StringContent(body, Encoding.UTF8, "application/fhir+json") };
            // The same search, its parameters in either order.
            message.Headers.Add("If-None-Exist", i % 2 == 0
                ? $"patient.identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}&status=active"
                : $"status=active&patient.identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}");
            return await client.SendAsync(message);
        }

        var responses = await Task.WhenAll(Enumerable.Range(0, 6).Select(PostAsync));

        Assert.Equal([.. Enumerable.Repeat(HttpStatusCode.OK, 5), HttpStatusCode.Created], responses.Select(r => r.StatusCode).Order());
        var ids = await Task.WhenAll(responses.Select(async r => JsonSerializer.Deserialize<ServiceRequest>(await r.Content.ReadAsStringAsync(), FhirMapping.Json)!.Id));
        Assert.Single(ids.Distinct());
        await using var connection = await app.OpenAsync();
        Assert.Equal(1, await connection.ExecuteScalarAsync<long>(
            "SELECT COUNT(*) FROM referral r JOIN person p ON p.id = r.person_id WHERE p.nhs_number = @nhs", new { nhs }));
    }

    /// <summary>
    /// A condition other than the identifier in Bundles: a batch entry is answered as the same request alone would be (made,
    /// then found); a transaction whose two entries the one condition makes one referral is refused whole, as FHIR refuses
    /// two entries that are one resource.
    /// </summary>
    [Fact]
    public async Task ConditionalCreate_OnAnyCondition_InABatch_IsMadeThenFound_AndTwiceInATransaction_IsRefused()
    {
        using var client = await app.PartnerAsync();
        var nhs = Nhs(await app.NewNhsNumberAsync());
        var condition = $"patient.identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}&status=active";
        Bundle.EntryComponent Entry() => new()
        {
            Resource = WithContainedPatient(nhs),
            Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.POST, Url = "ServiceRequest", IfNoneExist = condition },
        };

        var made = await FhirPartner.ParseAsync<Bundle>(await client.PostAsync("/fhir", Json(new Bundle { Type = Bundle.BundleType.Batch, Entry = [Entry()] })), HttpStatusCode.OK);
        var found = await FhirPartner.ParseAsync<Bundle>(await client.PostAsync("/fhir", Json(new Bundle { Type = Bundle.BundleType.Batch, Entry = [Entry()] })), HttpStatusCode.OK);
        Assert.Equal(("201 Created", "200 OK"), (made.Entry[0].Response.Status, found.Entry[0].Response.Status));
        Assert.Equal(made.Entry[0].Response.Location, found.Entry[0].Response.Location);

        var other = Nhs(await app.NewNhsNumberAsync());
        var twice = new Bundle { Type = Bundle.BundleType.Transaction };
        foreach (var _ in new[] { 1, 2 })
        {
            twice.Entry.Add(new Bundle.EntryComponent
            {
                Resource = WithContainedPatient(other),
                Request = new Bundle.RequestComponent
                {
                    Method = Bundle.HTTPVerb.POST, Url = "ServiceRequest", IfNoneExist = $"patient.identifier=https://fhir.nhs.uk/Id/nhs-number|{other}&status=active",
                },
            });
        }
        var before = await SnapshotAsync();
        var refused = await FhirPartner.ParseAsync<OperationOutcome>(await client.PostAsync("/fhir", Json(twice)), HttpStatusCode.BadRequest);
        Assert.Contains("another entry of this transaction", refused.Issue.Single().Diagnostics, StringComparison.Ordinal);
        Assert.Equal(before, await SnapshotAsync());
    }

    [Fact]
    public async Task BadRequests_EachGetTheirOperationOutcome_AndChangeNothing()
    {
        using var client = await app.PartnerAsync();
        var before = await SnapshotAsync();

        // A wrong NHS number check digit (real-world examples often have one): the form's rule, as a 422 on the element.
        var badCheckDigit = await FhirPartner.ParseAsync<OperationOutcome>(await client.PostAsync("/fhir/ServiceRequest", Json(WithContainedPatient("9434765918"))),
            (HttpStatusCode)422);
        Assert.Equal(OperationOutcome.IssueType.BusinessRule, badCheckDigit.Issue[0].Code);
        Assert.Contains(badCheckDigit.Issue, i => i.Diagnostics.Contains("check digit", StringComparison.Ordinal) && i.Expression.Single().StartsWith("Patient.identifier", StringComparison.Ordinal));

        var malformed = await FhirPartner.ParseAsync<OperationOutcome>(await client.PostAsync("/fhir/ServiceRequest",
            new StringContent("{\"resourceType\": \"ServiceRequest\", ", Encoding.UTF8, "application/fhir+json")), HttpStatusCode.BadRequest);
        Assert.Equal(OperationOutcome.IssueType.Invalid, malformed.Issue[0].Code);

        var wrongType = await FhirPartner.ParseAsync<OperationOutcome>(await client.PostAsync("/fhir/ServiceRequest", Json(NewPatient("9434765919"))), HttpStatusCode.BadRequest);
        Assert.Contains("Expected a ServiceRequest", wrongType.Issue[0].Diagnostics, StringComparison.Ordinal);

        var unknownElement = FhirMapping.Serialize(WithContainedPatient(Nhs(await app.NewNhsNumberAsync()))).Replace("\"intent\":", "\"urgencyLevel\":\"high\",\"intent\":", StringComparison.Ordinal);
        var unknown = await FhirPartner.ParseAsync<OperationOutcome>(await client.PostAsync("/fhir/ServiceRequest", new StringContent(unknownElement, Encoding.UTF8, "application/fhir+json")),
            HttpStatusCode.BadRequest);
        Assert.Contains(unknown.Issue, i => i.Diagnostics.Contains("urgencyLevel", StringComparison.Ordinal));

        var huge = WithContainedPatient(Nhs(await app.NewNhsNumberAsync()));
        huge.Note[0].Text = new string('x', 2 * 1024 * 1024);
        var tooLarge = await FhirPartner.ParseAsync<OperationOutcome>(await client.PostAsync("/fhir/ServiceRequest", Json(huge)), HttpStatusCode.RequestEntityTooLarge);
        Assert.Equal(OperationOutcome.IssueType.TooLong, tooLarge.Issue[0].Code);

        // The limit is the configured one, and the CapabilityStatement says what it is.
        using (var small = app.WithWebHostBuilder(builder => builder.UseSetting("Fhir:MaxRequestBytes", "2000")))
        {
            using var smallClient = small.CreateClient();
            smallClient.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", await FhirPartner.TokenAsync(smallClient));
            var overSmall = await smallClient.PostAsync("/fhir/ServiceRequest", Json(WithContainedPatient(Nhs(await app.NewNhsNumberAsync()))));
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, overSmall.StatusCode);
            var stated = await FhirPartner.ParseAsync<CapabilityStatement>(await smallClient.GetAsync("/fhir/metadata"));
            Assert.Contains("at most 2000 bytes", stated.Rest[0].Documentation, StringComparison.Ordinal);
        }

        var otherOrganisation = WithContainedPatient(Nhs(await app.NewNhsNumberAsync()));
        otherOrganisation.Requester.Identifier.Value = "RSM";
        var foreign = await FhirPartner.ParseAsync<OperationOutcome>(await client.PostAsync("/fhir/ServiceRequest", Json(otherOrganisation)), HttpStatusCode.UnprocessableEntity);
        Assert.Contains("your own organisation", foreign.Issue[0].Diagnostics, StringComparison.Ordinal);

        // A hospital site of another trust (RSM01 is Saltmouth's): refused on the hospital-stay extension, not taken as given.
        var otherSite = WithContainedPatient(Nhs(await app.NewNhsNumberAsync()));
        ((Identifier)otherSite.GetExtension($"{Canonical}/StructureDefinition/hospital-stay").GetExtension("site").Value).Value = "RSM01";
        var wrongSite = await FhirPartner.ParseAsync<OperationOutcome>(await client.PostAsync("/fhir/ServiceRequest", Json(otherSite)), HttpStatusCode.UnprocessableEntity);
        Assert.Contains(wrongSite.Issue, i => i.Diagnostics.Contains("a hospital site of another organisation", StringComparison.Ordinal)
            && i.Expression.Single().Contains("hospital-stay", StringComparison.Ordinal));

        var otherByReference = WithContainedPatient(Nhs(await app.NewNhsNumberAsync()));
        otherByReference.Requester.Reference = "Organization/999999";
        Assert.Equal(HttpStatusCode.UnprocessableEntity, (await client.PostAsync("/fhir/ServiceRequest", Json(otherByReference))).StatusCode);

        var notJson = await client.PostAsync("/fhir/ServiceRequest", new StringContent("<ServiceRequest/>", Encoding.UTF8, "application/fhir+xml"));
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, notJson.StatusCode);

        // A token without the create scope may read but not create.
        using var reader = await app.PartnerAsync("system/ServiceRequest.rs");
        var denied = await reader.PostAsync("/fhir/ServiceRequest", Json(WithContainedPatient(Nhs(await app.NewNhsNumberAsync()))));
        Assert.Equal(HttpStatusCode.Forbidden, denied.StatusCode);

        Assert.Equal(before, await SnapshotAsync());
    }

    [Fact]
    public async Task ATokenThatMayCreateButNotRead_IsToldItIsDone_WithoutACopy()
    {
        using var client = await app.PartnerAsync("system/ServiceRequest.c");

        var response = await client.PostAsync("/fhir/ServiceRequest", Json(WithContainedPatient(Nhs(await app.NewNhsNumberAsync()))));

        var outcome = await FhirPartner.ParseAsync<OperationOutcome>(response, HttpStatusCode.Created);
        Assert.Equal(OperationOutcome.IssueSeverity.Information, outcome.Issue.Single().Severity);
        Assert.Matches(@"/fhir/ServiceRequest/\d+$", response.Headers.Location!.ToString());
    }

    [Fact]
    public async Task Update_CancelsTheReferral_OnlyWithTheCurrentVersion()
    {
        using var client = await app.PartnerAsync();
        var created = await FhirPartner.ParseAsync<ServiceRequest>(await client.PostAsync("/fhir/ServiceRequest", Json(WithContainedPatient(Nhs(await app.NewNhsNumberAsync())))),
            HttpStatusCode.Created);
        var url = $"/fhir/ServiceRequest/{created.Id}";
        created.Status = RequestStatus.Revoked;
        created.Note.Add(new Annotation { Text = "Readmitted to the acute ward overnight." });

        async Task<HttpResponseMessage> PutAsync(string? ifMatch, ServiceRequest body)
        {
            var message = new HttpRequestMessage(HttpMethod.Put, url) { Content = Json(body) };
            if (ifMatch is not null)
            {
                message.Headers.TryAddWithoutValidation("If-Match", ifMatch);
            }
            return await client.SendAsync(message);
        }

        Assert.Equal((HttpStatusCode)428, (await PutAsync(null, created)).StatusCode);
        var stale = await FhirPartner.ParseAsync<OperationOutcome>(await PutAsync("W/\"7\"", created), HttpStatusCode.PreconditionFailed);
        Assert.Contains("version 1", stale.Issue[0].Diagnostics, StringComparison.Ordinal);
        var notACancel = created.DeepCopy() as ServiceRequest;
        notACancel.Status = RequestStatus.OnHold;
        Assert.Equal((HttpStatusCode)422, (await PutAsync("W/\"1\"", notACancel)).StatusCode);
        Assert.Equal(RequestStatus.Active, (await FhirPartner.ParseAsync<ServiceRequest>(await client.GetAsync(url), HttpStatusCode.OK)).Status);

        var cancelled = await FhirPartner.ParseAsync<ServiceRequest>(await PutAsync("W/\"1\"", created), HttpStatusCode.OK);

        Assert.Equal(RequestStatus.Revoked, cancelled.Status);
        Assert.Equal("2", cancelled.Meta.VersionId);
        Assert.Contains(cancelled.Note, n => n.Text == "Cancelled: Readmitted to the acute ward overnight.");
        var task = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync($"/fhir/Task?focus=ServiceRequest/{created.Id}"), HttpStatusCode.OK);
        Assert.Equal(FhirTask.TaskStatus.Cancelled, ((FhirTask)task.Entry.Single().Resource).Status);
        // Once cancelled it cannot be cancelled again.
        Assert.Equal((HttpStatusCode)422, (await PutAsync("W/\"2\"", created)).StatusCode);

        // Another organisation's referral is not there to cancel.
        await using var connection = await app.OpenAsync();
        var others = await connection.ExecuteScalarAsync<long>(
            "SELECT MIN(r.id) FROM referral r JOIN organisation o ON o.id = r.organisation_id WHERE o.code <> 'RWM' AND r.status = 'submitted'");
        var theirs = created.DeepCopy() as ServiceRequest;
        theirs.Id = others.ToString(System.Globalization.CultureInfo.InvariantCulture);
        url = $"/fhir/ServiceRequest/{others}";
        Assert.Equal(HttpStatusCode.NotFound, (await PutAsync("W/\"1\"", theirs)).StatusCode);
        Assert.Equal("submitted", await connection.ExecuteScalarAsync<string>("SELECT status FROM referral WHERE id = @others", new { others }));
    }

    [Fact]
    public async Task Update_OfAReferralSentWithoutASummary_CancelsWithItsOneNote_AndASummaryAloneIsNoReason()
    {
        using var client = await app.PartnerAsync();
        var sent = WithContainedPatient(Nhs(await app.NewNhsNumberAsync()));
        var summary = sent.Note.Single().Text;
        sent.Note.Clear();
        var created = await FhirPartner.ParseAsync<ServiceRequest>(await client.PostAsync("/fhir/ServiceRequest", Json(sent)), HttpStatusCode.Created);
        var read = await FhirPartner.ParseAsync<ServiceRequest>(await client.GetAsync($"/fhir/ServiceRequest/{created.Id}"), HttpStatusCode.OK);
        Assert.Empty(read.Note);
        async Task<HttpResponseMessage> PutAsync(ServiceRequest body)
        {
            var message = new HttpRequestMessage(HttpMethod.Put, $"/fhir/ServiceRequest/{body.Id}") { Content = Json(body) };
            message.Headers.TryAddWithoutValidation("If-Match", "W/\"1\"");
            return await client.SendAsync(message);
        }

        // As read, with the note saying why: the one note is the reason.
        var cancel = read.DeepCopy() as ServiceRequest;
        cancel.Status = RequestStatus.Revoked;
        cancel.Note.Add(new Annotation { Text = "Moved to another county." });
        var cancelled = await FhirPartner.ParseAsync<ServiceRequest>(await PutAsync(cancel), HttpStatusCode.OK);
        Assert.Equal(RequestStatus.Revoked, cancelled.Status);
        Assert.Contains(cancelled.Note, n => n.Text == "Cancelled: Moved to another county.");

        // A referral that has a summary reads with it as its one note: sent back alone, it says no why.
        var withSummary = await FhirPartner.ParseAsync<ServiceRequest>(await client.PostAsync("/fhir/ServiceRequest", Json(WithContainedPatient(Nhs(await app.NewNhsNumberAsync())))),
            HttpStatusCode.Created);
        var asRead = await FhirPartner.ParseAsync<ServiceRequest>(await client.GetAsync($"/fhir/ServiceRequest/{withSummary.Id}"), HttpStatusCode.OK);
        Assert.Equal(summary, asRead.Note.Single().Text);
        asRead.Status = RequestStatus.Revoked;
        Assert.Equal((HttpStatusCode)422, (await PutAsync(asRead)).StatusCode);
        Assert.Equal(RequestStatus.Active, (await FhirPartner.ParseAsync<ServiceRequest>(await client.GetAsync($"/fhir/ServiceRequest/{withSummary.Id}"), HttpStatusCode.OK)).Status);
    }

    /// <summary>Issue 14: the answer is what the transaction wrote, read in it; its audit row is the submission's, not two more reads.</summary>
    [Fact]
    public async Task Transaction_IsAnsweredWithWhatItWrote_AuditedOnceByTheSubmission_NotByASecondRead()
    {
        using var client = await app.PartnerAsync();
        var body = FhirPayloads.ProfileExamplesTransaction(await app.NewNhsNumberAsync()).ToJsonString();

        var reply = await FhirPartner.ParseAsync<Bundle>(await client.PostAsync("/fhir", FhirPayloads.Body(body)), HttpStatusCode.OK);

        var patient = (Patient)reply.Entry[0].Resource;
        var referral = (ServiceRequest)reply.Entry[1].Resource;
        // The person it returned is the referral's: the store's number for them is the referral's person_id.
        Assert.Equal($"Patient/{patient.Id}", referral.Subject.Reference);
        await using (var connection = await app.OpenAsync())
        {
            var personId = await connection.ExecuteScalarAsync<long>("SELECT person_id FROM referral WHERE id = @Id",
                new { Id = long.Parse(referral.Id, System.Globalization.CultureInfo.InvariantCulture) });
            // Every row about the person: the submission's, which names the referral and the person it returned.
            var rows = (await connection.QueryAsync<(string, string, long)>(
                "SELECT action, entity_type, entity_id FROM audit_event WHERE person_id = @personId ORDER BY id", new { personId })).ToList();
            Assert.Equal([("SubmitReferral", "referral", long.Parse(referral.Id, System.Globalization.CultureInfo.InvariantCulture))], rows);
        }
        // Each answer is exactly what the read gives now, with its ETag and Last-Modified.
        foreach (var entry in reply.Entry)
        {
            var response = await client.GetAsync($"/fhir/{entry.Resource.TypeName}/{entry.Resource.Id}");
            var read = await FhirPartner.ParseAsync<Resource>(response);
            Assert.True(read.IsExactly(entry.Resource), $"answered {FhirMapping.Serialize(entry.Resource)}\nread {FhirMapping.Serialize(read)}");
            Assert.Equal(response.Headers.ETag?.ToString(), entry.Response.Etag);
            Assert.Equal(read.Meta.LastUpdated, entry.Response.LastModified);
        }
    }

    /// <summary>
    /// Issue 14, store growth: the documented transaction's two conditional creates each search first (the person by NHS
    /// number, the referral by identifier). Finding no one, those searches leave no row of their own: the submission's row
    /// says what the transaction did (two rows a referral, a sixth of its growth). The same search sent on its own, finding
    /// no one, is still audited.
    /// </summary>
    [Fact]
    public async Task Transaction_ItsConditionalCreatesFindingNoOne_LeaveOnlyTheSubmissionsRow_AndASearchOnItsOwnStillHasOne()
    {
        using var client = await app.PartnerAsync();
        async Task<List<string>> PartnerActionsSinceAsync(long since)
        {
            await using var connection = await app.OpenAsync();
            return [.. await connection.QueryAsync<string>(
                "SELECT action FROM audit_event WHERE id > @since AND actor_kind = 'partner' ORDER BY id", new { since })];
        }
        long lastAudit;
        await using (var connection = await app.OpenAsync())
        {
            lastAudit = await connection.ExecuteScalarAsync<long>("SELECT COALESCE(MAX(id), 0) FROM audit_event");
        }
        var nhs = await app.NewNhsNumberAsync();
        var transaction = FhirPayloads.Example("referral-transaction.json", nhs);
        Assert.Equal(2, transaction.ToJsonString().Split("ifNoneExist").Length - 1);

        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/fhir", FhirPayloads.Body(transaction.ToJsonString()))).StatusCode);
        Assert.Equal(["SubmitReferral"], await PartnerActionsSinceAsync(lastAudit));

        await using (var connection = await app.OpenAsync())
        {
            lastAudit = await connection.ExecuteScalarAsync<long>("SELECT COALESCE(MAX(id), 0) FROM audit_event");
        }
        var nobody = await app.NewNhsNumberAsync();
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync($"/fhir/Patient?identifier={FhirMapping.NhsNumberSystem}|{nobody}")).StatusCode);
        Assert.Equal(["SearchPatients"], await PartnerActionsSinceAsync(lastAudit));
    }

    /// <summary>
    /// Issue 14, store growth: a transaction's referral is stored once. The names as sent (not their derived display
    /// forms), no idempotency key beside the identifier that already is one, and one audit row: the submission's.
    /// </summary>
    [Fact]
    public async Task Transaction_StoresNamesAsSent_NoKeyBesideItsIdentifier_AndOneAuditRow()
    {
        using var client = await app.PartnerAsync();
        long lastAudit;
        await using (var connection = await app.OpenAsync())
        {
            lastAudit = await connection.ExecuteScalarAsync<long>("SELECT COALESCE(MAX(id), 0) FROM audit_event");
        }
        var body = FhirPayloads.ProfileExamplesTransaction(await app.NewNhsNumberAsync()).ToJsonString();

        var reply = await FhirPartner.ParseAsync<Bundle>(await client.PostAsync("/fhir", FhirPayloads.Body(body)), HttpStatusCode.OK);

        var referralId = long.Parse(reply.Entry[1].Resource.Id, System.Globalization.CultureInfo.InvariantCulture);
        long personId;
        await using (var connection = await app.OpenAsync())
        {
            personId = await connection.ExecuteScalarAsync<long>("SELECT person_id FROM referral WHERE id = @referralId", new { referralId });
            var stored = await connection.QuerySingleAsync<(string Key, string Names, string Said)>(
                """
                SELECT r.idempotency_key AS Key, p.names AS Names, rp.names AS Said
                FROM referral r JOIN person p ON p.id = r.person_id JOIN referral_person rp ON rp.referral_id = r.id
                WHERE r.id = @referralId
                """, new { referralId });
            Assert.Null(stored.Key);
            Assert.Equal("""[{"use":"official","family":"Trelawny","given":["Edith","May"]}]""", stored.Names);
            Assert.Equal(stored.Names, stored.Said);
            var actions = await connection.QueryAsync<string>(
                "SELECT action FROM audit_event WHERE id > @lastAudit AND action IN ('ProcessTransaction', 'SubmitReferral') ORDER BY id", new { lastAudit });
            Assert.Equal(["SubmitReferral"], actions);
            // Its change names no duplicate and no missing information: it has neither.
            var change = await connection.QuerySingleAsync<string>(
                "SELECT data FROM change WHERE kind = 'referral.submitted' AND entity_id = @referralId", new { referralId });
            Assert.Equal(["status", "source", "pathway", "urgency", "earlyRequest"],
                JsonDocument.Parse(change).RootElement.EnumerateObject().Select(p => p.Name));
        }
        // The name reads back as sent.
        var patient = await FhirPartner.ParseAsync<Patient>(await client.GetAsync($"/fhir/Patient/{reply.Entry[0].Resource.Id}"), HttpStatusCode.OK);
        Assert.Equal(((ServiceRequest)reply.Entry[1].Resource).Subject.Reference, $"Patient/{patient.Id}");
        Assert.Equal(["Edith", "May"], patient.Name.Single().Given);
        Assert.Equal("Trelawny", patient.Name.Single().Family);
        // A name stored before, in the longer form, reads the same.
        await using (var connection = await app.OpenAsync())
        {
            await connection.ExecuteAsync("UPDATE person SET names = @Longer WHERE id = @Id", new
            {
                Longer = """[{"use":"official","text":null,"family":"Trelawny","given":["Edith","May"],"prefix":[],"suffix":[],"givenNames":"Edith May","display":"Edith May Trelawny"}]""",
                Id = personId,
            });
        }
        var longer = await FhirPartner.ParseAsync<Patient>(await client.GetAsync($"/fhir/Patient/{patient.Id}"), HttpStatusCode.OK);
        Assert.True(longer.Name.Single().IsExactly(patient.Name.Single()), FhirMapping.Serialize(longer));
        // The identifier alone still finds the referral: the same transaction again is refused as a duplicate, and changes nothing.
        var before = await SnapshotAsync();
        var repeat = await FhirPartner.ParseAsync<OperationOutcome>(await client.PostAsync("/fhir", FhirPayloads.Body(body)), HttpStatusCode.Conflict);
        Assert.Contains($"ServiceRequest/{referralId}", repeat.Issue[0].Diagnostics, StringComparison.Ordinal);
        Assert.Equal(OperationOutcome.IssueType.Duplicate, repeat.Issue[0].Code);
        Assert.Equal(before, await SnapshotAsync());
    }

    [Fact]
    public async Task ABundleOfMoreEntriesThanTheLimit_Is400_AndStoresNothing()
    {
        using var small = app.WithWebHostBuilder(builder => builder.UseSetting("Fhir:MaxBundleEntries", "2"));
        using var client = small.CreateClient();
        client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", await FhirPartner.TokenAsync(client));
        async Task<Bundle> ReferralAsync(Bundle.BundleType type)
        {
            var nhs = Nhs(await app.NewNhsNumberAsync());
            var patientUrl = "urn:uuid:" + Guid.NewGuid();
            var bundle = new Bundle { Type = type };
            bundle.Entry.Add(new Bundle.EntryComponent { FullUrl = patientUrl, Resource = NewPatient(nhs), Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.POST, Url = "Patient" } });
            bundle.Entry.Add(new Bundle.EntryComponent
            {
                FullUrl = "urn:uuid:" + Guid.NewGuid(),
                Resource = NewReferral(patientUrl, "L-" + Guid.NewGuid().ToString("N")),
                Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.POST, Url = "ServiceRequest" },
            });
            return bundle;
        }

        // At the limit: written.
        var atLimit = await FhirPartner.ParseAsync<Bundle>(await client.PostAsync("/fhir", Json(await ReferralAsync(Bundle.BundleType.Transaction))), HttpStatusCode.OK);
        Assert.Equal(["201 Created", "201 Created"], atLimit.Entry.Select(e => e.Response.Status));

        // One entry more, in a transaction or a batch: refused whole, before anything is written.
        foreach (var type in new[] { Bundle.BundleType.Transaction, Bundle.BundleType.Batch })
        {
            var over = await ReferralAsync(type);
            over.Entry.Add(new Bundle.EntryComponent
            {
                FullUrl = "urn:uuid:" + Guid.NewGuid(),
                Resource = NewPatient(Nhs(await app.NewNhsNumberAsync())),
                Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.POST, Url = "Patient" },
            });
            var before = await SnapshotAsync();
            var refused = await FhirPartner.ParseAsync<OperationOutcome>(await client.PostAsync("/fhir", Json(over)), HttpStatusCode.BadRequest);
            Assert.Contains("at most 2 entries; this one has 3", refused.Issue.Single().Diagnostics, StringComparison.Ordinal);
            Assert.Equal("Bundle.entry", refused.Issue.Single().Expression.Single());
            Assert.Equal(before, await SnapshotAsync());
        }

        var stated = await FhirPartner.ParseAsync<CapabilityStatement>(await client.GetAsync("/fhir/metadata"));
        Assert.Contains("a Bundle at most 2 entries", stated.Rest[0].Documentation, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Transaction_ResolvesUrnReferences_AndOneBadEntryStoresNothing()
    {
        using var client = await app.PartnerAsync();
        var nhs = Nhs(await app.NewNhsNumberAsync());
        var bundle = new Bundle { Type = Bundle.BundleType.Transaction };
        bundle.Entry.Add(new Bundle.EntryComponent
        {
            FullUrl = "urn:uuid:6b1f2d1e-0d4b-4c52-9f8e-4d0a1c1b7a11",
            Resource = NewPatient(nhs),
            Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.POST, Url = "Patient", IfNoneExist = $"identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}" },
        });
        bundle.Entry.Add(new Bundle.EntryComponent
        {
            FullUrl = "urn:uuid:0f4a9c3e-5a55-4e1e-8f07-2b9d7d3f9e22",
            Resource = NewReferral("urn:uuid:6b1f2d1e-0d4b-4c52-9f8e-4d0a1c1b7a11", "T-" + Guid.NewGuid().ToString("N")),
            Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.POST, Url = "ServiceRequest" },
        });

        // A second referral in the same transaction breaks a rule: nothing of the first is kept.
        var bad = bundle.DeepCopy() as Bundle;
        var badPatient = NewPatient("9434765918");
        bad.Entry.Add(new Bundle.EntryComponent { FullUrl = "urn:uuid:4e0c9d55-1f7a-4a8e-b1c2-9d3e5f7a0b1c", Resource = badPatient, Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.POST, Url = "Patient" } });
        bad.Entry.Add(new Bundle.EntryComponent { Resource = NewReferral("urn:uuid:4e0c9d55-1f7a-4a8e-b1c2-9d3e5f7a0b1c"), Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.POST, Url = "ServiceRequest" } });
        var before = await SnapshotAsync();
        var refused = await FhirPartner.ParseAsync<OperationOutcome>(await client.PostAsync("/fhir", Json(bad)), (HttpStatusCode)422);
        Assert.StartsWith("Bundle.entry[3]", refused.Issue[0].Diagnostics, StringComparison.Ordinal);
        Assert.Equal(before, await SnapshotAsync());

        // A person is found only by NHS number: a condition without one is refused, not a search of every person the partner knows.
        foreach (var condition in new[] { "_count=1", "_total=accurate" })
        {
            var unnamed = bundle.DeepCopy() as Bundle;
            unnamed.Entry[0].Request.IfNoneExist = condition;
            var outcome = await FhirPartner.ParseAsync<OperationOutcome>(await client.PostAsync("/fhir", Json(unnamed)), HttpStatusCode.BadRequest);
            Assert.Contains("NHS number", outcome.Issue[0].Diagnostics, StringComparison.Ordinal);
            Assert.Equal(before, await SnapshotAsync());
        }

        var reply = await FhirPartner.ParseAsync<Bundle>(await client.PostAsync("/fhir", Json(bundle)), HttpStatusCode.OK);

        Assert.Equal(Bundle.BundleType.TransactionResponse, reply.Type);
        Assert.Equal(new[] { "201 Created", "201 Created" }, reply.Entry.Select(e => e.Response.Status));
        var patient = (Patient)reply.Entry[0].Resource;
        var referral = (ServiceRequest)reply.Entry[1].Resource;
        Assert.Equal($"Patient/{patient.Id}", referral.Subject.Reference);
        Assert.Equal($"ServiceRequest/{referral.Id}/_history/1", reply.Entry[1].Response.Location);
        // Audited once, by the command that made it, not again by the transaction around it.
        await using (var audit = await app.OpenAsync())
        {
            var actions = await audit.QueryAsync<string>(
                "SELECT action FROM audit_event WHERE entity_type = 'referral' AND entity_id = @id AND action IN ('SubmitReferral', 'ProcessTransaction')",
                new { id = long.Parse(referral.Id, System.Globalization.CultureInfo.InvariantCulture) });
            Assert.Equal(["SubmitReferral"], actions);
        }
        var bySubject = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync($"/fhir/ServiceRequest?patient=Patient/{patient.Id}"), HttpStatusCode.OK);
        Assert.Equal(referral.Id, bySubject.Entry.Single().Resource.Id);
        var tasks = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync($"/fhir/Task?patient=Patient/{patient.Id}"), HttpStatusCode.OK);
        var task = (FhirTask)tasks.Entry.Single().Resource;
        await using (var connection = await app.OpenAsync())
        {
            // Waiting in the queue, the task is owned by the coordination centre of the person's locality.
            var owner = await connection.ExecuteScalarAsync<long>("SELECT id FROM organisation WHERE code = @code", new { code = task.Owner.Identifier.Value });
            var owned = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync($"/fhir/Task?owner=Organization/{owner}&patient=Patient/{patient.Id}"), HttpStatusCode.OK);
            Assert.Equal(task.Id, owned.Entry.Single().Resource.Id);
            var notOwned = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync($"/fhir/Task?owner=Organization/{owner + 1000}&patient=Patient/{patient.Id}"), HttpStatusCode.OK);
            Assert.Empty(notOwned.Entry);
        }

        // The same person again, matched by ifNoneExist now that this partner has referred them: 200, and the same Patient.
        var second = bundle.DeepCopy() as Bundle;
        ((ServiceRequest)second.Entry[1].Resource).Identifier[0].Value = "T-" + Guid.NewGuid().ToString("N");
        var again = await FhirPartner.ParseAsync<Bundle>(await client.PostAsync("/fhir", Json(second)), HttpStatusCode.OK);
        Assert.Equal("200 OK", again.Entry[0].Response.Status);
        Assert.Equal(patient.Id, again.Entry[0].Resource.Id);
    }

    [Fact]
    public async Task Batch_AnswersEachEntryOnItsOwn()
    {
        using var client = await app.PartnerAsync();
        var batch = new Bundle { Type = Bundle.BundleType.Batch };
        batch.Entry.Add(new Bundle.EntryComponent { Resource = WithContainedPatient(Nhs(await app.NewNhsNumberAsync())), Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.POST, Url = "ServiceRequest" } });
        batch.Entry.Add(new Bundle.EntryComponent { Resource = WithContainedPatient("9434765918"), Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.POST, Url = "ServiceRequest" } });
        batch.Entry.Add(new Bundle.EntryComponent { Resource = NewPatient("9434765918"), Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.POST, Url = "Patient" } });
        var before = await SnapshotAsync();

        var reply = await FhirPartner.ParseAsync<Bundle>(await client.PostAsync("/fhir", Json(batch)), HttpStatusCode.OK);

        Assert.Equal(Bundle.BundleType.BatchResponse, reply.Type);
        Assert.Equal(new[] { "201 Created", "422 Unprocessable Entity", "422 Unprocessable Entity" }, reply.Entry.Select(e => e.Response.Status));
        Assert.IsType<ServiceRequest>(reply.Entry[0].Resource);
        Assert.Contains("check digit", reply.Entry[1].Response.Outcome is OperationOutcome outcome ? outcome.Issue[0].Diagnostics : "", StringComparison.Ordinal);
        var after = await SnapshotAsync();
        Assert.Equal(before.Item1 + 1, after.Item1);
    }

    [Fact]
    public async Task UpdateMessages_NeedOnlyTheWriteScopes_ToAnswerAQuestionAndAddANote()
    {
        // A partner system that sends and updates referrals but never reads them back.
        var clientId = await app.NewPartnerClientAsync("RWM", "system/ServiceRequest.cu", "writer");
        using var client = await app.PartnerAsync(null, clientId, FhirPartner.OtherSecret);
        var identifier = "W-" + Guid.NewGuid().ToString("N");
        var sent = NewReferral("urn:uuid:9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", identifier);
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/fhir/$process-message",
            Json(Message(Guid.NewGuid().ToString(), "new", sent, NewPatient(Nhs(await app.NewNhsNumberAsync())))))).StatusCode);
        long referralId, taskId;
        await using (var connection = await app.OpenAsync())
        {
            referralId = await connection.ExecuteScalarAsync<long>("SELECT id FROM referral WHERE sender_value = @identifier", new { identifier });
            taskId = await connection.ExecuteScalarAsync<long>("SELECT id FROM triage_task WHERE referral_id = @referralId", new { referralId });
        }
        var coordinator = await app.StaffAsync("coordinator");
        await app.SendAsync(new TakeReferral.Command(taskId), coordinator);
        await app.SendAsync(new RequestInformation.Command(taskId, "Is there a key safe at the house?"), coordinator);

        ServiceRequest Update(string note)
        {
            var update = NewReferral("urn:uuid:9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", identifier);
            update.Id = referralId.ToString(System.Globalization.CultureInfo.InvariantCulture);
            update.Note = [new Annotation { Text = "Referral summary as first sent." }, new Annotation { Text = note }];
            return update;
        }
        var answer = await client.PostAsync("/fhir/$process-message", Json(Message(Guid.NewGuid().ToString(), "update", Update("Yes, code 4321."), null)));
        var note = await client.PostAsync("/fhir/$process-message", Json(Message(Guid.NewGuid().ToString(), "update", Update("She has a cat."), null)));

        Assert.True(answer.StatusCode == HttpStatusCode.OK, await answer.Content.ReadAsStringAsync());
        Assert.True(note.StatusCode == HttpStatusCode.OK, await note.Content.ReadAsStringAsync());
        await using (var connection = await app.OpenAsync())
        {
            var notes = (await connection.QueryAsync<(string Kind, string Text)>(
                "SELECT kind, text FROM referral_note WHERE referral_id = @referralId AND text IN ('Yes, code 4321.', 'She has a cat.') ORDER BY id", new { referralId })).ToList();
            Assert.Equal([("information-response", "Yes, code 4321."), ("note", "She has a cat.")], notes);
        }
    }

    [Fact]
    public async Task ANewMessage_RepeatingAReferralsIdentifier_IsADuplicate_ThatSaysHowAMessageChangesIt()
    {
        using var client = await app.PartnerAsync();
        var identifier = "R-" + Guid.NewGuid().ToString("N");
        var nhs = Nhs(await app.NewNhsNumberAsync());
        var first = Message(Guid.NewGuid().ToString(), "new", NewReferral("urn:uuid:9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", identifier), NewPatient(nhs));
        var reply = await FhirPartner.ParseAsync<Bundle>(await client.PostAsync("/fhir/$process-message", Json(first)), HttpStatusCode.OK);
        var referralId = reply.Entry[1].Resource.Id;
        var before = await SnapshotAsync();

        // The same referral in a message of its own id: not a repeat of the first message, but a second referral with its identifier.
        var again = Message(Guid.NewGuid().ToString(), "new", NewReferral("urn:uuid:9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", identifier), NewPatient(nhs));
        var refused = await FhirPartner.ParseAsync<OperationOutcome>(await client.PostAsync("/fhir/$process-message", Json(again)), HttpStatusCode.Conflict);

        Assert.Equal(OperationOutcome.IssueType.Duplicate, refused.Issue[0].Code);
        var said = refused.Issue[0].Diagnostics;
        Assert.Contains($"ServiceRequest/{referralId}", said, StringComparison.Ordinal);
        // A message cannot carry If-None-Exist: it is told what a message can do.
        Assert.DoesNotContain("If-None-Exist", said, StringComparison.Ordinal);
        Assert.Contains($"send reason update naming ServiceRequest/{referralId}", said, StringComparison.Ordinal);
        Assert.Contains("a different referral needs an identifier of its own", said, StringComparison.Ordinal);
        Assert.Equal(before, await SnapshotAsync());
    }

    private Bundle Message(string messageId, string reason, ServiceRequest request, Patient? patient)
    {
        var message = new Bundle { Id = messageId, Type = Bundle.BundleType.Message, Timestamp = app.Clock.GetUtcNow() };
        message.Entry.Add(new Bundle.EntryComponent
        {
            FullUrl = "urn:uuid:" + Guid.NewGuid(),
            Resource = new MessageHeader
            {
                Event = new Coding("https://fhir.nhs.uk/CodeSystem/message-events-bars", "servicerequest-request"),
                Reason = new CodeableConcept("https://fhir.nhs.uk/CodeSystem/message-reason-bars", reason),
                Source = new MessageHeader.MessageSourceComponent { Endpoint = "https://epr.westmoor-general.nhs.uk" },
                Focus = [new ResourceReference("urn:uuid:7c1e4b8a-2d3f-4e5a-8b9c-0d1e2f3a4b5c")],
            },
        });
        message.Entry.Add(new Bundle.EntryComponent { FullUrl = "urn:uuid:7c1e4b8a-2d3f-4e5a-8b9c-0d1e2f3a4b5c", Resource = request });
        if (patient is not null)
        {
            message.Entry.Add(new Bundle.EntryComponent { FullUrl = "urn:uuid:9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", Resource = patient });
        }
        return message;
    }

    [Fact]
    public async Task ProcessMessage_CreatesAReferral_RefusesARepeatedMessage_AndCancelsOnDelete()
    {
        using var client = await app.PartnerAsync();
        var messageId = Guid.NewGuid().ToString();
        var message = Message(messageId, "new", NewReferral("urn:uuid:9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"), NewPatient(Nhs(await app.NewNhsNumberAsync())));

        var reply = await FhirPartner.ParseAsync<Bundle>(await client.PostAsync("/fhir/$process-message", Json(message)), HttpStatusCode.OK);

        var header = (MessageHeader)reply.Entry[0].Resource;
        Assert.Equal(messageId, header.Response.Identifier);
        Assert.Equal(MessageHeader.ResponseType.Ok, header.Response.Code);
        var referral = (ServiceRequest)reply.Entry[1].Resource;
        Assert.Equal(RequestStatus.Active, referral.Status);

        var before = await SnapshotAsync();
        var duplicate = await FhirPartner.ParseAsync<OperationOutcome>(await client.PostAsync("/fhir/$process-message", Json(message)), HttpStatusCode.Conflict);
        Assert.Equal(OperationOutcome.IssueType.Duplicate, duplicate.Issue[0].Code);
        Assert.Equal(before, await SnapshotAsync());

        // An update answers the coordination centre's open question, and the referral is back in triage.
        var coordinator = await app.StaffAsync("coordinator");
        var task = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync($"/fhir/Task?focus=ServiceRequest/{referral.Id}"), HttpStatusCode.OK);
        var taskId = long.Parse(task.Entry.Single().Resource.Id, System.Globalization.CultureInfo.InvariantCulture);
        await app.SendAsync(new TakeReferral.Command(taskId), coordinator);
        await app.SendAsync(new RequestInformation.Command(taskId, "Is there a key safe at the house?"), coordinator);
        // Its version (meta.versionId) is checked: the partner answers the referral as it reads it now.
        referral = await FhirPartner.ParseAsync<ServiceRequest>(await client.GetAsync($"/fhir/ServiceRequest/{referral.Id}"), HttpStatusCode.OK);
        referral.Note.Add(new Annotation { Text = "Yes: the key safe code is with the daughter." });
        var answered = await FhirPartner.ParseAsync<Bundle>(await client.PostAsync("/fhir/$process-message", Json(Message(Guid.NewGuid().ToString(), "update", referral, null))),
            HttpStatusCode.OK);
        Assert.Equal(RequestStatus.Active, ((ServiceRequest)answered.Entry[1].Resource).Status);
        await using (var connection = await app.OpenAsync())
        {
            Assert.Equal("Yes: the key safe code is with the daughter.", await connection.ExecuteScalarAsync<string>(
                "SELECT text FROM referral_note WHERE referral_id = @id AND kind = 'information-response'", new { id = long.Parse(referral.Id, System.Globalization.CultureInfo.InvariantCulture) }));
        }

        // A cancellation names the version it read: the one from before the answer is stale.
        referral.Note.Add(new Annotation { Text = "Family have arranged care privately." });
        Assert.Equal(HttpStatusCode.PreconditionFailed,
            (await client.PostAsync("/fhir/$process-message", Json(Message(Guid.NewGuid().ToString(), "delete", referral, null)))).StatusCode);
        referral = (ServiceRequest)answered.Entry[1].Resource;
        referral.Note.Add(new Annotation { Text = "Family have arranged care privately." });
        var cancel = Message(Guid.NewGuid().ToString(), "delete", referral, null);
        var cancelled = await FhirPartner.ParseAsync<Bundle>(await client.PostAsync("/fhir/$process-message", Json(cancel)), HttpStatusCode.OK);
        Assert.Equal(RequestStatus.Revoked, ((ServiceRequest)cancelled.Entry[1].Resource).Status);
    }

    /// <summary>
    /// A real FHIR client (Firely's FhirClient) as a partner EPR would use it: token, a transaction, following
    /// the triage Task to accepted as the coordination centre works it, and capacity.
    /// </summary>
    [Fact]
    public async Task PartnerJourney_WithFirelysFhirClient()
    {
        using var tokenClient = await app.PartnerAsync();
        var settings = new FhirClientSettings { PreferredFormat = ResourceFormat.Json, VerifyFhirVersion = false };
        using var fhir = new FhirClient(new Uri(app.Server.BaseAddress, "fhir/"), tokenClient, settings);

        var nhs = Nhs(await app.NewNhsNumberAsync());
        var transaction = new TransactionBuilder(fhir.Endpoint, Bundle.BundleType.Transaction);
        var patient = NewPatient(nhs);
        transaction.Create(patient);
        var bundle = transaction.ToBundle();
        bundle.Entry[0].FullUrl = "urn:uuid:2d7c0e0a-3b55-4f6d-9a3e-6b0c2d1e9f01";
        bundle.Entry.Add(new Bundle.EntryComponent
        {
            FullUrl = "urn:uuid:8a3e1f7c-4c1d-4b1e-9b2a-1f0e2d3c4b5a",
            Resource = NewReferral(bundle.Entry[0].FullUrl, "J-" + Guid.NewGuid().ToString("N")),
            Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.POST, Url = "ServiceRequest" },
        });

        var reply = await fhir.TransactionAsync(bundle);
        var referral = reply!.Entry.Select(e => e.Resource).OfType<ServiceRequest>().SingleOrDefault();
        Assert.True(referral is not null, FhirMapping.Serialize(reply));

        var tasks = await fhir.SearchAsync<FhirTask>([$"focus=ServiceRequest/{referral.Id}"]);
        var task = (FhirTask)tasks!.Entry.Single().Resource;
        Assert.Equal(FhirTask.TaskStatus.Requested, task.Status);
        // Who has the referral is an Organization the partner can read, known by the ODS code it shows.
        var owner = await fhir.ReadAsync<Organization>(task.Owner.Reference);
        Assert.Equal(task.Owner.Identifier.Value, owner!.Identifier.Single(i => i.System == "https://fhir.nhs.uk/Id/ods-organization-code").Value);
        Assert.Equal("RWM", (await fhir.ReadAsync<Organization>(referral.Requester.Reference))!.Identifier.Single().Value);

        var coordinator = await app.StaffAsync("coordinator");
        var taskId = long.Parse(task.Id, System.Globalization.CultureInfo.InvariantCulture);
        await app.SendAsync(new TakeReferral.Command(taskId), coordinator);
        Assert.Equal(FhirTask.TaskStatus.InProgress, (await fhir.ReadAsync<FhirTask>($"Task/{task.Id}"))!.Status);
        await using (var connection = await app.OpenAsync())
        {
            var service = await connection.ExecuteScalarAsync<long>("SELECT id FROM service WHERE name = 'Home First Reablement - North'");
            await app.SendAsync(new AcceptIntoService.Command(taskId, service, Today), coordinator);
        }

        var accepted = await fhir.ReadAsync<FhirTask>($"Task/{task.Id}");
        Assert.Equal(FhirTask.TaskStatus.Accepted, accepted!.Status);
        Assert.Single((await fhir.SearchAsync<FhirTask>([$"focus=ServiceRequest/{referral.Id}", "status=accepted"]))!.Entry);
        Assert.Empty((await fhir.SearchAsync<FhirTask>([$"focus=ServiceRequest/{referral.Id}", "status=requested,completed"]))!.Entry);
        Assert.Equal("accepted", accepted.BusinessStatus.Coding[0].Code);

        var capacity = await fhir.SearchAsync<MeasureReport>([]);
        Assert.NotEmpty(capacity!.Entry);
        var beds = await fhir.SearchAsync<Location>(["operational-status=U"]);
        Assert.All(beds!.Entry, e => Assert.Equal("U", ((Location)e.Resource).OperationalStatus.Code));
    }

    [Fact]
    public async Task ADeclinedReferral_ShowsItsCodedReason_OnTheRejectedTask()
    {
        using var client = await app.PartnerAsync();
        var created = await FhirPartner.ParseAsync<ServiceRequest>(await client.PostAsync("/fhir/ServiceRequest", Json(WithContainedPatient(Nhs(await app.NewNhsNumberAsync())))),
            HttpStatusCode.Created);
        var tasks = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync($"/fhir/Task?focus=ServiceRequest/{created.Id}"), HttpStatusCode.OK);
        var taskId = long.Parse(tasks.Entry.Single().Resource.Id, System.Globalization.CultureInfo.InvariantCulture);
        var coordinator = await app.StaffAsync("coordinator");
        await app.SendAsync(new TakeReferral.Command(taskId), coordinator);
        await app.SendAsync(new DeclineReferral.Command(taskId, "out-of-area", "Lives across the county border."), coordinator);

        var task = await FhirPartner.ParseAsync<FhirTask>(await client.GetAsync($"/fhir/Task/{taskId}"), HttpStatusCode.OK);

        Assert.Equal(FhirTask.TaskStatus.Rejected, task.Status);
        Assert.Equal(("https://carecoordination.example.org/fhir/CodeSystem/decline-reason", "out-of-area"), (task.StatusReason.Coding.Single().System, task.StatusReason.Coding.Single().Code));
        Assert.Contains("county border", task.StatusReason.Text, StringComparison.Ordinal);
        Assert.Empty(Profiles.Load().Validate(task));
        Assert.Equal(RequestStatus.Revoked, (await FhirPartner.ParseAsync<ServiceRequest>(await client.GetAsync($"/fhir/ServiceRequest/{created.Id}"), HttpStatusCode.OK)).Status);
    }

    /// <summary>
    /// Every resource type this server serves, as a partner reads it, parses strictly as that type and survives
    /// serialise-and-parse unchanged: nothing it writes is something a strict FHIR client would drop or refuse.
    /// </summary>
    [Fact]
    public async Task EveryResourceType_RoundTrips()
    {
        using var client = await app.PartnerAsync();
        var nhs = Nhs(await app.NewNhsNumberAsync());
        await client.PostAsync("/fhir/ServiceRequest", Json(WithContainedPatient(nhs)));
        var strict = new FhirJsonDeserializer(new DeserializerSettings());
        string[] types = ["ServiceRequest", "Task", "Patient", "Location", "MeasureReport", "Organization", "Practitioner", "PractitionerRole", "HealthcareService", "AuditEvent"];
        foreach (var type in types)
        {
            // A Patient is searched by NHS number only.
            var search = type == "Patient" ? $"/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}" : $"/fhir/{type}?_count=1";
            var page = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync(search), HttpStatusCode.OK);
            var url = page.Entry.Single().FullUrl;
            var body = await (await client.GetAsync(url)).Content.ReadAsStringAsync();
            var read = strict.DeserializeResource(body);
            Assert.Equal(type, read.TypeName);
            var again = strict.DeserializeResource(FhirMapping.Serialize(read));
            Assert.True(read.IsExactly(again), $"{type} changed in a round trip: {body}");
        }
    }

    /// <summary>The published examples of a referral and its person, sent together as a partner would (in a transaction).</summary>
    private static System.Text.Json.Nodes.JsonObject ExampleTransaction(System.Text.Json.Nodes.JsonObject referral, System.Text.Json.Nodes.JsonObject person)
    {
        const string personUrl = "urn:uuid:5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f";
        // Only what a test has not taken away is changed: the subject names the Patient entry, and the
        // identifier is made unique so that each send is a new referral.
        if (referral["subject"] is System.Text.Json.Nodes.JsonObject { } subject && subject.ContainsKey("reference"))
        {
            subject["reference"] = personUrl;
        }
        if (referral["identifier"]?[0] is System.Text.Json.Nodes.JsonObject { } identifier && identifier.ContainsKey("value"))
        {
            identifier["value"] = "P-" + Guid.NewGuid().ToString("N");
        }
        // The example's expected discharge date is fixed in the past, which the form's own rule refuses.
        referral.Remove("occurrenceDateTime");
        return new System.Text.Json.Nodes.JsonObject
        {
            ["resourceType"] = "Bundle",
            ["type"] = "transaction",
            ["entry"] = new System.Text.Json.Nodes.JsonArray(
                new System.Text.Json.Nodes.JsonObject { ["fullUrl"] = personUrl, ["resource"] = person, ["request"] = new System.Text.Json.Nodes.JsonObject { ["method"] = "POST", ["url"] = "Patient" } },
                new System.Text.Json.Nodes.JsonObject { ["resource"] = referral, ["request"] = new System.Text.Json.Nodes.JsonObject { ["method"] = "POST", ["url"] = "ServiceRequest" } }),
        };
    }

    [Fact]
    public async Task TheProfilesExamples_AreAcceptedByTheServer()
    {
        using var client = await app.PartnerAsync();
        var bundle = ExampleTransaction(ProfileFiles.ExampleOf(Profiles.Referral), ProfileFiles.ExampleOf(Profiles.Person));

        var reply = await FhirPartner.ParseAsync<Bundle>(await client.PostAsync("/fhir", new StringContent(bundle.ToJsonString(), Encoding.UTF8, "application/fhir+json")), HttpStatusCode.OK);

        Assert.Equal("201 Created", reply.Entry[1].Response.Status);
    }

    /// <summary>What the server answers meets the profiles it publishes: every referral and person a partner can read, seeded or sent.</summary>
    [Fact]
    public async Task EveryReferralAndPersonAPartnerReads_MeetsItsProfile()
    {
        using var client = await app.PartnerAsync();
        await client.PostAsync("/fhir/ServiceRequest", Json(WithContainedPatient(Nhs(await app.NewNhsNumberAsync()))));
        var profiles = Profiles.Load();
        var referrals = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync("/fhir/ServiceRequest?_count=100"), HttpStatusCode.OK);
        Assert.NotEmpty(referrals.Entry);
        // Each referral, and each person they name (a Patient is searched by NHS number only, so read one by one).
        var people = new List<Resource>();
        foreach (var subject in referrals.Entry.Select(e => ((ServiceRequest)e.Resource).Subject.Reference).Distinct())
        {
            people.Add(await FhirPartner.ParseAsync<Patient>(await client.GetAsync($"/fhir/{subject}"), HttpStatusCode.OK));
        }
        foreach (var resource in referrals.Entry.Select(e => e.Resource).Concat(people))
        {
            var issues = profiles.Validate(resource);
            Assert.True(issues.Count == 0, $"{resource.TypeName}/{resource.Id}: " + string.Join("; ", issues.Select(i => $"{i.Expression}: {i.Message}")));
        }
    }

    public static TheoryData<string, string> RequiredOfWhatPartnersSend()
    {
        var data = new TheoryData<string, string>();
        foreach (var row in FhirProfileTests.RequiredElements().Where(r => (string)r[0] is Profiles.Referral or Profiles.Person))
        {
            data.Add((string)row[0], (string)row[1]);
        }
        return data;
    }

    /// <summary>The server enforces exactly the published rules: each required element taken away is a 400 naming it, and nothing is stored.</summary>
    [Theory]
    [MemberData(nameof(RequiredOfWhatPartnersSend))]
    public async Task AnExampleWithoutARequiredElement_IsRefusedByTheServer(string profile, string elementId)
    {
        using var client = await app.PartnerAsync();
        var referral = ProfileFiles.ExampleOf(Profiles.Referral);
        var person = ProfileFiles.ExampleOf(Profiles.Person);
        var (removed, _) = ProfileFiles.Remove(profile == Profiles.Referral ? referral : person, profile, elementId);
        Assert.True(removed > 0);
        var before = await SnapshotAsync();

        var response = await client.PostAsync("/fhir", new StringContent(ExampleTransaction(referral, person).ToJsonString(), Encoding.UTF8, "application/fhir+json"));

        var outcome = await FhirPartner.ParseAsync<OperationOutcome>(response, HttpStatusCode.BadRequest);
        Assert.All(outcome.Issue, i => Assert.Equal(OperationOutcome.IssueType.Invalid, i.Code));
        Assert.Equal(before, await SnapshotAsync());
    }

    /// <summary>The examples docs/fhir.md tells partners to paste are accepted as they stand.</summary>
    [Fact]
    public async Task TheDocumentedExamples_AreAccepted()
    {
        using var client = await app.PartnerAsync();
        var examples = Path.Combine(RepositoryRoot(), "docs", "examples");
        async Task<HttpResponseMessage> PostAsync(string url, string file, string? ifNoneExist = null)
        {
            var message = new HttpRequestMessage(HttpMethod.Post, url)
            {
                Content = new StringContent(await File.ReadAllTextAsync(Path.Combine(examples, file)), Encoding.UTF8, "application/fhir+json"),
            };
            if (ifNoneExist is not null)
            {
                message.Headers.Add("If-None-Exist", ifNoneExist);
            }
            return await client.SendAsync(message);
        }

        var created = await PostAsync("/fhir/ServiceRequest", "referral-contained.json", "identifier=https://fhir.westmoor-general.nhs.uk/Id/referral|R-1000");
        Assert.True(created.StatusCode is HttpStatusCode.Created, await created.Content.ReadAsStringAsync());
        var transaction = await FhirPartner.ParseAsync<Bundle>(await PostAsync("/fhir", "referral-transaction.json"), HttpStatusCode.OK);
        Assert.Equal("201 Created", transaction.Entry[1].Response.Status);
        var message = await FhirPartner.ParseAsync<Bundle>(await PostAsync("/fhir/$process-message", "referral-message.json"), HttpStatusCode.OK);
        Assert.Equal(MessageHeader.ResponseType.Ok, ((MessageHeader)message.Entry[0].Resource).Response.Code);
    }

    private static string RepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "CareCoordination.sln")))
        {
            directory = directory.Parent;
        }
        return directory?.FullName ?? throw new InvalidOperationException("The tests run outside the repository: CareCoordination.sln not found above " + AppContext.BaseDirectory);
    }

    /// <summary>Extensions compared as a set, in the order of their urls, whatever order they were written in.</summary>
    private sealed class FhirExtensions(IEnumerable<Extension> extensions)
    {
        // Displays are the server's words for a code, added on the way out: the codes are what must survive.
        private readonly List<Extension> _sorted = [.. extensions.Select(WithoutDisplays)
            .OrderBy(e => e.Url, StringComparer.Ordinal).ThenBy(e => FhirMapping.Serialize(new Basic { Extension = [e] }), StringComparer.Ordinal)];

        private static Extension WithoutDisplays(Extension extension)
        {
            var copy = (Extension)extension.DeepCopy();
            foreach (var coding in copy.Value is CodeableConcept concept ? concept.Coding : copy.Value is Coding single ? [single] : [])
            {
                coding.Display = null;
            }
            return copy;
        }

        public bool IsExactly(FhirExtensions other) =>
            _sorted.Count == other._sorted.Count && _sorted.Zip(other._sorted).All(pair => pair.First.IsExactly(pair.Second));
    }
}

public sealed class FhirWriteOnSqliteTests(AppFactory app) : FhirWriteTests(app), IClassFixture<AppFactory>;

public sealed class FhirWriteOnPostgresTests(PostgresAppFactory app) : FhirWriteTests(app), IClassFixture<PostgresAppFactory>;

/// <summary>
/// Two conditional creates on one condition (not an identifier) made to meet: the condition's lock is held from outside until
/// both wait at it, so each would have searched already if the search came before the lock. Released, they make one referral:
/// the second finds the first's. (FhirWriteTests' six at once is the same race left to chance.)
/// </summary>
public sealed class FhirConditionalCreateRaceOnPostgresTests(PostgresAppFactory app) : IClassFixture<PostgresAppFactory>
{
    [Fact]
    public async Task TwoConditionalCreates_ThatMeetAtTheConditionsLock_MakeOneReferral_AndTheSecondIsAnsweredWithIt()
    {
        using var client = await app.PartnerAsync();
        var nhs = await app.NewNhsNumberAsync();
        var condition = $"patient.identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}&status=active";
        long organisation;
        await using (var connection = await app.OpenAsync())
        {
            organisation = await connection.ExecuteScalarAsync<long>("SELECT organisation_id FROM partner_client WHERE client_id = @DemoClient", new { FhirPartner.DemoClient });
        }
        var key = FhirWriter.ConditionLock(organisation, app.Services.GetRequiredService<PatientIds>().For(organisation), condition);
        Assert.NotNull(key);

        async Task<HttpResponseMessage> PostAsync()
        {
            using var message = new HttpRequestMessage(HttpMethod.Post, "/fhir/ServiceRequest")
            {
                Content = FhirPayloads.Body(FhirPayloads.ContainedReferral(nhs).ToJsonString()),
            };
            message.Headers.Add("If-None-Exist", condition);
            return await client.SendAsync(message);
        }

        HttpResponseMessage[] answers;
        await using (var held = await app.HoldAsync("SELECT pg_advisory_xact_lock(hashtextextended(@key, 0))", new { key }))
        {
            var first = PostAsync();
            await app.UntilBlockedByAsync(held, [first], "The first conditional create");
            var second = PostAsync();
            await app.UntilBlockedByAsync(held, [first, second], "The second conditional create", waiting: 2);
            await held.CommitAsync();
            answers = await Task.WhenAll(first, second);
        }

        Assert.Equal([HttpStatusCode.OK, HttpStatusCode.Created], answers.Select(a => a.StatusCode).Order());
        var ids = await Task.WhenAll(answers.Select(async a => JsonSerializer.Deserialize<ServiceRequest>(await a.Content.ReadAsStringAsync(), FhirMapping.Json)!.Id));
        Assert.Single(ids.Distinct());
        await using var store = await app.OpenAsync();
        Assert.Equal(1, await store.ExecuteScalarAsync<long>(
            "SELECT COUNT(*) FROM referral r JOIN person p ON p.id = r.person_id WHERE p.nhs_number = @nhs", new { nhs }));
    }
}
