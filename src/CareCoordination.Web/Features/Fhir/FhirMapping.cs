using Dapper;
using System.Globalization;
using System.Text.Json;
using Hl7.Fhir.Model;
using Hl7.Fhir.Serialization;
using Hl7.Fhir.Utility;
using CareCoordination.Domain;
using FhirTask = Hl7.Fhir.Model.Task;

namespace CareCoordination.Features.Fhir;

/// <summary>
/// The one place the domain becomes FHIR R4: referral → ServiceRequest, triage task → Task, person → Patient,
/// places → Location, capacity → MeasureReport, the directory and audit trail, failures → OperationOutcome,
/// pages → searchset Bundles. The way back, from what partners send to the referral form, is ReferralIntake.
/// </summary>
public static class FhirMapping
{
    public const string ContentType = "application/fhir+json";
    public const string NhsNumberSystem = "https://fhir.nhs.uk/Id/nhs-number";
    public const string OdsSystem = "https://fhir.nhs.uk/Id/ods-organization-code";

    /// <summary>A hospital site's ODS code (HospitalSites).</summary>
    public const string OdsSiteSystem = "https://fhir.nhs.uk/Id/ods-site-code";
    public const string PathwaySystem = "https://carecoordination.example.org/fhir/CodeSystem/discharge-pathway";
    public const string ReferralStatusSystem = "https://carecoordination.example.org/fhir/CodeSystem/referral-status";
    public const string BedTypeSystem = "https://carecoordination.example.org/fhir/CodeSystem/bed-type";
    public const string BedStatusExtension = "https://carecoordination.example.org/fhir/StructureDefinition/bed-status";
    public const string BedCapacitySystem = "https://carecoordination.example.org/fhir/CodeSystem/bed-capacity";
    public const string BedCapacityMeasure = "https://carecoordination.example.org/fhir/Measure/bed-capacity";
    public const string PhysicalTypeSystem = "http://terminology.hl7.org/CodeSystem/location-physical-type";
    public const string BedStatusSystem = "http://terminology.hl7.org/CodeSystem/v2-0116";

    // The referral contract (fhir-profiles/): where each answer of the one referral form lives in FHIR.
    public const string Canonical = "https://carecoordination.example.org/fhir";
    public const string NeedSystem = Canonical + "/CodeSystem/need";
    public const string RiskSystem = Canonical + "/CodeSystem/risk";
    public const string ReferralSourceSystem = Canonical + "/CodeSystem/referral-source";
    public const string DeclineReasonSystem = Canonical + "/CodeSystem/decline-reason";
    public const string ReferralSourceExtension = Canonical + "/StructureDefinition/referral-source";
    public const string HospitalStayExtension = Canonical + "/StructureDefinition/hospital-stay";
    public const string RiskExtension = Canonical + "/StructureDefinition/referral-risk";
    public const string ConsentExtension = Canonical + "/StructureDefinition/consent-to-share";
    public const string WhatMattersExtension = Canonical + "/StructureDefinition/what-matters";
    public const string SelfFundingExtension = Canonical + "/StructureDefinition/self-funding";
    public const string EasyReadExtension = Canonical + "/StructureDefinition/easy-read";
    public const string LivesAloneExtension = Canonical + "/StructureDefinition/lives-alone";
    public const string CarerAssessmentExtension = Canonical + "/StructureDefinition/carer-assessment";
    public const string EthnicCategoryExtension = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory";
    public const string EthnicCategorySystem = "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategoryEngland";
    public const string InterpreterRequiredExtension = "http://hl7.org/fhir/StructureDefinition/patient-interpreterRequired";
    public const string LanguageSystem = "urn:ietf:bcp:47";
    public const string BritishSignLanguage = "bfi";

    /// <summary>Firely's System.Text.Json converters: the SDK 6 serializer, not the obsolete parser.</summary>
    public static JsonSerializerOptions Json { get; } = new JsonSerializerOptions().ForFhir(ModelInfo.ModelInspector);

    public static string Serialize(Resource resource) => JsonSerializer.Serialize(resource, resource.GetType(), Json);

    /// <summary>
    /// Our referral lifecycle as ServiceRequest.status. A declined referral is revoked like a cancelled one
    /// (the request ended without being carried out); the decline and its reason show on the Task (rejected,
    /// statusReason) and in a note, and the finer state is always in the Task's businessStatus.
    /// </summary>
    public static RequestStatus ServiceRequestStatus(string referralStatus) => referralStatus switch
    {
        "draft" => RequestStatus.Draft,
        "submitted" or "in-triage" or "redirected" or "accepted" => RequestStatus.Active,
        "awaiting-information" => RequestStatus.OnHold,
        "cancelled" or "declined" => RequestStatus.Revoked,
        "placed" or "completed" => RequestStatus.Completed,
        _ => RequestStatus.Unknown,
    };

    /// <summary>The referral statuses a ServiceRequest status search stands for.</summary>
    public static IReadOnlyList<string> ReferralStatusesFor(string fhirStatus) => fhirStatus switch
    {
        "active" => ["submitted", "in-triage", "redirected", "accepted"],
        "on-hold" => ["awaiting-information"],
        "revoked" => ["cancelled", "declined"],
        "completed" => ["placed", "completed"],
        _ => [],
    };

    public static IReadOnlyList<string> ServiceRequestStatusCodes { get; } = ["active", "on-hold", "revoked", "completed"];

