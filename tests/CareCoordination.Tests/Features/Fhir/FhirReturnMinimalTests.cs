// Firely's model marks every element nullable; here a missing element fails the test just as an assert would.
#pragma warning disable CS8600, CS8602, CS8604

using System.Net;
using System.Text.Json.Nodes;
using CareCoordination.Features.Fhir;
using CareCoordination.Tests.Support;
using Dapper;
using Hl7.Fhir.Model;
using Task = System.Threading.Tasks.Task;

namespace CareCoordination.Tests.Features.Fhir;

/// <summary>
/// Prefer: return=minimal (FHIR's http page, RFC 7240): a partner that only sends referrals is told what was made and where,
/// without the resources read back and written out for it. Without it, or with a preference this server does not know, the
/// answer carries the resources as before.
/// </summary>
public abstract class FhirReturnMinimalTests(AppFactory app)
{
    private static HttpRequestMessage Post(string path, JsonObject body, string? prefer)
    {
        var post = new HttpRequestMessage(HttpMethod.Post, path) { Content = FhirPayloads.Body(body.ToJsonString()) };
        if (prefer is not null)
        {
            post.Headers.TryAddWithoutValidation("Prefer", prefer);
        }
        return post;
    }

    /// <summary>The status expected, or the answer's body as the failure's message.</summary>
    private static async Task ExpectAsync(HttpStatusCode expected, HttpResponseMessage response) =>
        Assert.True(response.StatusCode == expected, $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");

    /// <summary>Audited reads of the person with this NHS number: what a read back of a written Patient leaves.</summary>
    private async Task<long> ReadsAuditedAsync(string nhs)
    {
        await using var connection = await app.OpenAsync();
        return await connection.ExecuteScalarAsync<long>(
            "SELECT COUNT(*) FROM audit_event WHERE action = 'ReadPatient' AND person_id = (SELECT id FROM person WHERE nhs_number = @nhs)", new { nhs });
    }

    /// <summary>The store's number for the person with this NHS number.</summary>
    private async Task<long> PersonIdAsync(string nhs)
    {
        await using var connection = await app.OpenAsync();
        return await connection.ExecuteScalarAsync<long>("SELECT id FROM person WHERE nhs_number = @nhs", new { nhs });
    }

    /// <summary>Saltmouth (another trust) registers the person: known to the store before this test's partner says anything. Their id.</summary>
    private async Task<string> RegisteredByAnotherTrustAsync(string nhs)
    {
        var clientId = await app.NewPartnerClientAsync("RSM", "system/Patient.crs");
        using var other = await app.PartnerAsync(null, clientId, FhirPartner.OtherSecret);
        var registered = await other.SendAsync(Post("/fhir/Patient", FhirPayloads.Person(nhs), "return=minimal"));
        await ExpectAsync(HttpStatusCode.Created, registered);
        return registered.Headers.Location!.ToString().Split('/')[^3];
    }

    private async Task<string> NewNhsAsync() => (await app.NewNhsNumberAsync()).Replace(" ", "", StringComparison.Ordinal);

    [Theory]
    [InlineData("return=minimal")]
    [InlineData("RETURN=Minimal")]
    [InlineData("respond-async, return=\"minimal\"")]
    [InlineData("return=minimal; charset=utf-8")]
    public async Task ATransaction_WithReturnMinimal_IsAnsweredWithEachEntrysStatusAndPlace_AndNoResource(string prefer)
    {
        using var client = await app.PartnerAsync();
        var nhs = await NewNhsAsync();

        var reply = await FhirPartner.ParseAsync<Bundle>(await client.SendAsync(Post("/fhir", FhirPayloads.Example("referral-transaction.json", nhs), prefer)));

        Assert.Equal(Bundle.BundleType.TransactionResponse, reply.Type);
        Assert.Equal(["201 Created", "201 Created"], reply.Entry.Select(e => e.Response.Status));
        Assert.All(reply.Entry, entry => Assert.Null(entry.Resource));
        // A new person and a new referral, each at version 1: FHIR's Location names the version.
        Assert.Matches("^Patient/[0-9a-f]{32}/_history/1$", reply.Entry[0].Response.Location);
        Assert.Matches("^ServiceRequest/[0-9]+/_history/1$", reply.Entry[1].Response.Location);
        Assert.All(reply.Entry, entry => Assert.Equal("W/\"1\"", entry.Response.Etag));
        Assert.All(reply.Entry, entry => Assert.EndsWith("/fhir/" + entry.Response.Location.Split("/_history/")[0], entry.FullUrl, StringComparison.Ordinal));
        // What it names was made: the referral, at that version, for the person sent.
        var referral = await FhirPartner.ParseAsync<ServiceRequest>(await client.GetAsync("/fhir/" + reply.Entry[1].Response.Location));
        Assert.Equal("1", referral.Meta.VersionId);
        Assert.Equal(reply.Entry[0].Response.Location.Split("/_history/")[0], referral.Subject.Reference);
        var person = await FhirPartner.ParseAsync<Patient>(await client.GetAsync("/fhir/" + reply.Entry[0].Response.Location));
        Assert.Equal(nhs, person.Identifier.Single(i => i.System == FhirMapping.NhsNumberSystem).Value);
        Assert.Equal("1", person.Meta.VersionId);
    }

    [Fact]
    public async Task ATransaction_WithReturnMinimal_NamesThePersonsVersionItMade_WhenTheyWereKnownBefore()
    {
        var nhs = await NewNhsAsync();
        // Another trust registers the person first: the store's record of them is at version 1.
        var theirId = await RegisteredByAnotherTrustAsync(nhs);
        using var client = await app.PartnerAsync();
        var readsBefore = await ReadsAuditedAsync(nhs);

        var reply = await FhirPartner.ParseAsync<Bundle>(await client.SendAsync(Post("/fhir", FhirPayloads.Example("referral-transaction.json", nhs), "return=minimal")));

        // The store's record is now at its version 2, but this partner has said nothing of the person before: to it this is
        // version 1, as for anyone new. A 2 would tell it that someone else knows them.
        Assert.Matches("^Patient/[0-9a-f]{32}/_history/1$", reply.Entry[0].Response.Location);
        Assert.Equal("W/\"1\"", reply.Entry[0].Response.Etag);
        var patient = "/fhir/" + reply.Entry[0].Response.Location.Split("/_history/")[0];
        // The person the other trust registered, by this partner's own id for them (not the other trust's).
        var personId = await PersonIdAsync(nhs);
        Assert.Equal((await app.PatientIdAsync("RSM", personId), $"/fhir/Patient/{await app.PatientIdAsync("RWM", personId)}"), (theirId, patient));
        Assert.NotEqual($"/fhir/Patient/{theirId}", patient);
        // Read in the transaction for its version, where the submission's audit row names the person: no read of its own.
        Assert.Equal(readsBefore, await ReadsAuditedAsync(nhs));
        Assert.Equal("1", (await FhirPartner.ParseAsync<Patient>(await client.GetAsync(patient))).Meta.VersionId);

        // Referred again by the same partner: its own record found (200), its version 2, again with no read of its own.
        readsBefore = await ReadsAuditedAsync(nhs);
        var again = await FhirPartner.ParseAsync<Bundle>(await client.SendAsync(Post("/fhir", FhirPayloads.Example("referral-transaction.json", nhs), "return=minimal")));
        Assert.Equal("200 OK", again.Entry[0].Response.Status);
        Assert.Equal(reply.Entry[0].Response.Location.Replace("/_history/1", "/_history/2", StringComparison.Ordinal), again.Entry[0].Response.Location);
        Assert.Equal(readsBefore, await ReadsAuditedAsync(nhs));
        Assert.Equal("2", (await FhirPartner.ParseAsync<Patient>(await client.GetAsync(patient))).Meta.VersionId);
        var history = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync(patient + "/_history"));
        Assert.Equal(["2", "1"], history.Entry.Select(e => e.Resource.Meta.VersionId));
    }

