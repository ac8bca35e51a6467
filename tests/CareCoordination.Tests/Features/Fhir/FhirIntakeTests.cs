// Firely's model marks every element nullable; here a missing element fails the test just as an assert would.
#pragma warning disable CS8600, CS8602, CS8604

using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CareCoordination.Domain;
using CareCoordination.Features.Admin;
using CareCoordination.Features.Coordination;
using CareCoordination.Features.Fhir;
using CareCoordination.Tests.Support;
using Dapper;
using Hl7.Fhir.Model;
using Task = System.Threading.Tasks.Task;

namespace CareCoordination.Tests.Features.Fhir;

/// <summary>
/// Referrals as partners send them today, in the shapes of NHS England's BaRS 1.x and UK Core (fixtures written for
/// these tests from the public examples' shapes): accepted without our own extensions, each answer read from where
/// the standard puts it (docs/fhir.md, "Where each answer is read from"), and what the form needs but the message
/// lacks listed as warnings and as "information needed" on the coordination queue. Refused only without a lawful
/// basis, with an invalid NHS number, or for another organisation.
/// </summary>
public abstract class FhirIntakeTests(AppFactory app)
{
    private const string OwnOds = "RWM";

    private DateOnly Today => LondonTime.Today(app.Clock);

    private static string Fixture(string name) =>
        File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Features", "Fhir", "Fixtures", name));

    /// <summary>A fixture made new: a fresh NHS number and identifiers, the sender's ODS code, and dates from today.</summary>
    private string Prepare(string name, string nhsNumber, string ods = OwnOds)
    {
        string Day(int days) => Today.AddDays(days).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        return Fixture(name)
            .Replace("9434765919", nhsNumber, StringComparison.Ordinal)
            .Replace("@ODS@", ods, StringComparison.Ordinal)
            .Replace("@EXPECTED@", Day(3), StringComparison.Ordinal)
            .Replace("@EXPECTED_END@", Day(5), StringComparison.Ordinal)
            .Replace("6b0f3c1e-2d4a-4e8b-9c71-5a2e8d4f1b30", Guid.NewGuid().ToString(), StringComparison.Ordinal)
            .Replace("BARS-0001", "BARS-" + Guid.NewGuid().ToString("N"), StringComparison.Ordinal)
            .Replace("UKC-0001", "UKC-" + Guid.NewGuid().ToString("N"), StringComparison.Ordinal);
    }

    private static StringContent Body(string json) => new(json, Encoding.UTF8, "application/fhir+json");

    private async Task<string> NewNhsAsync() => (await app.NewNhsNumberAsync()).Replace(" ", "", StringComparison.Ordinal);

    private sealed record Stored
    {
        public long Id { get; init; }
        public string? Source { get; init; }
        public string? Pathway { get; init; }
        public string? Ward { get; init; }
        public string? BedLabel { get; init; }
        public string? HospitalSite { get; init; }
        public DateOnly? AdmittedOn { get; init; }
        public DateOnly? MedicallyOptimisedOn { get; init; }
        public DateOnly? ExpectedDischargeOn { get; init; }
        public string Needs { get; init; } = "";
        public bool SafeguardingConcern { get; init; }
        public string? InfectionStatus { get; init; }
        public bool ConsentToShare { get; init; }
        public string? ConsentGivenBy { get; init; }
        public string? LawfulReason { get; init; }
        public string? PersonWishes { get; init; }
        public string? Summary { get; init; }
        public string? InformationNeeded { get; init; }
        public bool LivesAlone { get; init; }
        public bool EasyRead { get; init; }
        public string GivenName { get; init; } = "";
    }

    /// <summary>What the store holds for the person's referral, read back from the tables the form writes.</summary>
    private async Task<Stored> StoredAsync(string nhsNumber)
    {
        await using var connection = await app.OpenAsync();
        return await connection.QuerySingleAsync<Stored>(
            """
            SELECT r.id AS Id, r.source AS Source, r.pathway AS Pathway, r.ward AS Ward, r.bed_label AS BedLabel,
                   (SELECT hs.code FROM hospital_site hs WHERE hs.id = r.hospital_site_id) AS HospitalSite,
                   r.admitted_on AS AdmittedOn, r.medically_optimised_on AS MedicallyOptimisedOn, r.expected_discharge_on AS ExpectedDischargeOn, r.needs AS Needs,
                   r.safeguarding_concern AS SafeguardingConcern, r.infection_status AS InfectionStatus, r.consent_to_share AS ConsentToShare,
                   r.consent_given_by AS ConsentGivenBy, r.lawful_reason AS LawfulReason, r.person_wishes AS PersonWishes, r.summary AS Summary,
                   r.information_needed AS InformationNeeded, p.lives_alone AS LivesAlone, p.easy_read AS EasyRead, p.given_name AS GivenName
            FROM referral r JOIN person p ON p.id = r.person_id WHERE p.nhs_number = @nhsNumber
            """, new { nhsNumber });
    }