    public static ServiceRequest ToServiceRequest(FhirReferral referral, PatientIdSpace patients)
    {
        var request = new ServiceRequest
        {
            Id = Id(referral.Id),
            Meta = Meta(referral.Version, referral.UpdatedAt),
            Identifier = referral.SenderValue is null ? [] : [new Identifier(referral.SenderSystem, referral.SenderValue)],
            Status = ServiceRequestStatus(referral.Status),
            Intent = RequestIntent.Order,
            Category = [new CodeableConcept("http://snomed.info/sct", "3457005", "Patient referral")],
            Code = referral.Pathway is null ? null : new CodeableConcept(PathwaySystem, referral.Pathway, PathwayName(referral.Pathway)),
            Priority = referral.Urgency switch
            {
                "urgent" => RequestPriority.Urgent,
                "immediate" => RequestPriority.Stat,
                _ => RequestPriority.Routine,
            },
            Subject = PatientReference(patients, referral.PersonId, referral.NhsNumber, referral.PersonName),
            Requester = Organisation(referral.OrganisationCode, referral.OrganisationName, referral.OrganisationId),
            AuthoredOn = referral.SubmittedAt is { } submitted ? Instant(submitted) : null,
            Occurrence = referral.ExpectedDischargeOn is { } discharge ? new FhirDateTime(Day(discharge)) : null,
            OrderDetail = [.. referral.Needs.Select(n => new CodeableConcept(NeedSystem, n, ReferralCodes.Needs.LabelOf(n)))],
            Extension = [.. ReferralExtensions(referral)],
        };
        if (!string.IsNullOrWhiteSpace(referral.Summary))
        {
            request.Note.Add(new Annotation { Text = new Markdown(referral.Summary) });
        }
        if (!string.IsNullOrWhiteSpace(referral.OutcomeReason))
        {
            var why = referral.Status == "declined" ? "Declined" : referral.Status == "cancelled" ? "Cancelled" : "Outcome";
            request.Note.Add(new Annotation { Text = new Markdown($"{why}: {referral.OutcomeReason}") });
        }
        return request;
    }

    /// <summary>The form's answers that ServiceRequest has no element for, as the cc-referral profile's extensions.</summary>
    private static IEnumerable<Extension> ReferralExtensions(FhirReferral referral)
    {
        if (referral.Source is not null)
        {
            yield return new Extension(ReferralSourceExtension, new Coding(ReferralSourceSystem, referral.Source, ReferralCodes.Sources.LabelOf(referral.Source)));
        }
        if (referral.Ward is not null)
        {
            yield return Complex(HospitalStayExtension,
                ("ward", new FhirString(referral.Ward)),
                ("bed", referral.BedLabel is null ? null : new FhirString(referral.BedLabel)),
                ("site", referral.HospitalSite is { } site ? new Identifier(OdsSiteSystem, site) : null),
                ("admitted", referral.AdmittedOn is { } admitted ? new Date(Day(admitted)) : null),
                ("medicallyOptimised", referral.MedicallyOptimisedOn is { } optimised ? new Date(Day(optimised)) : null));
        }
        foreach (var (code, flagged, detail) in new (string, bool, string?)[]
        {
            ("safeguarding", referral.SafeguardingConcern, null),
            ("infection", referral.InfectionStatus is not null, referral.InfectionStatus),
            ("falls", referral.FallsRisk, null),
            ("self-neglect", referral.SelfNeglect, null),
            ("cognition", referral.CognitionConcern, null),
            ("mental-capacity", referral.MentalCapacityConcern, referral.BestInterestsDecision),
        })
        {
            if (flagged)
            {
                yield return new Extension(RiskExtension, new CodeableConcept(RiskSystem, code, ReferralCodes.Risks.LabelOf(code), detail));
            }
        }
        yield return Complex(ConsentExtension,
            ("shared", new FhirBoolean(referral.ConsentToShare)),
            ("givenBy", Text(referral.ConsentGivenBy)),
            ("lawfulReason", Text(referral.LawfulReason)));
        // A complex extension with no parts is not valid FHIR: what-matters is left out when nothing was recorded.
        if (new[] { referral.PersonWishes, referral.FamilyExpectations, referral.StaffExpectations, referral.Strengths, referral.Goals }.Any(t => !string.IsNullOrWhiteSpace(t)))
        {
            yield return Complex(WhatMattersExtension,
                ("personWishes", Text(referral.PersonWishes)),
                ("familyExpectations", Text(referral.FamilyExpectations)),
                ("staffExpectations", Text(referral.StaffExpectations)),
                ("strengths", Text(referral.Strengths)),
                ("goals", Text(referral.Goals)));
        }
        if (referral.SelfFunding)
        {
            yield return new Extension(SelfFundingExtension, new FhirBoolean(true));
        }
    }

    private static Extension Complex(string url, params (string Name, DataType? Value)[] parts) => new()
    {
        Url = url,
        Extension = [.. parts.Where(p => p.Value is not null).Select(p => new Extension(p.Name, p.Value!))],
    };

    private static FhirString? Text(string? text) => string.IsNullOrWhiteSpace(text) ? null : new FhirString(text);

