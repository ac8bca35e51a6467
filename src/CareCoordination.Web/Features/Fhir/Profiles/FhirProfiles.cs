using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Text.RegularExpressions;
using Hl7.Fhir.Model;

namespace CareCoordination.Features.Fhir.Profiles;

/// <summary>
/// One way a resource breaks its profile. Expression is a FHIRPath into the resource (for OperationOutcome
/// issue.expression); ElementId names the rule: the element of the profile, or of the extension definition
/// read as if inlined under its slice (ServiceRequest.extension:consent.extension:shared).
/// </summary>
public sealed record ProfileIssue(string Expression, string Message, string ElementId);

/// <summary>
/// The profiles in fhir-profiles/, read from the very JSON files published there (embedded in this assembly),
/// and a checker for the part of StructureDefinition they use: cardinality, extension slices (and the
/// sub-extensions of complex extensions), slices by a fixed value such as the NHS number's system, fixed and
/// pattern values, choice types, reference target types, and required or extensible bindings to our ValueSets.
/// It is not a general FHIR validator: what the profiles do not say, it does not check.
/// </summary>
public sealed partial class FhirProfiles
{
    public const string Canonical = "https://carecoordination.example.org/fhir";
    public const string Referral = Canonical + "/StructureDefinition/cc-referral";
    public const string Person = Canonical + "/StructureDefinition/cc-patient";
    public const string TriageTask = Canonical + "/StructureDefinition/cc-triage-task";
    public const string BedLocation = Canonical + "/StructureDefinition/cc-bed-location";
    public const string CapacityReport = Canonical + "/StructureDefinition/cc-capacity-report";

    /// <summary>Our profile for each resource type; for Location it applies to beds only (see <see cref="ProfileFor"/>).</summary>
    public static IReadOnlyDictionary<string, string> ByResourceType { get; } = new Dictionary<string, string>
    {
        ["ServiceRequest"] = Referral,
        ["Patient"] = Person,
        ["Task"] = TriageTask,
        ["Location"] = BedLocation,
        ["MeasureReport"] = CapacityReport,
    };

    private const string ResourcePrefix = "fhir-profiles/";

    private readonly Dictionary<string, Definition> _definitions;
    private readonly Dictionary<string, Dictionary<string, HashSet<string>>> _valueSets;

    /// <summary>
    /// Verdicts worked out before a write enters its store's one write turn (see <see cref="CheckAhead(Resource, ReadOnlyMemory{byte})"/>), kept
    /// with the very resource object they are for and gone with it.
    /// </summary>
    private readonly ConditionalWeakTable<Resource, IReadOnlyList<ProfileIssue>> _checkedAhead = [];

    private FhirProfiles(Dictionary<string, Definition> definitions, Dictionary<string, Dictionary<string, HashSet<string>>> valueSets)
    {
        _definitions = definitions;
        _valueSets = valueSets;
    }

    /// <summary>Reads every conformance resource embedded from fhir-profiles/ (the examples are not embedded).</summary>
    public static FhirProfiles Load()
    {
        var assembly = typeof(FhirProfiles).Assembly;
        var resources = new List<JsonElement>();
        foreach (var name in assembly.GetManifestResourceNames().Where(n => n.StartsWith(ResourcePrefix, StringComparison.Ordinal)))
        {
            using var stream = assembly.GetManifestResourceStream(name)!;
            using var document = JsonDocument.Parse(stream);
            resources.Add(document.RootElement.Clone());
        }
        if (resources.Count == 0)
        {
            throw new InvalidOperationException("No fhir-profiles resources are embedded in the web assembly: check its csproj.");
        }

        var codeSystems = resources.Where(r => Text(r, "resourceType") == "CodeSystem").ToDictionary(
            r => Text(r, "url")!,
            r => r.GetProperty("concept").EnumerateArray().Select(c => Text(c, "code")!).ToHashSet(StringComparer.Ordinal));
        var valueSets = resources.Where(r => Text(r, "resourceType") == "ValueSet").ToDictionary(
            r => Text(r, "url")!,
            r => r.GetProperty("compose").GetProperty("include").EnumerateArray().ToDictionary(
                include => Text(include, "system")!,
                include => include.TryGetProperty("concept", out var concepts)
                    ? concepts.EnumerateArray().Select(c => Text(c, "code")!).ToHashSet(StringComparer.Ordinal)
                    : codeSystems.TryGetValue(Text(include, "system")!, out var all) ? all
                    : throw new InvalidOperationException($"ValueSet {Text(r, "url")} includes {Text(include, "system")}, which fhir-profiles does not define.")));
        var definitions = resources.Where(r => Text(r, "resourceType") == "StructureDefinition")
            .Select(Definition.Read).ToDictionary(d => d.Url);
        return new FhirProfiles(definitions, valueSets);
    }

