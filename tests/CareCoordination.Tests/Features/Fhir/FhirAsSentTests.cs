// Firely's model marks every element nullable; here a missing element fails the test just as an assert would.
#pragma warning disable CS8600, CS8602, CS8604

using System.Net;
using System.Security.Claims;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CareCoordination.Auth;
using CareCoordination.Features.Coordination;
using CareCoordination.Pipeline;
using CareCoordination.Tests.Support;
using Dapper;
using Hl7.Fhir.Model;
using Claim = System.Security.Claims.Claim;
using Task = System.Threading.Tasks.Task;

namespace CareCoordination.Tests.Features.Fhir;

/// <summary>
/// Nothing a partner sends is lost (issue 12, point 3): every name and given name, every identifier, extensions of other
/// profiles accepted; the message kept byte for byte with the referral it made, in the same transaction; and read "as sent"
/// only by the coordination centre, audited.
/// </summary>
public abstract class FhirAsSentTests(AppFactory app)
{
    private const string HospitalNumbers = "https://fhir.westmoor-general.nhs.uk/Id/hospital-number";

    /// <summary>A person with an official name of two given names, a maiden name, and a hospital number beside the NHS number.</summary>
    private static JsonObject WithNamesAndNumbers(JsonObject referral, string hospitalNumber)
    {
        var patient = referral["contained"]![0]!.AsObject();
        patient["name"] = JsonNode.Parse("""
            [
              { "use": "official", "family": "Penhallow", "given": ["Morwenna", "Jenifer"], "prefix": ["Mrs"] },
              { "use": "maiden", "family": "Trevithick", "given": ["Morwenna", "Jenifer"] }
            ]
            """);
        patient["identifier"]!.AsArray().Add(new JsonObject { ["system"] = HospitalNumbers, ["value"] = hospitalNumber, ["use"] = "secondary" });
        return referral;
    }

    private static ByteArrayContent Body(byte[] bytes) => FhirPayloads.Body(bytes);