    /// <summary>The coordination queue's row for the referral, as a coordinator reads it.</summary>
    private async Task<CoordinationQueue.Row> QueueRowAsync(long referralId)
    {
        var queue = await app.SendAsync<CoordinationQueue.Result>(new CoordinationQueue.Query(), await app.StaffAsync("coordinator"));
        return Assert.Single(queue.Rows, r => r.ReferralId == referralId);
    }

    private static void AssertWarnings(OperationOutcome outcome, params string[] properties)
    {
        var warnings = outcome.Issue.Where(i => i.Severity == OperationOutcome.IssueSeverity.Warning).ToList();
        Assert.Equal(properties, warnings.Select(w => w.Details.Text));
        Assert.All(warnings, w => Assert.Equal(OperationOutcome.IssueType.Incomplete, w.Code));
        foreach (var property in properties)
        {
            var expected = CareCoordination.Features.Referrals.InformationNeeded.All.Single(i => i.Property == property).FhirPath;
            Assert.Equal([expected], warnings.Single(w => w.Details.Text == property).Expression);
        }
    }

    [Theory]
    [InlineData("https://fhir.nhs.uk/CodeSystem/message-events-bars")]
    [InlineData("https://fhir.nhs.uk/CodeSystem/message-event-servicerequest")]
    public async Task BarsReferralRequest_IsAccepted_ReadFromTheStandardPlaces_WithWhatIsMissingAsWarningsAndOnTheQueue(string eventSystem)
    {
        using var client = await app.PartnerAsync();
        var nhs = await NewNhsAsync();
        var message = Prepare("bars-referral-request.json", nhs).Replace("https://fhir.nhs.uk/CodeSystem/message-events-bars", eventSystem, StringComparison.Ordinal);

        var reply = await FhirPartner.ParseAsync<Bundle>(await client.PostAsync("/fhir/$process-message", Body(message)));

        var header = (MessageHeader)reply.Entry[0].Resource;
        Assert.Equal(MessageHeader.ResponseType.Ok, header.Response.Code);
        var outcome = reply.Entry.Select(e => e.Resource).OfType<OperationOutcome>().Single();
        Assert.Equal(header.Response.Details.Reference, reply.Entry.Single(e => e.Resource == outcome).FullUrl);
        AssertWarnings(outcome, "Pathway", "MedicallyOptimisedOn", "Needs");

        var stored = await StoredAsync(nhs);
        Assert.Equal("acute-hospital", stored.Source);          // the sender's organisation type in our directory
        Assert.Null(stored.Pathway);                            // a SNOMED service code is not a discharge pathway: not made up
        Assert.Equal("Trevail Ward", stored.Ward);              // Encounter.location -> Location (physicalType wa)
        Assert.Equal("Bed 14", stored.BedLabel);                // Encounter.location -> Location (physicalType bd)
        Assert.Equal("RWM02", stored.HospitalSite);             // the ward Location's partOf: a site (physicalType si), its ODS site code
        Assert.Equal(new DateOnly(2026, 11, 21), stored.AdmittedOn); // Encounter.period.start, the day as the sender wrote it
        Assert.Null(stored.MedicallyOptimisedOn);
        Assert.Equal(Today.AddDays(3), stored.ExpectedDischargeOn);   // occurrencePeriod.start
        Assert.Equal("[]", stored.Needs);
        Assert.True(stored.ConsentToShare);                     // Consent, permit, naming the patient
        Assert.Equal("The person", stored.ConsentGivenBy);      // Consent.performer is the Patient
        Assert.True(stored.LivesAlone);                         // household composition Observation, value SNOMED 105529008
        Assert.StartsWith("Wants to go home to her own bed", stored.PersonWishes, StringComparison.Ordinal); // "Expectations and wishes" Observation
        Assert.True(stored.SafeguardingConcern);                // Flag, category Safeguarding Concern
        Assert.True(stored.EasyRead);                           // reasonable adjustment Flag
        Assert.StartsWith("Admitted after a fall", stored.Summary, StringComparison.Ordinal);
        Assert.Equal("Elowen", stored.GivenName);

        var row = await QueueRowAsync(stored.Id);
        Assert.Equal(["Pathway", "MedicallyOptimisedOn", "Needs"], row.InformationNeeded.Select(i => i.Property));
        Assert.Null(row.Pathway);
    }

