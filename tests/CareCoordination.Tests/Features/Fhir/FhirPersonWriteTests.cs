// Firely's model marks every element nullable; here a missing element fails the test just as an assert would.
#pragma warning disable CS8600, CS8602, CS8604

using System.Net;
using System.Text.Json.Nodes;
using CareCoordination.Features.Referrals;
using CareCoordination.Tests.Support;
using Dapper;
using Hl7.Fhir.Model;
using Task = System.Threading.Tasks.Task;

namespace CareCoordination.Tests.Features.Fhir;

/// <summary>
/// POST /fhir/Patient: a partner registers a person before it refers them, and its referrals name them by reference or
/// by NHS number alone. A registration is the registering organisation's own record of the person: what it reads back,
/// never another organisation's words, and a conditional create never tells it that another organisation knows them.
/// </summary>
public abstract class FhirPersonWriteTests(AppFactory app)
{
    private const string NhsSystem = "https://fhir.nhs.uk/Id/nhs-number";

    /// <summary>The documented example's Patient, on its own, living at <paramref name="address"/>.</summary>
    private static JsonObject Person(string nhs, string address = "2 Harbour Terrace")
    {
        var patient = FhirPayloads.Person(nhs);
        patient["address"]![0]!["line"] = new JsonArray(address);
        return patient;
    }

    /// <summary>The documented example's referral, with no Patient of its own: its subject is <paramref name="subject"/>.</summary>
    private static JsonObject ReferralFor(string nhs, JsonObject subject)
    {
        var referral = FhirPayloads.ContainedReferral(nhs);
        referral.Remove("contained");
        referral["subject"] = subject;
        return referral;
    }

    private static async Task<HttpResponseMessage> PostPersonAsync(HttpClient client, JsonObject patient, string? ifNoneExist = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/fhir/Patient") { Content = FhirPayloads.Body(patient.ToJsonString()) };
        if (ifNoneExist is not null)
        {
            request.Headers.Add("If-None-Exist", ifNoneExist);
        }
        return await client.SendAsync(request);
    }

    private static string ByNhsNumber(string nhs) => $"identifier={NhsSystem}|{nhs}";

    /// <summary>A partner of the demo's other acute trust, allowed to register, refer and read.</summary>
    private async Task<HttpClient> OtherTrustAsync()
    {
        var clientId = await app.NewPartnerClientAsync("RSM", "system/Patient.crs system/ServiceRequest.crs");
        return await app.PartnerAsync(null, clientId, FhirPartner.OtherSecret);
    }

    [Fact]
    public async Task Create_RegistersThePerson_201WithLocationAndETag_AndReadsBackWhatWasSent()
    {
        using var client = await app.PartnerAsync();
        var nhs = await app.NewNhsNumberAsync();

        using var response = await PostPersonAsync(client, Person(nhs, "7 Quay Street"));

        var created = await FhirPartner.ParseAsync<Patient>(response, HttpStatusCode.Created);
        Assert.EndsWith($"/fhir/Patient/{created.Id}/_history/1", response.Headers.Location!.ToString(), StringComparison.Ordinal);
        Assert.Equal("W/\"1\"", response.Headers.ETag!.ToString());
        Assert.Equal(nhs, created.Identifier.Single(i => i.System == NhsSystem).Value);
        Assert.Equal("7 Quay Street", created.Address.Single().Line.Single());

        var read = await FhirPartner.ParseAsync<Patient>(await client.GetAsync($"/fhir/Patient/{created.Id}"));
        Assert.Equal("7 Quay Street", read.Address.Single().Line.Single());
        Assert.Equal("Penhallow", read.Name.Single().Family);
        var found = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync($"/fhir/Patient?identifier={NhsSystem}|{nhs}"));
        Assert.Equal(created.Id, found.Entry.Single().Resource.Id);
        Assert.Equal("1", (await FhirPartner.ParseAsync<Patient>(await client.GetAsync($"/fhir/Patient/{created.Id}/_history/1"))).Meta.VersionId);

        // Audited as every write is, by its command, naming the person (by the store's number for them).
        await using var connection = await app.OpenAsync();
        Assert.Equal(1, await connection.ExecuteScalarAsync<long>(
            "SELECT COUNT(*) FROM audit_event WHERE action = 'RegisterPerson' AND entity_type = 'person' AND entity_id = (SELECT id FROM person WHERE nhs_number = @nhs)",
            new { nhs }));

