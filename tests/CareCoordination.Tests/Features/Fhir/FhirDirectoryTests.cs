// Firely's model marks every element nullable; here a missing element fails the test just as an assert would.
#pragma warning disable CS8600, CS8602, CS8604

using System.Globalization;
using System.Net;
using System.Text.Json;
using CareCoordination.Auth;
using CareCoordination.Domain;
using CareCoordination.Features.Admin;
using CareCoordination.Features.Fhir;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using CareCoordination.Tests.Features.Admin;
using CareCoordination.Tests.Support;
using Dapper;
using Hl7.Fhir.Model;
using Hl7.Fhir.Serialization;
using Task = System.Threading.Tasks.Task;

namespace CareCoordination.Tests.Features.Fhir;

/// <summary>
/// The directory (Organization, Practitioner, PractitionerRole, HealthcareService) and a partner's own AuditEvents
/// through /fhir: what each partner sees and is refused, paging, and that every body is the resource it claims to be
/// for Firely's strict deserializer, and serialises back to the same resource.
/// </summary>
public abstract class FhirDirectoryTests(AppFactory app)
{
        private const string CapacityUrl = "https://carecoordination.example.org/fhir/StructureDefinition/service-capacity";
    private const string QualityUrl = "https://carecoordination.example.org/fhir/StructureDefinition/provider-quality";

    // Strict: an element R4 does not define, or a value of the wrong shape, fails the parse.
    private static readonly FhirJsonDeserializer Deserializer = new(new DeserializerSettings());

    private DateOnly Today => LondonTime.Today(app.Clock);