    [Fact]
    public async Task UkCoreServiceRequest_Post_IsAccepted_AndTheOutcomeNamesWhatIsMissing()
    {
        using var client = await app.PartnerAsync();
        var nhs = await NewNhsAsync();
        var post = new HttpRequestMessage(HttpMethod.Post, "/fhir/ServiceRequest") { Content = Body(Prepare("ukcore-servicerequest.json", nhs)) };
        post.Headers.Add("Prefer", "return=OperationOutcome");

        var response = await client.SendAsync(post);

        var outcome = await FhirPartner.ParseAsync<OperationOutcome>(response, HttpStatusCode.Created);
        Assert.NotNull(response.Headers.Location);
        AssertWarnings(outcome, "Ward", "MedicallyOptimisedOn");
        var stored = await StoredAsync(nhs);
        Assert.Equal("1", stored.Pathway);                       // our coding beside the SNOMED one (extensible binding)
        Assert.Equal("[\"personal-hygiene\"]", stored.Needs);
        Assert.True(stored.ConsentToShare);
        Assert.Equal("Implied consent for direct care", stored.ConsentGivenBy); // contained Consent, policyRule implied, no performer
        Assert.Equal("To be home for his wife, who he cares for.", stored.PersonWishes); // contained Observation, valueString
        Assert.Equal("MRSA positive: barrier nursing", stored.InfectionStatus);           // contained Flag about infection
        Assert.Equal(["Ward", "MedicallyOptimisedOn"], (await QueueRowAsync(stored.Id)).InformationNeeded.Select(i => i.Property));

        // Without the preference the created resource is the body, as FHIR has it.
        var plain = await client.PostAsync("/fhir/ServiceRequest", Body(Prepare("ukcore-servicerequest.json", await NewNhsAsync())));
        Assert.IsType<ServiceRequest>(await FhirPartner.ParseAsync<ServiceRequest>(plain, HttpStatusCode.Created));
    }

    [Fact]
    public async Task UkCoreTransaction_IsAccepted_ReadingItsSupportingEntries_AndTheReferralEntryCarriesTheWarnings()
    {
        using var client = await app.PartnerAsync();
        var nhs = await NewNhsAsync();

        var reply = await FhirPartner.ParseAsync<Bundle>(await client.PostAsync("/fhir", Body(Prepare("ukcore-transaction.json", nhs))));

        Assert.Equal(["201 Created", "201 Created", "200 OK", "200 OK", "200 OK", "200 OK"], reply.Entry.Select(e => e.Response.Status));
        AssertWarnings((OperationOutcome)reply.Entry[1].Response.Outcome, "Pathway", "MedicallyOptimisedOn", "Needs", "Summary");
        Assert.Contains("Bundle.entry[1]", ((OperationOutcome)reply.Entry[4].Response.Outcome).Issue[0].Diagnostics, StringComparison.Ordinal);
        var stored = await StoredAsync(nhs);
        Assert.Equal("Penrose Ward", stored.Ward);               // Encounter.location.display, physicalType wa
        Assert.True(stored.ConsentToShare);
        Assert.Equal("Tamsin Angove (daughter, lasting power of attorney)", stored.ConsentGivenBy); // Consent.performer display
        Assert.Equal("Getting back to the chapel choir on Sundays.", stored.PersonWishes);       // QuestionnaireResponse item "What matters to you?"
        Assert.Null(stored.Summary);
        Assert.Equal(["Pathway", "MedicallyOptimisedOn", "Needs", "Summary"], (await QueueRowAsync(stored.Id)).InformationNeeded.Select(i => i.Property));
    }

