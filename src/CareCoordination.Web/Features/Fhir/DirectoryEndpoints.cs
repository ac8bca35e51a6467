using Mediator;

namespace CareCoordination.Features.Fhir;

/// <summary>
/// /fhir Organization, Practitioner, PractitionerRole, HealthcareService and AuditEvent: read and search, each
/// endpoint reading its query strictly (FhirSearch), sending one Mediator query and mapping in FhirMapping.
/// </summary>
public static class DirectoryEndpoints
{
    internal static void MapDirectory(this RouteGroupBuilder fhir)
    {
        fhir.MapGet("/Organization/{id}", async (string id, IMediator mediator, HttpResponse response, CancellationToken cancellationToken) =>
        {
            var organisation = await mediator.Send(new ReadOrganization.Query(FhirEndpoints.ParseId(id, "Organization")), cancellationToken);
            return FhirEndpoints.Read(response, FhirMapping.ToOrganization(organisation), null);
        });
        fhir.MapGet("/Organization", async (HttpRequest request, IMediator mediator, CancellationToken cancellationToken) =>
        {
            var search = new FhirSearch(request.Query, "identifier", "type", "name");
            var ods = search.Token("identifier", FhirMapping.OdsSystem, code => code.Length > 0, "an ODS code");
            var kinds = search.Codes("type", FhirMapping.OrganisationKindCodes, FhirMapping.OrganisationKindSystem);
            var page = await mediator.Send(new SearchOrganizations.Query(ods, kinds, search.Text("name"), search.Count, search.Offset) { WithTotal = search.WithTotal }, cancellationToken);
            return FhirEndpoints.SearchSet(request, search, page, FhirMapping.ToOrganization);
        });

        fhir.MapGet("/Practitioner/{id}", async (string id, IMediator mediator, HttpResponse response, CancellationToken cancellationToken) =>
        {
            var staff = await mediator.Send(new ReadPractitioner.Query(FhirEndpoints.ParseId(id, "Practitioner")), cancellationToken);
            return FhirEndpoints.Read(response, FhirMapping.ToPractitioner(staff), null);
        });
        fhir.MapGet("/Practitioner", async (HttpRequest request, IMediator mediator, CancellationToken cancellationToken) =>
        {
            var search = new FhirSearch(request.Query, "name", "active");
            var page = await mediator.Send(new SearchPractitioners.Query(search.Text("name"), search.Boolean("active"), search.Count, search.Offset) { WithTotal = search.WithTotal }, cancellationToken);
            return FhirEndpoints.SearchSet(request, search, page, FhirMapping.ToPractitioner);
        });

        fhir.MapGet("/PractitionerRole/{id}", async (string id, IMediator mediator, HttpResponse response, CancellationToken cancellationToken) =>
        {
            var staff = await mediator.Send(new ReadPractitionerRole.Query(FhirEndpoints.ParseId(id, "PractitionerRole")), cancellationToken);
            return FhirEndpoints.Read(response, FhirMapping.ToPractitionerRole(staff), null);
        });
        fhir.MapGet("/PractitionerRole", async (HttpRequest request, IMediator mediator, CancellationToken cancellationToken) =>
        {
            var search = new FhirSearch(request.Query, "practitioner", "organization", "role");
            var page = await mediator.Send(new SearchPractitionerRoles.Query(search.Reference("practitioner", "Practitioner"), search.Reference("organization", "Organization"),
                search.Codes("role", FhirMapping.StaffRoleCodes, FhirMapping.StaffRoleSystem), search.Count, search.Offset) { WithTotal = search.WithTotal }, cancellationToken);
            return FhirEndpoints.SearchSet(request, search, page, FhirMapping.ToPractitionerRole);
        });

        fhir.MapGet("/HealthcareService/{id}", async (string id, IMediator mediator, HttpResponse response, CancellationToken cancellationToken) =>
        {
            var service = await mediator.Send(new ReadHealthcareService.Query(FhirEndpoints.ParseId(id, "HealthcareService")), cancellationToken);
            return FhirEndpoints.Read(response, FhirMapping.ToHealthcareService(service), service.Version);
        });
        fhir.MapGet("/HealthcareService", async (HttpRequest request, IMediator mediator, CancellationToken cancellationToken) =>
        {
            var search = new FhirSearch(request.Query, "type", "organization", "active");
            var page = await mediator.Send(new SearchHealthcareServices.Query(search.Codes("type", FhirMapping.ServiceKindCodes, FhirMapping.ServiceKindSystem),
                search.Reference("organization", "Organization"), search.Boolean("active"), search.Count, search.Offset) { WithTotal = search.WithTotal }, cancellationToken);
            return FhirEndpoints.SearchSet(request, search, page, FhirMapping.ToHealthcareService);
        });

        fhir.MapGet("/AuditEvent/{id}", async (string id, IMediator mediator, HttpResponse response, CancellationToken cancellationToken) =>
        {
            var audit = await mediator.Send(new ReadAuditEvent.Query(FhirEndpoints.ParseId(id, "AuditEvent")), cancellationToken);
            return FhirEndpoints.Read(response, FhirMapping.ToAuditEvent(audit, FhirEndpoints.Patients(response.HttpContext)), null);
        });
        fhir.MapGet("/AuditEvent", async (HttpRequest request, IMediator mediator, CancellationToken cancellationToken) =>
        {
            var patients = FhirEndpoints.Patients(request.HttpContext);
            var search = new FhirSearch(request.Query, "date", "entity", "outcome");
            var page = await mediator.Send(new SearchAuditEvents.Query(search.Dates("date"), search.TypedReference("entity", [.. FhirAudit.ResourceTypes.Values], patients),
                search.Codes("outcome", [.. SearchAuditEvents.Outcomes.Keys]), search.Count, search.Offset) { WithTotal = search.WithTotal }, cancellationToken);
            return FhirEndpoints.SearchSet(request, search, page, audit => FhirMapping.ToAuditEvent(audit, patients));
        });
    }
}
