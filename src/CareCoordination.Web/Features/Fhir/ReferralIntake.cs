using System.Globalization;
using CareCoordination.Domain;
using CareCoordination.Features.Referrals;
using Hl7.Fhir.Model;
using Hl7.Fhir.Utility;

namespace CareCoordination.Features.Fhir;

/// <summary>
/// A partner's ServiceRequest and the Patient it is for, read onto the one referral form, so that a referral
/// sent over FHIR meets exactly the rules (and the audit) of one sent from the page. Reading is forgiving:
/// whatever is missing stays empty, and the form's own rules then say what is needed, in the referrer's
/// words, against the FHIR element it belongs to. The reverse of FhirMapping.ToServiceRequest and ToPatient.
/// </summary>
public static class ReferralIntake
{
    public static ReferralForm ToForm(ServiceRequest request, Patient patient, Sent? sent = null)
    {
        var form = new ReferralForm();
        ReadPerson(form, patient);
        ReadReferral(form, request);
        StandardShapes.Read(form, sent ?? new Sent(request));
        return form;
    }

    /// <summary>For a referral whose subject is a person already known here: the record is as the store has it.</summary>
    public static ReferralForm ToForm(ServiceRequest request, PersonRecord person, Sent? sent = null)
    {
        var form = new ReferralForm();
        person.FillIn(form);
        form.Ethnicity ??= NotStated;
        ReadReferral(form, request);
        StandardShapes.Read(form, sent ?? new Sent(request));
        return form;
    }

    /// <summary>A Patient on its own (a registration): the person's answers of the form; the referral's stay empty.</summary>
    public static ReferralForm ToForm(Patient patient)
    {
        var form = new ReferralForm();
        ReadPerson(form, patient);
        return form;
    }

    /// <summary>The sender's own identifier for the referral, if it gave one with a system and a value.</summary>
    public static SubmitReferral.SenderIdentifier? Sender(ServiceRequest request) =>
        request.Identifier.FirstOrDefault(i => !string.IsNullOrWhiteSpace(i.Value))?.Value is { } value
            ? new SubmitReferral.SenderIdentifier(request.Identifier.First(i => i.Value == value).System ?? "", value.Trim())
            : null;

    /// <summary>"Not stated" is the NHS ethnic category for a sender that does not say.</summary>
    private const string NotStated = "Z";

    private static void ReadPerson(ReferralForm form, Patient patient)
    {
        form.NhsNumber = patient.Identifier.FirstOrDefault(i => i.System == FhirMapping.NhsNumberSystem)?.Value;
        ReadNamesAndIdentifiers(form, patient);
        form.DateOfBirth = Day(patient.BirthDate);
        form.Sex = patient.Gender switch
        {
            AdministrativeGender.Female => "female",
            AdministrativeGender.Male => "male",
            AdministrativeGender.Other => "other",
            AdministrativeGender.Unknown => "unknown",
            _ => null,
        };
        var address = patient.Address.FirstOrDefault(a => a.Use == Address.AddressUse.Home) ?? patient.Address.FirstOrDefault();
        form.AddressLine = address?.Line.FirstOrDefault();
        form.Postcode = address?.PostalCode;
        form.GpPracticeCode = patient.GeneralPractitioner.Select(g => g.Identifier).FirstOrDefault(i => i?.System == FhirMapping.OdsSystem)?.Value;
        form.Ethnicity = Coded(patient.GetExtensionValue<CodeableConcept>(FhirMapping.EthnicCategoryExtension), FhirMapping.EthnicCategorySystem) ?? NotStated;

        var signLanguage = patient.Communication.FirstOrDefault(c => c.Language?.Coding.Any(IsBritishSignLanguage) == true);
        form.Bsl = signLanguage is not null;
        form.InterpreterNeeded = Flag(patient, FhirMapping.InterpreterRequiredExtension);
        var spoken = patient.Communication.FirstOrDefault(c => c != signLanguage)?.Language;
        form.InterpreterLanguage = form.InterpreterNeeded ? spoken?.Text ?? spoken?.Coding.FirstOrDefault()?.Display ?? spoken?.Coding.FirstOrDefault()?.Code : null;
        form.EasyRead = Flag(patient, FhirMapping.EasyReadExtension);
        form.LivesAlone = Flag(patient, FhirMapping.LivesAloneExtension);

        if (patient.Contact.FirstOrDefault() is { } carer)
        {
            form.CarerName = carer.Name?.Text ?? string.Join(' ', carer.Name?.Given.Append(carer.Name.Family) ?? []).Trim();
            form.CarerRelationship = carer.Relationship.FirstOrDefault() is { } relationship
                ? relationship.Text ?? relationship.Coding.FirstOrDefault()?.Display
                : null;
            form.CarerContact = carer.Telecom.FirstOrDefault()?.Value;
            form.CarerWantsAssessment = Flag(carer, FhirMapping.CarerAssessmentExtension);
        }
    }