    /// <summary>
    /// A second referral for a person this trust referred before (its Patient entry conditional on the NHS number): what the
    /// Bundle says of the person in its Consent and QuestionnaireResponse is read as for a new person. The form holds a known
    /// person's NHS number as shown (3-3-4), and everything sent was taken for someone else's and dropped: the consent
    /// refused for want of a lawful basis.
    /// </summary>
    [Fact]
    public async Task UkCoreTransaction_ForAPersonReferredBefore_ReadsItsConsentAndWhatMatters()
    {
        using var client = await app.PartnerAsync();
        var nhs = await NewNhsAsync();
        string Conditional() => UkCoreTransactionFindingThePerson(nhs).ToJsonString();
        var first = await FhirPartner.ParseAsync<Bundle>(await client.PostAsync("/fhir", Body(Conditional())));
        Assert.Equal("201 Created", first.Entry[0].Response.Status);

        var again = await FhirPartner.ParseAsync<Bundle>(await client.PostAsync("/fhir", Body(Conditional())));

        Assert.Equal(["200 OK", "201 Created"], again.Entry.Take(2).Select(e => e.Response.Status));
        var referralId = long.Parse(again.Entry[1].Response.Location.Split('/')[1], CultureInfo.InvariantCulture);
        await using var connection = await app.OpenAsync();
        var stored = await connection.QuerySingleAsync<(bool Consent, string? GivenBy, string? Wishes)>(
            "SELECT consent_to_share, consent_given_by, person_wishes FROM referral WHERE id = @referralId", new { referralId });
        Assert.Equal((true, "Tamsin Angove (daughter, lasting power of attorney)", "Getting back to the chapel choir on Sundays."), stored);
    }

    /// <summary>
    /// A second referral for a person referred before, naming them without a Patient of its own (the Patient entry's
    /// If-None-Exist finds them), that says something new of them: an Observation that they now live alone. What it said is
    /// kept with the referral, and is the person's record now; it was dropped for the trust's earlier word.
    /// </summary>
    [Fact]
    public async Task AReferralNamingAKnownPerson_ThatSaysTheyNowLiveAlone_KeepsIt()
    {
        using var client = await app.PartnerAsync();
        var nhs = await NewNhsAsync();
        await FhirPartner.ParseAsync<Bundle>(await client.PostAsync("/fhir", Body(UkCoreTransactionFindingThePerson(nhs).ToJsonString())));
        var livesAlone = UkCoreTransactionFindingThePerson(nhs);
        livesAlone["entry"]!.AsArray().Add(new JsonObject
        {
            ["fullUrl"] = "urn:uuid:" + Guid.NewGuid(),
            ["resource"] = new JsonObject
            {
                ["resourceType"] = "Observation",
                ["status"] = "final",
                ["code"] = new JsonObject { ["coding"] = new JsonArray(new JsonObject { ["system"] = "http://snomed.info/sct", ["code"] = "224130005", ["display"] = "Household composition" }) },
                ["subject"] = new JsonObject { ["reference"] = (string)livesAlone["entry"]![0]!["fullUrl"]! },
                ["valueCodeableConcept"] = new JsonObject { ["coding"] = new JsonArray(new JsonObject { ["system"] = "http://snomed.info/sct", ["code"] = "105529008", ["display"] = "Lives alone" }) },
            },
            ["request"] = new JsonObject { ["method"] = "POST", ["url"] = "Observation" },
        });

        var again = await FhirPartner.ParseAsync<Bundle>(await client.PostAsync("/fhir", Body(livesAlone.ToJsonString())));

        Assert.Equal(["200 OK", "201 Created"], again.Entry.Take(2).Select(e => e.Response.Status));
        var referralId = long.Parse(again.Entry[1].Response.Location.Split('/')[1], CultureInfo.InvariantCulture);
        await using var connection = await app.OpenAsync();
        Assert.True(await connection.ExecuteScalarAsync<bool>("SELECT lives_alone FROM referral_person WHERE referral_id = @referralId", new { referralId }));
        Assert.True(await connection.ExecuteScalarAsync<bool>("SELECT lives_alone FROM person WHERE nhs_number = @nhs", new { nhs }));
    }

    /// <summary>The UK Core transaction, its Patient entry conditional on the NHS number: a second one finds the person the first made.</summary>
    private JsonNode UkCoreTransactionFindingThePerson(string nhs)
    {
        var bundle = JsonNode.Parse(Prepare("ukcore-transaction.json", nhs))!;
        bundle["entry"]![0]!["request"]!["ifNoneExist"] = $"identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}";
        return bundle;
    }

