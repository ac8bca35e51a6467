using System.Globalization;
using CareCoordination.Pipeline;
using Hl7.Fhir.Model;
using Mediator;
using Microsoft.Net.Http.Headers;

namespace CareCoordination.Features.Fhir;

/// <summary>
/// /fhir: the FHIR R4 API. Here are the reads and searches: each reads its query string, sends one Mediator
/// query (which checks the caller's scope or role, finds only what the caller may see, and audits the read)
/// and maps the answer in FhirMapping. The writes (FhirWrites), versions (History) and the directory
/// (DirectoryEndpoints) map themselves into the same group. Every refusal, from a missing token to a broken
/// profile rule, is an OperationOutcome.
/// </summary>
public static class FhirEndpoints
{
    public static void MapFhir(this IEndpointRouteBuilder app)
    {
        // Anonymous at the routing level so that the filter, not the cookie handler, answers a missing or bad
        // token: FHIR clients expect an OperationOutcome with their 401.
        var fhir = app.MapGroup("/fhir").AllowAnonymous().DisableAntiforgery().AddEndpointFilter(RefuseAsOperationOutcome);

        fhir.MapGet("/metadata", (HttpRequest request, Microsoft.Extensions.Options.IOptions<FhirSettings> settings) =>
                Fhir(FhirCapability.For(BaseUrl(request), settings.Value)))
            .WithMetadata(new AnonymousFhirAttribute());

        fhir.MapGet("/ServiceRequest/{id}", async (string id, IMediator mediator, HttpResponse response, CancellationToken cancellationToken) =>
        {
            var referral = await mediator.Send(new ReadServiceRequest.Query(ParseId(id, "ServiceRequest")), cancellationToken);
            return Read(response, FhirMapping.ToServiceRequest(referral, Patients(response.HttpContext)), referral.Version);
        });
        fhir.MapGet("/ServiceRequest", async (HttpRequest request, IMediator mediator, CancellationToken cancellationToken) =>
        {
            var patients = Patients(request.HttpContext);
            var search = new FhirSearch(request.Query, SearchServiceRequests.Parameters);
            var page = await mediator.Send(SearchServiceRequests.From(search, patients), cancellationToken);
            return SearchSet(request, search, page, referral => FhirMapping.ToServiceRequest(referral, patients));
        });

        fhir.MapGet("/Task/{id}", async (string id, IMediator mediator, HttpResponse response, CancellationToken cancellationToken) =>
        {
            var task = await mediator.Send(new ReadTask.Query(ParseId(id, "Task")), cancellationToken);
            return Read(response, FhirMapping.ToTask(task, Patients(response.HttpContext)), task.Version);
        });
        fhir.MapGet("/Task", async (HttpRequest request, IMediator mediator, CancellationToken cancellationToken) =>
        {
            var patients = Patients(request.HttpContext);
            var search = new FhirSearch(request.Query, "focus", "_lastUpdated", "owner", "patient", "status");
            var focus = search.Reference("focus", "ServiceRequest");
            var page = await mediator.Send(new SearchTasks.Query(focus, search.Dates("_lastUpdated"), search.Count, search.Offset,
                search.Reference("owner", "Organization"), search.PatientReference("patient", patients))
            {
                Statuses = search.Codes("status", SearchTasks.Query.StatusCodes),
                WithTotal = search.WithTotal,
            }, cancellationToken);
            return SearchSet(request, search, page, task => FhirMapping.ToTask(task, patients));
        });

        fhir.MapGet("/Patient/{id}", async (string id, IMediator mediator, HttpResponse response, CancellationToken cancellationToken) =>
        {
            var patients = Patients(response.HttpContext);
            var person = await mediator.Send(new ReadPatient.Query(ParsePatientId(id, patients)), cancellationToken);
            return Read(response, FhirMapping.ToPatient(person, patients), person.Version);
        });
        fhir.MapGet("/Patient", async (HttpRequest request, IMediator mediator, CancellationToken cancellationToken) =>
        {
            var search = new FhirSearch(request.Query, "identifier");
            var nhsNumber = search.Token("identifier", FhirMapping.NhsNumberSystem, IsNhsNumberShape, "an NHS number (10 digits)")
                ?? throw FhirSearch.Invalid("identifier", SearchPatients.ByNhsNumberOnly);
            var page = await mediator.Send(new SearchPatients.Query(nhsNumber, search.Count, search.Offset) { WithTotal = search.WithTotal }, cancellationToken);
            var patients = Patients(request.HttpContext);
            return SearchSet(request, search, page, person => FhirMapping.ToPatient(person, patients));
        });

        fhir.MapGet("/Location/{id}", async (string id, IMediator mediator, HttpResponse response, CancellationToken cancellationToken) =>
        {
            var place = await mediator.Send(new ReadLocation.Query(id), cancellationToken);
            return Read(response, FhirMapping.ToLocation(place), place.Bed?.Version);
        });
        fhir.MapGet("/Location", async (HttpRequest request, IMediator mediator, CancellationToken cancellationToken) =>
        {
            var search = new FhirSearch(request.Query, "type", "partof", "operational-status");
            var types = search.Codes("type", FhirMapping.BedTypeCodes, FhirMapping.BedTypeSystem);
            var partOf = search.ReferenceId("partof", "Location", id => FhirPlace.Parse(id) is not null, "site-{id} or ward-{id}");
            var statuses = search.Codes("operational-status", FhirMapping.BedOperationalStatusCodes, FhirMapping.BedStatusSystem);
            var page = await mediator.Send(new SearchLocations.Query(types, partOf, statuses, search.Count, search.Offset), cancellationToken);
            return SearchSet(request, search, page, FhirMapping.ToLocation);
        });

        fhir.MapGet("/MeasureReport/{id}", async (string id, IMediator mediator, HttpResponse response, CancellationToken cancellationToken) =>
        {
            var site = FhirPlace.Parse(id) is ("site", var siteId) ? siteId : throw new NotFound($"MeasureReport/{id}");
            var capacity = await mediator.Send(new ReadCapacityReport.Query(site), cancellationToken);
            return Read(response, FhirMapping.ToMeasureReport(capacity), null);
        });
        fhir.MapGet("/MeasureReport", async (HttpRequest request, IMediator mediator, CancellationToken cancellationToken) =>
        {
            var search = new FhirSearch(request.Query, "subject");
            var subject = search.ReferenceId("subject", "Location", id => FhirPlace.Parse(id) is ("site", _), "site-{id}");
            var siteId = subject is null ? (long?)null : FhirPlace.Parse(subject)!.Value.Id;
            var page = await mediator.Send(new SearchCapacityReports.Query(siteId, search.Count, search.Offset), cancellationToken);
            return SearchSet(request, search, page, FhirMapping.ToMeasureReport);
        });

        fhir.MapWrites();
        fhir.MapHistory();
        fhir.MapDirectory();
        Subscriptions.SubscriptionEndpoints.MapSubscriptions(fhir);

        // Everything the CapabilityStatement does not offer.
        fhir.Map("/{**rest}", (HttpRequest request) => HttpMethods.IsGet(request.Method)
            ? Failure(StatusCodes.Status404NotFound, $"This server has no {request.Path}. GET /fhir/metadata lists what it offers.")
            : Failure(StatusCodes.Status405MethodNotAllowed, $"This server does not support {request.Method} {request.Path}. GET /fhir/metadata lists what it offers."));
    }

