using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;
using CareCoordination.Pipeline;
using Hl7.Fhir.Model;
using Hl7.Fhir.Serialization;
using Hl7.Fhir.Utility;
using Microsoft.Extensions.Options;

namespace CareCoordination.Features.Fhir;

public sealed class FhirSettings
{
    /// <summary>A referral with its person is a few kilobytes; a megabyte leaves room for a large transaction and none for abuse.</summary>
    public int MaxRequestBytes { get; set; } = 1024 * 1024;

    /// <summary>
    /// A referral's transaction is a handful of entries. A transaction's entries are written in one write transaction, which on
    /// SQLite every other write waits behind, and a batch's run one after another in one request: a megabyte of small
    /// entries would be thousands, holding every writer (or one request) for seconds.
    /// </summary>
    public int MaxBundleEntries { get; set; } = 100;
}

/// <summary>One problem with what a partner sent, against the element it is about (a FHIRPath expression), or the elements.</summary>
public sealed record FhirIssue(string? Expression, string Message)
{
    public IReadOnlyList<string> Expressions { get; init; } = Expression is null ? [] : [Expression];
}

/// <summary>400: the body is not a FHIR resource this server can read (not JSON, unknown elements, wrong type, a profile rule broken).</summary>
public sealed class InvalidResource(IReadOnlyList<FhirIssue> issues) : DomainFailure(string.Join(" ", issues.Select(i => i.Message)))
{
    public InvalidResource(string? expression, string message) : this([new FhirIssue(expression, message)])
    {
    }

    public IReadOnlyList<FhirIssue> Issues { get; } = issues;
}

/// <summary>413: more than Fhir:MaxRequestBytes.</summary>
public sealed class PayloadTooLarge(string message) : DomainFailure(message);

/// <summary>415: not JSON.</summary>
public sealed class UnsupportedMediaType(string message) : DomainFailure(message);

/// <summary>
/// 422: a referral whose requester (or message sender) is not the caller's organisation. The caller is who it says it
/// is; what it sent names someone else, so it is a fault in the referral, reported against the element that named them.
/// </summary>
public sealed class ForeignRequester(string message, string expression) : DomainFailure(message)
{
    public string Expression { get; } = expression;
}

/// <summary>428: an update without If-Match could overwrite a change the caller never saw.</summary>
public sealed class PreconditionRequired(string message) : DomainFailure(message);

/// <summary>Reads the body of a FHIR write: JSON only, within the size limit, parsed strictly as the expected resource type. Scoped: one per request.</summary>
public sealed class FhirRequests(IOptions<FhirSettings> settings, ReceivedMessage received)
{
    // Strict: an element FHIR R4 does not define, or a value of the wrong shape, is an error, never silently dropped. So is an
    // element named in the wrong case ("Subject"), which Firely otherwise reads as the element it resembles: the profile
    // check reads the body as sent (FhirProfiles.CheckAhead), where no rule would find it.
    private static readonly FhirJsonDeserializer Deserializer = new(new DeserializerSettings()
        .Enforcing([Hl7.Fhir.Validation.CodedValidationException.WRONG_CASED_ELEMENT_CODE, Hl7.Fhir.Validation.CodedValidationException.WRONG_CASED_RESOURCE_TYPE_CODE]));

    /// <summary>Deeper than any resource this server takes; the limit guards the parsers' stacks.</summary>
    internal const int MaxDepth = 64;

    public async Task<T> ReadAsync<T>(HttpRequest request, CancellationToken cancellationToken)
        where T : Resource
    {
        var mediaType = request.ContentType?.Split(';')[0].Trim();
        if (mediaType is not ("application/fhir+json" or "application/json"))
        {
            throw new UnsupportedMediaType($"Send FHIR JSON with Content-Type: {FhirMapping.ContentType} (this server does not read '{mediaType ?? "nothing"}').");
        }
        var limit = settings.Value.MaxRequestBytes;
        if (request.ContentLength > limit)
        {
            throw TooLarge(limit);
        }
        var bytes = await ReadBodyAsync(request, limit, cancellationToken);
        var resource = Parse<T>(bytes, typeof(T).Name);
        if (resource is Bundle { Entry.Count: var entries } && entries > settings.Value.MaxBundleEntries)
        {
            throw new InvalidResource("Bundle.entry", string.Create(CultureInfo.InvariantCulture,
                $"A Bundle here has at most {settings.Value.MaxBundleEntries} entries; this one has {entries}. Send the rest in Bundles of their own."));
        }
        Received = bytes;
        // Kept as received, beside whatever referral it makes or changes (see ReceivedMessage).
        received.Capture(request, bytes, (resource as Bundle)?.Id);
        return resource;
    }

