using CareCoordination.Pipeline;
using Hl7.Fhir.Model;
using Microsoft.AspNetCore.Diagnostics;

namespace CareCoordination.Features.Fhir;

/// <summary>
/// The last word on an exception at /fhir, wherever it was thrown: a FHIR client is answered in FHIR, never with
/// the HTML error page people get. A domain failure is answered as the /fhir filter answers it, a request the host
/// could not read with its own status, and anything else 500 with nothing of the cause (the log has it).
/// </summary>
public sealed class FhirFailures(TimeProvider clock) : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        // The middleware has already pointed the request at the error page: the path asked for is in its feature.
        var path = httpContext.Features.Get<IExceptionHandlerPathFeature>()?.Path ?? httpContext.Request.Path.Value;
        if (!new PathString(path).StartsWithSegments("/fhir"))
        {
            return false;
        }
        var (status, outcome) = exception switch
        {
            DomainFailure failure => FhirRequests.Answer(failure, write: !HttpMethods.IsGet(httpContext.Request.Method)),
            BadHttpRequestException unreadable => (unreadable.StatusCode,
                FhirMapping.Outcome(FhirMapping.IssueTypeFor(unreadable.StatusCode), $"The request could not be read: {unreadable.Message}")),
            _ => (StatusCodes.Status500InternalServerError, FhirMapping.Outcome(OperationOutcome.IssueType.Exception,
                $"This server failed while answering (logged at {FhirMapping.Instant(clock.GetUtcNow())}). "
                + "If you sent a change, read it back before you send it again, or send it with If-None-Exist.")),
        };
        httpContext.Response.StatusCode = status;
        httpContext.Response.ContentType = $"{FhirMapping.ContentType}; charset=utf-8";
        await httpContext.Response.WriteAsync(FhirMapping.Serialize(outcome), cancellationToken);
        return true;
    }
}
