namespace CareCoordination.Pipeline;

/// <summary>
/// What a handler or behaviour throws when a request cannot be done. One mapper at each edge turns these
/// into ProblemDetails (app) or an OperationOutcome (FHIR).
/// </summary>
public abstract class DomainFailure(string message) : Exception(message);

/// <summary>Unknown, or not the caller's to see: both look the same so that existence does not leak.</summary>
public sealed class NotFound(string what) : DomainFailure($"{what} was not found.");

public sealed class AccessDenied(string message) : DomainFailure(message);

/// <summary>
/// Someone else changed it first, or (<paramref name="duplicate"/>) it already exists: both 409, told apart for FHIR clients,
/// whose OperationOutcome says <c>conflict</c> for the one (read again and retry) and <c>duplicate</c> for the other (do not).
/// </summary>
public sealed class Conflict(string message, bool duplicate = false) : DomainFailure(message)
{
    public bool Duplicate { get; } = duplicate;
}

/// <summary>The caller's precondition (a version it read) no longer holds: HTTP 412 for FHIR's If-Match.</summary>
public sealed class PreconditionFailed(string message) : DomainFailure(message);

/// <summary>Well-formed, but a business rule says no (an illegal transition, a full service).</summary>
public sealed class RuleBroken(string message) : DomainFailure(message);

public sealed class ValidationFailed(IReadOnlyDictionary<string, string[]> errors)
    : DomainFailure("The request has errors: " + string.Join(" ", errors.SelectMany(e => e.Value)))
{
    public IReadOnlyDictionary<string, string[]> Errors { get; } = errors;
}
