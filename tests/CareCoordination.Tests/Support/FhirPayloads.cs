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

    private static string RepositoryRoot()
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