    /// <summary>The canonical url of the profile this resource should meet, or null when none of ours applies.</summary>
    public static string? ProfileFor(Resource resource) => resource switch
    {
        Location location when !IsBed(location) => null,
        _ => ByResourceType.GetValueOrDefault(resource.TypeName),
    };

    private static bool IsBed(Location location) =>
        location.PhysicalType?.Coding.Any(c => c is { System: FhirMapping.PhysicalTypeSystem, Code: "bd" }) == true;

    /// <summary>Checks the resource against <see cref="ProfileFor"/>; a resource no profile applies to has no issues.</summary>
    public IReadOnlyList<ProfileIssue> Validate(Resource resource) =>
        ProfileFor(resource) is { } profile ? Validate(resource, profile) : [];

    public IReadOnlyList<ProfileIssue> Validate(Resource resource, string profileUrl) => Validate(resource, profileUrl, null);

    /// <param name="asSent">The resource as its sender wrote it, when it was read from JSON: what the checker reads. Otherwise
    /// the resource is written out as FHIR JSON for it, which was a third of the check's cost (issue 14).</param>
    private IReadOnlyList<ProfileIssue> Validate(Resource resource, string profileUrl, JsonElement? asSent)
    {
        if (!_definitions.TryGetValue(profileUrl, out var definition) || definition.Type != resource.TypeName)
        {
            throw new ArgumentException($"{profileUrl} is not a profile of {resource.TypeName} in fhir-profiles.", nameof(profileUrl));
        }
        // The checker reads the resource as FHIR JSON, so that element names and choice types are exactly the ones
        // the profiles' element paths and fixed values are written in.
        var json = asSent ?? JsonSerializer.SerializeToElement(resource, resource.GetType(), FhirMapping.Json);
        var issues = new List<ProfileIssue>();
        Check(definition, new Node(json, null, resource.TypeName, -1, resource.TypeName), definition.Type, issues);
        return issues;
    }

    /// <summary>
    /// Checks a request's resource (a Bundle's entries, and what they contain) before the write that will <see cref="Require"/>
    /// it takes the write turn: the check is CPU only, and inside the turn it held up every other writer. Require then answers
    /// from the verdict, exactly as it would have, in the same order of faults. Only for a resource read from a request body,
    /// which nothing changes after it is read; <paramref name="asReceived"/> is that body, which FHIR JSON's parser took
    /// whole (FhirRequests.Parse), so each resource in it is the resource parsed from it, at the same place.
    /// </summary>
    public void CheckAhead(Resource resource, ReadOnlyMemory<byte> asReceived)
    {
        // A byte order mark may open the body (FhirRequests.Parse allows it); the JSON starts after it.
        using var document = JsonDocument.Parse(asReceived[FhirRequests.ByteOrderMarkLength(asReceived.Span)..],
            new JsonDocumentOptions { MaxDepth = FhirRequests.MaxDepth });
        CheckAhead(resource, document.RootElement);
    }

    private void CheckAhead(Resource resource, JsonElement? asSent)
    {
        // Read from the body only where it is this very resource; anything else is written out as before.
        if (asSent is { } sent && !(sent.ValueKind == JsonValueKind.Object && sent.TryGetProperty("resourceType", out var type) && type.ValueKind == JsonValueKind.String && type.ValueEquals(resource.TypeName)))
        {
            asSent = null;
        }
        if (ProfileFor(resource) is { } profile)
        {
            _checkedAhead.AddOrUpdate(resource, Validate(resource, profile, asSent));
        }
        if (resource is Bundle bundle)
        {
            var entries = Items(asSent, "entry", bundle.Entry.Count);
            for (var i = 0; i < bundle.Entry.Count; i++)
            {
                // A Bundle's own entries only: a Bundle inside one is not checked ahead (nor did the check that answered before).
                if (bundle.Entry[i].Resource is { } entry and not Bundle)
                {
                    CheckAhead(entry, entries?[i] is { ValueKind: JsonValueKind.Object } item && item.TryGetProperty("resource", out var json) ? json : null);
                }
            }
        }
        if (resource is DomainResource { Contained: { Count: > 0 } contained })
        {
            var sentContained = Items(asSent, "contained", contained.Count);
            for (var i = 0; i < contained.Count; i++)
            {
                CheckAhead(contained[i], sentContained?[i]);
            }
        }
    }