    public static string Day(DateOnly day) => day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    public static FhirTask ToTask(FhirTriageTask task, PatientIdSpace patients)
    {
        var resource = new FhirTask
        {
            Id = Id(task.Id),
            Meta = Meta(task.Version, task.UpdatedAt),
            // Gravity: the performer accepting the referral is the Task's "accepted". Our triage task completes then;
            // a task completed otherwise (passed on to the other queue) stays completed.
            Status = task.Status == "completed" && task.Decision?.StartsWith("accepted", StringComparison.Ordinal) == true
                ? FhirTask.TaskStatus.Accepted
                : EnumUtility.ParseLiteral<FhirTask.TaskStatus>(task.Status)
                    ?? throw new InvalidOperationException($"Triage task {task.Id} has status {task.Status}, which is not a FHIR Task status."),
            BusinessStatus = new CodeableConcept(ReferralStatusSystem, task.ReferralStatus, ReferralStatusName(task.ReferralStatus), ReferralStatusName(task.ReferralStatus)),
            Intent = FhirTask.TaskIntent.Order,
            Code = new CodeableConcept("http://hl7.org/fhir/CodeSystem/task-code", "fulfill", "Fulfill the focal request"),
            Description = task.Queue == "bed-bureau" ? "Bed bureau triage of the referral" : "Community coordination centre triage of the referral",
            Focus = new ResourceReference($"ServiceRequest/{Id(task.ReferralId)}"),
            For = PatientReference(patients, task.PersonId, task.NhsNumber, task.PersonName),
            AuthoredOn = Instant(task.CreatedAt),
            LastModified = Instant(task.UpdatedAt),
            Requester = Organisation(task.RequesterCode, task.RequesterName, task.OrganisationId),
            Owner = task.OwnerName is null ? null : Organisation(task.OwnerCode, task.OwnerName, task.OwnerId),
        };
        // A decline carries its coded reason (the decision is "declined: {code}") as well as the words.
        var declinedFor = task.Decision?.StartsWith("declined: ", StringComparison.Ordinal) == true ? task.Decision["declined: ".Length..] : null;
        if (declinedFor is not null || !string.IsNullOrWhiteSpace(task.Reason))
        {
            resource.StatusReason = declinedFor is null
                ? new CodeableConcept { Text = task.Reason }
                : new CodeableConcept(DeclineReasonSystem, declinedFor, ReferralCodes.DeclineReasons.LabelOf(declinedFor), task.Reason);
        }
        if (task.TakenAt is not null || task.CompletedAt is not null)
        {
            resource.ExecutionPeriod = new Period
            {
                Start = task.TakenAt is { } taken ? Instant(taken) : null,
                End = task.CompletedAt is { } completed ? Instant(completed) : null,
            };
        }
        return resource;
    }

    private static HumanName ToHumanName(Referrals.PersonName name) => new()
    {
        Use = name.Use is null ? null : EnumUtility.ParseLiteral<HumanName.NameUse>(name.Use),
        Text = name.Text,
        Family = name.Family,
        Given = name.Given,
        Prefix = name.Prefix,
        Suffix = name.Suffix,
    };

    private static Identifier ToIdentifier(Referrals.PersonIdentifier identifier) => new(identifier.System, identifier.Value)
    {
        Use = identifier.Use is null ? null : EnumUtility.ParseLiteral<Identifier.IdentifierUse>(identifier.Use),
    };

    public static Patient ToPatient(FhirPerson person, PatientIdSpace patients)
    {
        var patient = new Patient
        {
            Id = patients.Id(person.Id),
            // What a referral sent before versions were kept with it said has no version to give.
            Meta = person.Version is { } version ? Meta(version, person.UpdatedAt) : new Meta { LastUpdated = person.UpdatedAt.ToUniversalTime() },
            Identifier = [new Identifier(NhsNumberSystem, person.NhsNumber), .. person.OtherIdentifiers.Select(ToIdentifier)],
            // Every name a partner sent, as sent; else the form's one name.
            Name = person.Names.Count > 0 ? [.. person.Names.Select(ToHumanName)]
                : [new HumanName { Use = HumanName.NameUse.Official, Family = person.FamilyName, Given = [person.GivenName] }],
            BirthDate = Day(person.DateOfBirth),
            Gender = person.Sex switch
            {
                "female" => AdministrativeGender.Female,
                "male" => AdministrativeGender.Male,
                "other" => AdministrativeGender.Other,
                _ => AdministrativeGender.Unknown,
            },
        };
        if (person.AddressLine is not null || person.Postcode is not null)
        {
            patient.Address = [new Address
            {
                Use = Address.AddressUse.Home,
                Line = person.AddressLine is null ? [] : [person.AddressLine],
                City = person.Locality,
                PostalCode = person.Postcode,
            }];
        }
        if (person.GpPracticeCode is not null)
        {
            patient.GeneralPractitioner = [new ResourceReference { Identifier = new Identifier(OdsSystem, person.GpPracticeCode) }];
        }
        if (person.Ethnicity is not null)
        {
            patient.Extension.Add(new Extension(EthnicCategoryExtension,
                new CodeableConcept(EthnicCategorySystem, person.Ethnicity, ReferralCodes.Ethnicities.LabelOf(person.Ethnicity))));
        }
        if (person.InterpreterLanguage is not null)
        {
            patient.Extension.Add(new Extension(InterpreterRequiredExtension, new FhirBoolean(true)));
            patient.Communication.Add(new Patient.CommunicationComponent { Language = new CodeableConcept { Text = person.InterpreterLanguage }, Preferred = true });
        }
        if (person.Bsl)
        {
            patient.Communication.Add(new Patient.CommunicationComponent { Language = new CodeableConcept(LanguageSystem, BritishSignLanguage, "British Sign Language") });
        }
        if (person.EasyRead)
        {
            patient.Extension.Add(new Extension(EasyReadExtension, new FhirBoolean(true)));
        }
        if (person.LivesAlone)
        {
            patient.Extension.Add(new Extension(LivesAloneExtension, new FhirBoolean(true)));
        }
        if (person.CarerName is not null)
        {
            var contact = new Patient.ContactComponent { Name = new HumanName { Text = person.CarerName } };
            if (person.CarerRelationship is not null)
            {
                contact.Relationship = [new CodeableConcept { Text = person.CarerRelationship }];
            }
            if (person.CarerContact is not null)
            {
                contact.Telecom = [new ContactPoint(person.CarerContact.Contains('@', StringComparison.Ordinal) ? ContactPoint.ContactPointSystem.Email : ContactPoint.ContactPointSystem.Phone,
                    null, person.CarerContact)];
            }
            if (person.CarerWantsAssessment)
            {
                contact.Extension.Add(new Extension(CarerAssessmentExtension, new FhirBoolean(true)));
            }
            patient.Contact = [contact];
        }
        return patient;
    }