    /// <summary>A transaction's referral whose person is contained in it (#id), as docs/fhir.md allows, is taken like one posted alone.</summary>
    [Fact]
    public async Task ATransactionsReferral_WithItsPatientContained_IsAccepted()
    {
        using var client = await app.PartnerAsync();
        var nhs = await NewNhsAsync();
        var request = JsonNode.Parse(Prepare("ukcore-servicerequest.json", nhs))!;
        var bundle = new JsonObject
        {
            ["resourceType"] = "Bundle",
            ["type"] = "transaction",
            ["entry"] = new JsonArray(new JsonObject
            {
                ["fullUrl"] = "urn:uuid:" + Guid.NewGuid(),
                ["resource"] = request,
                ["request"] = new JsonObject { ["method"] = "POST", ["url"] = "ServiceRequest" },
            }),
        };
        Assert.StartsWith("#", request["subject"]!["reference"]!.GetValue<string>(), StringComparison.Ordinal);

        var reply = await FhirPartner.ParseAsync<Bundle>(await client.PostAsync("/fhir", Body(bundle.ToJsonString())));

        Assert.Equal("201 Created", Assert.Single(reply.Entry).Response.Status);
        // As the same referral posted alone is read (UkCoreServiceRequest_Post_...): the contained Consent and Observation too.
        var stored = await StoredAsync(nhs);
        Assert.Equal((true, "Implied consent for direct care", "To be home for his wife, who he cares for."),
            (stored.ConsentToShare, stored.ConsentGivenBy, stored.PersonWishes));
    }

    [Fact]
    public async Task NoLawfulBasis_IsRefused_AndNothingStored_UntilThePartnerHasAStandingBasis()
    {
        var clientId = await app.NewPartnerClientAsync(OwnOds, CareCoordination.Demo.DemoCounty.PartnerScopes, "intake");
        using var client = await app.PartnerAsync(null, clientId, FhirPartner.OtherSecret);
        var nhs = await NewNhsAsync();
        // The UK Core referral without its Consent: nothing says the person may be shared about.
        var referral = Prepare("ukcore-servicerequest.json", nhs)
            .Replace("{ \"reference\": \"#consent\" }, ", "", StringComparison.Ordinal);
        var withoutConsent = System.Text.Json.Nodes.JsonNode.Parse(referral)!.AsObject();
        withoutConsent["contained"]!.AsArray().Remove(withoutConsent["contained"]!.AsArray().Single(r => (string)r!["resourceType"]! == "Consent"));
        var before = await app.StoredAsync();

        var refused = await client.PostAsync("/fhir/ServiceRequest", Body(withoutConsent.ToJsonString()));

        var outcome = await FhirPartner.ParseAsync<OperationOutcome>(refused, (HttpStatusCode)422);
        var issue = Assert.Single(outcome.Issue);
        Assert.Equal(OperationOutcome.IssueSeverity.Error, issue.Severity);
        Assert.Equal(["ServiceRequest.supportingInfo"], issue.Expression);
        Assert.Contains("lawful basis", issue.Diagnostics, StringComparison.Ordinal);
        Assert.Equal(before, await app.StoredAsync());
        await using (var connection = await app.OpenAsync())
        {
            // Refused by the form's own command, so audited as every refused submission is.
            Assert.Equal(1, await connection.ExecuteScalarAsync<long>(
                "SELECT COUNT(*) FROM audit_event WHERE action = 'SubmitReferral' AND outcome = 'invalid' AND actor_id = @clientId", new { clientId }));
        }

        // An administrator records the partner's lawful basis from its data-sharing agreement: the same referral is accepted on it.
        var partnerId = (await app.SendAsync<IReadOnlyList<PartnerClients.Row>>(new PartnerClients.Query(), await app.StaffAsync("admin"))).Single(p => p.ClientId == clientId).Id;
        await app.SendAsync(new SetPartnerLawfulBasis.Command(partnerId, "UK GDPR Article 6(1)(e) and 9(2)(h): direct care", "DSA-2026-014"), await app.StaffAsync("admin"));

        var accepted = await client.PostAsync("/fhir/ServiceRequest", Body(withoutConsent.ToJsonString()));

        Assert.Equal(HttpStatusCode.Created, accepted.StatusCode);
        var stored = await StoredAsync(nhs);
        Assert.False(stored.ConsentToShare);
        Assert.Equal("UK GDPR Article 6(1)(e) and 9(2)(h): direct care (data-sharing agreement DSA-2026-014)", stored.LawfulReason);
    }