    [Fact]
    public async Task ARegistrationAMatchAndAnUpdate_WithReturnMinimal_NameTheirVersionsToo()
    {
        using var client = await app.PartnerAsync();
        var nhs = await NewNhsAsync();
        var person = FhirPayloads.Person(nhs);

        var registered = await client.SendAsync(Post("/fhir/Patient", person, "return=minimal"));
        await ExpectAsync(HttpStatusCode.Created, registered);
        Assert.Matches("/fhir/Patient/[0-9a-f]{32}/_history/1$", registered.Headers.Location.ToString());
        Assert.Equal("W/\"1\"", registered.Headers.ETag.ToString());

        // A registration on its own in a transaction: its version is read in the transaction.
        var another = person.DeepClone().AsObject();
        var anotherNhs = await NewNhsAsync();
        another["identifier"][0]["value"] = anotherNhs;
        var transaction = new JsonObject
        {
            ["resourceType"] = "Bundle",
            ["type"] = "transaction",
            ["entry"] = new JsonArray(new JsonObject { ["resource"] = another, ["request"] = new JsonObject { ["method"] = "POST", ["url"] = "Patient" } }),
        };
        var alone = await FhirPartner.ParseAsync<Bundle>(await client.SendAsync(Post("/fhir", transaction, "return=minimal")));
        Assert.Equal("201 Created", alone.Entry[0].Response.Status);
        Assert.Matches("^Patient/[0-9a-f]{32}/_history/1$", alone.Entry[0].Response.Location);
        Assert.Null(alone.Entry[0].Resource);
        // Read in its own transaction, whose row already names it: not read back after as an audited read of its own, as the
        // single create above was (the count that sees that one is the count that sees none here).
        Assert.True(await ReadsAuditedAsync(nhs) > 0);
        Assert.Equal(0, await ReadsAuditedAsync(anotherNhs));
        // Those are the persons the two answers named, by this partner's ids for them.
        Assert.EndsWith($"/fhir/Patient/{await app.PatientIdAsync("RWM", await PersonIdAsync(nhs))}/_history/1", registered.Headers.Location.ToString(), StringComparison.Ordinal);
        Assert.Equal($"Patient/{await app.PatientIdAsync("RWM", await PersonIdAsync(anotherNhs))}/_history/1", alone.Entry[0].Response.Location);

        // A conditional create that finds the referral made a moment ago: nothing written, its version named all the same.
        var referral = FhirPayloads.ContainedReferral(await NewNhsAsync());
        var identifier = referral["identifier"][0];
        HttpRequestMessage Conditional()
        {
            var post = Post("/fhir/ServiceRequest", referral, "return=minimal");
            post.Headers.TryAddWithoutValidation("If-None-Exist", $"identifier={identifier["system"]}|{identifier["value"]}");
            return post;
        }
        var made = await client.SendAsync(Conditional());
        await ExpectAsync(HttpStatusCode.Created, made);
        var found = await client.SendAsync(Conditional());
        await ExpectAsync(HttpStatusCode.OK, found);
        Assert.Equal(made.Headers.Location, found.Headers.Location);
        Assert.Equal("W/\"1\"", found.Headers.ETag.ToString());

        // A cancellation makes version 2 of the referral.
        var read = JsonNode.Parse(await (await client.GetAsync(made.Headers.Location.ToString().Split("/_history/")[0])).Content.ReadAsStringAsync()).AsObject();
        read["status"] = "revoked";
        read["note"].AsArray().Add(new JsonObject { ["text"] = "The person has chosen to stay with family instead." });
        using var put = new HttpRequestMessage(HttpMethod.Put, made.Headers.Location.ToString().Split("/_history/")[0]) { Content = FhirPayloads.Body(read.ToJsonString()) };
        put.Headers.TryAddWithoutValidation("If-Match", "W/\"1\"");
        put.Headers.TryAddWithoutValidation("Prefer", "return=minimal");
        var cancelled = await client.SendAsync(put);
        await ExpectAsync(HttpStatusCode.OK, cancelled);
        Assert.Empty(await cancelled.Content.ReadAsByteArrayAsync());
        Assert.Matches("/fhir/ServiceRequest/[0-9]+/_history/2$", cancelled.Headers.Location.ToString());
        Assert.Equal("W/\"2\"", cancelled.Headers.ETag.ToString());
    }