    /// <summary>The v2-0116 codes a bed's operationalStatus can carry, as the search accepts them.</summary>
    public static IReadOnlyList<string> BedOperationalStatusCodes { get; } = ["U", "O", "H", "C", "K"];

    public static IReadOnlyList<string> BedTypeCodes { get; } = ["rehabilitation", "step-down-nursing", "residential", "nursing", "dementia"];

    /// <summary>
    /// Our bed status as HL7 v2 table 0116 (bed status). 0116 has no "reserved": a bed held for an incoming
    /// admission is not free, so it is O (occupied), and our own status is in the bed-status extension.
    /// A bed closed for infection control is K (contaminated); closed for any other reason, C.
    /// </summary>
    public static Coding BedOperationalStatus(BedBureau.BedRow bed) => bed.Status switch
    {
        "available" => new Coding(BedStatusSystem, "U", "Unoccupied"),
        "occupied" or "reserved" => new Coding(BedStatusSystem, "O", "Occupied"),
        "cleaning" => new Coding(BedStatusSystem, "H", "Housekeeping"),
        "closed" when bed.ClosedReason == "infection" => new Coding(BedStatusSystem, "K", "Contaminated"),
        "closed" => new Coding(BedStatusSystem, "C", "Closed"),
        _ => throw new InvalidOperationException($"Bed {bed.Id} has status {bed.Status}, which has no v2-0116 code here."),
    };

    public static Location ToLocation(FhirPlace place)
    {
        if (place.Site is { } site)
        {
            return new Location
            {
                Id = place.LocationId,
                Status = site.Active ? Location.LocationStatus.Active : Location.LocationStatus.Inactive,
                Mode = Location.LocationMode.Instance,
                Name = site.Name,
                PhysicalType = new CodeableConcept(PhysicalTypeSystem, "si", "Site"),
                Address = new Address { City = site.Locality, PostalCode = site.Postcode },
                ManagingOrganization = Organisation(site.OrganisationCode, site.OrganisationName),
            };
        }
        if (place.Ward is { } ward)
        {
            return new Location
            {
                Id = place.LocationId,
                Status = ward.SiteActive ? Location.LocationStatus.Active : Location.LocationStatus.Inactive,
                Mode = Location.LocationMode.Instance,
                Name = ward.Name,
                PhysicalType = new CodeableConcept(PhysicalTypeSystem, "wa", "Ward"),
                PartOf = new ResourceReference($"Location/{place.PartOf}", ward.SiteName),
            };
        }
        var bed = place.Bed!;
        return new Location
        {
            Id = place.LocationId,
            Meta = Meta(bed.Version, bed.ConfirmedAt),
            Extension = [new Extension(BedStatusExtension, new Hl7.Fhir.Model.Code(bed.Status))],
            Status = bed.SiteActive ? Location.LocationStatus.Active : Location.LocationStatus.Inactive,
            OperationalStatus = BedOperationalStatus(bed),
            Mode = Location.LocationMode.Instance,
            Name = $"{bed.WardName} bed {bed.Label}",
            Description = bed.Place,
            PhysicalType = new CodeableConcept(PhysicalTypeSystem, "bd", "Bed"),
            Type = [new CodeableConcept(BedTypeSystem, bed.BedType, BedTypeName(bed.BedType))],
            PartOf = new ResourceReference($"Location/{place.PartOf}", $"{bed.SiteName}, {bed.WardName}"),
        };
    }

