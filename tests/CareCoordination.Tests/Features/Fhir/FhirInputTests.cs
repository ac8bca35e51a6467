// Firely's model marks every element nullable; here a missing element fails the test just as an assert would.
#pragma warning disable CS8600, CS8602, CS8604

using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using CareCoordination.Features.Fhir;
using CareCoordination.Tests.Support;
using Hl7.Fhir.Model;
using Task = System.Threading.Tasks.Task;

namespace CareCoordination.Tests.Features.Fhir;

/// <summary>
/// Bad input gets a clear error and changes nothing: what fuzzing found, one case at a time. Each body is a
/// documented example broken in one way, sent as bytes, so that nothing on the way tidies it up first.
/// </summary>
public abstract class FhirInputTests(AppFactory app)
{
    private const string ForeignBase = "https://epr.example.nhs.uk/fhir";

    private async Task<string> NhsAsync() => (await app.NewNhsNumberAsync()).Replace(" ", "", StringComparison.Ordinal);

    /// <summary>Sent, refused with the status given and an OperationOutcome, and nothing stored.</summary>
    private async Task<OperationOutcome> RefusedAsync(HttpClient client, string url, HttpContent body, HttpStatusCode status = HttpStatusCode.BadRequest)
    {
        var before = await app.StoredAsync();
        var response = await client.PostAsync(url, body);
        var outcome = await FhirPartner.ParseAsync<OperationOutcome>(response, status);
        Assert.NotEmpty(outcome.Issue);
        Assert.Equal(before, await app.StoredAsync());
        return outcome;
    }

    /// <summary>A referral with its person contained, as JSON text with the summary note set to a marker a case can replace.</summary>
    private async Task<string> ReferralTextAsync()
    {
        var referral = FhirPayloads.ContainedReferral(await NhsAsync());
        referral["note"]![0]!["text"] = "SUMMARY";
        return referral.ToJsonString();
    }

    private static string Summary(string json, string escapedText) => json.Replace("\"SUMMARY\"", $"\"{escapedText}\"", StringComparison.Ordinal);

    private static string ResourceType(string json, string type) =>
        json.Replace("{\"resourceType\":\"ServiceRequest\"", $"{{\"resourceType\":\"{type}\"", StringComparison.Ordinal);

    public static TheoryData<string, string> Unreadable() => new()
    {
        // A 500 with an HTML page before.
        { "a lone high surrogate", "surrogate" },
        { "a lone low surrogate", "surrogate" },
        { "a NUL character", "U+0000" },
        { "resourceType Resource", "Resource" },
        { "resourceType DomainResource", "DomainResource" },
        { "a contained resourceType DomainResource", "DomainResource" },
        { "contained that is not an array", "contained" },
        // Accepted before.
        { "text after the body", "after" },
        { "a second resource after the body", "after" },
        { "resourceType in the wrong case", "servicerequest" },
        { "a property named twice", "intent" },
        // Read by Firely as the element it resembles, so the profile check (which reads the body as sent) did not see it.
        { "an element in the wrong case", "Subject" },
    };

    [Theory]
    [MemberData(nameof(Unreadable))]
    public async Task AnUnreadableBody_Is400WithAnOperationOutcome_AndStoresNothing(string fault, string named)
    {
        using var client = await app.PartnerAsync();
        var json = await ReferralTextAsync();
        var sent = fault switch
        {
            "a lone high surrogate" => Summary(json, "Fell at home \\ud800 twice"),
            "a lone low surrogate" => Summary(json, "Fell at home \\udc00"),
            "a NUL character" => Summary(json, "Fell at home\\u0000"),
            "resourceType Resource" => ResourceType(json, "Resource"),
            "resourceType DomainResource" => ResourceType(json, "DomainResource"),
            "a contained resourceType DomainResource" => json.Replace("[{\"resourceType\":\"Patient\"", "[{\"resourceType\":\"DomainResource\"", StringComparison.Ordinal),
            "contained that is not an array" => ContainedAsObject(json),
            "text after the body" => json + " thank you",
            "a second resource after the body" => json + json,
            "resourceType in the wrong case" => ResourceType(json, "servicerequest"),
            "a property named twice" => json.Replace("\"intent\":\"order\"", "\"intent\":\"order\",\"intent\":\"plan\"", StringComparison.Ordinal),
            "an element in the wrong case" => json.Replace("\"subject\":", "\"Subject\":", StringComparison.Ordinal),
            _ => throw new ArgumentOutOfRangeException(nameof(fault)),
        };
        Assert.NotEqual(json, sent);

        var outcome = await RefusedAsync(client, "/fhir/ServiceRequest", FhirPayloads.Body(sent));

        Assert.All(outcome.Issue, i => Assert.Equal(OperationOutcome.IssueType.Invalid, i.Code));
        Assert.Contains(outcome.Issue, i => i.Diagnostics.Contains(named, StringComparison.Ordinal));
    }

