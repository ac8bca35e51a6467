using System.Text.Json;
using CareCoordination.Domain;
using CareCoordination.Pipeline;

namespace CareCoordination.Features.Referrals;

/// <summary>
/// The answers the form asks for that a partner's system may simply not hold (a BaRS message carries no
/// discharge pathway of ours, rarely a medically optimised date). A referral sent over FHIR without them is
/// still accepted: they are stored as absent, listed here by the form's property name, shown to the
/// coordination centre as "information needed" and asked of the referrer. Anything else the form's rules
/// refuse (a bad NHS number, no lawful basis for sharing) is still refused.
/// </summary>
public static class InformationNeeded
{
    /// <summary>One item: the form's property, the words a coordinator reads, and where FHIR carries it.</summary>
    public sealed record Item(string Property, string Words, string FhirPath);

    public static IReadOnlyList<Item> All { get; } =
    [
        new("Source", "where the referral comes from", "ServiceRequest.extension('https://carecoordination.example.org/fhir/StructureDefinition/referral-source')"),
        new("Pathway", "the pathway asked for", "ServiceRequest.code"),
        new("Ward", "the ward the person is on", "ServiceRequest.encounter.resolve().location.location"),
        new("MedicallyOptimisedOn", "the medically optimised date", "ServiceRequest.extension('https://carecoordination.example.org/fhir/StructureDefinition/hospital-stay').extension('medicallyOptimised')"),
        new("Needs", "the needs to support", "ServiceRequest.orderDetail"),
        new("PersonWishes", "what matters to the person", "ServiceRequest.supportingInfo"),
        new("ConsentGivenBy", "who gave consent", "Consent.performer"),
        new("InterpreterLanguage", "the language for the interpreter", "Patient.communication.language"),
        new("CarerContact", "how to reach the carer", "Patient.contact.telecom"),
        new("BestInterestsDecision", "the best-interests decision", "ServiceRequest.extension('https://carecoordination.example.org/fhir/StructureDefinition/referral-risk')"),
        new("Summary", "a summary for the coordinator", "ServiceRequest.note"),
    ];

    /// <summary>What this form lacks of <see cref="All"/>, under the same conditions as the form's own rules ask for it.</summary>
    public static IReadOnlyList<Item> Of(ReferralForm form)
    {
        var hospital = ReferralCodes.IsHospital(form.Source);
        return [.. All.Where(item => item.Property switch
        {
            "Source" => !ReferralCodes.Sources.Has(form.Source),
            "Pathway" => !ReferralCodes.Pathways.Has(form.Pathway),
            "Ward" => hospital && string.IsNullOrWhiteSpace(form.Ward),
            "MedicallyOptimisedOn" => hospital && form.MedicallyOptimisedOn is null,
            "Needs" => form.Pathway != "0" && !form.Needs.Any(),
            "PersonWishes" => string.IsNullOrWhiteSpace(form.PersonWishes),
            "ConsentGivenBy" => form.ConsentToShare == true && string.IsNullOrWhiteSpace(form.ConsentGivenBy),
            "InterpreterLanguage" => form.InterpreterNeeded && string.IsNullOrWhiteSpace(form.InterpreterLanguage),
            "CarerContact" => !string.IsNullOrWhiteSpace(form.CarerName) && string.IsNullOrWhiteSpace(form.CarerContact),
            "BestInterestsDecision" => form.MentalCapacityConcern && string.IsNullOrWhiteSpace(form.BestInterestsDecision),
            "Summary" => string.IsNullOrWhiteSpace(form.Summary),
            _ => false,
        })];
    }

    /// <summary>The stored list (JSON of property names) read back as items, in the order of <see cref="All"/>.</summary>
    public static IReadOnlyList<Item> Read(string? stored)
    {
        if (string.IsNullOrWhiteSpace(stored))
        {
            return [];
        }
        var properties = JsonSerializer.Deserialize<string[]>(stored, JsonDefaults.Options) ?? [];
        return [.. All.Where(item => properties.Contains(item.Property, StringComparer.Ordinal))];
    }

    public static string? Store(IReadOnlyCollection<string> properties) =>
        properties.Count == 0 ? null : JsonSerializer.Serialize(properties, JsonDefaults.Options);

    /// <summary>"the pathway asked for, what matters to the person and a summary for the coordinator"</summary>
    public static string Words(IReadOnlyList<Item> items) => items.Count switch
    {
        0 => "",
        1 => items[0].Words,
        _ => string.Join(", ", items.Take(items.Count - 1).Select(i => i.Words)) + " and " + items[^1].Words,
    };

    /// <summary>The question the coordinator sends the referrer in one click.</summary>
    public static string Question(IReadOnlyList<Item> items) =>
        $"Your referral reached us without {Words(items)}. Please send {(items.Count == 1 ? "it" : "them")} so that we can decide the right service.";
}