    /// <summary>The items of an array in the JSON as sent, where there are as many as the parsed resource has; else null.</summary>
    private static JsonElement[]? Items(JsonElement? json, string property, int count) =>
        json is { } value && value.TryGetProperty(property, out var array) && array.ValueKind == JsonValueKind.Array && array.GetArrayLength() == count
            ? [.. array.EnumerateArray()]
            : null;

    /// <summary>Refuses a resource that breaks its profile: a 400 whose OperationOutcome has one invalid issue per rule, saying where and why.</summary>
    public void Require(Resource resource)
    {
        var issues = _checkedAhead.TryGetValue(resource, out var ahead) ? ahead : Validate(resource);
        if (issues.Count > 0)
        {
            throw new InvalidResource([.. issues.Select(issue => new FhirIssue(issue.Expression, issue.Message))]);
        }
    }

    /// <summary>
    /// Checks one node against a profile or extension definition. The differential lists an element after its
    /// parent, so each element's nodes are found among its parent's; idRoot renames the definition's root
    /// (Extension) to the slice it was reached through, so nested rules read as one path.
    /// </summary>
    private void Check(Definition definition, Node root, string idRoot, List<ProfileIssue> issues)
    {
        // Sized once: an extension's check makes one of these for every extension checked.
        var nodes = new Dictionary<string, IReadOnlyList<Node>>(definition.Elements.Count + 1, StringComparer.Ordinal) { [definition.Type] = [root] };
        IReadOnlyList<Node> NodesOf(string id)
        {
            if (!nodes.TryGetValue(id, out var found))
            {
                var element = definition.Find(id) ?? Element.Bare(id);
                nodes[id] = found = [.. NodesOf(element.ParentId).SelectMany(parent => parent.Children(element.Name, element.ChoiceStem).Where(child => definition.InSlice(element, child)))];
            }
            return found;
        }

        var ruleIds = definition.RuleIdsFrom(idRoot);
        for (var i = 0; i < definition.Elements.Count; i++)
        {
            var element = definition.Elements[i];
            var ruleId = ruleIds[i];
            // Indexed loops and lists made only for what is found: this runs for every element of every profile checked, and
            // an enumerator or an empty list each time was a good part of what the check allocated (issue 14).
            var parents = NodesOf(element.ParentId);
            IReadOnlyList<Node> found = [];
            List<Node>? gathered = null;
            for (var p = 0; p < parents.Count; p++)
            {
                var parent = parents[p];
                var children = parent.Children(element.Name, element.ChoiceStem);
                // An element that is not a slice has every child; a slice, those its discriminators pick.
                var matching = element.SliceName is null ? children : InSlice(definition, element, children);
                CheckCount(element, parent, matching.Count, definition, ruleId, issues);
                if (element.Slicing is { Closed: true })
                {
                    var slices = definition.SlicesOf(element).ToList();
                    foreach (var stray in children.Where(child => !slices.Any(slice => definition.InSlice(slice, child))))
                    {
                        var strayKey = Text(stray.Value, element.Slicing.DiscriminatorPaths[0]);
                        issues.Add(new(stray.Location, $"{element.Label(ruleId)} allows only {string.Join(", ", slices.Select(s => s.SliceName))}, not '{strayKey}'.", ruleId));
                    }
                }
                if (matching.Count == 0)
                {
                    continue;
                }
                if (found.Count == 0)
                {
                    found = matching;
                }
                else
                {
                    found = gathered ??= [.. found];
                    gathered.AddRange(matching);
                }
            }
            nodes[element.Id] = found;
            for (var n = 0; n < found.Count; n++)
            {
                var node = found[n];
                CheckValue(element, node, ruleId, issues);
                for (var e = 0; e < element.Profiles.Count; e++)
                {
                    if (_definitions.TryGetValue(element.Profiles[e], out var extension))
                    {
                        Check(extension, node, ruleId, issues);
                    }
                }
            }
        }
    }