    /// <summary>The absolute base of this FHIR server as the caller reached it, for fullUrl and links.</summary>
    public static string BaseUrl(HttpRequest request) => $"{request.Scheme}://{request.Host}{request.PathBase}/fhir";

    private static async ValueTask<object?> RefuseAsOperationOutcome(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        if (http.GetEndpoint()?.Metadata.GetMetadata<AnonymousFhirAttribute>() is null && http.User.Identity?.IsAuthenticated != true)
        {
            http.Response.Headers.WWWAuthenticate = "Bearer";
            var sent = http.Request.Headers.Authorization.ToString().StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase);
            return Failure(StatusCodes.Status401Unauthorized, sent
                ? "The bearer token is not valid: it may have expired or been altered. Ask /oauth/token for a new one."
                : "A bearer token is required: ask /oauth/token for one with the client credentials grant.");
        }
        try
        {
            return await next(context);
        }
        catch (DomainFailure failure)
        {
            var (status, outcome) = FhirRequests.Answer(failure, write: !HttpMethods.IsGet(http.Request.Method));
            return Fhir(outcome, status);
        }
    }

    /// <summary>A resource with no version of its own (a site, a ward, a computed report) goes without an ETag.</summary>
    internal static IResult Read(HttpResponse response, Resource resource, int? version)
    {
        if (version is { } versionId)
        {
            response.Headers.ETag = FhirMapping.ETag(versionId);
        }
        if (resource.Meta?.LastUpdated is { } lastUpdated)
        {
            response.Headers.LastModified = lastUpdated.ToString("R", CultureInfo.InvariantCulture);
        }
        return Fhir(resource);
    }

    internal static IResult SearchSet<T>(HttpRequest request, FhirSearch search, Page<T> page, Func<T, Resource> map) =>
        Fhir(FhirMapping.SearchSet(page, map, BaseUrl(request), SelfUrl(request), search.NextUrl(request, page)));

    /// <summary>This request's own URL, as the caller reached it: a paged Bundle's self link.</summary>
    internal static string SelfUrl(HttpRequest request) => BaseUrl(request) + request.Path.Value!["/fhir".Length..] + request.QueryString;

    internal static IResult Failure(int status, string message) =>
        Fhir(FhirMapping.Outcome(FhirMapping.IssueTypeFor(status), message), status);

    internal static IResult Fhir(Resource resource, int status = StatusCodes.Status200OK) => new FhirResult(resource, status);

    /// <summary>
    /// A resource written as UTF-8 JSON straight into the response's buffer. Serialising to a string first, as Results.Text
    /// takes, made the whole body once as UTF-16 and again as UTF-8: for a transaction's answer (two resources, ~9 KB) that
    /// was two copies of it and a share of the GC's work on every referral (issue 14).
    /// </summary>
    internal sealed class FhirResult(Resource resource, int status) : IResult, IStatusCodeHttpResult, IContentTypeHttpResult
    {
        public const string JsonContentType = $"{FhirMapping.ContentType}; charset=utf-8";

        public Resource Resource => resource;

        public int? StatusCode => status;

        public string ContentType => JsonContentType;

        // The serializer's own settings: a writer of our own would otherwise escape and indent by its defaults.
        private static readonly System.Text.Json.JsonWriterOptions Writing = new()
        {
            Encoder = FhirMapping.Json.Encoder,
            Indented = FhirMapping.Json.WriteIndented,
            MaxDepth = FhirMapping.Json.MaxDepth,
        };

        public async System.Threading.Tasks.Task ExecuteAsync(HttpContext httpContext)
        {
            var response = httpContext.Response;
            response.StatusCode = status;
            response.ContentType = JsonContentType;
            using (var json = new System.Text.Json.Utf8JsonWriter(response.BodyWriter, Writing))
            {
                System.Text.Json.JsonSerializer.Serialize(json, resource, resource.GetType(), FhirMapping.Json);
            }
            await response.BodyWriter.FlushAsync(httpContext.RequestAborted);
        }
    }

    /// <summary>Our ids are numbers: anything else cannot name a resource here.</summary>
    internal static long ParseId(string id, string resourceType) =>
        long.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed) ? parsed : throw new NotFound($"{resourceType}/{id}");

    /// <summary>A Patient's id is its organisation's own (PatientIds): one the caller was not given names nobody, as any unknown id.</summary>
    internal static long ParsePatientId(string id, PatientIdSpace patients) => patients.PersonId(id) ?? throw new NotFound($"Patient/{id}");

    /// <summary>The Patient ids of the caller's organisation.</summary>
    internal static PatientIdSpace Patients(HttpContext context) =>
        context.RequestServices.GetRequiredService<PatientIds>().For(context.RequestServices.GetRequiredService<Auth.ActorAccessor>().Current);

    internal static bool IsNhsNumberShape(string value) => value.Length == 10 && value.All(char.IsAsciiDigit);

    /// <summary>Marks the one /fhir endpoint that needs no token: the CapabilityStatement.</summary>
    [AttributeUsage(AttributeTargets.Class)]
    private sealed class AnonymousFhirAttribute : Attribute;
}
