using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CareCoordination.Features.Fhir;
using CareCoordination.Tests.Support;
using Hl7.Fhir.Model;
using Xunit.Abstractions;
using Task = System.Threading.Tasks.Task;

namespace CareCoordination.Tests.Features.Fhir;

/// <summary>
/// A few hundred requests made from the documented examples and the published profiles' examples, each broken in one
/// or two random ways, from the bytes (flipped, cut, not UTF-8) to the JSON (wrong types, huge numbers, deep nesting)
/// to FHIR (abstract or wrong-case resource types, shared fullUrls, references to other servers). Whatever is sent, the
/// answer is never a 5xx; a refusal is an OperationOutcome and leaves the store as it was. The seed is fixed so that a
/// failure can be repeated; set CARECOORDINATION_FUZZ_SEED to try others.
/// </summary>
public abstract class FhirFuzzTests(AppFactory app, ITestOutputHelper output)
{
    private const int Cases = 400;
    private const string SeedVariable = "CARECOORDINATION_FUZZ_SEED";

    private static readonly int Seed = int.TryParse(Environment.GetEnvironmentVariable(SeedVariable), CultureInfo.InvariantCulture, out var seed) ? seed : 15_2025;

    [Fact]
    public async Task MutatedRequests_NeverGetA5xx_AndEveryRefusalIsAnOperationOutcomeThatStoresNothing()
    {
        using var client = await app.PartnerAsync();
        var random = new Random(Seed);
        var stored = await app.StoredAsync();
        var failures = new List<string>();
        var statuses = new SortedDictionary<int, int>();

        for (var number = 0; number < Cases; number++)
        {
            var (url, request) = await RequestAsync(random);
            var mutations = new List<string>();
            var body = Mutate(random, request, mutations);

            var response = await client.PostAsync(url, FhirPayloads.Body(body));

            var status = (int)response.StatusCode;
            statuses[status] = statuses.GetValueOrDefault(status) + 1;
            var answer = await response.Content.ReadAsStringAsync();
            var now = await app.StoredAsync();
            var fault = status >= 500 ? "a server error"
                : status >= 400 && !IsOperationOutcome(response, answer) ? "a refusal without an OperationOutcome"
                : status >= 400 && now != stored ? $"a refusal that changed the store ({stored} became {now})"
                : null;
            if (fault is not null)
            {
                failures.Add($"case {number} ({string.Join("; ", mutations)}) POST {url}: {fault}: {status} {Shorten(answer)}\n    sent: {Shorten(Encoding.UTF8.GetString(body))}");
            }
            stored = now;
        }

        output.WriteLine($"Seed {Seed}: answers {string.Join(", ", statuses.Select(s => $"{s.Key} x{s.Value}"))}");
        Assert.True(failures.Count == 0, $"Seed {Seed} (set {SeedVariable} to repeat or vary it): {failures.Count} of {Cases} cases failed.\n"
            + string.Join("\n", failures.Take(15)));
        // The mutations must reach past the parser: some requests are still accepted, and most are refused.
        Assert.True(statuses.Keys.Any(s => s < 300) && statuses.Keys.Any(s => s >= 400),
            $"Seed {Seed}: answers {string.Join(", ", statuses.Select(s => $"{s.Key}x{s.Value}"))}");
    }

    private static bool IsOperationOutcome(HttpResponseMessage response, string answer)
    {
        if (response.Content.Headers.ContentType?.MediaType != FhirMapping.ContentType)
        {
            return false;
        }
        try
        {
            return JsonSerializer.Deserialize<Resource>(answer, FhirMapping.Json) is OperationOutcome { Issue.Count: > 0 };
        }
        catch (Exception)
        {
            return false;
        }
    }

    private static string Shorten(string text) => text.Length <= 400 ? text : text[..400] + $"... ({text.Length} characters)";

    /// <summary>A valid request, new each time (its own NHS number and identifiers): one of the ways partners send referrals.</summary>
    private async Task<(string Url, JsonObject Body)> RequestAsync(Random random)
    {
        var nhs = (await app.NewNhsNumberAsync()).Replace(" ", "", StringComparison.Ordinal);
        return random.Next(5) switch
        {
            0 => ("/fhir/ServiceRequest", FhirPayloads.ContainedReferral(nhs)),
            1 => ("/fhir", FhirPayloads.Example("referral-transaction.json", nhs)),
            2 => ("/fhir/$process-message", FhirPayloads.Example("referral-message.json", nhs)),
            3 => ("/fhir", Batch(FhirPayloads.ContainedReferral(nhs), FhirPayloads.ContainedReferral((await app.NewNhsNumberAsync()).Replace(" ", "", StringComparison.Ordinal)))),
            _ => ("/fhir", FhirPayloads.ProfileExamplesTransaction(nhs)),
        };
    }

