using CareCoordination.Features.Fhir.Profiles;
using Hl7.Fhir.Model;

namespace CareCoordination.Features.Fhir;

/// <summary>
/// GET /fhir/metadata. States exactly what this server does and nothing more: read and search of each resource
/// it serves (referrals, their triage and persons; capacity; the directory of organisations, staff and services; a
/// partner's own audit trail), writes of referrals (create, cancel by update, transaction, batch, $process-message),
/// JSON only, for a bearer token from /oauth/token. A client that tries anything else is told 404 or 405, as promised
/// here by omission.
/// </summary>
public static class FhirCapability
{
    public static CapabilityStatement For(string baseUrl, FhirSettings limits)
    {
        var statement = Reads(baseUrl, limits);
        DescribeWrites(statement, baseUrl);
        // Versioned is claimed only where there is a meta.versionId: the types with history (History.Describe) and a service.
        statement.Rest[0].Resource.Single(r => r.Type == nameof(ResourceType.HealthcareService)).Versioning = CapabilityStatement.ResourceVersionPolicy.Versioned;
        History.Describe(statement);
        Subscriptions.SubscriptionEndpoints.Describe(statement);
        return WithProfiles(statement);
    }

    /// <summary>
    /// What partners may write: referrals, through the same commands as the form, and their own registrations of persons.
    /// Create (conditional on the sender's identifier, or the NHS number), cancel by update with If-Match, transaction and
    /// batch Bundles, and BaRS-style messages.
    /// </summary>
    private static void DescribeWrites(CapabilityStatement statement, string baseUrl)
    {
        var rest = statement.Rest[0];
        var referral = rest.Resource.Single(r => r.Type == nameof(ResourceType.ServiceRequest));
        referral.Interaction.Add(new CapabilityStatement.ResourceInteractionComponent
        {
            Code = CapabilityStatement.TypeRestfulInteraction.Create,
            Documentation = new Markdown("A referral for your own organisation (requester by ODS code) with its Patient contained or, in a transaction, "
                + "as an entry named by urn:uuid. Answers 201 with Location and ETag. Give the referral your own identifier: "
                + "If-None-Exist: identifier=system|value then answers 200 with the referral already made, even when retries race, "
                + "and the same identifier again without If-None-Exist is 409. A form rule broken (an NHS number whose check digit is wrong, "
                + "a missing summary) is 422 with the element in issue.expression."),
        });
        referral.Interaction.Add(new CapabilityStatement.ResourceInteractionComponent
        {
            Code = CapabilityStatement.TypeRestfulInteraction.Update,
            Documentation = new Markdown("Only to cancel a referral still being worked: send it back with status revoked and a last note saying why, "
                + "with If-Match: W/\"{version}\" (required: 428 without, 412 if it changed since you read it, checked before anything in the body)."),
        });
        referral.ConditionalCreate = true;
        var person = rest.Resource.Single(r => r.Type == nameof(ResourceType.Patient));
        person.Interaction.Add(new CapabilityStatement.ResourceInteractionComponent
        {
            Code = CapabilityStatement.TypeRestfulInteraction.Create,
            Documentation = new Markdown("Register a person before you refer them (scope system/Patient.c): your organisation's own record of them, "
                + "which is what you read back, and what a ServiceRequest of yours naming them (subject Patient/{id}, or subject.identifier "
                + "with their NHS number alone) starts from. Answers 201 with Location and ETag. "
                + "If-None-Exist: identifier=https://fhir.nhs.uk/Id/nhs-number|{NHS number} answers 200 with the person your organisation has "
                + "registered or referred already, before the body is checked (it needs system/Patient.s, as it is a search); a person only another "
                + "organisation knows is registered as yours (201). Registering again without If-None-Exist is 409. "
                + "An NHS number whose check digit is wrong is 422 with the element in issue.expression. "
                + "A Patient's id is your organisation's own for the person: another organisation has another, and an id you were not given is 404."),
        });
        person.ConditionalCreate = true;
        referral.SearchParam.Add(Param("identifier", SearchParamType.Token, "Your own identifier for the referral: identifier=system|value", "http://hl7.org/fhir/SearchParameter/ServiceRequest-identifier"));
        referral.SearchParam.Add(Param("patient", SearchParamType.Reference, "Patient/{id}", "http://hl7.org/fhir/SearchParameter/clinical-patient"));
        referral.SearchParam.Add(Param("subject", SearchParamType.Reference, "Patient/{id}", "http://hl7.org/fhir/SearchParameter/ServiceRequest-subject"));
        referral.SearchParam.Add(Param("_lastUpdated", SearchParamType.Date, "Prefixes gt, ge, lt, le; may be given twice for a range", "http://hl7.org/fhir/SearchParameter/Resource-lastUpdated"));
        var task = rest.Resource.Single(r => r.Type == nameof(ResourceType.Task));
        task.SearchParam.Add(Param("owner", SearchParamType.Reference, "Organization/{id}: the coordination centre or bed bureau working it", "http://hl7.org/fhir/SearchParameter/Task-owner"));
        task.SearchParam.Add(Param("patient", SearchParamType.Reference, "Patient/{id}", "http://hl7.org/fhir/SearchParameter/Task-patient"));
        task.SearchParam.Add(Param("status", SearchParamType.Token, string.Join(", ", SearchTasks.Query.StatusCodes) + "; several separated by commas",
            "http://hl7.org/fhir/SearchParameter/Task-status"));

        rest.Interaction =
        [
            new CapabilityStatement.SystemInteractionComponent
            {
                Code = CapabilityStatement.SystemRestfulInteraction.Transaction,
                Documentation = new Markdown("POST /fhir: entries POST Patient (with ifNoneExist identifier=NHS number), POST ServiceRequest "
                    + "(subject by urn:uuid, ifNoneExist by identifier) and PUT ServiceRequest/{id} (request.ifMatch checked first). A Patient entry "
                    + "no ServiceRequest names is registered on its own, as POST Patient; POST Consent, Observation, QuestionnaireResponse, Flag, "
                    + "Encounter, Location, Organization, PractitionerRole, Practitioner or RelatedPerson are read into the referral. Atomic: one refused entry stores nothing, "
                    + "and the OperationOutcome names it (Bundle.entry[n])."),
            },
            new CapabilityStatement.SystemInteractionComponent
            {
                Code = CapabilityStatement.SystemRestfulInteraction.Batch,
                Documentation = new Markdown("POST /fhir: each entry (POST Patient, POST ServiceRequest with a contained Patient or naming one registered, "
                    + "PUT ServiceRequest/{id}) on its own, answered in its own response entry."),
            },
        ];
        rest.Operation =
        [
            new CapabilityStatement.OperationComponent
            {
                Name = "process-message",
                Definition = "http://hl7.org/fhir/OperationDefinition/MessageHeader-process-message",
                Documentation = new Markdown($"POST {baseUrl}/$process-message with a BaRS-shaped message Bundle (id = message id): MessageHeader event "
                    + $"{ProcessMessage.EventSystem}|{ProcessMessage.ReferralEvent} (or the earlier {ProcessMessage.EarlierEventSystem}), reason ({ProcessMessage.ReasonSystem}) new, update or delete, "
                    + "focus the ServiceRequest entry. An update whose hospital Encounter (the one ServiceRequest.encounter names, else the message's only Encounter) "
                    + "has period.end records the person's discharge from hospital at that time (a dateTime with its zone). "
                    + "Answered synchronously with a response message; a repeated message id is 409 and changes nothing. "
                    + "What the referral form needs and the message lacks is accepted and listed as warnings in an OperationOutcome entry (MessageHeader.response.details)."),
            },
        ];
        statement.Messaging =
        [
            new CapabilityStatement.MessagingComponent
            {
                Documentation = new Markdown("Synchronous referral messages at $process-message (see the operation)."),
                Endpoint = [new CapabilityStatement.EndpointComponent
                {
                    Protocol = new Coding("http://terminology.hl7.org/CodeSystem/message-transport", "http", "HTTP"),
                    Address = baseUrl + "/$process-message",
                }],
            },
        ];
    }

