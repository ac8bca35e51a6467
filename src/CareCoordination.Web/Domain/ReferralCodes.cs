namespace CareCoordination.Domain;

/// <summary>A code the store keeps and the words a person reads for it.</summary>
public sealed record Code(string Value, string Label, string? Help = null);

/// <summary>
/// The coded answers on the referral form. The form offers these, the validator accepts only these, and
/// the FHIR CodeSystems publish them: one list each.
/// </summary>
public static class ReferralCodes
{
    public static IReadOnlyList<Code> Sources { get; } =
    [
        new("acute-hospital", "Acute hospital"),
        new("community-hospital", "Community hospital"),
        new("gp", "GP practice"),
        new("community-step-up", "Community team (step-up)"),
    ];

    /// <summary>The national discharge-to-assess pathways, and step-up from the community.</summary>
    public static IReadOnlyList<Code> Pathways { get; } =
    [
        new("0", "Pathway 0", "Home with no new support, or a simple restart of existing care."),
        new("1", "Pathway 1", "Home with short-term support: reablement, therapy or home care."),
        new("2", "Pathway 2", "A short-term rehabilitation or step-down bed before going home."),
        new("3", "Pathway 3", "A long-term care bed: needs too great to meet at home."),
        new("step-up", "Step-up", "From the community, to avoid a hospital admission."),
    ];

    public static IReadOnlyList<Code> Urgencies { get; } =
    [
        new("routine", "Routine", "Within the next few days"),
        new("urgent", "Urgent", "Today"),
        new("immediate", "Immediate", "Within hours: risk of admission or harm"),
    ];

    public static IReadOnlyList<Code> Sexes { get; } =
    [
        new("female", "Female"),
        new("male", "Male"),
        new("other", "Other"),
        new("unknown", "Not known"),
    ];

    /// <summary>The Care Act 2014 eligibility outcomes (Care and Support (Eligibility Criteria) Regulations 2015), then other needs.</summary>
    public static IReadOnlyList<Code> Needs { get; } =
    [
        new("nutrition", "Managing and maintaining nutrition", "Care Act outcome"),
        new("personal-hygiene", "Maintaining personal hygiene", "Care Act outcome"),
        new("toileting", "Managing toilet needs", "Care Act outcome"),
        new("dressing", "Being appropriately clothed", "Care Act outcome"),
        new("home-safety", "Being able to make use of the home safely", "Care Act outcome"),
        new("habitable-home", "Maintaining a habitable home environment", "Care Act outcome"),
        new("relationships", "Developing and maintaining family or other personal relationships", "Care Act outcome"),
        new("work-learning", "Accessing and engaging in work, training, education or volunteering", "Care Act outcome"),
        new("community-access", "Making use of necessary facilities or services in the community", "Care Act outcome"),
        new("caring-responsibilities", "Carrying out any caring responsibilities for a child", "Care Act outcome"),
        new("mobility", "Mobility", "Other need"),
        new("transfers", "Transfers (bed, chair, toilet)", "Other need"),
        new("cognition", "Cognition and memory", "Other need"),
        new("medication", "Managing medication", "Other need"),
        new("equipment", "Equipment or adaptations", "Other need"),
        new("night-support", "Support at night", "Other need"),
    ];

    /// <summary>Why the coordination centre or bed bureau says no. "Other" needs the detail written out.</summary>
    public static IReadOnlyList<Code> DeclineReasons { get; } =
    [
        new("not-eligible", "Not eligible", "No eligible need for a service we coordinate"),
        new("needs-met", "Needs already met", "An existing package, family or another service already meets the need"),
        new("person-declined", "The person declined", "The person, with capacity, does not want the support offered"),
        new("out-of-area", "Out of area", "The person lives outside the area these services cover"),
        new("no-longer-needed", "No longer needed", "Recovered, readmitted or otherwise no longer in need"),
        new("other", "Other", "Say why in the detail"),
    ];

    /// <summary>The kinds of service a coordinator can accept a person into, home first.</summary>
    public static IReadOnlyList<Code> ServiceKinds { get; } =
    [
        new("reablement", "Reablement", "Short-term support at home to regain independence"),
        new("home-care", "Home care", "Care at home from a domiciliary care provider"),
        new("therapy", "Therapy", "Community physiotherapy or occupational therapy"),
        new("voluntary-sector", "Voluntary sector", "Community and voluntary support: befriending, shopping, transport"),
        new("community-hospital", "Community hospital", "A bed in a community hospital"),
        new("care-home", "Care home", "A bed in a care home"),
    ];

    /// <summary>NHS Data Dictionary ethnic category (2001 census classification); Z is "not stated".</summary>
    public static IReadOnlyList<Code> Ethnicities { get; } =
    [
        new("A", "White: British"),
        new("B", "White: Irish"),
        new("C", "White: any other White background"),
        new("D", "Mixed: White and Black Caribbean"),
        new("E", "Mixed: White and Black African"),
        new("F", "Mixed: White and Asian"),
        new("G", "Mixed: any other mixed background"),
        new("H", "Asian or Asian British: Indian"),
        new("J", "Asian or Asian British: Pakistani"),
        new("K", "Asian or Asian British: Bangladeshi"),
        new("L", "Asian or Asian British: any other Asian background"),
        new("M", "Black or Black British: Caribbean"),
        new("N", "Black or Black British: African"),
        new("P", "Black or Black British: any other Black background"),
        new("R", "Other ethnic groups: Chinese"),
        new("S", "Other ethnic groups: any other ethnic group"),
        new("Z", "Not stated"),
    ];

    /// <summary>The risks a referral flags: the form's tick boxes, and FHIR's referral-risk codes.</summary>
    public static IReadOnlyList<Code> Risks { get; } =
    [
        new("safeguarding", "Safeguarding concern"),
        new("infection", "Infection (isolation may be needed)"),
        new("falls", "Falls risk"),
        new("self-neglect", "Self-neglect"),
        new("cognition", "Cognition or memory concern"),
        new("mental-capacity", "Mental capacity in doubt"),
    ];

    /// <summary>Where the person is a patient now, and so where a ward and a medically optimised date apply.</summary>
    public static bool IsHospital(string? source) => source is "acute-hospital" or "community-hospital";

    /// <summary>The kinds of organisation whose referrals come from a hospital: the trusts the returns count, with hospital sites.</summary>
    public static IReadOnlyList<string> HospitalOrganisationKinds { get; } = ["acute-trust", "community-trust", "community-hospital"];

    public static string LabelOf(this IReadOnlyList<Code> codes, string? value) =>
        codes.FirstOrDefault(c => c.Value == value)?.Label ?? value ?? "";

    public static bool Has(this IReadOnlyList<Code> codes, string? value) => codes.Any(c => c.Value == value);
}
