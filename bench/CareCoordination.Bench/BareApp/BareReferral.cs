using System.Text.Json;

namespace CareCoordination.Bench.BareApp;

/// <summary>
/// What the bare references keep of a partner's transaction Bundle (Patient + ServiceRequest): the same facts the product
/// stores in its person, referral, referral_person, triage_task and change rows, read with System.Text.Json alone.
/// </summary>
public sealed record BareReferral(
    string NhsNumber, string GivenName, string FamilyName, string? BirthDate, string? Sex, string? AddressLine, string? Postcode,
    string? GpPractice, string? CarerName, string? CarerRelationship, string? CarerContact, bool EasyRead, bool LivesAlone,
    string SenderSystem, string SenderValue, string? Requester, string? Pathway, string? Urgency, string? Ward, string? Bed,
    string? MedicallyOptimised, string Needs, string Risks, bool ConsentToShare, string? ConsentGivenBy, string? LawfulReason,
    string? PersonWishes, string? FamilyExpectations, string? StaffExpectations, string? Strengths, string? Goals, string? Summary)
{
    private const string NhsNumberSystem = "https://fhir.nhs.uk/Id/nhs-number";

    /// <summary>The referral in a transaction Bundle, or an exception naming what is missing (the bare app answers 400).</summary>
    public static BareReferral Parse(ReadOnlySpan<byte> json)
    {
        var reader = new Utf8JsonReader(json);
        using var document = JsonDocument.ParseValue(ref reader);
        var bundle = document.RootElement;
        if (Text(bundle, "resourceType") != "Bundle" || Text(bundle, "type") != "transaction")
        {
            throw new FormatException("not a transaction Bundle");
        }
        JsonElement? patient = null, request = null;
        foreach (var entry in bundle.GetProperty("entry").EnumerateArray())
        {
            var resource = entry.GetProperty("resource");
            switch (Text(resource, "resourceType"))
            {
                case "Patient": patient = resource; break;
                case "ServiceRequest": request = resource; break;
            }
        }
        if (patient is not { } p || request is not { } r)
        {
            throw new FormatException("the Bundle needs a Patient and a ServiceRequest");
        }

        var nhsNumber = Array(p, "identifier").FirstOrDefault(i => Text(i, "system") == NhsNumberSystem) is { ValueKind: JsonValueKind.Object } id
            ? Text(id, "value") : null;
        var name = Array(p, "name").FirstOrDefault();
        var address = Array(p, "address").FirstOrDefault();
        var contact = Array(p, "contact").FirstOrDefault();
        var identifier = Array(r, "identifier").FirstOrDefault();
        var stay = Extension(r, "hospital-stay");
        var consent = Extension(r, "consent-to-share");
        var matters = Extension(r, "what-matters");
        return new BareReferral(
            nhsNumber ?? throw new FormatException("the Patient has no NHS number"),
            string.Join(' ', Array(name, "given").Select(g => g.GetString())),
            Text(name, "family") ?? throw new FormatException("the Patient has no family name"),
            Text(p, "birthDate"), Text(p, "gender"),
            Array(address, "line").FirstOrDefault() is { ValueKind: JsonValueKind.String } line ? line.GetString() : null,
            Text(address, "postalCode"),
            Array(p, "generalPractitioner").FirstOrDefault() is { ValueKind: JsonValueKind.Object } gp && gp.TryGetProperty("identifier", out var gpId) ? Text(gpId, "value") : null,
            contact.ValueKind == JsonValueKind.Object && contact.TryGetProperty("name", out var carer) ? Text(carer, "text") : null,
            Text(Array(contact, "relationship").FirstOrDefault(), "text"),
            Text(Array(contact, "telecom").FirstOrDefault(), "value"),
            Extension(p, "easy-read") is { } easy && easy.TryGetProperty("valueBoolean", out var e) && e.GetBoolean(),
            Extension(p, "lives-alone") is { } alone && alone.TryGetProperty("valueBoolean", out var a) && a.GetBoolean(),
            Text(identifier, "system") ?? "", Text(identifier, "value") ?? throw new FormatException("the ServiceRequest has no identifier"),
            r.TryGetProperty("requester", out var requester) && requester.TryGetProperty("identifier", out var rid) ? Text(rid, "value") : null,
            r.TryGetProperty("code", out var code) ? Text(Array(code, "coding").FirstOrDefault(), "code") : null,
            Text(r, "priority"),
            Part(stay, "ward", "valueString"), Part(stay, "bed", "valueString"), Part(stay, "medicallyOptimised", "valueDate"),
            JsonSerializer.Serialize(Array(r, "orderDetail").Select(d => Text(Array(d, "coding").FirstOrDefault(), "code")).ToList()),
            JsonSerializer.Serialize(Extensions(r, "referral-risk")
                .Select(x => x.TryGetProperty("valueCodeableConcept", out var c) ? Text(Array(c, "coding").FirstOrDefault(), "code") : null).ToList()),
            Part(consent, "shared", "valueBoolean") == "true", Part(consent, "givenBy", "valueString"), Part(consent, "lawfulReason", "valueString"),
            Part(matters, "personWishes", "valueString"), Part(matters, "familyExpectations", "valueString"),
            Part(matters, "staffExpectations", "valueString"), Part(matters, "strengths", "valueString"), Part(matters, "goals", "valueString"),
            Text(Array(r, "note").FirstOrDefault(), "text"));
    }

    private static string? Text(JsonElement element, string property) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(property, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString() : null;

    private static IEnumerable<JsonElement> Array(JsonElement element, string property) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(property, out var value) && value.ValueKind == JsonValueKind.Array
            ? value.EnumerateArray() : [];

    private static IEnumerable<JsonElement> Extensions(JsonElement element, string name) =>
        Array(element, "extension").Where(x => Text(x, "url")?.EndsWith("/" + name, StringComparison.Ordinal) == true);

    private static JsonElement? Extension(JsonElement element, string name) => Extensions(element, name).Cast<JsonElement?>().FirstOrDefault();

    /// <summary>A complex extension's part, as text whatever its value type.</summary>
    private static string? Part(JsonElement? extension, string url, string valueProperty)
    {
        if (extension is not { } x)
        {
            return null;
        }
        var part = Array(x, "extension").FirstOrDefault(p => Text(p, "url") == url);
        return part.ValueKind == JsonValueKind.Object && part.TryGetProperty(valueProperty, out var value)
            ? value.ValueKind switch { JsonValueKind.True => "true", JsonValueKind.False => "false", _ => value.GetString() }
            : null;
    }
}