    /// <summary>
    /// A SANER-style summary of one site's beds now: one group "beds" with a population per bed status and
    /// the total, and the board's occupancy (occupied of open beds) as the measure score.
    /// </summary>
    public static MeasureReport ToMeasureReport(SiteCapacity capacity)
    {
        var beds = capacity.Beds;
        return new MeasureReport
        {
            Id = FhirPlace.SiteId(capacity.Site.Id),
            Status = MeasureReport.MeasureReportStatus.Complete,
            Type = MeasureReport.MeasureReportType.Summary,
            Measure = BedCapacityMeasure,
            Subject = new ResourceReference($"Location/{FhirPlace.SiteId(capacity.Site.Id)}", capacity.Site.Name),
            Date = Instant(capacity.AsOf),
            Reporter = Organisation(capacity.Site.OrganisationCode, capacity.Site.OrganisationName),
            Period = new Period { Start = Instant(capacity.Since), End = Instant(capacity.AsOf) },
            Group =
            [
                new MeasureReport.GroupComponent
                {
                    Code = new CodeableConcept(BedCapacitySystem, "beds", "Beds"),
                    Population =
                    [
                        Population("total", "All beds", beds.Total),
                        Population("available", "Available", beds.Available),
                        Population("reserved", "Reserved for an admission", beds.Reserved),
                        Population("occupied", "Occupied", beds.Occupied),
                        Population("cleaning", "Being cleaned", beds.Cleaning),
                        Population("closed", "Closed", beds.Closed),
                    ],
                    MeasureScore = new Quantity(beds.OccupancyPercent, "%", "http://unitsofmeasure.org"),
                },
            ],
        };
    }

    private static MeasureReport.PopulationComponent Population(string code, string display, int count) => new()
    {
        Code = new CodeableConcept(BedCapacitySystem, code, display),
        Count = count,
    };

    public static Bundle SearchSet<T>(Page<T> page, Func<T, Resource> map, string baseUrl, string selfUrl, string? nextUrl)
    {
        var bundle = Paged(Bundle.BundleType.Searchset, page.Total, selfUrl, nextUrl);
        foreach (var item in page.Items)
        {
            var resource = map(item);
            bundle.Entry.Add(new Bundle.EntryComponent
            {
                FullUrl = $"{baseUrl}/{resource.TypeName}/{resource.Id}",
                Resource = resource,
                Search = new Bundle.SearchComponent { Mode = Bundle.SearchEntryMode.Match },
            });
        }
        return bundle;
    }

    /// <summary>
    /// A Bundle that pages (a search, a history): its total (unless the client said it will not use it), and links to itself
    /// and, unless last, the next page.
    /// </summary>
    public static Bundle Paged(Bundle.BundleType type, long? total, string selfUrl, string? nextUrl)
    {
        var bundle = new Bundle
        {
            Type = type,
            Total = (int?)total,
            Link = [new Bundle.LinkComponent { Relation = "self", Url = selfUrl }],
        };
        if (nextUrl is not null)
        {
            bundle.Link.Add(new Bundle.LinkComponent { Relation = "next", Url = nextUrl });
        }
        return bundle;
    }

    public static OperationOutcome Outcome(OperationOutcome.IssueType type, string message, OperationOutcome.IssueSeverity severity = OperationOutcome.IssueSeverity.Error) => new()
    {
        Issue = [new OperationOutcome.IssueComponent { Severity = severity, Code = type, Diagnostics = message }],
    };

    /// <summary>
    /// Each failure kind the handlers throw, as the issue type FHIR clients look for. A 409 is <c>conflict</c> (someone changed
    /// it first: read again, then retry) unless the failure says it is a duplicate (FhirRequests.Answer).
    /// </summary>
    public static OperationOutcome.IssueType IssueTypeFor(int status) => status switch
    {
        StatusCodes.Status400BadRequest => OperationOutcome.IssueType.Invalid,
        StatusCodes.Status401Unauthorized => OperationOutcome.IssueType.Login,
        StatusCodes.Status403Forbidden => OperationOutcome.IssueType.Forbidden,
        StatusCodes.Status404NotFound => OperationOutcome.IssueType.NotFound,
        StatusCodes.Status405MethodNotAllowed => OperationOutcome.IssueType.NotSupported,
        StatusCodes.Status409Conflict => OperationOutcome.IssueType.Conflict,
        StatusCodes.Status412PreconditionFailed => OperationOutcome.IssueType.Conflict,
        StatusCodes.Status413PayloadTooLarge => OperationOutcome.IssueType.TooLong,
        StatusCodes.Status415UnsupportedMediaType => OperationOutcome.IssueType.NotSupported,
        StatusCodes.Status428PreconditionRequired => OperationOutcome.IssueType.Required,
        StatusCodes.Status422UnprocessableEntity => OperationOutcome.IssueType.BusinessRule,
        _ => OperationOutcome.IssueType.Exception,
    };

    public static string Id(long id) => id.ToString(CultureInfo.InvariantCulture);

    public static string ETag(int version) => $"W/\"{version.ToString(CultureInfo.InvariantCulture)}\"";

    public static string Instant(DateTimeOffset at) => at.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    private static Meta Meta(int version, DateTimeOffset updatedAt) => new()
    {
        VersionId = version.ToString(CultureInfo.InvariantCulture),
        LastUpdated = updatedAt.ToUniversalTime(),
    };

    private static ResourceReference PatientReference(PatientIdSpace patients, long personId, string nhsNumber, string name) => new(patients.Reference(personId), name)
    {
        Identifier = new Identifier(NhsNumberSystem, nhsNumber),
    };

    /// <summary>An organisation by ODS code (what partners' systems know it by) and, where we have it, as our Organization resource.</summary>
    private static ResourceReference Organisation(string? code, string name, long? id = null) => new()
    {
        Reference = id is { } organisationId ? $"Organization/{Id(organisationId)}" : null,
        Identifier = code is null ? null : new Identifier(OdsSystem, code),
        Display = name,
    };