    private static JsonObject Batch(params JsonObject[] referrals) => new()
    {
        ["resourceType"] = "Bundle",
        ["type"] = "batch",
        ["entry"] = new JsonArray([.. referrals.Select(r => (JsonNode)new JsonObject
        {
            ["resource"] = r,
            ["request"] = new JsonObject { ["method"] = "POST", ["url"] = "ServiceRequest" },
        })]),
    };

    /// <summary>One or two faults, each named in <paramref name="applied"/> so that a failure says what was sent.</summary>
    private static byte[] Mutate(Random random, JsonObject request, List<string> applied)
    {
        var count = random.Next(4) == 0 ? 2 : 1;
        var text = request.ToJsonString();
        for (var i = 0; i < count; i++)
        {
            text = MutateText(random, text, applied, out var bytes);
            if (bytes is not null)
            {
                return bytes;
            }
        }
        return Encoding.UTF8.GetBytes(text);
    }

    /// <summary>A fault in the JSON text, or, for faults below text (bytes), the bytes to send as they are.</summary>
    private static string MutateText(Random random, string text, List<string> applied, out byte[]? bytes)
    {
        bytes = null;
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(text);
            // A node reads its properties, and unescapes its strings, only when asked: an earlier fault (a property given
            // twice, a lone surrogate) shows only then, and leaves the faults in bytes.
            _ = root is null ? 0 : Nodes(root).Count();
            _ = root?.ToJsonString();
        }
        catch (Exception error) when (error is JsonException or ArgumentException or InvalidOperationException)
        {
            root = null;
        }
        var nodes = root is null ? [] : Nodes(root).ToList();
        var strings = nodes.Where(n => n.Node is JsonValue v && v.GetValueKind() == JsonValueKind.String).ToList();
        // The faults in JSON need a resource with strings in it to break; the faults in bytes need nothing.
        var kind = random.Next(root is JsonObject && strings.Count > 0 ? 21 : 4);
        if (text.Length == 0 && kind is 0 or 1 or 3)
        {
            // Nothing to flip, cut or put bytes into (an earlier fault emptied the body): add to it instead.
            kind = 2;
        }
        switch (kind)
        {
            case 0:
                bytes = Encoding.UTF8.GetBytes(text);
                var flips = random.Next(1, 4);
                for (var i = 0; i < flips; i++)
                {
                    bytes[random.Next(bytes.Length)] ^= (byte)(1 << random.Next(8));
                }
                applied.Add($"{flips} bits flipped");
                return text;
            case 1:
                var cut = random.Next(text.Length);
                applied.Add($"cut at {cut}");
                return text[..cut];
            case 2:
                string[] trailers = [" thank you", "{}", "\n" + text, " ,", "\0", "]"];
                var trailer = trailers[random.Next(trailers.Length)];
                applied.Add($"trailing {JsonSerializer.Serialize(trailer.Length > 10 ? trailer[..10] + "..." : trailer)}");
                return text + trailer;
            case 3:
                byte[][] invalid = [[0xC3, 0x28], [0xFF], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xC0, 0xAF], [0xE2, 0x82]];
                var sequence = invalid[random.Next(invalid.Length)];
                var utf8 = Encoding.UTF8.GetBytes(text);
                var at = random.Next(utf8.Length);
                bytes = [.. utf8[..at], .. sequence, .. utf8[at..]];
                applied.Add($"invalid UTF-8 {Convert.ToHexString(sequence)} at byte {at}");
                return text;
        }
        var body = (JsonObject)root!;
        var (parent, key, node) = nodes[random.Next(nodes.Count)];
        const string Marker = "\"__FUZZ__\"";
        string where;
        switch (kind)
        {
            case 4:
                var target = strings[random.Next(strings.Count)];
                string[] escapes = ["\\ud800", "\\udc00", "\\udbff\\u0041", "\\u0000", "a\\u0000b", "\\uDFFF\\uD800"];
                var escape = escapes[random.Next(escapes.Length)];
                where = Set(target, JsonValue.Create("__FUZZ__"));
                applied.Add($"{where} is \"{escape}\"");
                return body.ToJsonString().Replace(Marker, $"\"{escape}\"", StringComparison.Ordinal);
            case 5:
            case 6:
                var types = strings.Where(n => n.Key == "resourceType").ToList();
                if (types.Count == 0)
                {
                    goto default;
                }
                var type = types[random.Next(types.Count)];
                var name = (string)type.Node!;
                string[] wrong = ["Resource", "DomainResource", "Element", "BackboneElement", name.ToLowerInvariant(), name.ToUpperInvariant(), name + " ", "", "Unknown"];
                var replacement = wrong[random.Next(wrong.Length)];
                where = Set(type, JsonValue.Create(replacement));
                applied.Add($"{where} {name} is \"{replacement}\"");
                return body.ToJsonString();
            case 7:
                var contained = nodes.Where(n => n.Key == "contained" && n.Node is JsonArray { Count: > 0 }).ToList();
                if (contained.Count == 0)
                {
                    goto default;
                }
                var list = contained[random.Next(contained.Count)];
                JsonNode?[] shapes = [list.Node![0]?.DeepClone(), JsonValue.Create("Patient"), JsonValue.Create(1), null, new JsonArray(JsonValue.Create(1))];
                var shape = random.Next(shapes.Length);
                where = Set(list, shapes[shape]);
                applied.Add($"{where} is {shapes[shape]?.ToJsonString() ?? "null"}");
                return body.ToJsonString();
            case 8:
                var entries = (body["entry"] as JsonArray)?.OfType<JsonObject>().ToList() ?? [];
                if (entries.Count < 2)
                {
                    goto default;
                }
                var shared = entries[0]["fullUrl"] is JsonValue first && first.TryGetValue<string>(out var url) ? url : "urn:uuid:00000000-0000-4000-8000-000000000000";
                foreach (var entry in entries)
                {
                    entry["fullUrl"] = shared;
                }
                applied.Add($"every entry's fullUrl is {shared}");
                return body.ToJsonString();
            case 9:
                string[] numbers = ["1e400", "-1e400", "99999999999999999999999999999999", "1.7976931348623157e309", "0.0000000000000000000000000000000000000000001", "-0", "1E-400", "9223372036854775808"];
                var number = numbers[random.Next(numbers.Length)];
                where = Set((parent, key, node), JsonValue.Create("__FUZZ__"));
                applied.Add($"{where} is {number}");
                return body.ToJsonString().Replace(Marker, number, StringComparison.Ordinal);
            case 10:
                var depth = random.Next(2) == 0 ? random.Next(10, 60) : random.Next(60, 2000);
                var (open, close) = random.Next(2) == 0 ? ("[", "]") : ("{\"extension\":", "}");
                where = Set((parent, key, node), JsonValue.Create("__FUZZ__"));
                applied.Add($"{where} nested {depth} deep in {open}");
                return body.ToJsonString().Replace(Marker, string.Concat(Enumerable.Repeat(open, depth)) + "1" + string.Concat(Enumerable.Repeat(close, depth)), StringComparison.Ordinal);
            case 11:
            case 12:
            case 13:
                JsonNode?[] values = [JsonValue.Create(42), JsonValue.Create(true), null, new JsonObject(), new JsonArray(), JsonValue.Create("text"),
                    JsonValue.Create(-1.5), new JsonArray(JsonValue.Create("a"), JsonValue.Create(1)), new JsonObject { ["resourceType"] = "Patient" }];
                var value = random.Next(values.Length);
                where = Set((parent, key, node), values[value]);
                applied.Add($"{where} is {values[value]?.ToJsonString() ?? "null"}");
                return body.ToJsonString();
            case 14:
            case 15:
                var removed = Name((parent, key, node));
                if (parent is JsonObject owner)
                {
                    owner.Remove(key!);
                }
                else if (parent is JsonArray array)
                {
                    array.RemoveAt(array.IndexOf(node));
                }
                applied.Add($"{removed} removed");
                return body.ToJsonString();
            case 16:
                var references = strings.Where(n => n.Key == "reference").ToList();
                if (references.Count == 0)
                {
                    goto default;
                }
                var reference = references[random.Next(references.Count)];
                string[] elsewhere = ["https://epr.example.nhs.uk/fhir/Patient/1", "http://localhost/fhir/Patient/1", "Patient/1", "Patient/abc", "urn:uuid:9f0c2b1e-0000-4000-8000-000000000001",
                    "#missing", "Organization/1", "https://epr.example.nhs.uk/fhir/Organization/5", "http://localhost:1/fhir/Patient/1", "Patient/1/_history/1", "mailto:x@example.org"];
                var pointed = elsewhere[random.Next(elsewhere.Length)];
                where = Set(reference, JsonValue.Create(pointed));
                applied.Add($"{where} is {pointed}");
                return body.ToJsonString();
            case 17:
                var duplicate = strings[random.Next(strings.Count)];
                if (duplicate.Key is null)
                {
                    goto default;
                }
                where = Set(duplicate, JsonValue.Create("__FUZZ__"));
                applied.Add($"{where} given twice");
                return body.ToJsonString().Replace(Marker, $"{JsonSerializer.Serialize((string)duplicate.Node!)},\"{duplicate.Key}\":\"again\"", StringComparison.Ordinal);
            case 19:
                // Valid but unusual text: what a partner's free text really holds.
                string[] texts = ["Ffion ap Siôn", "李小龙", "مرحبا", "e\u0301", "😀👩‍⚕️", "\t tab\r\nnew line", "", " ", "<script>alert(1)</script>", "'; DROP TABLE referral; --", "\u00a0"];
                var plain = strings[random.Next(strings.Count)];
                var chosen = texts[random.Next(texts.Length)];
                where = Set(plain, JsonValue.Create(chosen));
                applied.Add($"{where} is {JsonSerializer.Serialize(chosen)}");
                return body.ToJsonString();
            case 18:
                var longText = strings[random.Next(strings.Count)];
                var length = random.Next(2) == 0 ? random.Next(1_000, 100_000) : 2 * 1024 * 1024;
                where = Set(longText, JsonValue.Create(new string('x', length)));
                applied.Add($"{where} is {length} characters");
                return body.ToJsonString();
            default:
                string[] whole = ["", "null", "[]", "\"ServiceRequest\"", "{}", "{\"resourceType\":\"ServiceRequest\"}", "{\"resourceType\":null}", "{\"resourceType\":{}}", "[" + text + "]"];
                var replaced = whole[random.Next(whole.Length)];
                applied.Add($"the body is {(replaced.Length > 40 ? replaced[..40] + "..." : replaced)}");
                return replaced;
        }
    }

    /// <summary>Every node below the root, with its parent and its property name (null in an array).</summary>
    private static IEnumerable<(JsonNode Parent, string? Key, JsonNode? Node)> Nodes(JsonNode parent)
    {
        var children = parent switch
        {
            JsonObject o => o.Select(p => (Key: (string?)p.Key, Node: p.Value)),
            JsonArray a => a.Select(n => (Key: (string?)null, Node: n)),
            _ => [],
        };
        foreach (var (key, node) in children.ToList())
        {
            yield return (parent, key, node);
            if (node is not null)
            {
                foreach (var below in Nodes(node))
                {
                    yield return below;
                }
            }
        }
    }

    /// <summary>Puts the value where the node was, and answers where that is.</summary>
    private static string Set((JsonNode Parent, string? Key, JsonNode? Node) at, JsonNode? value)
    {
        var name = Name(at);
        if (at.Parent is JsonObject owner)
        {
            owner[at.Key!] = value;
        }
        else if (at.Parent is JsonArray array)
        {
            array[array.IndexOf(at.Node)] = value;
        }
        return name;
    }

    private static string Name((JsonNode Parent, string? Key, JsonNode? Node) at) => at.Node?.GetPath() ?? (at.Parent.GetPath() + (at.Key is null ? "[]" : "." + at.Key));
}

public sealed class FhirFuzzOnSqliteTests(AppFactory app, ITestOutputHelper output) : FhirFuzzTests(app, output), IClassFixture<AppFactory>;

public sealed class FhirFuzzOnPostgresTests(PostgresAppFactory app, ITestOutputHelper output) : FhirFuzzTests(app, output), IClassFixture<PostgresAppFactory>;