    [Theory]
    [InlineData(null)]
    [InlineData("return=representation")]
    [InlineData("return=everything")]
    [InlineData("return=everything, return=minimal")]
    public async Task ATransaction_WithoutReturnMinimal_IsAnsweredWithTheResourcesMade(string? prefer)
    {
        using var client = await app.PartnerAsync();

        var reply = await FhirPartner.ParseAsync<Bundle>(await client.SendAsync(Post("/fhir", FhirPayloads.Example("referral-transaction.json", await NewNhsAsync()), prefer)));

        Assert.Equal(["Patient", "ServiceRequest"], reply.Entry.Select(e => e.Resource.TypeName));
        Assert.All(reply.Entry, entry => Assert.Matches("/_history/1$", entry.Response.Location));
    }

    [Fact]
    public async Task ATransaction_WithReturnMinimal_StillTellsTheReferralsEntryWhatIsMissing()
    {
        using var client = await app.PartnerAsync();
        var transaction = FhirPayloads.ProfileExamplesTransaction(await NewNhsAsync());
        // The pathway asked for, taken away: the referral is accepted, marked information needed, and the sender told so.
        transaction["entry"][1]["resource"].AsObject().Remove("code");

        var reply = await FhirPartner.ParseAsync<Bundle>(await client.SendAsync(Post("/fhir", transaction, "return=minimal")));

        Assert.Null(reply.Entry[1].Resource);
        var outcome = (OperationOutcome)reply.Entry[1].Response.Outcome;
        var warning = Assert.Single(outcome.Issue, i => i.Severity == OperationOutcome.IssueSeverity.Warning);
        Assert.Equal("Pathway", warning.Details.Text);
        Assert.Null(reply.Entry[0].Response.Outcome);
    }