    /// <summary>
    /// The body, checked to be FHIR JSON with the expected status, parsed strictly as <typeparamref name="T"/>, then
    /// serialised and parsed again to exactly the same resource.
    /// </summary>
    private static async Task<T> ReadAsync<T>(HttpResponseMessage response, HttpStatusCode status = HttpStatusCode.OK)
        where T : Resource
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"{(int)response.StatusCode}: {body}");
        Assert.Equal("application/fhir+json", response.Content.Headers.ContentType?.MediaType);
        var parsed = Deserializer.Deserialize<T>(body);
        var again = Deserializer.Deserialize<T>(new BaseFhirJsonSerializer(ModelInfo.ModelInspector).SerializeToString(parsed));
        Assert.True(parsed.IsExactly(again), $"{typeof(T).Name} did not survive a round trip: {body}");
        return parsed;
    }

    private static async Task<List<T>> AllPagesAsync<T>(HttpClient client, string url)
        where T : Resource
    {
        var found = new List<T>();
        for (string? next = url; next is not null;)
        {
            var page = await ReadAsync<Bundle>(await client.GetAsync(next));
            Assert.Equal(Bundle.BundleType.Searchset, page.Type);
            found.AddRange(page.Entry.Select(e => Assert.IsType<T>(e.Resource)));
            next = page.Link.SingleOrDefault(l => l.Relation == "next")?.Url;
        }
        return found;
    }

    private async Task<long> OrganisationIdAsync(string code)
    {
        await using var connection = await app.OpenAsync();
        return await connection.ExecuteScalarAsync<long>("SELECT id FROM organisation WHERE code = @code", new { code });
    }

    private async Task<long> StaffIdAsync(string username)
    {
        await using var connection = await app.OpenAsync();
        return await connection.ExecuteScalarAsync<long>("SELECT id FROM staff_user WHERE username = @username", new { username });
    }

    private async Task<(long ReferralId, long PersonId)> SubmitAsync(string user)
    {
        var form = ReferralForms.Discharge(Today, await app.NewNhsNumberAsync());
        var sent = await app.SendAsync<SubmitReferral.Result>(new SubmitReferral.Command(form, Guid.NewGuid().ToString("N")), await app.StaffAsync(user));
        await using var connection = await app.OpenAsync();
        var personId = await connection.ExecuteScalarAsync<long>("SELECT person_id FROM referral WHERE id = @id", new { id = sent.ReferralId });
        return (sent.ReferralId!.Value, personId);
    }

    private static string Instant(DateTimeOffset at) => Uri.EscapeDataString(FhirMapping.Instant(at));

    /// <summary>Now, as the store kept it: PostgreSQL keeps microseconds, the clock has ticks.</summary>
    private void AssertNow(DateTimeOffset? at) =>
        Assert.InRange(at!.Value, app.Clock.GetUtcNow().AddMilliseconds(-1), app.Clock.GetUtcNow().AddMilliseconds(1));

    [Fact]
    public async Task Metadata_StatesTheDirectoryResources_TheirSearchParameters_AndScopes()
    {
        using var client = app.CreateClient();

        var rest = (await ReadAsync<CapabilityStatement>(await client.GetAsync("/fhir/metadata"))).Rest.Single();

        string[] Params(string type) => [.. rest.Resource.Single(r => r.Type == type).SearchParam.Select(p => p.Name!)];
        Assert.Equal(["identifier", "type", "name"], Params("Organization"));
        Assert.Equal(["name", "active"], Params("Practitioner"));
        Assert.Equal(["practitioner", "organization", "role"], Params("PractitionerRole"));
        Assert.Equal(["type", "organization", "active"], Params("HealthcareService"));
        Assert.Equal(["date", "entity", "outcome"], Params("AuditEvent"));
        Assert.All(new[] { "Organization", "Practitioner", "PractitionerRole", "AuditEvent" },
            type => Assert.Equal(CapabilityStatement.ResourceVersionPolicy.NoVersion, rest.Resource.Single(r => r.Type == type).Versioning));
        foreach (var scope in new[] { "system/Organization.rs", "system/Practitioner.rs", "system/PractitionerRole.rs", "system/HealthcareService.rs", "system/AuditEvent.rs" })
        {
            Assert.Contains(scope, rest.Security.Description, StringComparison.Ordinal);
        }
    }

    // Organization

    [Fact]
    public async Task Organization_Read_ShowsItsOdsCodeKindAndName()
    {
        var id = await OrganisationIdAsync("RWM");
        using var client = await app.PartnerAsync();

        var organization = await ReadAsync<Organization>(await client.GetAsync($"/fhir/Organization/{id}"));

        Assert.Equal(id.ToString(), organization.Id);
        Assert.Equal((FhirMapping.OdsSystem, "RWM"), (organization.Identifier.Single().System, organization.Identifier.Single().Value));
        Assert.Equal("Westmoor General Hospital NHS Trust", organization.Name);
        Assert.True(organization.Active);
        var kind = organization.Type.Single().Coding.Single();
        Assert.Equal(("https://carecoordination.example.org/fhir/CodeSystem/organisation-kind", "acute-trust"), (kind.System, kind.Code));
        Assert.Equal("Ashbury", organization.Address.Single().City);
        await ReadAsync<OperationOutcome>(await client.GetAsync("/fhir/Organization/999999999"), HttpStatusCode.NotFound);
        await ReadAsync<OperationOutcome>(await client.GetAsync("/fhir/Organization/RWM"), HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Organization_SearchByType_PagesWithAWorkingNextLink()
    {
        using var client = await app.PartnerAsync();
        await using var connection = await app.OpenAsync();
        var practices = (await connection.QueryAsync<long>("SELECT id FROM organisation WHERE kind = 'gp-practice' ORDER BY id")).Select(i => i.ToString()).ToList();

        var first = await ReadAsync<Bundle>(await client.GetAsync("/fhir/Organization?type=gp-practice&_count=2"));

        Assert.Equal(practices.Count, first.Total);
        Assert.Equal(practices.Take(2), first.Entry.Select(e => e.Resource.Id));
        Assert.Contains("/fhir/Organization?", first.Link.Single(l => l.Relation == "next").Url);
        var all = await AllPagesAsync<Organization>(client, "/fhir/Organization?type=https://carecoordination.example.org/fhir/CodeSystem/organisation-kind|gp-practice&_count=2");
        Assert.Equal(practices, all.Select(o => o.Id));
        Assert.All(all, o => Assert.Equal("gp-practice", o.Type.Single().Coding.Single().Code));
    }

    [Fact]
    public async Task Organization_SearchByOdsCodeOrName_FindsExactlyThose()
    {
        using var client = await app.PartnerAsync();
        await using var connection = await app.OpenAsync();
        var westmoor = await connection.ExecuteScalarAsync<int>("SELECT COUNT(*) FROM organisation WHERE name LIKE 'Westmoor%'");

        var byCode = await ReadAsync<Bundle>(await client.GetAsync($"/fhir/Organization?identifier={FhirMapping.OdsSystem}|RSM"));
        Assert.Equal("RSM", ((Organization)byCode.Entry.Single().Resource).Identifier.Single().Value);
        Assert.Equal(0, (await ReadAsync<Bundle>(await client.GetAsync("/fhir/Organization?identifier=https://example.org/other|RSM"))).Total);

        Assert.Equal(westmoor, (await ReadAsync<Bundle>(await client.GetAsync("/fhir/Organization?name=WESTMOOR"))).Total);
        var general = await ReadAsync<Bundle>(await client.GetAsync("/fhir/Organization?name=westmoor%20gen"));
        Assert.Equal("Westmoor General Hospital NHS Trust", ((Organization)general.Entry.Single().Resource).Name);
        // Starts with, not contains; and LIKE's wildcards in the value are only characters.
        Assert.Equal(0, (await ReadAsync<Bundle>(await client.GetAsync("/fhir/Organization?name=General"))).Total);
        Assert.Equal(0, (await ReadAsync<Bundle>(await client.GetAsync("/fhir/Organization?name=%25"))).Total);
        Assert.Equal(0, (await ReadAsync<Bundle>(await client.GetAsync("/fhir/Organization?name=_estmoor"))).Total);
    }

    // Practitioner and PractitionerRole

    [Fact]
    public async Task Practitioner_OfTheOwnOrganisation_Reads_WithoutLoginDetails_AndAnotherOrganisationsIsNotFound()
    {
        var priya = await StaffIdAsync("referrer");
        var gareth = await StaffIdAsync("gareth.evans");
        using var client = await app.PartnerAsync();

        var response = await client.GetAsync($"/fhir/Practitioner/{priya}");
        var practitioner = await ReadAsync<Practitioner>(response);

        Assert.Equal(priya.ToString(), practitioner.Id);
        Assert.Equal("Priya Shah", practitioner.Name.Single().Text);
        Assert.True(practitioner.Active);
        var body = await response.Content.ReadAsStringAsync();
        Assert.DoesNotContain("referrer", body, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("@westmoor.example", body, StringComparison.Ordinal);
        Assert.DoesNotContain("AQAAAA", body, StringComparison.Ordinal);

        await ReadAsync<OperationOutcome>(await client.GetAsync($"/fhir/Practitioner/{gareth}"), HttpStatusCode.NotFound);
        await ReadAsync<OperationOutcome>(await client.GetAsync($"/fhir/PractitionerRole/{gareth}"), HttpStatusCode.NotFound);
        // Staff see everyone: the same query, as a coordinator.
        var seen = await app.SendAsync<FhirStaff>(new ReadPractitioner.Query(gareth), await app.StaffAsync("coordinator"));
        Assert.Equal("Gareth Evans", seen.Name);
    }

    [Fact]
    public async Task Practitioner_Search_PagesOnlyTheOwnOrganisationsStaff_ByAWordOfTheName()
    {
        using var client = await app.PartnerAsync();
        await using var connection = await app.OpenAsync();
        var own = (await connection.QueryAsync<long>(
            "SELECT u.id FROM staff_user u JOIN organisation o ON o.id = u.organisation_id WHERE o.code = 'RWM' ORDER BY u.id")).Select(i => i.ToString()).ToList();
        Assert.True(own.Count >= 2);

        var first = await ReadAsync<Bundle>(await client.GetAsync("/fhir/Practitioner?_count=1"));
        Assert.Equal(own.Count, first.Total);
        Assert.Equal(own[0], first.Entry.Single().Resource.Id);
        Assert.Equal(own, (await AllPagesAsync<Practitioner>(client, "/fhir/Practitioner?_count=1&active=true")).Select(p => p.Id));

        var shah = await ReadAsync<Bundle>(await client.GetAsync("/fhir/Practitioner?name=sha"));
        Assert.Equal("Priya Shah", ((Practitioner)shah.Entry.Single().Resource).Name.Single().Text);
        Assert.Equal(0, (await ReadAsync<Bundle>(await client.GetAsync("/fhir/Practitioner?name=riya"))).Total);
        Assert.Equal(0, (await ReadAsync<Bundle>(await client.GetAsync("/fhir/Practitioner?name=gareth"))).Total);
        Assert.Equal(0, (await ReadAsync<Bundle>(await client.GetAsync("/fhir/Practitioner?active=false"))).Total);
    }

    [Fact]
    public async Task PractitionerRole_HasThePractitionersId_AndNamesTheirRoleAndOrganisation()
    {
        var priya = await StaffIdAsync("referrer");
        var aisha = await StaffIdAsync("aisha.begum");
        var rwm = await OrganisationIdAsync("RWM");
        using var client = await app.PartnerAsync();

        var role = await ReadAsync<PractitionerRole>(await client.GetAsync($"/fhir/PractitionerRole/{priya}"));

        Assert.Equal(priya.ToString(), role.Id);
        Assert.Equal($"Practitioner/{priya}", role.Practitioner.Reference);
        Assert.Equal($"Organization/{rwm}", role.Organization.Reference);
        Assert.Equal("RWM", role.Organization.Identifier.Value);
        var code = role.Code.Single().Coding.Single();
        Assert.Equal(("https://carecoordination.example.org/fhir/CodeSystem/staff-role", "referrer"), (code.System, code.Code));
        // The reference it gives reads.
        await ReadAsync<Organization>(await client.GetAsync($"/fhir/{role.Organization.Reference}"));
        await ReadAsync<Practitioner>(await client.GetAsync($"/fhir/{role.Practitioner.Reference}"));

        var referrers = await ReadAsync<Bundle>(await client.GetAsync($"/fhir/PractitionerRole?role=referrer&organization=Organization/{rwm}&_count=1"));
        Assert.Equal(2, referrers.Total);
        Assert.Equal([priya.ToString(), aisha.ToString()], (await AllPagesAsync<PractitionerRole>(client, $"/fhir/PractitionerRole?role=referrer&_count=1")).Select(r => r.Id));
        Assert.Equal(priya.ToString(), (await ReadAsync<Bundle>(await client.GetAsync($"/fhir/PractitionerRole?practitioner=Practitioner/{priya}"))).Entry.Single().Resource.Id);
        Assert.Equal(0, (await ReadAsync<Bundle>(await client.GetAsync($"/fhir/PractitionerRole?organization=Organization/{await OrganisationIdAsync("RSM")}"))).Total);
        Assert.Equal(0, (await ReadAsync<Bundle>(await client.GetAsync("/fhir/PractitionerRole?role=coordinator"))).Total);
    }

    // HealthcareService

    private sealed record ServiceRow
    {
        public string Name { get; init; } = "";
        public string CapacityUnit { get; init; } = "";
        public int CapacityPerDay { get; init; }
        public int AvailableToday { get; init; }
        public DateTimeOffset ConfirmedAt { get; init; }
        public int Version { get; init; }
    }

    private async Task<ServiceRow> ServiceRowAsync(long id)
    {
        await using var connection = await app.OpenAsync();
        return await connection.QuerySingleAsync<ServiceRow>(
            """
            SELECT name AS Name, capacity_unit AS CapacityUnit, capacity_per_day AS CapacityPerDay, available_today AS AvailableToday,
                   confirmed_at AS ConfirmedAt, version AS Version
            FROM service WHERE id = @id
            """, new { id });
    }

    private static Extension Part(HealthcareService service, string url, string name) =>
        service.Extension.Single(e => e.Url == url).Extension.Single(e => e.Url == name);

    [Fact]
    public async Task HealthcareService_CapacityIsTheServiceRows_AndItsVersionIsTheETag()
    {
        var provider = await OrganisationIdAsync("PRV-CAREWELL");
        var id = await app.SendAsync<long>(new AddService.Command(provider, AdminWorld.Unique("Carewell Home Care - Holmedale"), "home-care", "Holmedale", "hours", 90), "admin");
        app.Clock.Advance(TimeSpan.FromMinutes(5));
        await app.SendAsync(new ConfirmServiceCapacity.Command(id, 37), "coordinator");
        using var client = await app.PartnerAsync();

        var response = await client.GetAsync($"/fhir/HealthcareService/{id}");
        var service = await ReadAsync<HealthcareService>(response);

        var row = await ServiceRowAsync(id);
        Assert.Equal(row.Name, service.Name);
        Assert.Equal(("hours", 90, 37), (row.CapacityUnit, row.CapacityPerDay, row.AvailableToday));
        Assert.Equal(row.CapacityUnit, ((Hl7.Fhir.Model.Code)Part(service, CapacityUrl, "unit").Value).Value);
        Assert.Equal(row.CapacityPerDay, ((UnsignedInt)Part(service, CapacityUrl, "perDay").Value).Value);
        Assert.Equal(row.AvailableToday, ((UnsignedInt)Part(service, CapacityUrl, "availableToday").Value).Value);
        Assert.Equal(row.ConfirmedAt, ((Instant)Part(service, CapacityUrl, "confirmedAt").Value).Value);
        AssertNow(row.ConfirmedAt);
        Assert.Equal(row.Version.ToString(), service.Meta.VersionId);
        Assert.Equal($"W/\"{row.Version}\"", response.Headers.ETag?.ToString());
        Assert.Equal(row.ConfirmedAt, service.Meta.LastUpdated);
        Assert.Equal($"Organization/{provider}", service.ProvidedBy.Reference);
        Assert.Equal("home-care", service.Type.Single().Coding.Single().Code);
        Assert.Equal("Holmedale", service.CoverageArea.Single().Display);
        Assert.True(service.Active);

        // Capacity confirmed again: the next read shows it, with a new version.
        app.Clock.Advance(TimeSpan.FromMinutes(5));
        await app.SendAsync(new ConfirmServiceCapacity.Command(id, 12), "coordinator");
        var again = await client.GetAsync($"/fhir/HealthcareService/{id}");
        var changed = await ReadAsync<HealthcareService>(again);
        Assert.Equal(12, ((UnsignedInt)Part(changed, CapacityUrl, "availableToday").Value).Value);
        Assert.Equal((row.Version + 1).ToString(), changed.Meta.VersionId);
        Assert.Equal($"W/\"{row.Version + 1}\"", again.Headers.ETag?.ToString());
        AssertNow(changed.Meta.LastUpdated);
    }

    [Fact]
    public async Task HealthcareService_CarriesTheProvidersCqcRating_AndACautionAsCoordinatorsSeeIt()
    {
        await using var connection = await app.OpenAsync();
        var meadowbank = await connection.ExecuteScalarAsync<long>("SELECT id FROM service WHERE name = 'Meadowbank nursing beds'");
        var homeFirst = await connection.ExecuteScalarAsync<long>("SELECT id FROM service WHERE name = 'Home First Reablement - North'");
        var note = await connection.ExecuteScalarAsync<string>("SELECT caution_note FROM organisation WHERE code = 'PRV-MEADOW'");
        using var client = await app.PartnerAsync();

        var cautioned = await ReadAsync<HealthcareService>(await client.GetAsync($"/fhir/HealthcareService/{meadowbank}"));
        Assert.Equal("requires-improvement", ((Coding)Part(cautioned, QualityUrl, "cqcRating").Value).Code);
        Assert.Equal("amber", ((Coding)Part(cautioned, QualityUrl, "caution").Value).Code);
        Assert.Equal(note, ((FhirString)Part(cautioned, QualityUrl, "cautionNote").Value).Value);

        var clear = await ReadAsync<HealthcareService>(await client.GetAsync($"/fhir/HealthcareService/{homeFirst}"));
        Assert.Equal("good", ((Coding)Part(clear, QualityUrl, "cqcRating").Value).Code);
        Assert.DoesNotContain(clear.Extension.Single(e => e.Url == QualityUrl).Extension, e => e.Url is "caution" or "cautionNote");
    }

    [Fact]
    public async Task HealthcareService_SearchByTypeAndProvider_Pages_AndAClosedServiceIsNotFound()
    {
        var provider = await OrganisationIdAsync("PRV-HOMEFIRST");
        var closed = await app.SendAsync<long>(new AddService.Command(provider, AdminWorld.Unique("Home First - closing"), "reablement", "Kelworth", "slots", 4), "admin");
        await app.SendAsync(new EditService.Command(closed, 1, AdminWorld.Unique("Home First - closed"), "reablement", "Kelworth", "slots", 4, false), "admin");
        await using var connection = await app.OpenAsync();
        var open = (await connection.QueryAsync<long>(
            "SELECT id FROM service WHERE organisation_id = @provider AND kind = 'reablement' AND active ORDER BY id", new { provider })).Select(i => i.ToString()).ToList();
        Assert.True(open.Count >= 3);
        using var client = await app.PartnerAsync();

        var first = await ReadAsync<Bundle>(await client.GetAsync($"/fhir/HealthcareService?type=reablement&organization=Organization/{provider}&_count=2"));
        Assert.Equal(open.Count, first.Total);
        Assert.NotNull(first.Link.SingleOrDefault(l => l.Relation == "next"));
        var all = await AllPagesAsync<HealthcareService>(client, $"/fhir/HealthcareService?type=reablement&organization=Organization/{provider}&_count=2");
        Assert.Equal(open, all.Select(s => s.Id));
        Assert.DoesNotContain(closed.ToString(), all.Select(s => s.Id));

        await ReadAsync<OperationOutcome>(await client.GetAsync($"/fhir/HealthcareService/{closed}"), HttpStatusCode.NotFound);
        Assert.Equal(0, (await ReadAsync<Bundle>(await client.GetAsync("/fhir/HealthcareService?active=false"))).Total);
        // Staff who manage services still see a closed one.
        var seen = await app.SendAsync<FhirService>(new ReadHealthcareService.Query(closed), await app.StaffAsync("manager"));
        Assert.False(seen.Active);
    }

    // AuditEvent

    [Fact]
    public async Task AuditEvent_ListsThePartnersOwnReads_AndNothingOfStaffOrAnotherClient()
    {
        var (referralId, _) = await SubmitAsync("referrer");
        using var client = await app.PartnerAsync();
        var (other, otherId) = await app.OtherPartnerAsync("RWM");
        // The person, as this client's organisation was given them: the referral's subject.
        var patient = (await ReadAsync<ServiceRequest>(await client.GetAsync($"/fhir/ServiceRequest/{referralId}"))).Subject.Reference;
        await ReadAsync<ServiceRequest>(await other.GetAsync($"/fhir/ServiceRequest/{referralId}"));
        await ReadAsync<ServiceRequest>(await client.GetAsync($"/fhir/ServiceRequest/{referralId}"));
        await ReadAsync<Patient>(await client.GetAsync($"/fhir/{patient}"));

        var reads = await AllPagesAsync<AuditEvent>(client, $"/fhir/AuditEvent?entity=ServiceRequest/{referralId}&_count=1");

        Assert.Equal(2, reads.Count);
        Assert.All(reads, audit =>
        {
            Assert.Equal(("http://terminology.hl7.org/CodeSystem/audit-event-type", "rest"), (audit.Type.System, audit.Type.Code));
            Assert.Equal("ReadServiceRequest", audit.Subtype.Single().Code);
            Assert.Equal(AuditEvent.AuditEventAction.R, audit.Action);
            Assert.Equal(AuditEvent.AuditEventOutcome.N0, audit.Outcome);
            AssertNow(audit.Recorded);
            var requestor = audit.Agent.Single(a => a.Requestor == true);
            Assert.Equal(FhirPartner.DemoClient, requestor.Who.Identifier.Value);
            Assert.Equal("Westmoor General Hospital EPR", requestor.Who.Display);
            Assert.Equal("RWM", audit.Agent.Single(a => a.Requestor == false).Who.Identifier.Value);
            Assert.NotNull(audit.Source.Observer.Display);
            Assert.Equal([$"ServiceRequest/{referralId}", patient], audit.Entity.Select(e => e.What.Reference));
        });
        await using (var store = await app.OpenAsync())
        {
            // The client's name is its id: the row keeps it once, and the event above still names the client.
            Assert.Equal([(FhirPartner.DemoClient, (string?)null)], await store.QueryAsync<(string, string?)>(
                "SELECT DISTINCT actor_id, actor_name FROM audit_event WHERE action = 'ReadServiceRequest' AND entity_id = @referralId AND actor_id = @client",
                new { referralId, client = FhirPartner.DemoClient }));
        }
        // By the Patient: both referral reads and the Patient read, each row about them.
        var aboutPerson = await AllPagesAsync<AuditEvent>(client, $"/fhir/AuditEvent?entity={patient}");
        Assert.Equal(["ReadServiceRequest", "ReadServiceRequest", "ReadPatient"], aboutPerson.Select(a => a.Subtype.Single().Code));

        await using var connection = await app.OpenAsync();
        var others = (await connection.QueryAsync<long>(
            "SELECT id FROM audit_event WHERE entity_type = 'referral' AND entity_id = @referralId AND NOT (actor_kind = 'partner' AND actor_id = @DemoClient)",
            new { referralId, DemoClient = FhirPartner.DemoClient })).ToList();
        Assert.True(others.Count >= 2, "the staff submission and the other client's read are audited too");
        foreach (var id in others)
        {
            await ReadAsync<OperationOutcome>(await client.GetAsync($"/fhir/AuditEvent/{id}"), HttpStatusCode.NotFound);
        }
        var own = await ReadAsync<AuditEvent>(await client.GetAsync($"/fhir/AuditEvent/{reads[0].Id}"));
        Assert.True(reads[0].IsExactly(own));
        // The other client sees its own read, and only that.
        var theirs = await AllPagesAsync<AuditEvent>(other, $"/fhir/AuditEvent?entity=ServiceRequest/{referralId}");
        Assert.Equal(otherId, theirs.Single().Agent.Single(a => a.Requestor == true).Who.Identifier.Value);
        await ReadAsync<OperationOutcome>(await other.GetAsync($"/fhir/AuditEvent/{reads[0].Id}"), HttpStatusCode.NotFound);
    }

    /// <summary>
    /// Issue 14, store growth: a search that shows several records is one audit row, not one per record, and names each
    /// person it showed (audit_read_person); as a FHIR AuditEvent it is a query entity and a Patient entity per person,
    /// found by entity=Patient/ of each, and "who has seen this person's record" finds it.
    /// </summary>
    [Fact]
    public async Task AuditEvent_ASearchShowingSeveralRecords_IsOneEvent_NamingEachPersonItShowed_AndFoundByEachOfThem()
    {
        // Every earlier row of this store is at least ten seconds older than anything this test does.
        app.Clock.Advance(TimeSpan.FromSeconds(10));
        var since = Instant(app.Clock.GetUtcNow().AddSeconds(-1));
        var (firstReferral, firstPerson) = await SubmitAsync("referrer");
        var (secondReferral, secondPerson) = await SubmitAsync("referrer");
        using var client = await app.PartnerAsync();
        long before;
        await using (var connection = await app.OpenAsync())
        {
            before = await connection.ExecuteScalarAsync<long>("SELECT MAX(id) FROM audit_event");
        }

        var found = await ReadAsync<Bundle>(await client.GetAsync($"/fhir/ServiceRequest?_lastUpdated=ge{since}"));

        Assert.Equal([firstReferral, secondReferral], found.Entry.Select(e => long.Parse(e.Resource.Id, CultureInfo.InvariantCulture)).Order());
        // Each person as this client's organisation was given them: the subject of their referral in the page.
        string PatientOf(long referral) => found.Entry.Select(e => (ServiceRequest)e.Resource)
            .Single(r => r.Id == referral.ToString(CultureInfo.InvariantCulture)).Subject.Reference!;
        var patients = new[] { (Person: firstPerson, Patient: PatientOf(firstReferral)), (Person: secondPerson, Patient: PatientOf(secondReferral)) };
        await using (var connection = await app.OpenAsync())
        {
            var rows = (await connection.QueryAsync<(long Id, string? EntityType, long? EntityId, long? PersonId)>(
                "SELECT id, entity_type, entity_id, person_id FROM audit_event WHERE id > @before AND action = 'SearchServiceRequests'", new { before })).ToList();
            var row = Assert.Single(rows);
            Assert.Equal(("referral", null, null), (row.EntityType, row.EntityId, row.PersonId));
            Assert.Equal(new[] { firstPerson, secondPerson }.Order(),
                await app.PeopleReadByAsync(row.Id));
        }
        var search = (await AllPagesAsync<AuditEvent>(client, $"/fhir/AuditEvent?date=ge{since}&outcome=0"))
            .Single(a => a.Subtype.Single().Code == "SearchServiceRequests");
        var query = search.Entity.Single(e => e.What is null);
        Assert.Equal(("24", "A page of ServiceRequest results"), (query.Role.Code, query.Description));
        // In the order of the reader's ids for them, not the store's order of the persons, which would tell which the store knew first.
        Assert.Equal(patients.Select(p => p.Patient).Order(StringComparer.Ordinal),
            search.Entity.Where(e => e.What is not null).Select(e => e.What.Reference));
        Assert.All(search.Entity.Where(e => e.What is not null), e => Assert.Equal("1", e.Role.Code));
        foreach (var (_, patient) in patients)
        {
            Assert.Contains(search.Id, (await AllPagesAsync<AuditEvent>(client, $"/fhir/AuditEvent?entity={patient}")).Select(a => a.Id));
        }
        Assert.True(search.IsExactly(await ReadAsync<AuditEvent>(await client.GetAsync($"/fhir/AuditEvent/{search.Id}"))));
        // A page read names no one referral: entity=ServiceRequest/ finds only reads of that one.
        Assert.DoesNotContain(search.Id, (await AllPagesAsync<AuditEvent>(client, $"/fhir/AuditEvent?entity=ServiceRequest/{firstReferral}")).Select(a => a.Id));
    }

    [Fact]
    public async Task AuditEvent_ARefusedCallIsOutcome4_AndEachSearchOfTheTrailAddsOneRowNotOnePerResult()
    {
        var (referralId, _) = await SubmitAsync("referrer");
        // Every earlier row of this store is at least ten seconds older than anything this test does.
        app.Clock.Advance(TimeSpan.FromSeconds(10));
        var since = Instant(app.Clock.GetUtcNow().AddSeconds(-1));
        using var narrow = await app.PartnerAsync("system/Task.rs");
        await ReadAsync<OperationOutcome>(await narrow.GetAsync($"/fhir/ServiceRequest/{referralId}"), HttpStatusCode.Forbidden);
        using var client = await app.PartnerAsync();

        var refused = await ReadAsync<Bundle>(await client.GetAsync($"/fhir/AuditEvent?outcome=4&date=ge{since}"));

        var denied = (AuditEvent)refused.Entry.Single().Resource;
        Assert.Equal(AuditEvent.AuditEventOutcome.N4, denied.Outcome);
        Assert.Equal(AuditEvent.AuditEventAction.R, denied.Action);
        Assert.Equal("ReadServiceRequest", denied.Subtype.Single().Code);
        Assert.Empty(denied.Entity);
        // The search just made succeeded: it is the one success since.
        var succeeded = await ReadAsync<Bundle>(await client.GetAsync($"/fhir/AuditEvent?outcome=0&date=ge{since}"));
        Assert.Equal("SearchAuditEvents", ((AuditEvent)succeeded.Entry.Single().Resource).Subtype.Single().Code);

        // Each search just made is one row of its own, with no entity, however many rows it returned; the next search, one more.
        var until = Instant(app.Clock.GetUtcNow().AddSeconds(1));
        var trail = await ReadAsync<Bundle>(await client.GetAsync($"/fhir/AuditEvent?date=ge{since}&date=lt{until}"));
        Assert.Equal(["ReadServiceRequest", "SearchAuditEvents", "SearchAuditEvents"], trail.Entry.Select(e => ((AuditEvent)e.Resource).Subtype.Single().Code));
        Assert.All(trail.Entry.Skip(1), e => Assert.Empty(((AuditEvent)e.Resource).Entity));
        Assert.Equal(4, (await ReadAsync<Bundle>(await client.GetAsync($"/fhir/AuditEvent?date=ge{since}"))).Total);
        Assert.Equal(0, (await ReadAsync<Bundle>(await client.GetAsync($"/fhir/AuditEvent?date=lt{since}&entity=ServiceRequest/{referralId}"))).Total);
    }

    [Fact]
    public async Task AuditEvent_IsNotServedToStaff()
    {
        var query = new SearchAuditEvents.Query([], null, [], 20, 0);

        foreach (var user in new[] { "admin", "manager", "coordinator" })
        {
            await Assert.ThrowsAsync<AccessDenied>(async () => await app.SendAsync(query, await app.StaffAsync(user)));
        }
    }

    // What every one of these refuses alike

    [Theory]
    [InlineData("/fhir/Organization/1")]
    [InlineData("/fhir/Organization")]
    [InlineData("/fhir/Practitioner/1")]
    [InlineData("/fhir/Practitioner")]
    [InlineData("/fhir/PractitionerRole/1")]
    [InlineData("/fhir/PractitionerRole")]
    [InlineData("/fhir/HealthcareService/1")]
    [InlineData("/fhir/HealthcareService")]
    [InlineData("/fhir/AuditEvent/1")]
    [InlineData("/fhir/AuditEvent")]
    public async Task WithoutTheScope_Is403WithAnOperationOutcome(string url)
    {
        using var client = await app.PartnerAsync("system/Task.rs system/Location.rs");

        var outcome = await ReadAsync<OperationOutcome>(await client.GetAsync(url), HttpStatusCode.Forbidden);

        Assert.Equal(OperationOutcome.IssueType.Forbidden, outcome.Issue.Single().Code);
    }

    [Fact]
    public async Task ReadScopeAlone_ReadsButDoesNotSearch()
    {
        var id = await OrganisationIdAsync("RWM");
        using var client = await app.PartnerAsync("system/Organization.r system/AuditEvent.r");

        await ReadAsync<Organization>(await client.GetAsync($"/fhir/Organization/{id}"));
        await ReadAsync<OperationOutcome>(await client.GetAsync("/fhir/Organization"), HttpStatusCode.Forbidden);
        await ReadAsync<OperationOutcome>(await client.GetAsync("/fhir/AuditEvent"), HttpStatusCode.Forbidden);
    }

    [Theory]
    [InlineData("/fhir/Organization?ods=RWM")]
    [InlineData("/fhir/Organization?type=hospital")]
    [InlineData("/fhir/Organization?name=")]
    [InlineData("/fhir/Organization?name:contains=moor")]
    [InlineData("/fhir/Organization?name=a&name=b")]
    [InlineData("/fhir/Practitioner?email=priya")]
    [InlineData("/fhir/Practitioner?active=yes")]
    [InlineData("/fhir/PractitionerRole?role=nurse")]
    [InlineData("/fhir/PractitionerRole?practitioner=Patient/1")]
    [InlineData("/fhir/HealthcareService?type=bed")]
    [InlineData("/fhir/HealthcareService?active=1")]
    [InlineData("/fhir/HealthcareService?available=true")]
    [InlineData("/fhir/AuditEvent?entity=12")]
    [InlineData("/fhir/AuditEvent?entity=Location/bed-1")]
    [InlineData("/fhir/AuditEvent?outcome=12")]
    [InlineData("/fhir/AuditEvent?date=2025-01-01")]
    [InlineData("/fhir/AuditEvent?agent=demo-acute-trust")]
    public async Task ABadSearchParameter_Is400WithAnOperationOutcome(string url)
    {
        using var client = await app.PartnerAsync();

        var outcome = await ReadAsync<OperationOutcome>(await client.GetAsync(url), HttpStatusCode.BadRequest);

        Assert.Equal(OperationOutcome.IssueType.Invalid, outcome.Issue.Single().Code);
    }
}

public sealed class FhirDirectoryOnSqliteTests(AppFactory app) : FhirDirectoryTests(app), IClassFixture<AppFactory>;

public sealed class FhirDirectoryOnPostgresTests(PostgresAppFactory app) : FhirDirectoryTests(app), IClassFixture<PostgresAppFactory>;
