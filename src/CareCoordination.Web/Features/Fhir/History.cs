using System.Globalization;
using CareCoordination.Auth;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Hl7.Fhir.Model;
using Mediator;

namespace CareCoordination.Features.Fhir;

/// <summary>
/// GET /fhir/{type}/{id}/_history/{vid} (vread) and GET /fhir/{type}/{id}/_history (instance history) for
/// ServiceRequest, Task, Patient and bed Locations. Each query first does exactly what the read does (the read
/// handler's own lookup: the same visibility, not found otherwise, the same audit subject), then answers from
/// the versions FhirVersions kept. Same scopes as the read: in SMART v2, r grants read, vread and instance history.
/// </summary>
public static class History
{
    internal static void MapHistory(this RouteGroupBuilder fhir)
    {
        MapVersions(fhir, "ServiceRequest", (id, version, count, offset, _) =>
            new ServiceRequestHistory.Query(FhirEndpoints.ParseId(id, "ServiceRequest"), version, count, offset));
        MapVersions(fhir, "Task", (id, version, count, offset, _) =>
            new TaskHistory.Query(FhirEndpoints.ParseId(id, "Task"), version, count, offset));
        MapVersions(fhir, "Patient", (id, version, count, offset, context) =>
            new PatientHistory.Query(FhirEndpoints.ParsePatientId(id, FhirEndpoints.Patients(context)), version, count, offset));
        MapVersions(fhir, "Location", (id, version, count, offset, _) => new LocationHistory.Query(id, version, count, offset));
    }

    private static void MapVersions(RouteGroupBuilder fhir, string type, Func<string, int?, int, int, HttpContext, IQuery<Page<Resource>>> query)
    {
        fhir.MapGet($"/{type}/{{id}}/_history/{{vid}}", async (string id, string vid, IMediator mediator, HttpResponse response, CancellationToken cancellationToken) =>
        {
            // Versions are whole numbers from 1: anything else never existed.
            var version = int.TryParse(vid, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed) && parsed > 0
                ? parsed
                : throw new NotFound($"{type}/{id}/_history/{vid}");
            var found = (await mediator.Send(query(id, version, 1, 0, response.HttpContext), cancellationToken)).Items.Single();
            return FhirEndpoints.Read(response, found, version);
        });
        fhir.MapGet($"/{type}/{{id}}/_history", async (string id, HttpRequest request, IMediator mediator, CancellationToken cancellationToken) =>
        {
            var search = new FhirSearch(request.Query);
            var page = await mediator.Send(query(id, null, search.Count, search.Offset, request.HttpContext), cancellationToken);
            return FhirEndpoints.Fhir(HistoryBundle(request, search, page));
        });
    }

    /// <summary>
    /// A history Bundle, newest first. Each entry says how its version was made as FHIR would have: version 1 by a
    /// create (POST, 201), every later one by an update (PUT, 200), whether the change came from a page or the API.
    /// </summary>
    private static Bundle HistoryBundle(HttpRequest request, FhirSearch search, Page<Resource> page)
    {
        var baseUrl = FhirEndpoints.BaseUrl(request);
        var bundle = FhirMapping.Paged(Bundle.BundleType.History, page.Total, FhirEndpoints.SelfUrl(request), search.NextUrl(request, page));
        foreach (var resource in page.Items)
        {
            var version = FhirVersions.VersionOf(resource);
            var created = version == 1;
            bundle.Entry.Add(new Bundle.EntryComponent
            {
                FullUrl = $"{baseUrl}/{resource.TypeName}/{resource.Id}",
                Resource = resource,
                Request = new Bundle.RequestComponent
                {
                    Method = created ? Bundle.HTTPVerb.POST : Bundle.HTTPVerb.PUT,
                    Url = created ? resource.TypeName : $"{resource.TypeName}/{resource.Id}",
                },
                Response = new Bundle.ResponseComponent
                {
                    Status = created ? "201 Created" : "200 OK",
                    Etag = FhirMapping.ETag(version),
                    LastModified = resource.Meta?.LastUpdated,
                },
            });
        }
        return bundle;
    }

    /// <summary>For the CapabilityStatement: vread and instance history, and versioning, where versions are kept.</summary>
    internal static void Describe(CapabilityStatement statement)
    {
        foreach (var resource in statement.Rest.SelectMany(r => r.Resource))
        {
            if (FhirVersions.ResourceTypes.Contains(resource.Type))
            {
                var which = resource.Type switch
                {
                    nameof(ResourceType.Location) => "A bed's versions (sites and wards have none)",
                    // Each referral keeps what it said about the person: a partner reads only what its own said.
                    nameof(ResourceType.Patient) => "The versions your own organisation's registration and referrals made, numbered 1, 2, 3 by them alone (another organisation's are not found)",
                    _ => "Every version",
                };
                resource.Interaction.Add(new CapabilityStatement.ResourceInteractionComponent
                {
                    Code = CapabilityStatement.TypeRestfulInteraction.Vread,
                    Documentation = new Markdown($"{which} made since this server began keeping history, by whichever command made it; "
                        + "the current version always. A version that never existed, or was made before history was kept, is 404."),
                });
                resource.Interaction.Add(new CapabilityStatement.ResourceInteractionComponent
                {
                    Code = CapabilityStatement.TypeRestfulInteraction.HistoryInstance,
                    Documentation = new Markdown("The versions vread serves, newest first, paged with _count (no other parameters)."),
                });
                resource.ReadHistory = true;
                resource.Versioning = CapabilityStatement.ResourceVersionPolicy.Versioned;
            }
        }
    }
}