    /// <summary>The children a slice's discriminators pick, in order.</summary>
    private static IReadOnlyList<Node> InSlice(Definition definition, Element slice, IReadOnlyList<Node> children)
    {
        List<Node>? picked = null;
        for (var i = 0; i < children.Count; i++)
        {
            if (definition.InSlice(slice, children[i]))
            {
                (picked ??= []).Add(children[i]);
            }
        }
        return picked is null ? [] : picked;
    }

    private static void CheckCount(Element element, Node parent, int count, Definition definition, string ruleId, List<ProfileIssue> issues)
    {
        // Where is built only for an issue: this runs for every element under every parent of every resource checked.
        string Where() => $"{parent.Location}.{definition.StepTo(element)}";
        if (count < element.Min)
        {
            issues.Add(new(Where(), count == 0
                ? $"{element.Label(ruleId)} is required but missing."
                : $"{element.Label(ruleId)} needs at least {element.Min}, and there are {count}.", ruleId));
        }
        if (element.Max is { } max && count > max)
        {
            issues.Add(new(Where(), max == 0
                ? $"{element.Label(ruleId)} is not allowed here."
                : $"{element.Label(ruleId)} may appear at most {max} time{(max == 1 ? "" : "s")}, and there are {count}.", ruleId));
        }
    }

    private void CheckValue(Element element, Node node, string ruleId, List<ProfileIssue> issues)
    {
        if (element.Fixed is { } fixedValue && !JsonElement.DeepEquals(fixedValue, node.Value))
        {
            issues.Add(new(node.Location, $"{element.Label(ruleId)} must be {fixedValue.GetRawText()}, not {node.Value.GetRawText()}.", ruleId));
        }
        if (element.Pattern is { } pattern && !Matches(pattern, node.Value))
        {
            issues.Add(new(node.Location, $"{element.Label(ruleId)} must contain {pattern.GetRawText()}.", ruleId));
        }
        if (element.IsChoice && element.Types.Count > 0)
        {
            var type = node.Property.AsSpan(element.Name.Length - "[x]".Length);
            var allowed = false;
            for (var t = 0; t < element.Types.Count && !allowed; t++)
            {
                allowed = type.Equals(element.Types[t], StringComparison.OrdinalIgnoreCase);
            }
            if (!allowed)
            {
                issues.Add(new(node.Location, $"{element.Label(ruleId)} must be of type {string.Join(" or ", element.Types)}, not {type}.", ruleId));
            }
        }
        if (element.Targets.Count > 0 && ReferredType(node.Value) is { } referred && !element.Targets.Contains(referred))
        {
            issues.Add(new(node.Location, $"{element.Label(ruleId)} must refer to a {string.Join(" or ", element.Targets)}, not a {referred}.", ruleId));
        }
        if (element.Binding is { } binding && _valueSets.TryGetValue(binding.ValueSet, out var valueSet))
        {
            CheckBinding(element, node, binding, valueSet, ruleId, issues);
        }
    }

    /// <summary>
    /// Our ValueSets are all ours to judge: a coding in a bound system must use one of its codes, and a coding
    /// needs a system. A required binding also needs at least one coding from the ValueSet; codings in other
    /// systems may ride along as translations.
    /// </summary>
    private static void CheckBinding(Element element, Node node, Binding binding, Dictionary<string, HashSet<string>> valueSet, string ruleId, List<ProfileIssue> issues)
    {
        // The label and the list of known codes are for the messages: built only when there is an issue to tell.
        string Label() => element.Label(ruleId);
        string Known() => string.Join("; ", valueSet.Select(s => $"{s.Key}: {string.Join(", ", s.Value)}"));
        if (node.Value.ValueKind == JsonValueKind.String)
        {
            var code = node.Value.GetString()!;
            if (binding.Required && !valueSet.Values.Any(codes => codes.Contains(code)))
            {
                issues.Add(new(node.Location, $"{Label()}: '{code}' is not in {binding.ValueSet} ({Known()}).", ruleId));
            }
            return;
        }

        var isConcept = node.Value.ValueKind == JsonValueKind.Object && (node.Value.TryGetProperty("coding", out _) || node.Value.TryGetProperty("text", out _));
        var codings = isConcept
            ? node.Value.TryGetProperty("coding", out var array) ? array.EnumerateArray().Select((c, i) => new Node(c, node, "coding", i, "coding")).ToList() : []
            : [node];
        var valid = 0;
        var wrong = 0;
        foreach (var coding in codings)
        {
            var system = Text(coding.Value, "system");
            var code = Text(coding.Value, "code");
            if (system is null)
            {
                issues.Add(new(coding.Location, $"{Label()}: a coding needs a system ({Known()}).", ruleId));
                wrong++;
            }
            else if (valueSet.TryGetValue(system, out var codes))
            {
                if (code is not null && codes.Contains(code))
                {
                    valid++;
                }
                else
                {
                    issues.Add(new(coding.Location, $"{Label()}: '{code}' is not a code of {system} (expected one of {string.Join(", ", codes)}).", ruleId));
                    wrong++;
                }
            }
        }
        if (binding.Required && valid == 0 && wrong == 0)
        {
            issues.Add(new(node.Location, $"{Label()} needs a coding from {binding.ValueSet} ({Known()}).", ruleId));
        }
    }

