using System.Text.Json;
using CareCoordination.Pipeline;

namespace CareCoordination.Features.Referrals;

/// <summary>
/// What the referrer sent: the referral form's own answers as the store keeps them, shown to the referrer
/// (TrackReferral) and to partner systems (FHIR ServiceRequest) alike.
/// </summary>
public record ReferralContent
{
    /// <summary>The select list, for a query that names the referral <c>r</c>.</summary>
    public const string Columns = """
        r.source AS Source, r.pathway AS Pathway, r.urgency AS Urgency, r.ward AS Ward, r.bed_label AS BedLabel,
        (SELECT hs.code FROM hospital_site hs WHERE hs.id = r.hospital_site_id) AS HospitalSite,
        (SELECT hs.name FROM hospital_site hs WHERE hs.id = r.hospital_site_id) AS HospitalSiteName,
        r.admitted_on AS AdmittedOn, r.medically_optimised_on AS MedicallyOptimisedOn, r.expected_discharge_on AS ExpectedDischargeOn,
        r.needs AS NeedsJson, r.strengths AS Strengths, r.goals AS Goals, r.safeguarding_concern AS SafeguardingConcern,
        r.infection_status AS InfectionStatus, r.falls_risk AS FallsRisk, r.self_neglect AS SelfNeglect,
        r.cognition_concern AS CognitionConcern, r.mental_capacity_concern AS MentalCapacityConcern,
        r.best_interests_decision AS BestInterestsDecision, r.self_funding AS SelfFunding,
        r.consent_to_share AS ConsentToShare, r.consent_given_by AS ConsentGivenBy, r.lawful_reason AS LawfulReason,
        r.person_wishes AS PersonWishes, r.family_expectations AS FamilyExpectations, r.staff_expectations AS StaffExpectations,
        r.summary AS Summary, r.information_needed AS InformationNeededJson
        """;

    public string? Source { get; init; }
    public string? Pathway { get; init; }
    public string Urgency { get; init; } = "";
    /// <summary>The hospital site's ODS site code and name (HospitalSites).</summary>
    public string? HospitalSite { get; init; }
    public string? HospitalSiteName { get; init; }
    public string? Ward { get; init; }
    public string? BedLabel { get; init; }
    public DateOnly? AdmittedOn { get; init; }
    public DateOnly? MedicallyOptimisedOn { get; init; }
    public DateOnly? ExpectedDischargeOn { get; init; }
    public string NeedsJson { get; init; } = "[]";
    public string? Strengths { get; init; }
    public string? Goals { get; init; }
    public bool SafeguardingConcern { get; init; }
    public string? InfectionStatus { get; init; }
    public bool FallsRisk { get; init; }
    public bool SelfNeglect { get; init; }
    public bool CognitionConcern { get; init; }
    public bool MentalCapacityConcern { get; init; }
    public string? BestInterestsDecision { get; init; }
    public bool SelfFunding { get; init; }
    public bool ConsentToShare { get; init; }
    public string? ConsentGivenBy { get; init; }
    public string? LawfulReason { get; init; }
    public string? PersonWishes { get; init; }
    public string? FamilyExpectations { get; init; }
    public string? StaffExpectations { get; init; }
    public string? Summary { get; init; }

    public string? InformationNeededJson { get; init; }

    /// <summary>What the form needs and the sender (a partner system) did not say, until the referrer answers.</summary>
    public IReadOnlyList<InformationNeeded.Item> InformationNeeded => Referrals.InformationNeeded.Read(InformationNeededJson);

    public IReadOnlyList<string> Needs => JsonSerializer.Deserialize<List<string>>(NeedsJson, JsonDefaults.Options) ?? [];
}
