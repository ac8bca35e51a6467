using System.Globalization;
using CareCoordination.Domain;
using CareCoordination.Features.Referrals;
using Hl7.Fhir.Model;

namespace CareCoordination.Features.Fhir;

/// <summary>
/// What came with a ServiceRequest: the Bundle it was sent in (a BaRS message or a transaction), if any, and the
/// resources it contains. References are followed the way FHIR resolves them inside a Bundle: by fullUrl, by
/// Type/id against an entry's resource, or by #id to a contained resource.
/// </summary>
public sealed class Sent(ServiceRequest request, Bundle? bundle = null)
{
    public ServiceRequest Request { get; } = request;

    public Bundle? Bundle { get; } = bundle;

    public MessageHeader? Header => Bundle?.Entry.FirstOrDefault()?.Resource as MessageHeader;

    public Resource? Resolve(ResourceReference? reference)
    {
        if (reference?.Reference is not { Length: > 0 } literal)
        {
            return null;
        }
        if (literal.StartsWith('#'))
        {
            return Request.Contained.FirstOrDefault(r => r.Id == literal[1..]);
        }
        foreach (var entry in Bundle?.Entry ?? [])
        {
            if (entry.Resource is null)
            {
                continue;
            }
            // BaRS examples also point at an entry by its bare id (the uuid of its urn:uuid: fullUrl).
            if (entry.FullUrl == literal || literal == $"{entry.Resource.TypeName}/{entry.Resource.Id}" || entry.FullUrl == $"urn:uuid:{literal}"
                || (entry.Resource.Id is not null && literal.EndsWith($"/{entry.Resource.TypeName}/{entry.Resource.Id}", StringComparison.Ordinal)))
            {
                return entry.Resource;
            }
        }
        return null;
    }

    /// <summary>
    /// Every resource of a type that could be about this referral: those the ServiceRequest points at (supportingInfo,
    /// reasonReference), those it contains, then the other entries of the Bundle, in that order, each once.
    /// </summary>
    public IEnumerable<T> All<T>() where T : Resource
    {
        var seen = new HashSet<Resource>(ReferenceEqualityComparer.Instance);
        var pointed = Request.SupportingInfo.Concat(Request.ReasonReference).Select(Resolve);
        var everything = pointed.Concat(Request.Contained).Concat(Bundle?.Entry.Select(e => e.Resource) ?? []);
        foreach (var resource in everything.OfType<T>())
        {
            if (seen.Add(resource))
            {
                yield return resource;
            }
        }
    }

    /// <summary>
    /// Whether a resource sent with the referral is about its person: it is, unless it names someone else, by another
    /// NHS number or a Patient with one. (Real messages' subjects are often missing or point at the wrong entry: a
    /// message is about one person, so only a clear "someone else" leaves a resource out.)
    /// </summary>
    public bool IsAboutThePerson(ResourceReference? who, string? nhsNumber)
    {
        if (who?.Identifier is { System: FhirMapping.NhsNumberSystem } identifier)
        {
            return SameNhsNumber(identifier.Value, nhsNumber);
        }
        return Resolve(who) is not Patient patient
            || patient.Identifier.All(i => i.System != FhirMapping.NhsNumberSystem || SameNhsNumber(i.Value, nhsNumber));
    }

    /// <summary>
    /// As digits: the form holds a person known before as shown (943 476 5919, PersonRecord.FillIn), a message as sent
    /// (9434765919). Compared as written, everything sent about a known person was taken for someone else's and dropped.
    /// </summary>
    private static bool SameNhsNumber(string? sent, string? person) =>
        (NhsNumber.Normalise(sent) ?? sent) == (NhsNumber.Normalise(person) ?? person);