    /// <summary>FHIR pattern matching: every property and array item of the pattern is present in the value.</summary>
    private static bool Matches(JsonElement pattern, JsonElement value) => pattern.ValueKind switch
    {
        JsonValueKind.Object => value.ValueKind == JsonValueKind.Object && pattern.EnumerateObject().All(
            p => value.TryGetProperty(p.Name, out var v) && Matches(p.Value, v)),
        JsonValueKind.Array => value.ValueKind == JsonValueKind.Array && pattern.EnumerateArray().All(
            p => value.EnumerateArray().Any(v => Matches(p, v))),
        _ => JsonElement.DeepEquals(pattern, value),
    };

    /// <summary>The resource type a literal reference (Type/id, or an absolute url ending so) or its type names; null for urn:uuid: or #contained.</summary>
    private static string? ReferredType(JsonElement reference)
    {
        if (reference.ValueKind != JsonValueKind.Object)
        {
            return null;
        }
        if (Text(reference, "type") is { } type)
        {
            return type;
        }
        return Text(reference, "reference") is { } literal && LiteralReference().Match(literal) is { Success: true } match
            ? match.Groups["type"].Value
            : null;
    }

    [GeneratedRegex(@"(^|/)(?<type>[A-Z][A-Za-z]+)/[A-Za-z0-9\-\.]{1,64}(/_history/[A-Za-z0-9\-\.]{1,64})?$", RegexOptions.CultureInvariant)]
    private static partial Regex LiteralReference();

