// Firely's model marks every element nullable; here a missing element fails the test just as an assert would.
#pragma warning disable CS8600, CS8602, CS8604

using System.Net;
using System.Text.Json.Nodes;
using CareCoordination.Features.Fhir;
using CareCoordination.Tests.Support;
using Hl7.Fhir.Model;
using Task = System.Threading.Tasks.Task;

namespace CareCoordination.Tests.Features.Fhir;

/// <summary>
/// Prefer: return=minimal (FHIR's http page, RFC 7240): a partner that only sends referrals is told what was made and where,
/// without the resources read back and written out for it. Without it, or with a preference this server does not know, the
/// answer carries the resources as before.
/// </summary>
public sealed class FhirReturnMinimalTests(AppFactory app) : IClassFixture<AppFactory>
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
        Assert.Matches("^Patient/[0-9]+$", reply.Entry[0].Response.Location);
        // A new referral is version 1, known without reading it; the person's version is not named (see Written.Version).
        Assert.Matches("^ServiceRequest/[0-9]+/_history/1$", reply.Entry[1].Response.Location);
        Assert.Equal("W/\"1\"", reply.Entry[1].Response.Etag);
        Assert.Null(reply.Entry[0].Response.Etag);
        Assert.All(reply.Entry, entry => Assert.EndsWith("/fhir/" + entry.Response.Location.Split("/_history/")[0], entry.FullUrl, StringComparison.Ordinal));
        // What it names was made: the referral, at that version, for the person sent.
        var referral = await FhirPartner.ParseAsync<ServiceRequest>(await client.GetAsync("/fhir/" + reply.Entry[1].Response.Location));
        Assert.Equal("1", referral.Meta.VersionId);
        Assert.Equal(reply.Entry[0].Response.Location, referral.Subject.Reference);
        var person = await FhirPartner.ParseAsync<Patient>(await client.GetAsync("/fhir/" + reply.Entry[0].Response.Location));
        Assert.Equal(nhs, person.Identifier.Single(i => i.System == FhirMapping.NhsNumberSystem).Value);
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