    private static string BedTypeName(string bedType) => bedType switch
    {
        "rehabilitation" => "Rehabilitation",
        "step-down-nursing" => "Step-down nursing",
        "residential" => "Residential care",
        "nursing" => "Nursing care",
        "dementia" => "Dementia care",
        _ => bedType,
    };

    private static string PathwayName(string pathway) => pathway switch
    {
        "0" => "Pathway 0: home, no new support",
        "1" => "Pathway 1: home with short-term support",
        "2" => "Pathway 2: short-term rehabilitation or step-down bed",
        "3" => "Pathway 3: long-term care bed",
        "step-up" => "Step-up from the community",
        _ => pathway,
    };

    private static string ReferralStatusName(string status) => status switch
    {
        "submitted" => "Submitted, waiting for triage",
        "in-triage" => "In triage",
        "awaiting-information" => "Waiting for information from the referrer",
        "redirected" => "Redirected between the coordination centre and the bed bureau",
        "accepted" => "Accepted into a service or bed",
        "placed" => "Placed",
        "completed" => "Completed",
        "declined" => "Declined",
        "cancelled" => "Cancelled",
        _ => status,
    };

    // The directory (Organization, Practitioner, PractitionerRole, HealthcareService) and partners' own AuditEvents.

    public const string OrganisationKindSystem = Canonical + "/CodeSystem/organisation-kind";
    public const string StaffRoleSystem = Canonical + "/CodeSystem/staff-role";
    public const string ServiceKindSystem = Canonical + "/CodeSystem/service-kind";
    public const string CqcRatingSystem = Canonical + "/CodeSystem/cqc-rating";
    public const string ProviderCautionSystem = Canonical + "/CodeSystem/provider-caution";
    public const string AuditActionSystem = Canonical + "/CodeSystem/audit-action";
    public const string PartnerClientSystem = Canonical + "/Id/partner-client";
    public const string ServiceCapacityExtension = Canonical + "/StructureDefinition/service-capacity";
    public const string ProviderQualityExtension = Canonical + "/StructureDefinition/provider-quality";
    public const string AuditEventTypeSystem = "http://terminology.hl7.org/CodeSystem/audit-event-type";

    /// <summary>The organisation kinds of the schema's CHECK constraint, as Organization.type codes.</summary>
    public static IReadOnlyList<Domain.Code> OrganisationKinds { get; } =
    [
        new("acute-trust", "Acute hospital trust"),
        new("community-trust", "Community health trust"),
        new("community-hospital", "Community hospital"),
        new("gp-practice", "GP practice"),
        new("coordination-centre", "Community coordination centre"),
        new("bed-bureau", "Bed bureau"),
        new("council", "Council"),
        new("provider", "Care provider"),
    ];

    public static IReadOnlyList<string> OrganisationKindCodes { get; } = [.. OrganisationKinds.Select(k => k.Value)];

    public static IReadOnlyList<string> StaffRoleCodes { get; } = [Auth.Roles.Referrer, Auth.Roles.Coordinator, Auth.Roles.BedBureau, Auth.Roles.Manager, Auth.Roles.Admin];

    public static IReadOnlyList<string> ServiceKindCodes { get; } = [.. ReferralCodes.ServiceKinds.Select(k => k.Value)];

    public static Organization ToOrganization(FhirOrganisation organisation) => new()
    {
        Id = Id(organisation.Id),
        Identifier = [new Identifier(OdsSystem, organisation.Code)],
        Active = organisation.Active,
        Type = [new CodeableConcept(OrganisationKindSystem, organisation.Kind, OrganisationKinds.LabelOf(organisation.Kind))],
        Name = organisation.Name,
        Address = organisation.Locality is null ? [] : [new Address { City = organisation.Locality }],
    };

    /// <summary>The name as colleagues know it, as text: display names ("Dr Folake Adeyemi") are not split into parts we cannot be sure of.</summary>
    public static Practitioner ToPractitioner(FhirStaff staff) => new()
    {
        Id = Id(staff.Id),
        Active = staff.Active,
        Name = [new HumanName { Use = HumanName.NameUse.Usual, Text = staff.Name }],
    };

    public static PractitionerRole ToPractitionerRole(FhirStaff staff) => new()
    {
        Id = Id(staff.Id),
        Active = staff.Active,
        Practitioner = new ResourceReference($"Practitioner/{Id(staff.Id)}", staff.Name),
        Organization = Organisation(staff.OrganisationCode, staff.OrganisationName, staff.OrganisationId),
        Code = [new CodeableConcept(StaffRoleSystem, staff.Role, Auth.Roles.Describe(staff.Role))],
    };

