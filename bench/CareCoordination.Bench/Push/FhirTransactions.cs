using System.Globalization;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;

namespace CareCoordination.Bench.Push;

/// <summary>
/// What a partner sends: the published profiles' Patient and ServiceRequest examples as one FHIR transaction Bundle
/// (the issue's ~5 KB shape), each with a new NHS number and referral identifier so each is a new referral.
/// </summary>
public sealed class FhirTransactions(string repositoryRoot)
{
    private const string PersonUrl = "urn:uuid:5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f";
    private readonly string _patient = File.ReadAllText(Path.Combine(repositoryRoot, "fhir-profiles", "examples", "Patient-example.json"));
    private readonly string _referral = File.ReadAllText(Path.Combine(repositoryRoot, "fhir-profiles", "examples", "ServiceRequest-example.json"));
    private int _counter;

    public ByteArrayContent Next()
    {
        var patient = JsonNode.Parse(_patient.Replace("\"9434765919\"", $"\"{NextNhsNumber()}\"", StringComparison.Ordinal))!;
        var referral = JsonNode.Parse(_referral)!;
        referral["subject"]!["reference"] = PersonUrl;
        referral["identifier"]![0]!["value"] = "B-" + Guid.NewGuid().ToString("N");
        // The example's expected discharge date is in the past, which the form's own rule refuses.
        referral.AsObject().Remove("occurrenceDateTime");
        var bundle = new JsonObject
        {
            ["resourceType"] = "Bundle",
            ["type"] = "transaction",
            ["entry"] = new JsonArray(
                new JsonObject { ["fullUrl"] = PersonUrl, ["resource"] = patient, ["request"] = new JsonObject { ["method"] = "POST", ["url"] = "Patient" } },
                new JsonObject { ["resource"] = referral, ["request"] = new JsonObject { ["method"] = "POST", ["url"] = "ServiceRequest" } }),
        };
        var content = new ByteArrayContent(Encoding.UTF8.GetBytes(bundle.ToJsonString()));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/fhir+json");
        return content;
    }

    /// <summary>Valid (modulus 11) NHS numbers in the 9997 test range, counted up so none repeats in a run.</summary>
    private string NextNhsNumber()
    {
        while (true)
        {
            var nine = "9997" + Interlocked.Increment(ref _counter).ToString("D5", CultureInfo.InvariantCulture);
            var sum = 0;
            for (var i = 0; i < 9; i++)
            {
                sum += (nine[i] - '0') * (10 - i);
            }
            var check = (11 - sum % 11) % 11;
            if (check != 10)
            {
                return nine + check;
            }
        }
    }
}