    [Fact]
    public async Task ABatch_WithReturnMinimal_AnswersEachEntry_ARefusedOneWithItsOutcome()
    {
        using var client = await app.PartnerAsync();
        var transaction = FhirPayloads.Example("referral-transaction.json", await NewNhsAsync());
        var batch = new JsonObject
        {
            ["resourceType"] = "Bundle",
            ["type"] = "batch",
            // A referral with its person contained, and one naming a person this server has never heard of.
            ["entry"] = new JsonArray(
                new JsonObject { ["resource"] = FhirPayloads.ContainedReferral(await NewNhsAsync()), ["request"] = new JsonObject { ["method"] = "POST", ["url"] = "ServiceRequest" } },
                new JsonObject { ["resource"] = transaction["entry"][1]["resource"].DeepClone(), ["request"] = new JsonObject { ["method"] = "POST", ["url"] = "ServiceRequest" } }),
        };
        batch["entry"][1]["resource"]["subject"] = new JsonObject { ["reference"] = "Patient/999999999" };

        var reply = await FhirPartner.ParseAsync<Bundle>(await client.SendAsync(Post("/fhir", batch, "return=minimal")));

        Assert.Equal(Bundle.BundleType.BatchResponse, reply.Type);
        Assert.Equal("201 Created", reply.Entry[0].Response.Status);
        Assert.Matches("^ServiceRequest/[0-9]+/_history/1$", reply.Entry[0].Response.Location);
        Assert.All(reply.Entry, entry => Assert.Null(entry.Resource));
        Assert.StartsWith("4", reply.Entry[1].Response.Status, StringComparison.Ordinal);
        Assert.IsType<OperationOutcome>(reply.Entry[1].Response.Outcome);
    }