    /// <summary>
    /// A service with its capacity in the service-capacity extension (unit, perDay, availableToday, confirmedAt: the
    /// figures coordinators choose by) and its provider's CQC rating and caution in provider-quality, as coordinators
    /// are shown them beside each service.
    /// </summary>
    public static HealthcareService ToHealthcareService(FhirService service)
    {
        var resource = new HealthcareService
        {
            Id = Id(service.Id),
            Meta = Meta(service.Version, service.UpdatedAt),
            Active = service.Active,
            ProvidedBy = Organisation(service.ProviderCode, service.ProviderName, service.ProviderId),
            Type = [new CodeableConcept(ServiceKindSystem, service.Kind, ReferralCodes.ServiceKinds.LabelOf(service.Kind))],
            Name = service.Name,
            // Our locality is a name, not a Location this server serves: a reference by display only.
            CoverageArea = service.Locality is null ? [] : [new ResourceReference { Display = service.Locality }],
            Extension =
            [
                Complex(ServiceCapacityExtension,
                    ("unit", new Hl7.Fhir.Model.Code(service.CapacityUnit)),
                    ("perDay", new UnsignedInt(service.CapacityPerDay)),
                    ("availableToday", new UnsignedInt(service.AvailableToday)),
                    ("confirmedAt", new Instant(service.ConfirmedAt.ToUniversalTime()))),
            ],
        };
        if (service.CqcRating is not null || service.Caution != "none")
        {
            resource.Extension.Add(Complex(ProviderQualityExtension,
                ("cqcRating", service.CqcRating is null ? null : new Coding(CqcRatingSystem, service.CqcRating, Admin.AdminCodes.CqcRatings.LabelOf(service.CqcRating))),
                ("caution", service.Caution == "none" ? null : new Coding(ProviderCautionSystem, service.Caution, Admin.AdminCodes.Cautions.LabelOf(service.Caution))),
                ("cautionNote", service.Caution == "none" ? null : Text(service.CautionNote))));
        }
        return resource;
    }

    /// <summary>
    /// One audit row as a FHIR AuditEvent of a RESTful operation: who (the partner client, requestor, and its
    /// organisation), what (C/R/U/D/E from the use case, which is also the subtype), when, how it ended, and the
    /// resource it touched. A row about a person names the Patient too, whatever else it touched.
    /// </summary>
    public static AuditEvent ToAuditEvent(FhirAudit audit, PatientIdSpace patients)
    {
        var resource = new AuditEvent
        {
            Id = Id(audit.Id),
            Type = new Coding(AuditEventTypeSystem, "rest", "RESTful Operation"),
            Subtype = [new Coding(AuditActionSystem, audit.Action)],
            Action = AuditAction(audit.Action),
            Recorded = audit.At.ToUniversalTime(),
            Outcome = audit.Outcome switch
            {
                "success" => AuditEvent.AuditEventOutcome.N0,
                "denied" or "invalid" => AuditEvent.AuditEventOutcome.N4,
                _ => AuditEvent.AuditEventOutcome.N8,
            },
            OutcomeDesc = audit.Outcome switch
            {
                "denied" => "Refused: the caller may not do this (scope).",
                "invalid" => "Refused: the request was not valid.",
                "failed" => "Failed.",
                _ => null,
            },
            Agent =
            [
                new AuditEvent.AgentComponent
                {
                    Type = new CodeableConcept("http://dicom.nema.org/resources/ontology/DCM", "110150", "Application"),
                    Who = new ResourceReference { Identifier = new Identifier(PartnerClientSystem, audit.ClientId), Display = audit.ClientName },
                    AltId = audit.ClientId,
                    Name = audit.ClientName,
                    Requestor = true,
                },
            ],
            Source = new AuditEvent.SourceComponent
            {
                Site = "CareCoordination",
                Observer = new ResourceReference { Display = "CareCoordination FHIR server" },
                Type = [new Coding("http://terminology.hl7.org/CodeSystem/security-source-type", "4", "Application Server")],
            },
        };
        if (audit.OrganisationId is { } organisationId)
        {
            // R4 has no agent.onBehalfOf: the organisation the client acts for is an agent of its own, not the requestor.
            resource.Agent.Add(new AuditEvent.AgentComponent
            {
                Type = new CodeableConcept("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "RESP", "responsible party"),
                Who = Organisation(audit.OrganisationCode, audit.OrganisationName ?? "", organisationId),
                Requestor = false,
            });
        }
        if (audit.EntityType is { } entityType && audit.EntityId is { } entityId)
        {
            resource.Entity.Add(new AuditEvent.EntityComponent
            {
                What = AuditedEntity(entityType, entityId, patients),
                Type = entityType == "person"
                    ? new Coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "1", "Person")
                    : new Coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "2", "System Object"),
            });
        }
        if (audit.PersonId is { } personId && audit.EntityType != "person")
        {
            resource.Entity.Add(new AuditEvent.EntityComponent
            {
                What = new ResourceReference(patients.Reference(personId)),
                Type = new Coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "1", "Person"),
                Role = new Coding("http://terminology.hl7.org/CodeSystem/object-role", "1", "Patient"),
            });
        }
        if (audit.EntityType is { } pageType && audit.EntityId is null)
        {
            var pageResource = FhirAudit.ResourceTypes.GetValueOrDefault(pageType, pageType);
            // A page read (a search): what it searched for, as FHIR's query entity, and each person it disclosed.
            resource.Entity.Add(new AuditEvent.EntityComponent
            {
                Type = new Coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "2", "System Object"),
                Role = new Coding("http://terminology.hl7.org/CodeSystem/object-role", "24", "Query"),
                Description = $"A page of {pageResource} results",
            });
            // In the order of the reader's ids: the store's order of the persons would say which it knew first.
            foreach (var person in audit.People.Select(patients.Reference).Order(StringComparer.Ordinal))
            {
                resource.Entity.Add(new AuditEvent.EntityComponent
                {
                    What = new ResourceReference(person),
                    Type = new Coding("http://terminology.hl7.org/CodeSystem/audit-entity-type", "1", "Person"),
                    Role = new Coding("http://terminology.hl7.org/CodeSystem/object-role", "1", "Patient"),
                });
            }
        }
        return resource;
    }

    /// <summary>
    /// The recorded action is the use case's name (ReadServiceRequest, SubmitReferral, ...): its verb says whether it
    /// created, read, updated or deleted; a use case that is none of these (a message, a transaction) executed.
    /// </summary>
    public static AuditEvent.AuditEventAction AuditAction(string action) => action switch
    {
        _ when StartsWithAny(action, "Read", "Search", "Find", "Track", "WhoAmI") => AuditEvent.AuditEventAction.R,
        _ when StartsWithAny(action, "Submit", "Create") => AuditEvent.AuditEventAction.C,
        _ when StartsWithAny(action, "Cancel", "Update", "Answer", "Add", "Edit", "Change") => AuditEvent.AuditEventAction.U,
        _ when StartsWithAny(action, "Delete", "Discard") => AuditEvent.AuditEventAction.D,
        _ => AuditEvent.AuditEventAction.E,
    };

    private static bool StartsWithAny(string text, params string[] prefixes) => prefixes.Any(p => text.StartsWith(p, StringComparison.Ordinal));

    /// <summary>What an audit row touched: a reference where this server serves it as a resource, else an identifier in our own system.</summary>
    private static ResourceReference AuditedEntity(string entityType, long entityId, PatientIdSpace patients) =>
        entityType == "person" ? new ResourceReference(patients.Reference(entityId))
        : FhirAudit.ResourceTypes.TryGetValue(entityType, out var resourceType)
            ? new ResourceReference($"{resourceType}/{Id(entityId)}")
            : entityType switch
            {
                "site" => new ResourceReference($"Location/{FhirPlace.SiteId(entityId)}"),
                "ward" => new ResourceReference($"Location/{FhirPlace.WardId(entityId)}"),
                "bed" => new ResourceReference($"Location/{FhirPlace.BedId(entityId)}"),
                _ => new ResourceReference { Identifier = new Identifier($"{Canonical}/Id/{entityType.Replace('_', '-')}", Id(entityId)) },
            };

}