    /// <summary>
    /// Every name, whatever its use, with every given name; and every identifier beside the NHS number. The form's name is
    /// the main one (official, else usual, else the first), with all its given names.
    /// </summary>
    private static void ReadNamesAndIdentifiers(ReferralForm form, Patient patient)
    {
        form.Names = [.. patient.Name
            .Select(n => new PersonName(n.Use?.GetLiteral(), Text(n.Text), Text(n.Family), Parts(n.Given), Parts(n.Prefix), Parts(n.Suffix)))
            .Where(n => n.Text is not null || n.Family is not null || n.Given.Count > 0)];
        var main = PersonName.MainOf(form.Names);
        form.GivenName = main?.GivenNames;
        form.FamilyName = main?.Family;
        form.OtherIdentifiers = [.. patient.Identifier
            .Where(i => i.System != FhirMapping.NhsNumberSystem && Text(i.Value) is not null)
            .Select(i => new PersonIdentifier(Text(i.System), Text(i.Value)!, i.Use?.GetLiteral()))];

        static string? Text(string? value) => string.IsNullOrWhiteSpace(value) ? null : value.Trim();
        static IReadOnlyList<string> Parts(IEnumerable<string?> parts) => [.. parts.Select(Text).OfType<string>()];
    }

    private static void ReadReferral(ReferralForm form, ServiceRequest request)
    {
        form.Source = Coded(request.GetExtensionValue<Coding>(FhirMapping.ReferralSourceExtension), FhirMapping.ReferralSourceSystem);
        form.Pathway = Coded(request.Code, FhirMapping.PathwaySystem);
        form.Urgency = request.Priority switch
        {
            RequestPriority.Stat => "immediate",
            RequestPriority.Urgent or RequestPriority.Asap => "urgent",
            _ => "routine",
        };
        if (request.GetExtension(FhirMapping.HospitalStayExtension) is { } stay)
        {
            form.Ward = stay.GetExtensionValue<FhirString>("ward")?.Value;
            form.BedLabel = stay.GetExtensionValue<FhirString>("bed")?.Value;
            form.HospitalSite = stay.GetExtensionValue<Identifier>("site") is { System: FhirMapping.OdsSiteSystem } site ? site.Value : null;
            form.AdmittedOn = Day(stay.GetExtensionValue<Date>("admitted")?.Value);
            form.MedicallyOptimisedOn = Day(stay.GetExtensionValue<Date>("medicallyOptimised")?.Value);
        }
        form.ExpectedDischargeOn = request.Occurrence switch
        {
            FhirDateTime at => Day(at.Value),
            Period period => Day(period.Start),
            _ => null,
        };
        // A need outside our code system is kept as given, so the form's rule names it rather than dropping it.
        form.Needs = request.OrderDetail
            .Select(detail => Coded(detail, FhirMapping.NeedSystem) ?? detail.Coding.FirstOrDefault()?.Code ?? detail.Text ?? "")
            .ToList();

        foreach (var risk in request.GetExtensions(FhirMapping.RiskExtension).Select(e => e.Value).OfType<CodeableConcept>())
        {
            var detail = string.IsNullOrWhiteSpace(risk.Text) ? null : risk.Text.Trim();
            switch (Coded(risk, FhirMapping.RiskSystem))
            {
                case "safeguarding": form.SafeguardingConcern = true; break;
                case "infection": form.InfectionStatus = detail ?? ReferralCodes.Risks.LabelOf("infection"); break;
                case "falls": form.FallsRisk = true; break;
                case "self-neglect": form.SelfNeglect = true; break;
                case "cognition": form.CognitionConcern = true; break;
                case "mental-capacity": form.MentalCapacityConcern = true; form.BestInterestsDecision = detail; break;
            }
        }

        if (request.GetExtension(FhirMapping.ConsentExtension) is { } consent)
        {
            form.ConsentToShare = consent.GetExtensionValue<FhirBoolean>("shared")?.Value;
            form.ConsentGivenBy = consent.GetExtensionValue<FhirString>("givenBy")?.Value;
            form.LawfulReason = consent.GetExtensionValue<FhirString>("lawfulReason")?.Value;
        }
        if (request.GetExtension(FhirMapping.WhatMattersExtension) is { } matters)
        {
            form.PersonWishes = matters.GetExtensionValue<FhirString>("personWishes")?.Value;
            form.FamilyExpectations = matters.GetExtensionValue<FhirString>("familyExpectations")?.Value;
            form.StaffExpectations = matters.GetExtensionValue<FhirString>("staffExpectations")?.Value;
            form.Strengths = matters.GetExtensionValue<FhirString>("strengths")?.Value;
            form.Goals = matters.GetExtensionValue<FhirString>("goals")?.Value;
        }
        form.SelfFunding = Flag(request, FhirMapping.SelfFundingExtension);
        form.Summary = request.Note.FirstOrDefault()?.Text;
    }