    private static string? Text(JsonElement element, string property) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(property, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString()
            : null;

    /// <summary>
    /// A value in the resource, where it is (FHIRPath: its parent's location, a step and an index in an array) and the JSON
    /// property it came from (valueString for value[x]). The location is spelled out only for an issue: the checker makes a
    /// node for every value of every resource it checks, and built a path string for each (issue 14: the check is a seventh of a
    /// submission's CPU).
    /// </summary>
    private sealed class Node(JsonElement value, Node? parent, string step, int index, string property)
    {
        public JsonElement Value { get; } = value;
        public string Property { get; } = property;
        public string Location => parent is null ? step
            : index < 0 ? $"{parent.Location}.{step}"
            : string.Create(CultureInfo.InvariantCulture, $"{parent.Location}.{step}[{index}]");

        // A node's children by each name are found once: the checker asks a node for the same name once per rule on it (an
        // extension once per slice). A handful of names per node, so a short list, not a dictionary (issue 14: the check
        // allocated 103 KB a submission, a dictionary per node among the most).
        private List<(string Name, IReadOnlyList<Node> Nodes)>? _children;

        /// <summary>The values of a named element under this node: array items one by one, value[x] whatever its type.</summary>
        /// <param name="choice">For a choice element (value[x]), its name without "[x]"; else null.</param>
        public IReadOnlyList<Node> Children(string name, string? choice)
        {
            if (Value.ValueKind != JsonValueKind.Object)
            {
                return [];
            }
            if (_children is not null)
            {
                foreach (var (knownName, nodes) in _children)
                {
                    if (string.Equals(knownName, name, StringComparison.Ordinal))
                    {
                        return nodes;
                    }
                }
            }
            var step = choice ?? name;
            List<Node>? found = null;
            // The names compared in place, as UTF-8; spelt out as strings only for a choice (value[x]) and for what matched.
            foreach (var property in Value.EnumerateObject())
            {
                var matches = choice is null
                    ? property.NameEquals(name)
                    : property.Name is var propertyName && propertyName.Length > choice.Length && propertyName.StartsWith(choice, StringComparison.Ordinal)
                        && char.IsUpper(propertyName[choice.Length]);
                if (!matches)
                {
                    continue;
                }
                found ??= [];
                var matchedName = choice is null ? name : property.Name;
                if (property.Value.ValueKind == JsonValueKind.Array)
                {
                    var itemIndex = 0;
                    foreach (var item in property.Value.EnumerateArray())
                    {
                        found.Add(new Node(item, this, step, itemIndex++, matchedName));
                    }
                }
                else
                {
                    found.Add(new Node(property.Value, this, step, -1, matchedName));
                }
            }
            IReadOnlyList<Node> children = found is null ? [] : found;
            (_children ??= []).Add((name, children));
            return children;
        }
    }

    private sealed record Binding(string ValueSet, bool Required);

    private sealed record Slicing(IReadOnlyList<string> DiscriminatorPaths, bool Closed);

    private sealed record Element(string Id, string? Short, int Min, int? Max, JsonElement? Fixed, JsonElement? Pattern, Binding? Binding,
        Slicing? Slicing, IReadOnlyList<string> Types, IReadOnlyList<string> Profiles, IReadOnlyList<string> Targets)
    {
        // Worked out once from the id (on first use, as before): the checker asks for them for every node of every resource it checks.
        private string LastStep => field ??= Id[(Id.LastIndexOf('.') + 1)..];

        public string ParentId => field ??= Id[..Id.LastIndexOf('.')];

        public string Name => field ??= LastStep.Split(':')[0];

        public string? SliceName => LastStep.Contains(':', StringComparison.Ordinal) ? field ??= LastStep.Split(':')[1] : null;

        /// <summary>The same element without its slice name: where the slicing is declared.</summary>
        public string UnslicedId => field ??= SliceName is null ? Id : Id[..Id.LastIndexOf(':')];

        public bool IsChoice => Name.EndsWith("[x]", StringComparison.Ordinal);

        /// <summary>A choice element's name without "[x]" (value for value[x]); null for any other element.</summary>
        public string? ChoiceStem => IsChoice ? field ??= Name[..^"[x]".Length] : null;

        public string Label(string ruleId) => Short is null ? ruleId : $"{Short} ({ruleId})";

        public static Element Bare(string id) => new(id, null, 0, null, null, null, null, null, [], [], []);

        public static Element Read(JsonElement json)
        {
            var types = json.TryGetProperty("type", out var t) ? t.EnumerateArray().ToList() : [];
            return new(
                Text(json, "id")!,
                Text(json, "short"),
                json.TryGetProperty("min", out var min) ? min.GetInt32() : 0,
                Text(json, "max") is { } max and not "*" ? int.Parse(max, CultureInfo.InvariantCulture) : null,
                Value(json, "fixed"),
                Value(json, "pattern"),
                json.TryGetProperty("binding", out var b) && Text(b, "strength") is "required" or "extensible"
                    ? new Binding(Text(b, "valueSet")!, Text(b, "strength") == "required")
                    : null,
                json.TryGetProperty("slicing", out var s)
                    ? new Slicing([.. s.GetProperty("discriminator").EnumerateArray().Select(d => Text(d, "path")!)], Text(s, "rules") == "closed")
                    : null,
                [.. types.Select(type => Text(type, "code")!)],
                [.. types.SelectMany(type => Urls(type, "profile"))],
                [.. types.SelectMany(type => Urls(type, "targetProfile")).Select(url => url[(url.LastIndexOf('/') + 1)..])]);
        }

        private static JsonElement? Value(JsonElement json, string prefix) =>
            json.EnumerateObject().Where(p => p.Name.StartsWith(prefix, StringComparison.Ordinal) && p.Name.Length > prefix.Length)
                .Select(p => (JsonElement?)p.Value.Clone()).FirstOrDefault();

        private static IEnumerable<string> Urls(JsonElement type, string property) =>
            type.TryGetProperty(property, out var urls) ? urls.EnumerateArray().Select(u => u.GetString()!) : [];
    }

    /// <summary>A StructureDefinition's differential: the profile's root element first, then the rules.</summary>
    private sealed record Definition(string Url, string Type, IReadOnlyList<Element> Elements)
    {
        public static Definition Read(JsonElement structure)
        {
            var elements = structure.GetProperty("differential").GetProperty("element").EnumerateArray().Select(Element.Read).ToList();
            var type = Text(structure, "type")!;
            return new(Text(structure, "url")!, type, [.. elements.Where(e => e.Id != type)]);
        }

        // Indexed once: Find and SlicesOf are asked for every element and node of every resource checked.
        private readonly Dictionary<string, Element> _byId = Elements.GroupBy(e => e.Id, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        private readonly ILookup<string, Element> _slicesOf = Elements.Where(e => e.SliceName is not null).ToLookup(e => e.UnslicedId, StringComparer.Ordinal);

        public Element? Find(string id) => _byId.GetValueOrDefault(id);

        // What each slice's discriminators must read, worked out once: InSlice is asked for every child under every slice
        // of every resource checked, and spelt out an id and read the fixed value's text each time.
        private readonly Dictionary<string, (string Path, string? Value)[]> _discriminators = Elements
            .Where(e => e.SliceName is not null)
            .GroupBy(e => e.Id, StringComparer.Ordinal)
            .Select(g => g.First())
            .Select(slice => (slice, slicing: Elements.FirstOrDefault(e => e.Id == slice.UnslicedId)?.Slicing))
            .Where(s => s.slicing is not null)
            .ToDictionary(s => s.slice.Id, s => s.slicing!.DiscriminatorPaths.Select(path => (path, DiscriminatorOf(Elements, s.slice, path))).ToArray(), StringComparer.Ordinal);

        /// <summary>
        /// The rule id of each element (in <see cref="Elements"/>' order) reached from <paramref name="idRoot"/>: the root and the
        /// element's id after the profiled type (".extension:consent").
        /// </summary>
        public IReadOnlyList<string> RuleIdsFrom(string idRoot) =>
            _ruleIds.GetOrAdd(idRoot, static (root, definition) => [.. definition.Elements.Select(element => root + element.Id[definition.Type.Length..])], this);

        // By root: the profile's own type, or each slice through which an extension is reached. A handful, fixed by the
        // profiles; the ids were made afresh for every element of every resource checked, a fifth of what the check allocated.
        private readonly ConcurrentDictionary<string, string[]> _ruleIds = new(StringComparer.Ordinal);

        public IEnumerable<Element> SlicesOf(Element sliced) => _slicesOf[sliced.Id];

        /// <summary>
        /// Whether a node belongs to the element: always, unless the element is a slice; then its value at each
        /// discriminator path must be the slice's fixed value there, or for an extension's url, the slice's profile.
        /// </summary>
        public bool InSlice(Element element, Node node)
        {
            if (element.SliceName is null)
            {
                return true;
            }
            var discriminators = _discriminators.GetValueOrDefault(element.Id)
                ?? throw new InvalidOperationException($"{Url}: {element.Id} is a slice of {element.UnslicedId}, which declares no slicing.");
            foreach (var (path, expected) in discriminators)
            {
                // The node's value at the path, compared as text without being read out as a string.
                if (expected is null || node.Value.ValueKind != JsonValueKind.Object || !node.Value.TryGetProperty(path, out var actual)
                    || actual.ValueKind != JsonValueKind.String || !actual.ValueEquals(expected))
                {
                    return false;
                }
            }
            return true;
        }

        public string? Discriminator(Element slice, string path) => DiscriminatorOf(Elements, slice, path);

        private static string? DiscriminatorOf(IReadOnlyList<Element> elements, Element slice, string path)
        {
            var id = $"{slice.Id}.{path}";
            var at = elements.FirstOrDefault(e => e.Id == id);
            var value = at?.Fixed ?? at?.Pattern;
            return value is { ValueKind: JsonValueKind.String } text ? text.GetString()
                : path == "url" ? slice.Profiles.FirstOrDefault()
                : null;
        }

        /// <summary>The FHIRPath step that selects an element's nodes: extension('url') for an extension slice.</summary>
        public string StepTo(Element element)
        {
            var name = element.IsChoice ? element.Name[..^"[x]".Length] : element.Name;
            if (element.SliceName is null || Find(element.UnslicedId)?.Slicing is not { } slicing)
            {
                return name;
            }
            var path = slicing.DiscriminatorPaths[0];
            var value = Discriminator(element, path);
            return name == "extension" && path == "url" ? $"extension('{value}')" : $"{name}.where({path}='{value}')";
        }
    }
}