/// <summary>A search's page as asked: how many, from which match, and whether the number of all matches is wanted (_total).</summary>
public interface IPageRequest
{
    int Count { get; }

    int Offset { get; }

    bool WithTotal { get; }
}

/// <summary>
/// One page of a search: how many match in all (null when the client said it will not use it, FHIR's <c>_total=none</c>), and
/// this page of them.
/// </summary>
public sealed record Page<T>(long? Total, IReadOnlyList<T> Items)
{
    /// <summary>Without a total: whether any match follows this page (read as one row more). A counted page says so by its total.</summary>
    public bool More { get; init; }

    /// <summary>
    /// One page of a search and the total it pages through, every item touched for the audit trail: the count and the page
    /// are the same select and filter, so they cannot disagree. Without a total the page reads one row more than it shows, to
    /// know whether another page follows: that row is neither answered nor touched, so the audit trail names only what the
    /// client was shown.
    /// </summary>
    public static Task<Page<T>> ReadAsync(System.Data.Common.DbConnection connection, IPageRequest page, string select, string where, string orderBy,
        object parameters, Action<T> touch, System.Data.Common.DbTransaction? transaction = null) =>
        ReadAsync(connection, page, $"SELECT COUNT(*) FROM ({select}{where}) matches",
            limit => $"{select}{where} ORDER BY {orderBy} LIMIT {limit} OFFSET @Offset", parameters, touch, transaction);

    /// <summary>
    /// The same, for a search that shapes its own statements: <paramref name="count"/> counts every match, and
    /// <paramref name="pageOf"/> gives the page's statement for a row limit (an expression over @Count), from @Offset. A search
    /// whose rows join others that are always there (a task's referral and organisations) counts and pages its own table's rows
    /// alone, and joins the rest to the page. The caller keeps the two on the same filter, so that they agree.
    /// </summary>
    public static async Task<Page<T>> ReadAsync(System.Data.Common.DbConnection connection, IPageRequest page, string count, Func<string, string> pageOf,
        object parameters, Action<T> touch, System.Data.Common.DbTransaction? transaction = null)
    {
        if (!page.WithTotal)
        {
            if (page.Count == 0)
            {
                // No matches asked for and no total: nothing to read (FHIR's _count=0 asks for the total alone).
                return new Page<T>(null, []);
            }
            var read = (await connection.QueryAsync<T>(pageOf("@Count + 1"), parameters, transaction)).ToList();
            var more = read.Count > page.Count;
            var shown = more ? read.GetRange(0, page.Count) : read;
            shown.ForEach(touch);
            return new Page<T>(null, shown) { More = more };
        }
        // Both in one command: one round trip to PostgreSQL, not two; under write load each round trip waits its turn for
        // the server's two cores (issue 14, reads while writing).
        await using var grids = await connection.QueryMultipleAsync($"{count};\n{pageOf("@Count")}", parameters, transaction);
        var total = await grids.ReadSingleAsync<long>();
        var items = (await grids.ReadAsync<T>()).ToList();
        items.ForEach(touch);
        return new Page<T>(total, items);
    }
}