/// <summary>The versions of a ServiceRequest the read would show: vread (Version given) or a page of history.</summary>
public static class ServiceRequestHistory
{
    [AllowRoles(Roles.Referrer, Roles.Coordinator, Roles.BedBureau, Roles.Manager)]
    [AllowPartnerScope("system/ServiceRequest.r")]
    public sealed record Query(long Id, int? Version, int Count, int Offset) : IQuery<Page<Resource>>, IAudited;

    public sealed class Handler(Database database, Work work, PatientIds patientIds) : IQueryHandler<Query, Page<Resource>>
    {
        public async ValueTask<Page<Resource>> Handle(Query query, CancellationToken cancellationToken)
        {
            var patients = patientIds.For(work.Scope.Actor);
            var current = await new ReadServiceRequest.Handler(database, work).Handle(new ReadServiceRequest.Query(query.Id), cancellationToken);
            return await FhirVersions.ReadAsync(database, FhirMapping.ToServiceRequest(current, patients), patients, query.Version, query.Count, query.Offset, cancellationToken);
        }
    }
}

/// <summary>The versions of a Task the read would show.</summary>
public static class TaskHistory
{
    [AllowRoles(Roles.Referrer, Roles.Coordinator, Roles.BedBureau, Roles.Manager)]
    [AllowPartnerScope("system/Task.r")]
    public sealed record Query(long Id, int? Version, int Count, int Offset) : IQuery<Page<Resource>>, IAudited;

    public sealed class Handler(Database database, Work work, PatientIds patientIds) : IQueryHandler<Query, Page<Resource>>
    {
        public async ValueTask<Page<Resource>> Handle(Query query, CancellationToken cancellationToken)
        {
            var patients = patientIds.For(work.Scope.Actor);
            var current = await new ReadTask.Handler(database, work).Handle(new ReadTask.Query(query.Id), cancellationToken);
            return await FhirVersions.ReadAsync(database, FhirMapping.ToTask(current, patients), patients, query.Version, query.Count, query.Offset, cancellationToken);
        }
    }
}

/// <summary>
/// The versions of a Patient the read would show. The coordination centre: every version of the whole record, as
/// FhirVersions kept them. A referrer or partner: only the versions its own organisation's referrals made, each as that
/// referral said it (see FhirPerson); a version another organisation wrote is not found.
/// </summary>
public static class PatientHistory
{
    [AllowRoles(Roles.Referrer, Roles.Coordinator, Roles.BedBureau, Roles.Manager)]
    [AllowPartnerScope("system/Patient.r")]
    public sealed record Query(long Id, int? Version, int Count, int Offset) : IQuery<Page<Resource>>, IAudited;

    public sealed class Handler(Database database, Work work, PatientIds patientIds) : IQueryHandler<Query, Page<Resource>>
    {
        public async ValueTask<Page<Resource>> Handle(Query query, CancellationToken cancellationToken)
        {
            var current = await new ReadPatient.Handler(database, work, patientIds).Handle(new ReadPatient.Query(query.Id), cancellationToken);
            var actor = work.Scope.Actor;
            var patients = patientIds.For(actor);
            if (ReferralAccess.SeesEveryOrganisation(actor))
            {
                return await FhirVersions.ReadAsync(database, FhirMapping.ToPatient(current, patients), patients, query.Version, query.Count, query.Offset,
                    cancellationToken, personId: query.Id);
            }
            if (current.Version is null)
            {
                throw new NotFound($"A version history of {patients.Reference(query.Id)} (what your referrals said before versions were kept has none)");
            }
            await using var connection = await database.OpenAsync(cancellationToken);
            // One organisation's referrals of one person are few: read them all, and page here.
            var versions = (await connection.QueryAsync<FhirPerson>(
                FhirPerson.VersionsAsReferred, new { query.Id, OrganisationId = actor.OrganisationId ?? -1 }))
                .OrderByDescending(v => v.Version)
                .ToList();
            if (query.Version is { } wanted)
            {
                return versions.FirstOrDefault(v => v.Version == wanted) is { } version
                    ? new Page<Resource>(1, [FhirMapping.ToPatient(version, patients)])
                    : throw new NotFound($"{patients.Reference(query.Id)}/_history/{wanted}");
            }
            return new Page<Resource>(versions.Count, [.. versions.Skip(query.Offset).Take(query.Count).Select(version => FhirMapping.ToPatient(version, patients))]);
        }
    }
}

/// <summary>The versions of a bed Location. Capacity is not personal data, so, like the read, this is not audited.</summary>
public static class LocationHistory
{
    [AllowRoles(Roles.Manager, Roles.Coordinator, Roles.BedBureau, Roles.Admin)]
    [AllowPartnerScope("system/Location.r")]
    public sealed record Query(string Id, int? Version, int Count, int Offset) : IQuery<Page<Resource>>;

    public sealed class Handler(Database database) : IQueryHandler<Query, Page<Resource>>
    {
        public async ValueTask<Page<Resource>> Handle(Query query, CancellationToken cancellationToken)
        {
            var current = await new ReadLocation.Handler(database).Handle(new ReadLocation.Query(query.Id), cancellationToken);
            return await FhirVersions.ReadAsync(database, FhirMapping.ToLocation(current), PatientIdSpace.Store, query.Version, query.Count, query.Offset, cancellationToken);
        }
    }
}
