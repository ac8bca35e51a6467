using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Dapper;

namespace CareCoordination.Tests.Support;

/// <summary>
/// What partners send, as JSON text rather than Firely objects, so that a test can break it at the level of bytes:
/// the documented examples (docs/examples) made new each time (a fresh identifier and NHS number), and the
/// counts of what a refused request must leave unchanged.
/// </summary>
public static class FhirPayloads
{
    private static readonly string Examples = Path.Combine(RepositoryRoot(), "docs", "examples");

    /// <summary>docs/examples/{file}, with every referral identifier and NHS number in it made new, so that it is a new referral.</summary>
    public static JsonObject Example(string file, string nhsNumber)
    {
        // The examples' own referral identifiers (R-1000 ...) appear in the identifier and in any ifNoneExist naming it.
        var json = File.ReadAllText(Path.Combine(Examples, file))
            .Replace("\"9434765919\"", $"\"{nhsNumber}\"", StringComparison.Ordinal)
            .Replace("|9434765919", $"|{nhsNumber}", StringComparison.Ordinal);
        json = System.Text.RegularExpressions.Regex.Replace(json, "R-10[0-9][0-9]", "F-" + Guid.NewGuid().ToString("N"));
        var example = JsonNode.Parse(json)!.AsObject();
        if ((string?)example["type"] == "message")
        {
            example["id"] = Guid.NewGuid().ToString();
        }
        return example;
    }

    /// <summary>A create with the person contained (referral-contained.json).</summary>
    public static JsonObject ContainedReferral(string nhsNumber) => Example("referral-contained.json", nhsNumber);

    /// <summary>That example's Patient on its own, with no local id: a registration (POST /fhir/Patient).</summary>
    public static JsonObject Person(string nhsNumber)
    {
        var person = ContainedReferral(nhsNumber)["contained"]![0]!.DeepClone().AsObject();
        person.Remove("id");
        return person;
    }

    /// <summary>The published profiles' examples of a referral and its person, sent together in a transaction as a partner would.</summary>
    public static JsonObject ProfileExamplesTransaction(string nhsNumber)
    {
        const string personUrl = "urn:uuid:5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f";
        JsonObject Read(string name) => JsonNode.Parse(File.ReadAllText(Path.Combine(RepositoryRoot(), "fhir-profiles", "examples", name))
            .Replace("\"9434765919\"", $"\"{nhsNumber}\"", StringComparison.Ordinal))!.AsObject();
        var referral = Read("ServiceRequest-example.json");
        referral["subject"]!["reference"] = personUrl;
        referral["identifier"]![0]!["value"] = "P-" + Guid.NewGuid().ToString("N");
        // The example's expected discharge date is fixed in the past, which the form's own rule refuses.
        referral.Remove("occurrenceDateTime");
        return new JsonObject
        {
            ["resourceType"] = "Bundle",
            ["type"] = "transaction",
            ["entry"] = new JsonArray(
                new JsonObject { ["fullUrl"] = personUrl, ["resource"] = Read("Patient-example.json"), ["request"] = new JsonObject { ["method"] = "POST", ["url"] = "Patient" } },
                new JsonObject { ["resource"] = referral, ["request"] = new JsonObject { ["method"] = "POST", ["url"] = "ServiceRequest" } }),
        };
    }

    public static ByteArrayContent Body(string json) => Body(Encoding.UTF8.GetBytes(json));

    public static ByteArrayContent Body(byte[] bytes)
    {
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/fhir+json");
        return content;
    }

    /// <summary>What a refused request may not change: referrals, persons, tasks, change rows, kept versions and processed messages.</summary>
    public static async Task<string> StoredAsync(this AppFactory app)
    {
        await using var connection = await app.OpenAsync();
        var counts = new List<string>();
        foreach (var table in new[] { "referral", "person", "triage_task", "change", "fhir_version", "fhir_message", "referral_note" })
        {
            counts.Add($"{table}={await connection.ExecuteScalarAsync<long>($"SELECT COUNT(*) FROM {table}")}");
        }
        return string.Join(", ", counts);
    }

    internal static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "CareCoordination.sln")))
            {
                return directory.FullName;
            }
        }
        throw new InvalidOperationException("The tests run outside the repository: CareCoordination.sln not found above " + AppContext.BaseDirectory);
    }
}