    [Fact]
    public async Task AWriteOnlyToken_IsToldWhereWithoutAVersion_AndNoReadIsTriedForIt()
    {
        var clientId = await app.NewPartnerClientAsync("RSM", "system/Patient.c");
        using var client = await app.PartnerAsync(null, clientId, FhirPartner.OtherSecret);
        var minimal = await client.SendAsync(Post("/fhir/Patient", FhirPayloads.Person(await NewNhsAsync()), "return=minimal"));
        await ExpectAsync(HttpStatusCode.Created, minimal);
        Assert.Matches("/fhir/Patient/[0-9a-f]{32}$", minimal.Headers.Location.ToString());
        Assert.Null(minimal.Headers.ETag);
        var full = await client.SendAsync(Post("/fhir/Patient", FhirPayloads.Person(await NewNhsAsync()), null));
        var outcome = await FhirPartner.ParseAsync<OperationOutcome>(full, HttpStatusCode.Created);
        Assert.Contains("may not read it back", outcome.Issue.Single().Diagnostics, StringComparison.Ordinal);

        // It asked for no read, and none was refused it: two registrations, and nothing else, in its audit trail.
        await using var connection = await app.OpenAsync();
        Assert.Equal(["RegisterPerson:success", "RegisterPerson:success"], await connection.QueryAsync<string>(
            "SELECT action || ':' || outcome FROM audit_event WHERE actor_id = @clientId ORDER BY id", new { clientId }));
    }

    [Fact]
    public async Task ATokenThatMayNotReadThePerson_IsToldWhereThePatientIs_WithNoVersion_KnownBeforeOrNot()
    {
        var known = await NewNhsAsync();
        await RegisteredByAnotherTrustAsync(known);
        // Westmoor's own organisation, with a token that may refer and register but not read a person.
        var clientId = await app.NewPartnerClientAsync("RWM", "system/Patient.cs system/ServiceRequest.crs");
        using var client = await app.PartnerAsync(null, clientId, FhirPartner.OtherSecret);

        foreach (var nhs in new[] { await NewNhsAsync(), known })
        {
            var reply = await FhirPartner.ParseAsync<Bundle>(await client.SendAsync(Post("/fhir", FhirPayloads.Example("referral-transaction.json", nhs), "return=minimal")));
            // New to the store or known to another trust: the same answer, where and no version, so it tells neither.
            Assert.Equal("201 Created", reply.Entry[0].Response.Status);
            Assert.Matches("^Patient/[0-9a-f]{32}$", reply.Entry[0].Response.Location);
            Assert.Null(reply.Entry[0].Response.Etag);
            Assert.Matches("^ServiceRequest/[0-9]+/_history/1$", reply.Entry[1].Response.Location);
        }
    }

    [Fact]
    public async Task ACreate_WithReturnMinimal_IsA201WithItsLocation_AndNoBody()
    {
        using var client = await app.PartnerAsync();

        var response = await client.SendAsync(Post("/fhir/ServiceRequest", FhirPayloads.ContainedReferral(await NewNhsAsync()), "return=minimal"));

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());
        Assert.Equal("W/\"1\"", response.Headers.ETag.ToString());
        Assert.Equal(["return=minimal"], response.Headers.GetValues("Preference-Applied"));
        Assert.Matches("/fhir/ServiceRequest/[0-9]+/_history/1$", response.Headers.Location.ToString());
        var made = await FhirPartner.ParseAsync<ServiceRequest>(await client.GetAsync(response.Headers.Location));
        Assert.Equal(response.Headers.Location.ToString().Split('/')[^3], made.Id);
        Assert.Equal("1", made.Meta.VersionId);

        // Without it, the created resource is the body, with its version.
        var plain = await client.SendAsync(Post("/fhir/ServiceRequest", FhirPayloads.ContainedReferral(await NewNhsAsync()), null));
        Assert.IsType<ServiceRequest>(await FhirPartner.ParseAsync<ServiceRequest>(plain, HttpStatusCode.Created));
        Assert.NotNull(plain.Headers.ETag);
    }
}

public sealed class FhirReturnMinimalOnSqliteTests(AppFactory app) : FhirReturnMinimalTests(app), IClassFixture<AppFactory>;

public sealed class FhirReturnMinimalOnPostgresTests(PostgresAppFactory app) : FhirReturnMinimalTests(app), IClassFixture<PostgresAppFactory>;
