using System.Text;
using System.Text.Json.Nodes;
using CareCoordination.Domain;

namespace CareCoordination.Bench;

/// <summary>
/// What the partner sends: the published profiles' examples of a person and a referral (fhir-profiles/examples) in one
/// transaction Bundle, as the FHIR tests post them (FhirPayloads.ProfileExamplesTransaction), each made a new referral of a
/// new person: a unique referral identifier and a unique NHS number with a valid check digit.
/// </summary>
public sealed class Submissions
{
    private const string ExampleNhsNumber = "9434765919";
    private const string IdentifierMark = "BENCH-IDENTIFIER";
    private readonly string _template;
    private readonly string _run;
    private readonly int _firstStem;
    private int _next = -1;

    public Submissions()
    {
        const string personUrl = "urn:uuid:5d6e7f80-1a2b-4c3d-8e9f-0a1b2c3d4e5f";
        var person = JsonNode.Parse(Repository.Example("Patient-example.json"))!.AsObject();
        var referral = JsonNode.Parse(Repository.Example("ServiceRequest-example.json"))!.AsObject();
        referral["subject"]!["reference"] = personUrl;
        referral["identifier"]![0]!["value"] = IdentifierMark;
        // The example's expected discharge date is fixed in the past, which the form's own rule refuses (as the tests do).
        referral.Remove("occurrenceDateTime");
        _template = new JsonObject
        {
            ["resourceType"] = "Bundle",
            ["type"] = "transaction",
            ["entry"] = new JsonArray(
                new JsonObject { ["fullUrl"] = personUrl, ["resource"] = person, ["request"] = new JsonObject { ["method"] = "POST", ["url"] = "Patient" } },
                new JsonObject { ["resource"] = referral, ["request"] = new JsonObject { ["method"] = "POST", ["url"] = "ServiceRequest" } }),
        }.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = false });
        if (!_template.Contains(ExampleNhsNumber, StringComparison.Ordinal))
        {
            throw new InvalidOperationException("fhir-profiles/examples no longer carry the NHS number " + ExampleNhsNumber + ": update Submissions");
        }
        // Numbers of this run counted from a random start, so that runs on one store (restart) do not collide.
        _run = Guid.NewGuid().ToString("N")[..8];
        _firstStem = Random.Shared.Next(0, 5_000_000);
    }

    /// <summary>The next new referral as an HTTP body, as a partner posts it to /fhir.</summary>
    public StringContent NextContent() => new(Next().Json, Encoding.UTF8, "application/fhir+json");

    /// <summary>The size of one submission in bytes.</summary>
    public int Bytes => Encoding.UTF8.GetByteCount(Next().Json);

    /// <summary>The next new referral: its Bundle as JSON, its NHS number and its identifier.</summary>
    public (string Json, string NhsNumber, string Identifier) Next()
    {
        var nhsNumber = NewNhsNumber();
        var identifier = $"BENCH-{_run}-{nhsNumber}";
        return (_template.Replace(ExampleNhsNumber, nhsNumber, StringComparison.Ordinal).Replace(IdentifierMark, identifier, StringComparison.Ordinal),
            nhsNumber, identifier);
    }

    /// <summary>
    /// Unique and in no order, as real NHS numbers arrive: the run's next count, multiplied by an odd number not divisible by 5
    /// modulo 10^7 (one-to-one), after 97, which the demo's people (999...) do not use. Numbers counted up in order were appended to the bare app's empty store's index, but
    /// went into the middle of the product's, among the demo's people, splitting its pages half full: 25 B a referral that
    /// was the bench's, not the product's (issue 14).
    /// </summary>
    private string NewNhsNumber()
    {
        while (true)
        {
            var scattered = (ulong)(_firstStem + Interlocked.Increment(ref _next)) * 2_654_435_761UL % 10_000_000UL;
            var stem = "97" + scattered.ToString("D7", System.Globalization.CultureInfo.InvariantCulture);
            var check = NhsNumber.CheckDigit(stem);
            if (check >= 0)
            {
                return stem + check.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
        }
    }
}