    /// <summary>The body as a partner's system might lay it out: its own indentation, a byte order mark, text no ASCII holds, a final newline.</summary>
    private static byte[] AsAPartnerWritesIt(JsonNode message) =>
        [0xEF, 0xBB, 0xBF, .. Encoding.UTF8.GetBytes(message.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }).Replace("  ", "\t", StringComparison.Ordinal) + "\r\n")];

    private static void SetNote(JsonNode serviceRequest, string text) => serviceRequest["note"] = new JsonArray(new JsonObject { ["text"] = text });

    private async Task<IReadOnlyList<Kept>> KeptForAsync(long referralId)
    {
        await using var connection = await app.OpenAsync();
        return [.. await connection.QueryAsync<Kept>(
            $"""
            SELECT m.id AS Id, m.body AS Stored, m.body_encoding AS Encoding, m.bundle_id AS BundleId, m.sender AS Sender, pc.client_id AS ClientId, o.code AS OrganisationCode,
                   m.content_type AS ContentType, m.interaction AS Interaction, m.body_bytes AS BodyBytes
            FROM ({AsSent.MessagesOf}) l JOIN fhir_received m ON m.id = l.received_id
            JOIN organisation o ON o.id = m.organisation_id LEFT JOIN partner_client pc ON pc.id = m.partner_client_id
            ORDER BY m.id
            """, new { Id = referralId })];
    }

    private sealed record Kept
    {
        public long Id { get; init; }
        public byte[] Stored { get; init; } = [];
        public string Encoding { get; init; } = "";

        /// <summary>
        /// The stored body, unpacked by a standard Zstandard decoder with the dictionary file in the repository, rather than
        /// the product's own code (it skips the skippable frame that names the dictionary, as the format says).
        /// </summary>
        public byte[] Body
        {
            get
            {
                Assert.Equal("zstd", Encoding);
                using var zstd = new ZstdSharp.Decompressor();
                zstd.LoadDictionary(File.ReadAllBytes(Path.Combine(FhirPayloads.RepositoryRoot(), "src", "CareCoordination.Web", "Store", "Dictionaries", "fhir-1.dict")));
                return zstd.Unwrap(Stored).ToArray();
            }
        }

        public string? BundleId { get; init; }
        public string Sender { get; init; } = "";
        public string? ClientId { get; init; }
        public string OrganisationCode { get; init; } = "";
        public string ContentType { get; init; } = "";
        public string Interaction { get; init; } = "";
        public int BodyBytes { get; init; }
    }

    private async Task<long> ReceivedCountAsync()
    {
        await using var connection = await app.OpenAsync();
        return await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM fhir_received") * 1000
            + await connection.ExecuteScalarAsync<long>("SELECT (SELECT COUNT(*) FROM fhir_received_referral) + (SELECT COUNT(*) FROM referral WHERE received_id IS NOT NULL)");
    }

    private static long IdOf(string? url) => long.Parse(url!.Split('/')[1], System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public async Task Create_PatientWithTwoNamesAndTwoGivenNames_KeepsEveryNameAndIdentifier_OnTheRecordAndReadBack()
    {
        using var client = await app.PartnerAsync();
        var nhs = await app.NewNhsNumberAsync();
        var hospitalNumber = "H" + Guid.NewGuid().ToString("N")[..8];
        var referral = WithNamesAndNumbers(FhirPayloads.ContainedReferral(nhs), hospitalNumber);

        var created = await FhirPartner.ParseAsync<ServiceRequest>(
            await client.PostAsync("/fhir/ServiceRequest", FhirPayloads.Body(referral.ToJsonString())), HttpStatusCode.Created);

        Assert.Equal("Morwenna Jenifer Penhallow", created.Subject.Display);
        var patient = await FhirPartner.ParseAsync<Patient>(await client.GetAsync($"/fhir/{created.Subject.Reference}"));
        Assert.Equal(2, patient.Name.Count);
        var official = patient.Name.Single(n => n.Use == HumanName.NameUse.Official);
        Assert.Equal(new[] { "Morwenna", "Jenifer" }, official.Given);
        Assert.Equal("Penhallow", official.Family);
        Assert.Equal(new[] { "Mrs" }, official.Prefix);
        var maiden = patient.Name.Single(n => n.Use == HumanName.NameUse.Maiden);
        Assert.Equal("Trevithick", maiden.Family);
        Assert.Equal(new[] { "Morwenna", "Jenifer" }, maiden.Given);
        Assert.Equal(nhs, patient.Identifier.Single(i => i.System == "https://fhir.nhs.uk/Id/nhs-number").Value);
        var second = patient.Identifier.Single(i => i.System == HospitalNumbers);
        Assert.Equal((hospitalNumber, Identifier.IdentifierUse.Secondary), (second.Value, second.Use));

        // The whole record and what this referral said both hold them; the name staff pages show has every given name.
        await using var connection = await app.OpenAsync();
        foreach (var table in new[] { "person p WHERE p.nhs_number = @nhs", "referral_person p WHERE p.nhs_number = @nhs" })
        {
            var (given, names, identifiers) = await connection.QuerySingleAsync<(string, string, string)>(
                $"SELECT given_name, names, other_identifiers FROM {table}", new { nhs });
            Assert.Equal("Morwenna Jenifer", given);
            Assert.Contains("Trevithick", names, StringComparison.Ordinal);
            Assert.Contains(hospitalNumber, identifiers, StringComparison.Ordinal);
        }
        var coordinator = await app.StaffAsync("coordinator");
        var story = await app.SendAsync<PersonStory.Result>(new PersonStory.Query(long.Parse(created.Id, System.Globalization.CultureInfo.InvariantCulture)), coordinator);
        Assert.Equal("Morwenna Jenifer Penhallow", story.Referral.Referral.PersonName);
        Assert.Equal(new[] { "Morwenna Jenifer Trevithick" }, story.Referral.Referral.Person.AlsoKnownAs);
    }

    [Fact]
    public async Task Create_PatientWithUkCoreExtensionsAndOtherProfilesElements_IsAccepted()
    {
        using var client = await app.PartnerAsync();
        var nhs = await app.NewNhsNumberAsync();
        var referral = FhirPayloads.ContainedReferral(nhs);
        var patient = referral["contained"]![0]!.AsObject();
        // As a UK Core Patient carries them: extensions this server has no use for, on the Patient and inside its elements.
        patient["identifier"]![0]!["extension"] = JsonNode.Parse("""
            [{ "url": "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus",
               "valueCodeableConcept": { "coding": [{ "system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland", "code": "01" }] } }]
            """);
        foreach (var extension in JsonNode.Parse("""
            [
              { "url": "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-ResidentialStatus",
                "valueCodeableConcept": { "coding": [{ "system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-ResidentialStatus", "code": "H" }] } },
              { "url": "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-BirthSex", "valueCode": "F" },
              { "url": "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-DeathNotificationStatus",
                "extension": [{ "url": "deathNotificationStatus",
                  "valueCodeableConcept": { "coding": [{ "system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-DeathNotificationStatus", "code": "U" }] } }] }
            ]
            """)!.AsArray().ToList())
        {
            patient["extension"]!.AsArray().Add(extension!.DeepClone());
        }
        patient["meta"] = JsonNode.Parse("""{ "profile": ["https://fhir.hl7.org.uk/StructureDefinition/UKCore-Patient"] }""");
        // A usual name of a given name only, and a second contact named in parts, as UK Core allows.
        patient["name"]!.AsArray().Add(JsonNode.Parse("""{ "use": "usual", "given": ["Wenna"] }"""));
        patient["contact"]!.AsArray().Add(JsonNode.Parse("""{ "name": { "family": "Penhallow", "given": ["Kerensa"] }, "relationship": [{ "text": "daughter" }] }"""));
        patient["telecom"] = JsonNode.Parse("""[{ "system": "phone", "value": "01632 960123", "use": "home" }]""");
        patient["maritalStatus"] = JsonNode.Parse("""{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "W" }] }""");

        using var response = await client.PostAsync("/fhir/ServiceRequest", FhirPayloads.Body(referral.ToJsonString()));

        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        var created = await FhirPartner.ParseAsync<ServiceRequest>(response, HttpStatusCode.Created);
        var read = await FhirPartner.ParseAsync<Patient>(await client.GetAsync($"/fhir/{created.Subject.Reference}"));
        Assert.Equal(new[] { "Wenna" }, read.Name.Single(n => n.Use == HumanName.NameUse.Usual).Given);
        Assert.Equal("Morwenna Penhallow", created.Subject.Display);
    }

    [Fact]
    public async Task ProcessMessage_KeepsTheBodyByteForByte_WithItsBundleIdAndSender_LinkedToTheReferral()
    {
        using var client = await app.PartnerAsync();
        var message = FhirPayloads.Example("referral-message.json", await app.NewNhsNumberAsync());
        var distinctive = "As sent: café on Pen-y-bryn ward — <b>not markup</b> " + Guid.NewGuid().ToString("N");
        SetNote(message["entry"]!.AsArray().Single(e => (string?)e!["resource"]!["resourceType"] == "ServiceRequest")!["resource"]!, distinctive);
        var bytes = AsAPartnerWritesIt(message);

        var reply = await FhirPartner.ParseAsync<Bundle>(await client.PostAsync("/fhir/$process-message", Body(bytes)));

        var header = (MessageHeader)reply.Entry[0].Resource;
        var referralId = IdOf(header.Focus[0].Reference);
        var kept = Assert.Single(await KeptForAsync(referralId));
        Assert.Equal(bytes, kept.Body);
        Assert.Equal(bytes.Length, kept.BodyBytes);
        Assert.Equal((string?)message["id"], kept.BundleId);
        Assert.Equal((FhirPartner.DemoClient, FhirPartner.DemoClient), (kept.Sender, kept.ClientId));
        Assert.Equal("application/fhir+json", kept.ContentType);
        Assert.Equal("POST /fhir/$process-message", kept.Interaction);

        // The coordination centre reads it as sent: the original text, with who sent it, when and its Bundle id; audited.
        var asSent = await app.SendAsync<AsSent.Result>(new AsSent.Query(referralId), await app.StaffAsync("coordinator"));
        var shown = Assert.Single(asSent.Messages);
        Assert.Equal(bytes, shown.Body);
        Assert.Contains(distinctive, shown.Pretty, StringComparison.Ordinal);
        Assert.Equal((string?)message["id"], shown.BundleId);
        Assert.True(Math.Abs((app.Clock.GetUtcNow() - shown.ReceivedAt).TotalMilliseconds) < 1, $"received at {shown.ReceivedAt:O}");
        await using var connection = await app.OpenAsync();
        Assert.Equal(1, await connection.ExecuteScalarAsync<long>(
            "SELECT COUNT(*) FROM audit_event WHERE action = 'AsSent' AND outcome = 'success' AND entity_type = 'referral' AND entity_id = @referralId AND person_id IS NOT NULL",
            new { referralId }));
    }

    [Fact]
    public async Task Transaction_KeepsTheBodyOnce_LinkedToTheReferralItMade()
    {
        using var client = await app.PartnerAsync();
        var transaction = FhirPayloads.Example("referral-transaction.json", await app.NewNhsNumberAsync());
        transaction["id"] = Guid.NewGuid().ToString();
        var bytes = AsAPartnerWritesIt(transaction);

        var reply = await FhirPartner.ParseAsync<Bundle>(await client.PostAsync("/fhir", Body(bytes)));

        var referralId = IdOf(reply.Entry.Single(e => e.Resource is ServiceRequest).Response.Location);
        var kept = Assert.Single(await KeptForAsync(referralId));
        Assert.Equal(bytes, kept.Body);
        Assert.Equal(((string?)transaction["id"], "RWM"), (kept.BundleId, kept.OrganisationCode));
        Assert.Equal("POST /fhir", kept.Interaction);
        // Named on the referral it made, with no link row beside it (store growth, issue 14: migration 0039).
        Assert.Equal((kept.Id, 0L), await LinksAsync(referralId));
    }

    /// <summary>The message named on the referral as the one that made it, and how many are linked to it as changing it.</summary>
    private async Task<(long? MadeBy, long Changes)> LinksAsync(long referralId)
    {
        await using var connection = await app.OpenAsync();
        return (await connection.ExecuteScalarAsync<long?>("SELECT received_id FROM referral WHERE id = @referralId", new { referralId }),
            await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM fhir_received_referral WHERE referral_id = @referralId", new { referralId }));
    }

    [Fact]
    public async Task Transaction_IsKeptPacked_AndTheAsSentViewGivesBackEveryByte()
    {
        using var client = await app.PartnerAsync();
        var bytes = AsAPartnerWritesIt(FhirPayloads.Example("referral-transaction.json", await app.NewNhsNumberAsync()));

        var reply = await FhirPartner.ParseAsync<Bundle>(await client.PostAsync("/fhir", Body(bytes)));

        var referralId = IdOf(reply.Entry.Single(e => e.Resource is ServiceRequest).Response.Location);
        var kept = Assert.Single(await KeptForAsync(referralId));
        // Store growth (issue 14): the message costs well under half its size, and nothing of it is lost.
        Assert.True(kept.Stored.Length * 2 < bytes.Length, $"{kept.Stored.Length} bytes stored for {bytes.Length} received");
        Assert.Equal(bytes, kept.Body);
        Assert.Equal(bytes.Length, kept.BodyBytes);
        var shown = Assert.Single((await app.SendAsync<AsSent.Result>(new AsSent.Query(referralId), await app.StaffAsync("coordinator"))).Messages);
        Assert.Equal(bytes, shown.Body);
    }

    [Fact]
    public async Task Transaction_OfThePublishedExamples_IsKeptInAFewHundredBytes_WithTheDictionary()
    {
        using var client = await app.PartnerAsync();
        // What the bench sends: the profiles' examples as one transaction, laid out compactly, a new person's NHS number.
        var bytes = Encoding.UTF8.GetBytes(FhirPayloads.ProfileExamplesTransaction(await app.NewNhsNumberAsync()).ToJsonString());

        var reply = await FhirPartner.ParseAsync<Bundle>(await client.PostAsync("/fhir", Body(bytes)));

        var referralId = IdOf(reply.Entry.Single(e => e.Resource is ServiceRequest).Response.Location);
        var kept = Assert.Single(await KeptForAsync(referralId));
        // Store growth (issue 14): Brotli alone kept about a third of it; what it shares with the dictionary costs next to nothing.
        Assert.True(kept.Stored.Length * 8 < bytes.Length, $"{kept.Stored.Length} bytes stored for {bytes.Length} received");
        Assert.Equal(bytes, kept.Body);
    }

    [Fact]
    public async Task Create_KeepsTheBodyByteForByte_WithNoBundleId()
    {
        using var client = await app.PartnerAsync();
        var bytes = Encoding.UTF8.GetBytes(FhirPayloads.ContainedReferral(await app.NewNhsNumberAsync()).ToJsonString() + "\n\n");

        var created = await FhirPartner.ParseAsync<ServiceRequest>(await client.PostAsync("/fhir/ServiceRequest", Body(bytes)), HttpStatusCode.Created);

        var kept = Assert.Single(await KeptForAsync(long.Parse(created.Id, System.Globalization.CultureInfo.InvariantCulture)));
        Assert.Equal(bytes, kept.Body);
        Assert.Null(kept.BundleId);
        Assert.Equal(("POST /fhir/ServiceRequest", FhirPartner.DemoClient), (kept.Interaction, kept.ClientId));
    }

    [Fact]
    public async Task Cancel_ByUpdate_KeepsItsBodyToo_BesideTheCreate()
    {
        using var client = await app.PartnerAsync();
        var created = await FhirPartner.ParseAsync<ServiceRequest>(
            await client.PostAsync("/fhir/ServiceRequest", FhirPayloads.Body(FhirPayloads.ContainedReferral(await app.NewNhsNumberAsync()).ToJsonString())),
            HttpStatusCode.Created);
        created.Status = RequestStatus.Revoked;
        created.Note.Add(new Annotation { Text = "Readmitted overnight " + Guid.NewGuid().ToString("N") });
        var bytes = Encoding.UTF8.GetBytes(CareCoordination.Features.Fhir.FhirMapping.Serialize(created));
        var put = new HttpRequestMessage(HttpMethod.Put, $"/fhir/ServiceRequest/{created.Id}") { Content = Body(bytes) };
        put.Headers.TryAddWithoutValidation("If-Match", "W/\"1\"");

        Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(put)).StatusCode);

        var kept = await KeptForAsync(long.Parse(created.Id, System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(["POST /fhir/ServiceRequest", $"PUT /fhir/ServiceRequest/{created.Id}"], kept.Select(k => k.Interaction).ToArray());
        Assert.Equal(bytes, kept[1].Body);
        Assert.Equal((kept[0].Id, 1L), await LinksAsync(long.Parse(created.Id, System.Globalization.CultureInfo.InvariantCulture)));
    }

    [Fact]
    public async Task Batch_KeepsTheBodyOnce_LinkedToEachReferralItMade_ThoughEachEntryIsItsOwnTransaction()
    {
        using var client = await app.PartnerAsync();
        JsonObject Entry(JsonObject referral) => new() { ["resource"] = referral, ["request"] = new JsonObject { ["method"] = "POST", ["url"] = "ServiceRequest" } };
        var batch = new JsonObject
        {
            ["resourceType"] = "Bundle",
            ["id"] = Guid.NewGuid().ToString(),
            ["type"] = "batch",
            ["entry"] = new JsonArray(Entry(FhirPayloads.ContainedReferral(await app.NewNhsNumberAsync())), Entry(FhirPayloads.ContainedReferral(await app.NewNhsNumberAsync()))),
        };
        var bytes = Encoding.UTF8.GetBytes(batch.ToJsonString());

        var reply = await FhirPartner.ParseAsync<Bundle>(await client.PostAsync("/fhir", Body(bytes)));

        var referrals = reply.Entry.Select(e => IdOf(e.Response.Location)).ToList();
        Assert.Equal(2, referrals.Count);
        var first = Assert.Single(await KeptForAsync(referrals[0]));
        var second = Assert.Single(await KeptForAsync(referrals[1]));
        Assert.Equal(bytes, first.Body);
        Assert.Equal((string?)batch["id"], first.BundleId);
        await using var connection = await app.OpenAsync();
        Assert.Equal(1, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM fhir_received WHERE bundle_id = @id", new { id = (string?)batch["id"] }));
        Assert.Equal(first.Body, second.Body);
        Assert.Equal((first.Id, 0L), await LinksAsync(referrals[0]));
        Assert.Equal((first.Id, 0L), await LinksAsync(referrals[1]));
    }

    [Fact]
    public async Task ReferredAgainFromTheForm_WithTheNameCorrected_KeepsTheOtherNamesAndIdentifiers()
    {
        using var client = await app.PartnerAsync();
        var nhs = await app.NewNhsNumberAsync();
        var hospitalNumber = "H" + Guid.NewGuid().ToString("N")[..8];
        var created = await FhirPartner.ParseAsync<ServiceRequest>(
            await client.PostAsync("/fhir/ServiceRequest", FhirPayloads.Body(WithNamesAndNumbers(FhirPayloads.ContainedReferral(nhs), hospitalNumber).ToJsonString())),
            HttpStatusCode.Created);
        var referrer = await app.StaffAsync("referrer");
        var found = await app.SendAsync<CareCoordination.Features.Referrals.FindPerson.Result?>(new CareCoordination.Features.Referrals.FindPerson.Query(nhs), referrer);
        var form = ReferralForms.Discharge(CareCoordination.Domain.LondonTime.Today(app.Clock), nhs);
        found!.Person!.FillIn(form);
        form.GivenName = "Wenna";

        await app.SendAsync(new CareCoordination.Features.Referrals.SubmitReferral.Command(form, Guid.NewGuid().ToString("N"), DuplicateAnswer: "new-need"), referrer);

        var patient = await FhirPartner.ParseAsync<Patient>(await client.GetAsync($"/fhir/{created.Subject.Reference}"));
        Assert.Equal(new[] { "Wenna" }, patient.Name.Single(n => n.Use == HumanName.NameUse.Official).Given);
        Assert.Equal("Trevithick", patient.Name.Single(n => n.Use == HumanName.NameUse.Maiden).Family);
        Assert.Contains(patient.Identifier, i => i.System == HospitalNumbers && i.Value == hospitalNumber);
    }

    [Fact]
    public async Task RefusedWrites_KeepNothing()
    {
        using var client = await app.PartnerAsync();
        var before = await ReceivedCountAsync();

        // A form rule broken (422: an NHS number whose check digit is wrong), after the body was read and parsed.
        var valid = await app.NewNhsNumberAsync();
        var message = FhirPayloads.Example("referral-message.json", valid[..9] + ((valid[9] - '0' + 1) % 10).ToString(System.Globalization.CultureInfo.InvariantCulture));
        using var refused = await client.PostAsync("/fhir/$process-message", FhirPayloads.Body(message.ToJsonString()));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, refused.StatusCode);

        // A transaction whose second referral is refused: the first, made in the same transaction, is undone with its message.
        var transaction = FhirPayloads.Example("referral-transaction.json", await app.NewNhsNumberAsync());
        var bad = transaction["entry"]![1]!.DeepClone();
        bad["fullUrl"] = "urn:uuid:" + Guid.NewGuid();
        bad["resource"]!["identifier"]![0]!["value"] = "F-" + Guid.NewGuid().ToString("N");
        bad["request"]!["ifNoneExist"] = $"identifier={(string?)bad["resource"]!["identifier"]![0]!["system"]}|{(string?)bad["resource"]!["identifier"]![0]!["value"]}";
        bad["resource"]!["code"] = JsonNode.Parse("""{ "coding": [{ "system": "https://carecoordination.example.org/fhir/CodeSystem/discharge-pathway", "code": "9" }] }""");
        transaction["entry"]!.AsArray().Add(bad);
        using var undone = await client.PostAsync("/fhir", FhirPayloads.Body(transaction.ToJsonString()));
        Assert.False(undone.IsSuccessStatusCode, await undone.Content.ReadAsStringAsync());

        Assert.Equal(before, await ReceivedCountAsync());
    }

    [Fact]
    public async Task AsSent_IsRefusedToReferrersOfAnyOrganisation_AndToPartners()
    {
        using var client = await app.PartnerAsync();
        var created = await FhirPartner.ParseAsync<ServiceRequest>(
            await client.PostAsync("/fhir/ServiceRequest", FhirPayloads.Body(FhirPayloads.ContainedReferral(await app.NewNhsNumberAsync()).ToJsonString())),
            HttpStatusCode.Created);
        var query = new AsSent.Query(long.Parse(created.Id, System.Globalization.CultureInfo.InvariantCulture));
        var sameTrustReferrer = await app.StaffAsync("referrer");
        await using var connection = await app.OpenAsync();
        var otherTrust = await connection.ExecuteScalarAsync<long>("SELECT id FROM organisation WHERE code = 'RSM'");
        var otherTrustReferrer = new ClaimsPrincipal(new ClaimsIdentity(
            sameTrustReferrer.Claims.Where(c => c.Type != CareClaims.Organisation).Append(new Claim(CareClaims.Organisation, otherTrust.ToString(System.Globalization.CultureInfo.InvariantCulture))),
            "test"));
        var sender = await connection.ExecuteScalarAsync<long>("SELECT organisation_id FROM partner_client WHERE client_id = @DemoClient", new { FhirPartner.DemoClient });
        var partner = new ClaimsPrincipal(new ClaimsIdentity(
        [
            new Claim(CareClaims.ClientId, FhirPartner.DemoClient),
            new Claim(CareClaims.Organisation, sender.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            new Claim(CareClaims.Scope, "system/*.cruds"),
        ], PartnerTokens.AuthenticationType));

        var deniedBefore = await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM audit_event WHERE action = 'AsSent' AND outcome = 'denied'");
        await Assert.ThrowsAsync<AccessDenied>(() => app.SendAsync(query, otherTrustReferrer));
        await Assert.ThrowsAsync<AccessDenied>(() => app.SendAsync(query, sameTrustReferrer));
        await Assert.ThrowsAsync<AccessDenied>(() => app.SendAsync(query, partner));
        var manager = await app.StaffAsync("manager");
        await Assert.ThrowsAsync<AccessDenied>(() => app.SendAsync(query, manager));
        Assert.Single((await app.SendAsync<AsSent.Result>(query, await app.StaffAsync("bedbureau"))).Messages);
        Assert.Equal(deniedBefore + 4, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM audit_event WHERE action = 'AsSent' AND outcome = 'denied'"));
    }
}

public sealed class FhirAsSentOnSqliteTests(AppFactory app) : FhirAsSentTests(app), IClassFixture<AppFactory>;

public sealed class FhirAsSentOnPostgresTests(PostgresAppFactory app) : FhirAsSentTests(app), IClassFixture<PostgresAppFactory>;