    /// <summary>
    /// The ODS code of the organisation the referral says it comes from, and where it says so: requester (an
    /// Organization, or a PractitionerRole's organization), else the MessageHeader's sender. Null when none names one.
    /// </summary>
    public (string Code, string Expression)? RequestingOrganisation()
    {
        if (OdsOf(Request.Requester) is { } byRequester)
        {
            return (byRequester, "ServiceRequest.requester");
        }
        if (Header is { } header && (OdsOf(header.Sender) ?? OdsOf(header.Responsible)) is { } bySender)
        {
            return (bySender, "MessageHeader.sender");
        }
        return null;
    }

    private string? OdsOf(ResourceReference? reference, int depth = 0)
    {
        if (reference is null || depth > 2)
        {
            return null;
        }
        if (reference.Identifier is { System: FhirMapping.OdsSystem, Value: { Length: > 0 } code })
        {
            return code;
        }
        return Resolve(reference) switch
        {
            Organization organisation => organisation.Identifier.FirstOrDefault(i => i.System == FhirMapping.OdsSystem)?.Value,
            PractitionerRole role => OdsOf(role.Organization, depth + 1),
            _ => null,
        };
    }
}

/// <summary>
/// The form's answers read from where the HL7 and NHS England standards (UK Core, BaRS) put them, for a referral that
/// does not carry our own extensions: a Consent, Observations, a QuestionnaireResponse, Flags, and the Encounter with
/// its Locations. Each is read only when our extension has not already answered it; docs/fhir.md has the table.
/// </summary>
public static class StandardShapes
{
    public const string Snomed = "http://snomed.info/sct";
    public const string LivingArrangementSystem = "http://terminology.hl7.org/CodeSystem/v3-LivingArrangement";
    public const string LivesAlone = "105529008";
    public const string HouseholdComposition = "224130005";
    public const string FlagCategorySystem = "http://terminology.hl7.org/CodeSystem/flag-category";
    public const string ReasonableAdjustmentCategory = "NRAF";

    public static void Read(ReferralForm form, Sent sent)
    {
        var nhsNumber = form.NhsNumber;
        ReadConsent(form, sent, nhsNumber);
        ReadLivingArrangement(form, sent, nhsNumber);
        ReadWhatMatters(form, sent, nhsNumber);
        ReadFlags(form, sent, nhsNumber);
        ReadHospitalStay(form, sent);
    }

    /// <summary>
    /// An active Consent naming the person: permit is consent to share, deny is its refusal. Who gave it is the performer;
    /// for consent implied by direct care (policyRule says implied) that is what is recorded.
    /// </summary>
    private static void ReadConsent(ReferralForm form, Sent sent, string? nhsNumber)
    {
        if (form.ConsentToShare is not null)
        {
            return;
        }
        var consent = sent.All<Consent>().FirstOrDefault(c => c.Status == Consent.ConsentState.Active
            && !IsOneOf(c.Scope, "research", "adr") && sent.IsAboutThePerson(c.Patient, nhsNumber));
        if (consent is null)
        {
            return;
        }
        form.ConsentToShare = consent.Provision?.Type != Consent.ConsentProvisionType.Deny;
        if (form.ConsentToShare == false)
        {
            return;
        }
        var rule = Words(consent.PolicyRule);
        var performer = consent.Performer.Select(p => Name(sent, p)).FirstOrDefault(n => n is not null);
        // Consent implied by direct care was given by nobody in particular: what the policy says is the record of it.
        form.ConsentGivenBy = performer ?? (!Mentions(rule, "implied") ? null
            : Mentions(rule, "consent") ? rule.Trim()
            : $"Implied consent ({rule.Trim()})");
    }

    /// <summary>
    /// Lives alone: an Observation (BaRS household composition) whose code, or coded value, is SNOMED 105529008 or says
    /// "lives alone". A v3 LivingArrangement (an institution, a group home ...) or another household composition says not.
    /// </summary>
    private static void ReadLivingArrangement(ReferralForm form, Sent sent, string? nhsNumber)
    {
        foreach (var observation in Observations(sent, nhsNumber))
        {
            var value = observation.Value as CodeableConcept;
            if ((SaysLivesAlone(observation.Code) && observation.Value is not FhirBoolean { Value: false }) || SaysLivesAlone(value))
            {
                form.LivesAlone = true;
                return;
            }
            if (Has(observation.Code, Snomed, HouseholdComposition) || IsLivingArrangement(observation.Code) || IsLivingArrangement(value))
            {
                form.LivesAlone = false;
                return;
            }
        }
    }