    /// <summary>
    /// Where each answer of the form lives in FHIR, so that a rule the form breaks is reported against the
    /// element the sender wrote (FluentValidation names the property as Form.X).
    /// </summary>
    public static string? ExpressionFor(string property) => property.StartsWith("Form.", StringComparison.Ordinal) ? property[5..] switch
    {
        "NhsNumber" => "Patient.identifier.where(system='https://fhir.nhs.uk/Id/nhs-number').value",
        "GivenName" => "Patient.name.given",
        "FamilyName" => "Patient.name.family",
        "DateOfBirth" => "Patient.birthDate",
        "Sex" => "Patient.gender",
        "AddressLine" => "Patient.address.line",
        "Postcode" => "Patient.address.postalCode",
        "Ethnicity" => $"Patient.extension('{FhirMapping.EthnicCategoryExtension}')",
        "InterpreterLanguage" => "Patient.communication.language",
        "CarerName" or "CarerRelationship" or "CarerContact" => "Patient.contact",
        "GpPracticeCode" => "Patient.generalPractitioner.identifier",
        "Source" => $"ServiceRequest.extension('{FhirMapping.ReferralSourceExtension}')",
        "Pathway" => "ServiceRequest.code",
        "Urgency" => "ServiceRequest.priority",
        "Ward" or "BedLabel" or "HospitalSite" or "AdmittedOn" or "MedicallyOptimisedOn" => $"ServiceRequest.extension('{FhirMapping.HospitalStayExtension}')",
        "ExpectedDischargeOn" => "ServiceRequest.occurrence",
        var p when p.StartsWith("Needs", StringComparison.Ordinal) => "ServiceRequest.orderDetail",
        "InfectionStatus" or "BestInterestsDecision" => $"ServiceRequest.extension('{FhirMapping.RiskExtension}')",
        "LawfulBasis" => "ServiceRequest.supportingInfo",
        "ConsentToShare" or "ConsentGivenBy" or "LawfulReason" => $"ServiceRequest.extension('{FhirMapping.ConsentExtension}')",
        "PersonWishes" or "FamilyExpectations" or "StaffExpectations" or "Strengths" or "Goals" => $"ServiceRequest.extension('{FhirMapping.WhatMattersExtension}')",
        "Summary" => "ServiceRequest.note",
        _ => null,
    } : null;

    private static string? Coded(CodeableConcept? concept, string system) => concept?.Coding.FirstOrDefault(c => c.System == system)?.Code;

    private static string? Coded(Coding? coding, string system) => coding?.System == system ? coding.Code : null;

    private static bool Flag(IExtendable element, string url) => element.GetExtensionValue<FhirBoolean>(url)?.Value == true;

    private static bool IsBritishSignLanguage(Coding coding) =>
        coding.System == FhirMapping.LanguageSystem && string.Equals(coding.Code, FhirMapping.BritishSignLanguage, StringComparison.OrdinalIgnoreCase);

    /// <summary>A FHIR date or dateTime as the day it names; a partial date (a year alone) names no day.</summary>
    /// <summary>The day a FHIR date or dateTime names, as its sender wrote it.</summary>
    internal static DateOnly? Day(string? value) =>
        value is { Length: >= 10 } && DateOnly.TryParseExact(value[..10], "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var day) ? day : null;
}