    /// <summary>
    /// The body of the write this request carried, exactly as received, once <see cref="ReadAsync"/> has read it: the profile
    /// check reads the resources from it (FhirProfiles.CheckAhead) rather than from the parsed resources written out again.
    /// </summary>
    public byte[] Received { get; private set; } = [];

    /// <summary>The whole body, read straight into one array of its declared length when it declares one (a partner's usually does).</summary>
    private static async Task<byte[]> ReadBodyAsync(HttpRequest request, int limit, CancellationToken cancellationToken)
    {
        if (request.ContentLength is { } length)
        {
            var exact = new byte[length];
            var filled = 0;
            int read;
            while (filled < exact.Length && (read = await request.Body.ReadAsync(exact.AsMemory(filled), cancellationToken)) > 0)
            {
                filled += read;
            }
            // Kestrel ends a body at its Content-Length, so a shorter one means the sender stopped sending.
            return filled == exact.Length ? exact : throw new InvalidResource(null, string.Create(CultureInfo.InvariantCulture,
                $"The body ended after {filled} of the {length} bytes its Content-Length declares."));
        }
        using var body = new MemoryStream();
        var buffer = new byte[16 * 1024];
        int chunk;
        while ((chunk = await request.Body.ReadAsync(buffer, cancellationToken)) > 0)
        {
            body.Write(buffer, 0, chunk);
            if (body.Length > limit)
            {
                throw TooLarge(limit);
            }
        }
        return body.ToArray();
    }

    /// <summary>
    /// The body as a resource of the expected type, or 400 saying what is wrong with it. The bytes are checked
    /// before Firely reads them, for what it would let through or fall over on: bytes that are not UTF-8 (they
    /// would be stored as replacement characters), anything after the resource (silently dropped), a string
    /// no store can keep (a lone surrogate; U+0000, which PostgreSQL refuses), and a resourceType that is not
    /// a concrete resource type spelt exactly (Firely finds types whatever their case, and fails on abstract ones).
    /// </summary>
    public static T Parse<T>(ReadOnlySpan<byte> utf8, string expected)
        where T : Resource
    {
        var bom = ByteOrderMarkLength(utf8);
        utf8 = utf8[bom..];
        // Checked in place; decoded only to say where it breaks. Firely then reads these very bytes, not a string of them
        // encoded back to UTF-8 (what its string overload does): the same bytes, so the same positions in its messages.
        if (!Utf8.IsValid(utf8))
        {
            try
            {
                _ = StrictUtf8.GetString(utf8);
            }
            catch (DecoderFallbackException invalid)
            {
                throw new InvalidResource(null, $"The body is not valid UTF-8 (byte {(bom + invalid.Index).ToString(CultureInfo.InvariantCulture)} and on): send it encoded as UTF-8.");
            }
        }
        RequireReadableJson(utf8, expected);
        Resource resource;
        try
        {
            var reader = new Utf8JsonReader(utf8, SerializationUtil.FhirJsonReaderOptions);
            resource = Deserializer.DeserializeResource(ref reader);
        }
        catch (DeserializationFailedException failed)
        {
            throw new InvalidResource([.. failed.Exceptions.Select(e => new FhirIssue(Location(e.Message), e.Message))]);
        }
        catch (Exception error) when (error is not OperationCanceledException)
        {
            // Whatever else the reader throws, the body caused it: the sender is told, and nothing has been done.
            throw new InvalidResource(null, $"The body is not a FHIR resource this server can read: {error.Message}");
        }
        var typed = resource as T ?? throw new InvalidResource($"{resource.TypeName}", $"Expected a {expected} here, not a {resource.TypeName}.");
        if (typed is Bundle bundle)
        {
            RequireDistinctFullUrls(bundle);
        }
        return typed;
    }