    [Fact]
    public async Task AnInvalidNhsNumber_IsRefused422_AndNothingStored()
    {
        using var client = await app.PartnerAsync();
        var before = await app.StoredAsync();

        var refused = await client.PostAsync("/fhir/$process-message", Body(Prepare("bars-referral-request.json", "9434765918")));

        var outcome = await FhirPartner.ParseAsync<OperationOutcome>(refused, (HttpStatusCode)422);
        Assert.Contains(outcome.Issue, i => i.Diagnostics.Contains("check digit", StringComparison.Ordinal)
            && i.Expression.Single() == "Patient.identifier.where(system='https://fhir.nhs.uk/Id/nhs-number').value");
        Assert.Equal(before, await app.StoredAsync());
    }

    /// <summary>A requester of another organisation is a fault in the referral: 422, with the element that named it.</summary>
    [Fact]
    public async Task ARequesterOfAnotherOrganisation_IsRefused422_WhereverItIsNamed_AndNothingStored()
    {
        using var client = await app.PartnerAsync();
        var before = await app.StoredAsync();

        var byPractitionerRole = await client.PostAsync("/fhir/$process-message", Body(Prepare("bars-referral-request.json", await NewNhsAsync(), "RSM")));
        var inTransaction = await client.PostAsync("/fhir", Body(Prepare("ukcore-transaction.json", await NewNhsAsync(), "RSM")));
        var bySender = Prepare("bars-referral-request.json", await NewNhsAsync(), "RSM")
            .Replace("\"requester\": { \"reference\": \"urn:uuid:3e4f5a6b-7c8d-4e9f-8a0b-1c2d3e4f5a6b\" },", "", StringComparison.Ordinal);
        var bySenderOnly = await client.PostAsync("/fhir/$process-message", Body(bySender));

        Assert.Equal(["ServiceRequest.requester"], (await FhirPartner.ParseAsync<OperationOutcome>(byPractitionerRole, HttpStatusCode.UnprocessableEntity)).Issue.Single().Expression);
        Assert.Equal(["Bundle.entry[1]", "ServiceRequest.requester"], (await FhirPartner.ParseAsync<OperationOutcome>(inTransaction, HttpStatusCode.UnprocessableEntity)).Issue.Single().Expression);
        var sender = (await FhirPartner.ParseAsync<OperationOutcome>(bySenderOnly, HttpStatusCode.UnprocessableEntity)).Issue.Single();
        Assert.Equal(["MessageHeader.sender"], sender.Expression);
        Assert.Contains("not for RSM", sender.Diagnostics, StringComparison.Ordinal);
        Assert.Equal(before, await app.StoredAsync());
    }

    [Fact]
    public async Task TheCoordinatorAsksForWhatIsMissing_InOneClick_AndTheAnswerClearsTheMark()
    {
        using var client = await app.PartnerAsync();
        var nhs = await NewNhsAsync();
        Assert.Equal(HttpStatusCode.OK, (await client.PostAsync("/fhir/$process-message", Body(Prepare("bars-referral-request.json", nhs)))).StatusCode);
        var stored = await StoredAsync(nhs);
        var row = await QueueRowAsync(stored.Id);
        var coordinator = await app.StaffAsync("coordinator");
        await app.SendAsync(new TakeReferral.Command(row.TaskId), coordinator);

        await app.SendAsync(new RequestInformation.Command(row.TaskId, CareCoordination.Features.Referrals.InformationNeeded.Question(row.InformationNeeded)), coordinator);

        await using (var connection = await app.OpenAsync())
        {
            var question = await connection.ExecuteScalarAsync<string>(
                "SELECT text FROM referral_note WHERE referral_id = @Id AND kind = 'information-request'", new { stored.Id });
            Assert.Equal("Your referral reached us without the pathway asked for, the medically optimised date and the needs to support. "
                + "Please send them so that we can decide the right service.", question);
        }
        await app.SendAsync(new CareCoordination.Features.Referrals.AnswerInformationRequest.Command(stored.Id, "Pathway 1, optimised today, help with washing."),
            await app.StaffAsync("referrer"));
        Assert.Empty((await QueueRowAsync(stored.Id)).InformationNeeded);
    }
}

public sealed class FhirIntakeOnSqliteTests(AppFactory app) : FhirIntakeTests(app), IClassFixture<AppFactory>;

public sealed class FhirIntakeOnPostgresTests(PostgresAppFactory app) : FhirIntakeTests(app), IClassFixture<PostgresAppFactory>;
