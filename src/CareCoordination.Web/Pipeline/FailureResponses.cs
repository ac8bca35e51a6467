using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Mvc;

namespace CareCoordination.Pipeline;

/// <summary>The one place a domain failure becomes an HTTP answer (ProblemDetails; /fhir maps the same kinds to an OperationOutcome).</summary>
public sealed class FailureResponses(IProblemDetailsService problems) : IExceptionHandler
{
    public static int StatusFor(DomainFailure failure) => failure switch
    {
        ValidationFailed => StatusCodes.Status400BadRequest,
        AccessDenied => StatusCodes.Status403Forbidden,
        NotFound => StatusCodes.Status404NotFound,
        Conflict => StatusCodes.Status409Conflict,
        PreconditionFailed => StatusCodes.Status412PreconditionFailed,
        RuleBroken => StatusCodes.Status422UnprocessableEntity,
        _ => StatusCodes.Status500InternalServerError,
    };

    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        if (exception is not DomainFailure failure)
        {
            return false;
        }
        var status = StatusFor(failure);
        ProblemDetails problem = failure is ValidationFailed invalid
            ? new ValidationProblemDetails(invalid.Errors.ToDictionary(e => e.Key, e => e.Value)) { Detail = failure.Message }
            : new ProblemDetails { Detail = failure.Message };
        problem.Status = status;
        problem.Title = failure.GetType().Name switch
        {
            nameof(ValidationFailed) => "The request has errors",
            nameof(AccessDenied) => "Not allowed",
            nameof(NotFound) => "Not found",
            nameof(Conflict) or nameof(PreconditionFailed) => "Conflict",
            _ => "A rule was broken",
        };
        httpContext.Response.StatusCode = status;
        return await problems.TryWriteAsync(new ProblemDetailsContext { HttpContext = httpContext, ProblemDetails = problem, Exception = exception });
    }
}
