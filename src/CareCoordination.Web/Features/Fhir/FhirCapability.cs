using CareCoordination.Features.Fhir.Profiles;
using Hl7.Fhir.Model;

namespace CareCoordination.Features.Fhir;

/// <summary>
/// GET /fhir/metadata. States exactly what this server does today and nothing more: read and search of
/// ServiceRequest, Task, Patient, Location and MeasureReport, JSON only, for a bearer token from /oauth/token. A client that reads
/// this and tries anything else will be told 404 or 405, as promised here by omission.
/// </summary>
public static class FhirCapability
{
    public static CapabilityStatement For(string baseUrl) => WithProfiles(new()
    {
        Status = PublicationStatus.Active,
        Date = "2025-01-01",
        Publisher = "CareCoordination",
        Kind = CapabilityStatementKind.Instance,
        Software = new CapabilityStatement.SoftwareComponent { Name = "CareCoordination" },
        Implementation = new CapabilityStatement.ImplementationComponent
        {
            Description = "CareCoordination FHIR R4 API for partner systems: follow referrals and their triage, and see bed capacity.",
            Url = baseUrl,
        },
        FhirVersion = FHIRVersion.N4_0_1,
        Format = ["json"],
        Rest =
        [
            new CapabilityStatement.RestComponent
            {
                Mode = CapabilityStatement.RestfulCapabilityMode.Server,
                Documentation = new Markdown(
                    $"Every interaction except this one needs a bearer token. Searches page with _count (at most {FhirSearch.MaxCount}, default {FhirSearch.DefaultCount}) "
                    + "and follow the Bundle's next link. Unsupported or malformed search parameters are refused with 400. "
                    + "A partner sees only its own organisation's referrals, their triage tasks and the persons it referred; "
                    + "capacity (Location, MeasureReport) is the same for every partner."),
                Security = new CapabilityStatement.SecurityComponent
                {
                    Cors = false,
                    Service = [new CodeableConcept("http://terminology.hl7.org/CodeSystem/restful-security-service", "SMART-on-FHIR", "SMART-on-FHIR")],
                    Description = new Markdown(
                        "OAuth 2.0 client credentials: POST grant_type=client_credentials, client_id, client_secret and optionally scope "
                        + "(form-encoded) to /oauth/token for a bearer token. Scopes are SMART v2 system scopes: system/ServiceRequest.rs, "
                        + "system/Task.rs, system/Patient.rs, system/Location.rs, system/MeasureReport.rs (r to read, s to search)."),
                    Extension =
                    [
                        new Extension
                        {
                            Url = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                            Extension = [new Extension("token", new FhirUri(baseUrl[..^"/fhir".Length] + "/oauth/token"))],
                        },
                    ],
                },
                Resource =
                [
                    Resource(ResourceType.ServiceRequest, "A referral. Status: active (submitted, in triage, redirected, accepted), on-hold (awaiting information), revoked (cancelled or declined), completed (placed or completed).",
                        Param("patient.identifier", SearchParamType.Token, "The person's NHS number, chained: patient.identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}"),
                        Param("status", SearchParamType.Token, "active, on-hold, revoked or completed; several separated by commas", "http://hl7.org/fhir/SearchParameter/ServiceRequest-status")),
                    Resource(ResourceType.Task, "The triage task of a referral, with the referral's finer state in businessStatus.",
                        Param("focus", SearchParamType.Reference, "ServiceRequest/{id}", "http://hl7.org/fhir/SearchParameter/Task-focus"),
                        Param("_lastUpdated", SearchParamType.Date, "Prefixes gt, ge, lt, le; may be given twice for a range", "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated")),
                    Resource(ResourceType.Patient, "A person referred by the caller's organisation.",
                        Param("identifier", SearchParamType.Token, "NHS number: identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}", "http://hl7.org/fhir/SearchParameter/Patient-identifier")),
                    Resource(ResourceType.Location, "A site (site-{id}, physicalType si), ward (ward-{id}, wa, partOf its site) or bed (bed-{id}, bd, partOf its ward). "
                        + "A bed's operationalStatus is from v2-0116: U available, O occupied or reserved, H cleaning, C closed, K closed for infection; "
                        + "our own status is in the bed-status extension. Every partner with the scope sees every place.",
                        Param("type", SearchParamType.Token, $"Bed type from {FhirMapping.BedTypeSystem}: {string.Join(", ", FhirMapping.BedTypeCodes)}; several separated by commas", "http://hl7.org/fhir/SearchParameter/Location-type"),
                        Param("partof", SearchParamType.Reference, "Location/site-{id} (its wards) or Location/ward-{id} (its beds)", "http://hl7.org/fhir/SearchParameter/Location-partof"),
                        Param("operational-status", SearchParamType.Token, "Bed status from http://terminology.hl7.org/CodeSystem/v2-0116: U, O, H, C, K; several separated by commas", "http://hl7.org/fhir/SearchParameter/Location-operational-status")),
                    Resource(ResourceType.MeasureReport, "SANER-style bed capacity summary of an active site now (id site-{id}): status complete, type summary, "
                        + $"period from the start of today, one group with populations from {FhirMapping.BedCapacitySystem}: total, available, reserved, occupied, cleaning, closed; "
                        + "measureScore is occupancy (occupied of beds not closed) in %. The figures are the capacity board's.",
                        Param("subject", SearchParamType.Reference, "Location/site-{id}; without it, one report per active site", "http://hl7.org/fhir/SearchParameter/MeasureReport-subject")),
                ],
            },
        ],
    });

    /// <summary>
    /// Points each resource at our profile (fhir-profiles/). Only a profile every instance meets is the
    /// resource's base profile: cc-bed-location fits beds, not sites or wards, so Location only supports it.
    /// </summary>
    private static CapabilityStatement WithProfiles(CapabilityStatement statement)
    {
        foreach (var resource in statement.Rest.SelectMany(rest => rest.Resource))
        {
            if (resource.Type is { } type && FhirProfiles.ByResourceType.TryGetValue(type, out var profile))
            {
                resource.Profile = type == nameof(ResourceType.Location) ? null : profile;
                resource.SupportedProfile = [profile];
            }
        }
        return statement;
    }

    private static CapabilityStatement.ResourceComponent Resource(ResourceType type, string documentation, params CapabilityStatement.SearchParamComponent[] parameters) => new()
    {
        Type = type.ToString(),
        Documentation = new Markdown(documentation),
        Interaction =
        [
            new CapabilityStatement.ResourceInteractionComponent { Code = CapabilityStatement.TypeRestfulInteraction.Read },
            new CapabilityStatement.ResourceInteractionComponent { Code = CapabilityStatement.TypeRestfulInteraction.SearchType },
        ],
        Versioning = CapabilityStatement.ResourceVersionPolicy.Versioned,
        ReadHistory = false,
        UpdateCreate = false,
        ConditionalCreate = false,
        ConditionalUpdate = false,
        ConditionalDelete = CapabilityStatement.ConditionalDeleteStatus.NotSupported,
        SearchParam = [.. parameters],
    };

    private static CapabilityStatement.SearchParamComponent Param(string name, SearchParamType type, string documentation, string? definition = null) => new()
    {
        Name = name,
        Type = type,
        Definition = definition,
        Documentation = new Markdown(documentation),
    };
}