    private static bool SaysLivesAlone(CodeableConcept? concept) =>
        Has(concept, Snomed, LivesAlone) || Mentions(Words(concept), "lives alone", "living alone");

    // The code system's canonical url, or the ValueSet page some senders put in its place.
    private static bool IsLivingArrangement(CodeableConcept? concept) =>
        concept?.Coding.Any(c => c.System is { } system && system.Contains("LivingArrangement", StringComparison.OrdinalIgnoreCase)) == true;

    /// <summary>What matters to the person: an Observation or a QuestionnaireResponse answer about their wishes ("Expectations and wishes").</summary>
    private static void ReadWhatMatters(ReferralForm form, Sent sent, string? nhsNumber)
    {
        if (!string.IsNullOrWhiteSpace(form.PersonWishes))
        {
            return;
        }
        form.PersonWishes = Observations(sent, nhsNumber)
            .Where(o => IsAboutWishes(Words(o.Code)))
            .Select(o => Text(o.Value) ?? string.Join(Environment.NewLine, o.Note.Select(n => n.Text).OfType<string>()))
            .FirstOrDefault(t => !string.IsNullOrWhiteSpace(t))
            ?? sent.All<QuestionnaireResponse>()
                .Where(q => q.Status is not QuestionnaireResponse.QuestionnaireResponseStatus.EnteredInError && sent.IsAboutThePerson(q.Subject, nhsNumber))
                .SelectMany(q => Flatten(q.Item))
                .Where(item => IsAboutWishes(item.Text ?? item.LinkId))
                .SelectMany(item => item.Answer.Select(a => Text(a.Value)))
                .FirstOrDefault(t => !string.IsNullOrWhiteSpace(t));
    }

    /// <summary>Active Flags naming the person: safeguarding, infection, falls, and the reasonable adjustments our form records.</summary>
    private static void ReadFlags(ReferralForm form, Sent sent, string? nhsNumber)
    {
        foreach (var flag in sent.All<Flag>().Where(f => f.Status == Flag.FlagStatus.Active && sent.IsAboutThePerson(f.Subject, nhsNumber)))
        {
            var what = Words(flag.Code);
            var kind = what + " " + string.Join(' ', flag.Category.Select(Words));
            if (Mentions(kind, "safeguard"))
            {
                form.SafeguardingConcern = true;
            }
            if (Mentions(kind, "infection") && string.IsNullOrWhiteSpace(form.InfectionStatus))
            {
                form.InfectionStatus = flag.Code?.Text ?? flag.Code?.Coding.FirstOrDefault()?.Display;
            }
            if (Mentions(kind, "falls risk", "risk of falls", "at risk of falling"))
            {
                form.FallsRisk = true;
            }
            if (flag.Category.Any(c => Has(c, null, ReasonableAdjustmentCategory)) || Mentions(kind, "reasonable adjustment"))
            {
                form.EasyRead |= Mentions(what, "easy read");
                form.Bsl |= Mentions(what, "sign language", "bsl");
            }
        }
    }