    private static string ContainedAsObject(string json)
    {
        var referral = JsonNode.Parse(json)!.AsObject();
        referral["contained"] = referral["contained"]![0]!.DeepClone();
        return referral.ToJsonString();
    }

    [Fact]
    public async Task InvalidUtf8_Is400_AndIsNotStoredAsReplacementCharacters()
    {
        using var client = await app.PartnerAsync();
        var json = Encoding.UTF8.GetBytes(Summary(await ReferralTextAsync(), "Fell at home XX"));
        // "XX" becomes 0xC3 0x28: a lead byte without its continuation.
        var at = json.AsSpan().IndexOf("XX"u8);
        json[at] = 0xC3;
        json[at + 1] = 0x28;

        var outcome = await RefusedAsync(client, "/fhir/ServiceRequest", FhirPayloads.Body(json));

        Assert.Contains($"not valid UTF-8 (byte {at} and on)", outcome.Issue.Single().Diagnostics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ABundleWithTwoEntriesSharingAFullUrl_Is400NamingBoth_AndStoresNothing()
    {
        using var client = await app.PartnerAsync();
        var transaction = FhirPayloads.Example("referral-transaction.json", await NhsAsync());
        var shared = (string)transaction["entry"][0]["fullUrl"];
        transaction["entry"][1]["fullUrl"] = shared;

        var outcome = await RefusedAsync(client, "/fhir", FhirPayloads.Body(transaction.ToJsonString()));

        var issue = outcome.Issue.Single();
        Assert.Contains("bdl-7", issue.Diagnostics, StringComparison.Ordinal);
        Assert.Contains(shared, issue.Diagnostics, StringComparison.Ordinal);
        Assert.Equal(["Bundle.entry[0].fullUrl", "Bundle.entry[1].fullUrl"], issue.Expression);
    }

    [Fact]
    public async Task ASearchValueHoldingNul_Is400_OnEitherStore()
    {
        using var client = await app.PartnerAsync();

        var response = await client.GetAsync("/fhir/ServiceRequest?identifier=https://fhir.westmoor-general.nhs.uk/Id/referral%7CR-1%00");

        var outcome = await FhirPartner.ParseAsync<OperationOutcome>(response, HttpStatusCode.BadRequest);
        Assert.Contains("U+0000", outcome.Issue.Single().Diagnostics, StringComparison.Ordinal);
    }

    /// <summary>The person a partner has referred before, as this server names them.</summary>
    private async Task<(string Reference, string NhsNumber)> KnownPersonAsync(HttpClient client)
    {
        var nhs = await NhsAsync();
        var created = await FhirPartner.ParseAsync<ServiceRequest>(
            await client.PostAsync("/fhir/ServiceRequest", FhirPayloads.Body(FhirPayloads.ContainedReferral(nhs).ToJsonString())), HttpStatusCode.Created);
        return (created.Subject.Reference!, nhs);
    }

    /// <summary>A referral for a person named by reference (and identifier, if given) rather than contained.</summary>
    private static string ReferralFor(JsonObject subject, string nhs)
    {
        var referral = FhirPayloads.ContainedReferral(nhs);
        referral.Remove("contained");
        referral["subject"] = subject;
        return referral.ToJsonString();
    }

    private static JsonObject NhsNumber(string nhs) => new() { ["system"] = FhirMapping.NhsNumberSystem, ["value"] = nhs };

    [Fact]
    public async Task ASubjectOnAnotherServer_IsRefused_NotTakenForThePersonWithThatIdHere()
    {
        using var client = await app.PartnerAsync();
        var (known, nhs) = await KnownPersonAsync(client);

        var outcome = await RefusedAsync(client, "/fhir/ServiceRequest",
            FhirPayloads.Body(ReferralFor(new JsonObject { ["reference"] = $"{ForeignBase}/{known}" }, nhs)));

        var issue = outcome.Issue.Single();
        Assert.Equal(["ServiceRequest.subject"], issue.Expression);
        Assert.Contains("epr.example.nhs.uk", issue.Diagnostics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ASubjectOnAnotherServer_WithAnNhsNumber_IsThePersonWithThatNumber()
    {
        using var client = await app.PartnerAsync();
        var (known, nhs) = await KnownPersonAsync(client);
        var (other, _) = await KnownPersonAsync(client);

        // The other server's id happens to be the id of someone else here: the NHS number decides.
        var subject = new JsonObject { ["reference"] = $"{ForeignBase}/{other}", ["identifier"] = NhsNumber(nhs) };
        var created = await FhirPartner.ParseAsync<ServiceRequest>(
            await client.PostAsync("/fhir/ServiceRequest", FhirPayloads.Body(ReferralFor(subject, nhs))), HttpStatusCode.Created);

        Assert.Equal(known, created.Subject.Reference);
    }

    [Fact]
    public async Task ASubjectOnThisServer_ByItsAbsoluteUrl_IsThatPerson()
    {
        using var client = await app.PartnerAsync();
        var (known, nhs) = await KnownPersonAsync(client);

        var ours = new Uri(client.BaseAddress, $"fhir/{known}").ToString();
        var created = await FhirPartner.ParseAsync<ServiceRequest>(
            await client.PostAsync("/fhir/ServiceRequest", FhirPayloads.Body(ReferralFor(new JsonObject { ["reference"] = ours }, nhs))), HttpStatusCode.Created);

        Assert.Equal(known, created.Subject.Reference);
    }

    [Fact]
    public async Task ASubjectWhoseReferenceAndNhsNumberDisagree_IsRefused()
    {
        using var client = await app.PartnerAsync();
        var (known, _) = await KnownPersonAsync(client);
        var (_, otherNhs) = await KnownPersonAsync(client);

        var outcome = await RefusedAsync(client, "/fhir/ServiceRequest",
            FhirPayloads.Body(ReferralFor(new JsonObject { ["reference"] = known, ["identifier"] = NhsNumber(otherNhs) }, otherNhs)));

        Assert.Equal(["ServiceRequest.subject"], outcome.Issue.Single().Expression);
    }

    [Fact]
    public async Task ASubjectInATransactionOnAnotherServer_IsRefused()
    {
        using var client = await app.PartnerAsync();
        var (known, nhs) = await KnownPersonAsync(client);
        var transaction = FhirPayloads.Example("referral-transaction.json", nhs);
        var entries = transaction["entry"]!.AsArray();
        entries.RemoveAt(0);
        entries[0]!["resource"]!["subject"] = new JsonObject { ["reference"] = $"{ForeignBase}/{known}" };

        var outcome = await RefusedAsync(client, "/fhir", FhirPayloads.Body(transaction.ToJsonString()));

        Assert.Equal(["Bundle.entry[0]", "ServiceRequest.subject"], outcome.Issue.Single().Expression);
    }
}

public sealed class FhirInputOnSqliteTests(AppFactory app) : FhirInputTests(app), IClassFixture<AppFactory>;

public sealed class FhirInputOnPostgresTests(PostgresAppFactory app) : FhirInputTests(app), IClassFixture<PostgresAppFactory>;

/// <summary>Whatever goes wrong inside, a FHIR client is answered in FHIR: never the HTML error page people get.</summary>
public sealed class FhirFailureTests
{
    [Fact]
    public async Task AFailureNobodyExpected_IsA500OperationOutcome_NotAnHtmlPage()
    {
        await using var app = new AppFactory();
        using var client = await app.PartnerAsync();
        // Pooling is off in tests, so the next connection opens the path afresh and finds a folder, not a store.
        var file = new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder(app.ConnectionString).DataSource;
        File.Delete(file);
        File.Delete(file + "-wal");
        File.Delete(file + "-shm");
        Directory.CreateDirectory(file);
        try
        {
            var response = await client.GetAsync("/fhir/ServiceRequest?_count=1");

            var outcome = await FhirPartner.ParseAsync<OperationOutcome>(response, HttpStatusCode.InternalServerError);
            Assert.Equal(OperationOutcome.IssueType.Exception, outcome.Issue.Single().Code);
            Assert.DoesNotContain("Sqlite", outcome.Issue.Single().Diagnostics, StringComparison.OrdinalIgnoreCase);
        }
        finally
        {
            Directory.Delete(file);
        }
    }
}