    /// <summary>A byte order mark is allowed before JSON text, if not recommended (RFC 8259 8.1): its length, or 0.</summary>
    internal static int ByteOrderMarkLength(ReadOnlySpan<byte> utf8) => utf8.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]) ? 3 : 0;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>One pass over the JSON tokens: well-formed, one value, strings a store can keep, resource types spelt exactly.</summary>
    private static void RequireReadableJson(ReadOnlySpan<byte> utf8, string expected)
    {
        var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow, MaxDepth = MaxDepth });
        var path = new JsonPath(expected);
        try
        {
            while (reader.Read())
            {
                path.Read(ref reader);
                if (path.Property == "contained" && path.IsValue && reader.TokenType != JsonTokenType.StartArray)
                {
                    throw new InvalidResource(path.Expression, $"{path.Expression} must be an array of resources.");
                }
                if (reader.TokenType is not (JsonTokenType.String or JsonTokenType.PropertyName))
                {
                    continue;
                }
                var isResourceType = reader.TokenType == JsonTokenType.String && path.Property == "resourceType";
                // The body is valid UTF-8 (checked above) and the reader refuses raw control characters, so only an escape
                // (\u0000, \ud800) can make text a store cannot keep: an unescaped string need not be read as text.
                if (!reader.ValueIsEscaped && !isResourceType)
                {
                    continue;
                }
                string text;
                try
                {
                    text = reader.GetString()!;
                }
                catch (InvalidOperationException)
                {
                    throw new InvalidResource(path.Expression, $"A string at {path.Expression} holds half of a surrogate pair (an escape such as \\ud800 on its own): that is not text.");
                }
                if (text.Contains('\0', StringComparison.Ordinal))
                {
                    throw new InvalidResource(path.Expression, $"A string at {path.Expression} holds the character U+0000, which this server does not store.");
                }
                if (isResourceType && !IsResourceType(text))
                {
                    throw new InvalidResource(path.Expression, $"'{text}' at {path.Expression} is not a FHIR R4 resource type: "
                        + "name a concrete resource type, spelt exactly (ServiceRequest, Patient, Bundle; not Resource or DomainResource).");
                }
            }
        }
        catch (JsonException malformed)
        {
            // Also what the reader says of anything after the resource: "'x' is invalid after a single JSON value."
            throw new InvalidResource(null, $"The body is not one well-formed JSON value (line {(malformed.LineNumber + 1)?.ToString(CultureInfo.InvariantCulture)}, "
                + $"byte {(malformed.BytePositionInLine + 1)?.ToString(CultureInfo.InvariantCulture)}): {Reason(malformed)} Send exactly one resource, with nothing after it.");
        }
    }

    /// <summary>The reader's own words, without the position it appends (given already).</summary>
    private static string Reason(JsonException malformed)
    {
        var message = malformed.Message;
        var position = message.IndexOf(" LineNumber:", StringComparison.Ordinal);
        return (position < 0 ? message : message[..position]).Trim();
    }

    private static bool IsResourceType(string name) =>
        ModelInfo.ModelInspector.FindClassMapping(name) is { IsResource: true, NativeType.IsAbstract: false } mapping && mapping.Name == name;

    /// <summary>bdl-7: an entry's fullUrl names it, so two entries may share one only as two versions of one resource.</summary>
    private static void RequireDistinctFullUrls(Bundle bundle)
    {
        if (bundle.Type == Bundle.BundleType.History)
        {
            return;
        }
        var shared = bundle.Entry.Select((entry, index) => (entry, index))
            .Where(e => !string.IsNullOrEmpty(e.entry.FullUrl))
            .GroupBy(e => (e.entry.FullUrl, e.entry.Resource?.Meta?.VersionId))
            .FirstOrDefault(g => g.Count() > 1);
        if (shared is null)
        {
            return;
        }
        var entries = shared.Select(e => $"Bundle.entry[{e.index.ToString(CultureInfo.InvariantCulture)}]").ToList();
        throw new InvalidResource([new FhirIssue(null,
            $"{string.Join(" and ", entries)} have the same fullUrl {shared.Key.FullUrl} (bdl-7): give each entry its own, so that a reference names one.")
        {
            Expressions = [.. entries.Select(e => e + ".fullUrl")],
        }]);
    }

    /// <summary>Firely's messages end with "At {path}, line …": the path is the element's location.</summary>
    private static string? Location(string message)
    {
        var at = message.LastIndexOf(" At ", StringComparison.Ordinal);
        if (at < 0)
        {
            return null;
        }
        var path = message[(at + 4)..];
        var comma = path.IndexOf(',', StringComparison.Ordinal);
        path = (comma < 0 ? path : path[..comma]).TrimEnd('.');
        return path.StartsWith("line ", StringComparison.Ordinal) || path == "$this" ? null : path;
    }

    private static PayloadTooLarge TooLarge(int limit) =>
        new($"The body is larger than this server accepts ({limit.ToString("N0", CultureInfo.InvariantCulture)} bytes). Send large transactions as several smaller ones.");

    /// <summary>The OperationOutcome and status for a failure at /fhir. A form rule broken on a write is a 422 business rule.</summary>
    public static (int Status, OperationOutcome Outcome) Answer(DomainFailure failure, bool write)
    {
        if (failure is EntryFailure entry)
        {
            var (entryStatus, entryOutcome) = Answer(entry.Failure, write);
            foreach (var issue in entryOutcome.Issue)
            {
                issue.Diagnostics = $"Bundle.entry[{entry.Index}]: {issue.Diagnostics}";
                issue.Expression = [$"Bundle.entry[{entry.Index}]", .. issue.Expression];
            }
            return (entryStatus, entryOutcome);
        }
        var status = failure switch
        {
            InvalidResource => StatusCodes.Status400BadRequest,
            PayloadTooLarge => StatusCodes.Status413PayloadTooLarge,
            UnsupportedMediaType => StatusCodes.Status415UnsupportedMediaType,
            PreconditionRequired => StatusCodes.Status428PreconditionRequired,
            ForeignRequester => StatusCodes.Status422UnprocessableEntity,
            ValidationFailed when write => StatusCodes.Status422UnprocessableEntity,
            _ => FailureResponses.StatusFor(failure),
        };
        var type = failure is Conflict { Duplicate: true } ? OperationOutcome.IssueType.Duplicate : FhirMapping.IssueTypeFor(status);
        IEnumerable<FhirIssue> issues = failure switch
        {
            InvalidResource invalid => invalid.Issues,
            ValidationFailed validation => validation.Errors.SelectMany(e => e.Value.Select(m => new FhirIssue(ReferralIntake.ExpressionFor(e.Key), m))),
            ForeignRequester foreign => [new FhirIssue(foreign.Expression, foreign.Message)],
            _ => [new FhirIssue(null, failure.Message)],
        };
        var outcome = new OperationOutcome();
        foreach (var issue in issues)
        {
            outcome.Issue.Add(new OperationOutcome.IssueComponent
            {
                Severity = OperationOutcome.IssueSeverity.Error,
                Code = type,
                Diagnostics = issue.Message,
                Expression = [.. issue.Expressions],
            });
        }
        return (status, outcome);
    }

    /// <summary>Where a JSON reader is, as an expression (ServiceRequest.note[0].text), to say where a fault is.</summary>
    private sealed class JsonPath(string root)
    {
        private readonly string _root = root;

        private sealed class Container(string? segment, bool isArray)
        {
            public string? Segment { get; } = segment;

            public bool IsArray { get; } = isArray;

            public int Next { get; set; }

            public string? Property { get; set; }
        }

        private readonly List<Container> _containers = [];

        /// <summary>The property whose value the reader is on, or whose name it has just read.</summary>
        public string? Property { get; private set; }

        /// <summary>Whether the reader is on a value (not a property name or the end of an object or array).</summary>
        public bool IsValue { get; private set; }

        /// <summary>
        /// Where the reader is, as a FHIRPath-like expression: built only when asked (a refusal), from the containers the
        /// reader was inside when it read the token and the token's own segment; building it for every token was most of
        /// this check's cost.
        /// </summary>
        public string Expression => Join(_depth, _last);

        private int _depth;
        private string? _last;

        public void Read(ref Utf8JsonReader reader)
        {
            var top = _containers.Count > 0 ? _containers[^1] : null;
            switch (reader.TokenType)
            {
                case JsonTokenType.PropertyName:
                    top!.Property = Name(ref reader);
                    (Property, IsValue, _depth, _last) = (top.Property, false, _containers.Count, top.Property);
                    return;
                case JsonTokenType.EndObject or JsonTokenType.EndArray:
                    _containers.RemoveAt(_containers.Count - 1);
                    (Property, IsValue) = (null, false);
                    return;
            }
            var segment = top is null ? null : top.IsArray ? $"[{(top.Next++).ToString(CultureInfo.InvariantCulture)}]" : top.Property;
            (Property, IsValue, _depth, _last) = (top is { IsArray: false } ? top.Property : null, true, _containers.Count, segment);
            if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
            {
                _containers.Add(new Container(segment, reader.TokenType == JsonTokenType.StartArray));
            }
        }

        private string Join(int depth, string? last)
        {
            var expression = new StringBuilder(_root);
            foreach (var segment in _containers.Take(depth).Select(c => c.Segment).Append(last).OfType<string>())
            {
                expression.Append(segment.StartsWith('[') ? "" : ".").Append(segment);
            }
            return expression.ToString();
        }

        /// <summary>The property's name; as written when it cannot be unescaped (the caller refuses it then).</summary>
        private static string Name(ref Utf8JsonReader reader)
        {
            try
            {
                return reader.GetString()!;
            }
            catch (InvalidOperationException)
            {
                return Encoding.UTF8.GetString(reader.ValueSpan);
            }
        }
    }
}