    /// <summary>
    /// The hospital stay: the referral's Encounter (or the message's one Encounter), when it began (the admission), and its
    /// Locations: the site, a ward, and a bed within it.
    /// </summary>
    private static void ReadHospitalStay(ReferralForm form, Sent sent)
    {
        var encounter = sent.Resolve(sent.Request.Encounter) as Encounter ?? sent.All<Encounter>().FirstOrDefault();
        if (encounter is null)
        {
            return;
        }
        form.AdmittedOn ??= ReferralIntake.Day(encounter.Period?.Start);
        foreach (var at in encounter.Location)
        {
            var location = sent.Resolve(at.Location) as Location;
            var name = location?.Name ?? at.Location?.Display;
            var type = location?.PhysicalType ?? at.PhysicalType;
            if (Has(type, FhirMapping.PhysicalTypeSystem, "si"))
            {
                form.HospitalSite ??= SiteCode(location) ?? (at.Location?.Identifier is { System: FhirMapping.OdsSiteSystem } identifier ? identifier.Value : null);
            }
            else if (Has(type, FhirMapping.PhysicalTypeSystem, "bd"))
            {
                form.BedLabel ??= name;
                if (sent.Resolve(location?.PartOf) is Location ward)
                {
                    form.Ward ??= ward.Name;
                    form.HospitalSite ??= SiteCode(sent.Resolve(ward.PartOf) as Location);
                }
            }
            else if (Has(type, FhirMapping.PhysicalTypeSystem, "wa") || type is null)
            {
                form.Ward ??= name;
                // A ward is partOf its site.
                form.HospitalSite ??= SiteCode(sent.Resolve(location?.PartOf) as Location);
            }
        }

        // The hospital site by its ODS site code (HospitalSites): a site named without one is not guessed at.
        static string? SiteCode(Location? site) =>
            site is not null && Has(site.PhysicalType, FhirMapping.PhysicalTypeSystem, "si")
                ? site.Identifier.FirstOrDefault(i => i.System == FhirMapping.OdsSiteSystem)?.Value
                : null;
    }

    private static IEnumerable<Observation> Observations(Sent sent, string? nhsNumber) =>
        sent.All<Observation>().Where(o => o.Status is not (ObservationStatus.EnteredInError or ObservationStatus.Cancelled)
            && sent.IsAboutThePerson(o.Subject, nhsNumber));

    private static IEnumerable<QuestionnaireResponse.ItemComponent> Flatten(IEnumerable<QuestionnaireResponse.ItemComponent> items) =>
        items.SelectMany(item => Flatten(item.Item).Prepend(item));

    private static bool IsAboutWishes(string? words) =>
        Mentions(words, "what matters", "wishes", "expectations", "preferred place of care", "preferences");

    private static string? Name(Sent sent, ResourceReference reference) => sent.Resolve(reference) switch
    {
        Patient => "The person",
        RelatedPerson related => related.Name.Select(NameText).FirstOrDefault(n => n.Length > 0) ?? reference.Display,
        Practitioner practitioner => practitioner.Name.Select(NameText).FirstOrDefault(n => n.Length > 0) ?? reference.Display,
        _ => string.IsNullOrWhiteSpace(reference.Display) ? null : reference.Display,
    };

    private static string NameText(HumanName name) => name.Text ?? string.Join(' ', name.Given.Append(name.Family)).Trim();

    private static string? Text(DataType? value) => value switch
    {
        FhirString text => text.Value,
        CodeableConcept concept => concept.Text ?? concept.Coding.FirstOrDefault()?.Display,
        Coding coding => coding.Display,
        _ => null,
    };

    private static string Words(CodeableConcept? concept) =>
        concept is null ? "" : string.Join(' ', concept.Coding.Select(c => c.Display).Prepend(concept.Text).OfType<string>());

    private static bool Mentions(string? words, params string[] phrases) =>
        words is not null && phrases.Any(p => words.Contains(p, StringComparison.OrdinalIgnoreCase));

    private static bool Has(CodeableConcept? concept, string? system, string code) =>
        concept?.Coding.Any(c => (system is null || c.System == system) && string.Equals(c.Code, code, StringComparison.Ordinal)) == true;

    private static bool IsOneOf(CodeableConcept? concept, params string[] codes) =>
        concept?.Coding.Any(c => codes.Contains(c.Code?.ToLower(CultureInfo.InvariantCulture))) == true;
}