        // A second plain create is not a second record: the caller is told to find it.
        using var again = await PostPersonAsync(client, Person(nhs));
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        Assert.Equal(OperationOutcome.IssueType.Duplicate, (await FhirPartner.ParseAsync<OperationOutcome>(again, HttpStatusCode.Conflict)).Issue[0].Code);
    }

    [Fact]
    public async Task Create_WithoutTheCreateScope_Is403_AndStoresNothing()
    {
        using var client = await app.PartnerAsync("system/Patient.rs system/ServiceRequest.crs");
        var before = await app.StoredAsync();

        await FhirPartner.ParseAsync<OperationOutcome>(await PostPersonAsync(client, Person(await app.NewNhsNumberAsync())), HttpStatusCode.Forbidden);

        Assert.Equal(before, await app.StoredAsync());
    }

    [Fact]
    public async Task ARegistration_IsItsOrganisationsWord_ItsReferrersFindIt_TheCoordinationCentreDoesNotUntilAReferral()
    {
        using var client = await app.PartnerAsync();
        var nhs = await app.NewNhsNumberAsync();
        await FhirPartner.ParseAsync<Patient>(await PostPersonAsync(client, Person(nhs, "6 Ropewalk")), HttpStatusCode.Created);

        // The partner's own organisation's referrer starts the form from it; the coordination centre has no referral to know them by.
        var ownReferrer = await app.SendAsync<FindPerson.Result?>(new FindPerson.Query(nhs), await app.StaffAsync("referrer"));
        var coordinationCentre = await app.SendAsync<FindPerson.Result?>(new FindPerson.Query(nhs), await app.StaffAsync("coordinator"));

        Assert.Equal("6 Ropewalk", ownReferrer?.Person?.AddressLine);
        Assert.Null(coordinationCentre);
    }

    [Fact]
    public async Task ConditionalCreate_AnswersTheCallersOwnRegistrationOrReferral_200_EvenWhenTheBodyBreaksARule()
    {
        using var client = await app.PartnerAsync();
        var registered = await app.NewNhsNumberAsync();
        var first = await FhirPartner.ParseAsync<Patient>(await PostPersonAsync(client, Person(registered)), HttpStatusCode.Created);
        // Found before the body is read against any rule: no name, and a birth date in the future.
        var broken = Person(registered);
        broken.Remove("name");
        broken["birthDate"] = "2999-01-01";
        var before = await app.StoredAsync();

        using var found = await PostPersonAsync(client, broken, ByNhsNumber(registered));

        Assert.Equal(first.Id, (await FhirPartner.ParseAsync<Patient>(found, HttpStatusCode.OK)).Id);
        Assert.Equal("W/\"1\"", found.Headers.ETag!.ToString());
        Assert.Equal(before, await app.StoredAsync());

        // A person the caller has referred (and never registered) is found the same way.
        var referred = await app.NewNhsNumberAsync();
        var referral = await FhirPartner.ParseAsync<ServiceRequest>(
            await client.PostAsync("/fhir/ServiceRequest", FhirPayloads.Body(FhirPayloads.ContainedReferral(referred).ToJsonString())), HttpStatusCode.Created);
        var person = await FhirPartner.ParseAsync<Patient>(await PostPersonAsync(client, Person(referred), ByNhsNumber(referred)), HttpStatusCode.OK);
        Assert.Equal(referral.Subject.Reference, $"Patient/{person.Id}");
    }

    [Fact]
    public async Task ConcurrentConditionalCreates_RegisterThePersonOnce()
    {
        using var client = await app.PartnerAsync();
        var nhs = await app.NewNhsNumberAsync();

        var answers = await Task.WhenAll(Enumerable.Range(0, 6).Select(async _ =>
        {
            using var response = await PostPersonAsync(client, Person(nhs), ByNhsNumber(nhs));
            return (response.StatusCode, (await FhirPartner.ParseAsync<Patient>(response, response.StatusCode)).Id);
        }));

        Assert.Single(answers, a => a.StatusCode == HttpStatusCode.Created);
        Assert.Equal(5, answers.Count(a => a.StatusCode == HttpStatusCode.OK));
        Assert.Single(answers.Select(a => a.Id).Distinct());
        await using var connection = await app.OpenAsync();
        Assert.Equal(1, await connection.ExecuteScalarAsync<long>(
            "SELECT COUNT(*) FROM person_registration g JOIN person p ON p.id = g.person_id WHERE p.nhs_number = @nhs", new { nhs }));
    }

    [Fact]
    public async Task ConditionalCreate_OfAPersonOnlyAnotherTrustKnows_Is201_AndEachTrustReadsOnlyItsOwnWords()
    {
        using var ours = await app.PartnerAsync();
        using var theirs = await OtherTrustAsync();
        var nhs = await app.NewNhsNumberAsync();
        var mine = await FhirPartner.ParseAsync<Patient>(await PostPersonAsync(ours, Person(nhs, "1 Westmoor Road")), HttpStatusCode.Created);

        using var response = await PostPersonAsync(theirs, Person(nhs, "2 Saltmouth Road"), ByNhsNumber(nhs));

        // Exactly as if nobody knew them: created, version 1, and only what this trust said.
        var body = await response.Content.ReadAsStringAsync();
        var registered = await FhirPartner.ParseAsync<Patient>(response, HttpStatusCode.Created);
        Assert.Equal("W/\"1\"", response.Headers.ETag!.ToString());
        Assert.EndsWith("/_history/1", response.Headers.Location!.ToString(), StringComparison.Ordinal);
        Assert.Equal("2 Saltmouth Road", registered.Address.Single().Line.Single());
        Assert.DoesNotContain("Westmoor Road", body, StringComparison.Ordinal);
        // Each trust reads the person by its own id for them: the one its own registration answered.
        foreach (var (theirPath, ourPath) in new[]
        {
            ($"/fhir/Patient/{registered.Id}", $"/fhir/Patient/{mine.Id}"),
            ($"/fhir/Patient/{registered.Id}/_history", $"/fhir/Patient/{mine.Id}/_history"),
            ($"/fhir/Patient?identifier={NhsSystem}|{nhs}", $"/fhir/Patient?identifier={NhsSystem}|{nhs}"),
        })
        {
            var theirView = await (await theirs.GetAsync(theirPath)).Content.ReadAsStringAsync();
            Assert.Contains("2 Saltmouth Road", theirView, StringComparison.Ordinal);
            Assert.DoesNotContain("Westmoor Road", theirView, StringComparison.Ordinal);
            var ourView = await (await ours.GetAsync(ourPath)).Content.ReadAsStringAsync();
            Assert.Contains("1 Westmoor Road", ourView, StringComparison.Ordinal);
            Assert.DoesNotContain("Saltmouth Road", ourView, StringComparison.Ordinal);
        }
        // One person in the store, whom each trust knows by an id of its own.
        await using (var connection = await app.OpenAsync())
        {
            var personId = await connection.ExecuteScalarAsync<long>("SELECT id FROM person WHERE nhs_number = @nhs", new { nhs });
            Assert.Equal((await app.PatientIdAsync("RWM", personId), await app.PatientIdAsync("RSM", personId)), (mine.Id, registered.Id));
        }
        Assert.NotEqual(mine.Id, registered.Id);

        // Now it is theirs too: asked again, found.
        using var again = await PostPersonAsync(theirs, Person(nhs, "3 Elsewhere Lane"), ByNhsNumber(nhs));
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
    }

    [Fact]
    public async Task Create_WithAnNhsNumberWhoseCheckDigitIsWrong_Is422_AtTheIdentifier_AndStoresNothing()
    {
        using var client = await app.PartnerAsync();
        var before = await app.StoredAsync();

        var refused = await FhirPartner.ParseAsync<OperationOutcome>(await PostPersonAsync(client, Person("9434765918")), (HttpStatusCode)422);

        var issue = refused.Issue.Single();
        Assert.Contains("check digit", issue.Diagnostics, StringComparison.Ordinal);
        Assert.Equal("Patient.identifier.where(system='https://fhir.nhs.uk/Id/nhs-number').value", issue.Expression.Single());
        Assert.Equal(before, await app.StoredAsync());
    }

    [Fact]
    public async Task AReferral_NamesAPersonRegisteredEarlier_ByReference_OrByNhsNumberAlone()
    {
        using var client = await app.PartnerAsync();
        var byReference = await app.NewNhsNumberAsync();
        var person = await FhirPartner.ParseAsync<Patient>(await PostPersonAsync(client, Person(byReference, "4 Chapel Row")), HttpStatusCode.Created);

        var referral = await FhirPartner.ParseAsync<ServiceRequest>(await client.PostAsync("/fhir/ServiceRequest",
            FhirPayloads.Body(ReferralFor(byReference, new JsonObject { ["reference"] = $"Patient/{person.Id}" }).ToJsonString())), HttpStatusCode.Created);

        Assert.Equal($"Patient/{person.Id}", referral.Subject.Reference);
        // The referral starts from the registration: the person as this trust described them.
        Assert.Equal("4 Chapel Row", (await FhirPartner.ParseAsync<Patient>(await client.GetAsync($"/fhir/Patient/{person.Id}"))).Address.Single().Line.Single());

        var byNumber = await app.NewNhsNumberAsync();
        var logical = new JsonObject { ["identifier"] = new JsonObject { ["system"] = NhsSystem, ["value"] = byNumber } };
        // Before it is registered, nobody this trust knows has that number.
        using (var unknown = await client.PostAsync("/fhir/ServiceRequest", FhirPayloads.Body(ReferralFor(byNumber, logical.DeepClone().AsObject()).ToJsonString())))
        {
            Assert.Equal((HttpStatusCode)422, unknown.StatusCode);
        }
        var numbered = await FhirPartner.ParseAsync<Patient>(await PostPersonAsync(client, Person(byNumber)), HttpStatusCode.Created);

        var named = await FhirPartner.ParseAsync<ServiceRequest>(
            await client.PostAsync("/fhir/ServiceRequest", FhirPayloads.Body(ReferralFor(byNumber, logical.DeepClone().AsObject()).ToJsonString())), HttpStatusCode.Created);

        Assert.Equal($"Patient/{numbered.Id}", named.Subject.Reference);
    }

    [Fact]
    public async Task AReferralNamingAKnownPersonWithoutAPatient_SaysNothingNew_TheCoordinationCentresRecordStaysAsAnotherTrustLeftIt()
    {
        using var ours = await app.PartnerAsync();
        using var theirs = await OtherTrustAsync();
        var nhs = await app.NewNhsNumberAsync();
        // We referred them first, at Westmoor Road; the other trust since, from where they have moved to.
        var first = FhirPayloads.ContainedReferral(nhs);
        first["contained"]![0]!["address"]![0]!["line"] = new JsonArray("1 Westmoor Road");
        var ourFirst = await FhirPartner.ParseAsync<ServiceRequest>(
            await ours.PostAsync("/fhir/ServiceRequest", FhirPayloads.Body(first.ToJsonString())), HttpStatusCode.Created);
        var moved = FhirPayloads.ContainedReferral(nhs);
        moved["contained"]![0]!["address"]![0]!["line"] = new JsonArray("2 Saltmouth Road");
        moved["requester"]!["identifier"]!["value"] = "RSM";
        var theirFirst = await FhirPartner.ParseAsync<ServiceRequest>(
            await theirs.PostAsync("/fhir/ServiceRequest", FhirPayloads.Body(moved.ToJsonString())), HttpStatusCode.Created);
        await using var connection = await app.OpenAsync();
        const string Record = "SELECT id AS Id, address_line AS Address, version AS Version FROM person WHERE nhs_number = @nhs";
        var before = await connection.QuerySingleAsync<(long Id, string Address, int Version)>(Record, new { nhs });
        Assert.Equal("2 Saltmouth Road", before.Address);
        const string Updates = "SELECT COUNT(*) FROM change WHERE kind = 'person.updated' AND entity_id = @Id";
        var updatesBefore = await connection.ExecuteScalarAsync<long>(Updates, new { before.Id });

        // We refer them again, naming them by NHS number alone, then by reference, and send nothing about them.
        var referrals = new List<long>();
        foreach (var subject in new[]
        {
            new JsonObject { ["identifier"] = new JsonObject { ["system"] = NhsSystem, ["value"] = nhs } },
            new JsonObject { ["reference"] = ourFirst.Subject.Reference },
        })
        {
            var referral = await FhirPartner.ParseAsync<ServiceRequest>(
                await ours.PostAsync("/fhir/ServiceRequest", FhirPayloads.Body(ReferralFor(nhs, subject).ToJsonString())), HttpStatusCode.Created);
            Assert.Equal(ourFirst.Subject.Reference, referral.Subject.Reference);
            referrals.Add(long.Parse(referral.Id, System.Globalization.CultureInfo.InvariantCulture));
        }

        // The coordination centre's record is still the other trust's newer word, not put back to our older one.
        Assert.Equal(before, await connection.QuerySingleAsync<(long Id, string Address, int Version)>(Record, new { nhs }));
        var coordinationCentre = await app.SendAsync<FindPerson.Result?>(new FindPerson.Query(nhs), await app.StaffAsync("coordinator"));
        Assert.Equal("2 Saltmouth Road", coordinationCentre?.Person?.AddressLine);
        Assert.Equal(updatesBefore, await connection.ExecuteScalarAsync<long>(Updates, new { before.Id }));
        // Each new referral said what we last said of them; each trust still reads only its own words.
        foreach (var id in referrals)
        {
            Assert.Equal("1 Westmoor Road", await connection.QuerySingleAsync<string>("SELECT address_line FROM referral_person WHERE referral_id = @id", new { id }));
        }
        // Each by its own id for the person: the subject of its own first referral.
        var ourView = await (await ours.GetAsync($"/fhir/{ourFirst.Subject.Reference}")).Content.ReadAsStringAsync();
        Assert.Contains("1 Westmoor Road", ourView, StringComparison.Ordinal);
        Assert.DoesNotContain("Saltmouth Road", ourView, StringComparison.Ordinal);
        var theirView = await (await theirs.GetAsync($"/fhir/{theirFirst.Subject.Reference}")).Content.ReadAsStringAsync();
        Assert.Contains("2 Saltmouth Road", theirView, StringComparison.Ordinal);
        Assert.DoesNotContain("Westmoor Road", theirView, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnotherTrustsRegistration_CannotBeNamedByAReferral()
    {
        using var ours = await app.PartnerAsync();
        using var theirs = await OtherTrustAsync();
        var nhs = await app.NewNhsNumberAsync();
        var person = await FhirPartner.ParseAsync<Patient>(await PostPersonAsync(ours, Person(nhs)), HttpStatusCode.Created);
        var before = await app.StoredAsync();

        foreach (var subject in new[]
        {
            new JsonObject { ["reference"] = $"Patient/{person.Id}" },
            new JsonObject { ["identifier"] = new JsonObject { ["system"] = NhsSystem, ["value"] = nhs } },
        })
        {
            var referral = ReferralFor(nhs, subject);
            referral["requester"]!["identifier"]!["value"] = "RSM";
            using var refused = await theirs.PostAsync("/fhir/ServiceRequest", FhirPayloads.Body(referral.ToJsonString()));
            Assert.Equal((HttpStatusCode)422, refused.StatusCode);
        }
        Assert.Equal(before, await app.StoredAsync());
    }

    [Fact]
    public async Task TransactionAndBatch_RegisterAPatientEntryNoReferralNames()
    {
        using var client = await app.PartnerAsync();
        var nhs = await app.NewNhsNumberAsync();
        JsonObject Bundle(string type, string? ifNoneExist) => new()
        {
            ["resourceType"] = "Bundle",
            ["type"] = type,
            ["entry"] = new JsonArray(new JsonObject
            {
                ["fullUrl"] = "urn:uuid:3f2b8c1a-9d4e-4f5a-8b6c-7d8e9f0a1b2c",
                ["resource"] = Person(nhs, "5 Mill Lane"),
                ["request"] = ifNoneExist is null
                    ? new JsonObject { ["method"] = "POST", ["url"] = "Patient" }
                    : new JsonObject { ["method"] = "POST", ["url"] = "Patient", ["ifNoneExist"] = ifNoneExist },
            }),
        };

        var transaction = await FhirPartner.ParseAsync<Bundle>(await client.PostAsync("/fhir", FhirPayloads.Body(Bundle("transaction", null).ToJsonString())));
        var batch = await FhirPartner.ParseAsync<Bundle>(await client.PostAsync("/fhir", FhirPayloads.Body(Bundle("batch", ByNhsNumber(nhs)).ToJsonString())));

        var created = transaction.Entry.Single();
        Assert.Equal("201 Created", created.Response.Status);
        Assert.Equal("5 Mill Lane", ((Patient)created.Resource).Address.Single().Line.Single());
        Assert.Equal($"Patient/{created.Resource.Id}/_history/1", created.Response.Location);
        Assert.Equal("200 OK", batch.Entry.Single().Response.Status);
        Assert.Equal(created.Resource.Id, batch.Entry.Single().Resource.Id);
    }
}

public sealed class FhirPersonWriteOnSqliteTests(AppFactory app) : FhirPersonWriteTests(app), IClassFixture<AppFactory>;

public sealed class FhirPersonWriteOnPostgresTests(PostgresAppFactory app) : FhirPersonWriteTests(app), IClassFixture<PostgresAppFactory>;
