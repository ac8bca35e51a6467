using System.Globalization;
using System.Text.Json;
using CareCoordination.Pipeline;
using Hl7.Fhir.Model;
using Hl7.Fhir.Serialization;
using Microsoft.Extensions.Options;

namespace CareCoordination.Features.Fhir;

public sealed class FhirSettings
{
    /// <summary>A referral with its person is a few kilobytes; a megabyte leaves room for a large transaction and none for abuse.</summary>
    public int MaxRequestBytes { get; set; } = 1024 * 1024;
}

/// <summary>One problem with what a partner sent, against the element it is about (a FHIRPath expression).</summary>
public sealed record FhirIssue(string? Expression, string Message);

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

/// <summary>428: an update without If-Match could overwrite a change the caller never saw.</summary>
public sealed class PreconditionRequired(string message) : DomainFailure(message);

/// <summary>Reads the body of a FHIR write: JSON only, within the size limit, parsed strictly as the expected resource type.</summary>
public sealed class FhirRequests(IOptions<FhirSettings> settings)
{
    // Strict: an element FHIR R4 does not define, or a value of the wrong shape, is an error, never silently dropped.
    private static readonly FhirJsonDeserializer Deserializer = new(new DeserializerSettings());

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
        using var body = new MemoryStream();
        var buffer = new byte[16 * 1024];
        int read;
        while ((read = await request.Body.ReadAsync(buffer, cancellationToken)) > 0)
        {
            body.Write(buffer, 0, read);
            if (body.Length > limit)
            {
                throw TooLarge(limit);
            }
        }
        var json = System.Text.Encoding.UTF8.GetString(body.GetBuffer(), 0, (int)body.Length);
        return Parse<T>(json, typeof(T).Name);
    }

    public static T Parse<T>(string json, string expected)
        where T : Resource
    {
        Resource resource;
        try
        {
            resource = Deserializer.DeserializeResource(json);
        }
        catch (DeserializationFailedException failed)
        {
            throw new InvalidResource([.. failed.Exceptions.Select(e => new FhirIssue(Location(e.Message), e.Message))]);
        }
        catch (JsonException)
        {
            throw new InvalidResource(null, "The body is not well-formed JSON.");
        }
        catch (FormatException error)
        {
            throw new InvalidResource(null, $"The body is not a FHIR resource: {error.Message}");
        }
        return resource as T ?? throw new InvalidResource($"{resource.TypeName}", $"Expected a {expected} here, not a {resource.TypeName}.");
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
            ValidationFailed when write => StatusCodes.Status422UnprocessableEntity,
            _ => FailureResponses.StatusFor(failure),
        };
        var type = FhirMapping.IssueTypeFor(status);
        IEnumerable<FhirIssue> issues = failure switch
        {
            InvalidResource invalid => invalid.Issues,
            ValidationFailed validation => validation.Errors.SelectMany(e => e.Value.Select(m => new FhirIssue(ReferralIntake.ExpressionFor(e.Key), m))),
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
                Expression = issue.Expression is { } expression ? [expression] : [],
            });
        }
        return (status, outcome);
    }
}