    private static CapabilityStatement Reads(string baseUrl, FhirSettings limits) => new()
    {
        Status = PublicationStatus.Active,
        Date = "2025-01-01",
        Publisher = "CareCoordination",
        Kind = CapabilityStatementKind.Instance,
        Software = new CapabilityStatement.SoftwareComponent { Name = "CareCoordination" },
        Implementation = new CapabilityStatement.ImplementationComponent
        {
            Description = "CareCoordination FHIR R4 API for partner systems: send, follow and cancel referrals, follow their triage, and see capacity and the directory.",
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
                    + "and follow the Bundle's next link; _total=none leaves the total out (and is quicker for a search with many matches), _total=estimate or accurate give it exactly. Unsupported or malformed search parameters are refused with 400. "
                    + "A partner sees only its own organisation's referrals, their triage tasks and the persons it referred or registered; "
                    + "capacity (Location, MeasureReport, HealthcareService) and the directory of organisations are the same for every partner; "
                    + "staff (Practitioner, PractitionerRole) are only the caller's own organisation's, and AuditEvent only the caller's own calls. "
                    + $"Writes take FHIR JSON of at most {limits.MaxRequestBytes} bytes (413 beyond), a Bundle at most {limits.MaxBundleEntries} entries (400 beyond): valid UTF-8, exactly one resource with nothing after it, "
                    + "no lone surrogate or U+0000 in any string, resource types spelt exactly, each Bundle entry's fullUrl its own (400). "
                    + "They are held to the profiles named here (400), then to the referral form's own rules (422), and store nothing when refused. "
                    + "An absolute reference is followed only under this server's base; a Patient on another server needs its NHS number as identifier."),
                Security = new CapabilityStatement.SecurityComponent
                {
                    Cors = false,
                    Service = [new CodeableConcept("http://terminology.hl7.org/CodeSystem/restful-security-service", "SMART-on-FHIR", "SMART-on-FHIR")],
                    Description = new Markdown(
                        "OAuth 2.0 client credentials: POST grant_type=client_credentials, client_id, client_secret and optionally scope "
                        + "(form-encoded) to /oauth/token for a bearer token. Scopes are SMART v2 system scopes (c create, r read, u update, s search): system/ServiceRequest.cru, "
                        + "system/Task.rs, system/Patient.crs, system/Location.rs, system/MeasureReport.rs, system/Organization.rs, system/Practitioner.rs, "
                        + "system/PractitionerRole.rs, system/HealthcareService.rs, system/AuditEvent.rs (r to read, s to search)."),
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
                    Resource(ResourceType.Patient, "A person referred by the caller's organisation, as its own referrals described them (never another organisation's details).",
                        Param("identifier", SearchParamType.Token, "NHS number: identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}. Required: a Patient search without it is 400", "http://hl7.org/fhir/SearchParameter/Patient-identifier")),
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
                    Resource(ResourceType.Organization, "An organisation of the county (trusts, GP practices, coordination centres, the bed bureau, the council, care providers), "
                        + $"by ODS code, with its kind from {FhirMapping.OrganisationKindSystem} as type. Every partner with the scope sees every organisation.",
                        Param("identifier", SearchParamType.Token, $"ODS code: identifier={FhirMapping.OdsSystem}|{{code}}", "http://hl7.org/fhir/SearchParameter/Organization-identifier"),
                        Param("type", SearchParamType.Token, $"{string.Join(", ", FhirMapping.OrganisationKindCodes)}; several separated by commas", "http://hl7.org/fhir/SearchParameter/Organization-type"),
                        Param("name", SearchParamType.String, "The name starts with this, in any case", "http://hl7.org/fhir/SearchParameter/Organization-name")),
                    Resource(ResourceType.Practitioner, "A member of staff of the caller's own organisation: name (as text) and whether the account is active.",
                        Param("name", SearchParamType.String, "A word of the name starts with this, in any case", "http://hl7.org/fhir/SearchParameter/Practitioner-name"),
                        Param("active", SearchParamType.Token, "true or false", "http://hl7.org/fhir/SearchParameter/Practitioner-active")),
                    Resource(ResourceType.PractitionerRole, "The role here of a member of staff of the caller's own organisation (same id as their Practitioner): "
                        + $"code from {FhirMapping.StaffRoleSystem}, and the organisation.",
                        Param("practitioner", SearchParamType.Reference, "Practitioner/{id}", "http://hl7.org/fhir/SearchParameter/PractitionerRole-practitioner"),
                        Param("organization", SearchParamType.Reference, "Organization/{id}", "http://hl7.org/fhir/SearchParameter/PractitionerRole-organization"),
                        Param("role", SearchParamType.Token, $"{string.Join(", ", FhirMapping.StaffRoleCodes)}; several separated by commas", "http://hl7.org/fhir/SearchParameter/PractitionerRole-role")),
                    Resource(ResourceType.HealthcareService, $"A service people are placed into, type from {FhirMapping.ServiceKindSystem}, providedBy its provider. "
                        + $"Capacity is in the extension {FhirMapping.ServiceCapacityExtension} (unit slots or hours, perDay, availableToday, confirmedAt); "
                        + $"the provider's CQC rating and the commissioners' caution in {FhirMapping.ProviderQualityExtension}. "
                        + "meta.versionId and the ETag change with every change of capacity. Every partner with the scope sees every active service.",
                        Param("type", SearchParamType.Token, $"{string.Join(", ", FhirMapping.ServiceKindCodes)}; several separated by commas", "http://hl7.org/fhir/SearchParameter/HealthcareService-service-type"),
                        Param("organization", SearchParamType.Reference, "Organization/{id}: the provider", "http://hl7.org/fhir/SearchParameter/HealthcareService-organization"),
                        Param("active", SearchParamType.Token, "true or false", "http://hl7.org/fhir/SearchParameter/HealthcareService-active")),
                    Resource(ResourceType.AuditEvent, "The audit trail of the caller's own client, and nothing else: each call it made, with action C/R/U/D/E, "
                        + "outcome 0 (success), 4 (refused) or 8 (failed), the client as requestor, and entity the resource touched (and the Patient it is about).",
                        Param("date", SearchParamType.Date, "Prefixes gt, ge, lt, le; may be given twice for a range", "http://hl7.org/fhir/SearchParameter/AuditEvent-date"),
                        Param("entity", SearchParamType.Reference, $"{{type}}/{{id}}, type one of {string.Join(", ", FhirAudit.ResourceTypes.Values)}", "http://hl7.org/fhir/SearchParameter/AuditEvent-entity"),
                        Param("outcome", SearchParamType.Token, "0, 4 or 8; several separated by commas", "http://hl7.org/fhir/SearchParameter/AuditEvent-outcome")),
                ],
            },
        ],
    };

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
        Versioning = CapabilityStatement.ResourceVersionPolicy.NoVersion,
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
