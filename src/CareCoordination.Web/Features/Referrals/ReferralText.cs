using System.Globalization;
using CareCoordination.Domain;
using CareCoordination.Features.BedBureau;

namespace CareCoordination.Features.Referrals;

/// <summary>
/// How referral states, pathways, decisions and times read on every screen: the one place a stored code
/// becomes words. A page shows a code only through here (or a <see cref="ReferralCodes"/> label).
/// </summary>
public static class ReferralText
{
    private static readonly CultureInfo British = CultureInfo.GetCultureInfo("en-GB");

    public static string Status(string status) => status switch
    {
        "submitted" => "Waiting for triage",
        "in-triage" => "Being triaged",
        "awaiting-information" => "Needs your answer",
        "redirected" => "Passed to another team",
        "accepted" => "Accepted",
        "placed" => "Support started",
        "completed" => "Completed",
        "declined" => "Declined",
        "cancelled" => "Cancelled",
        _ => status,
    };

    public static string Pathway(string? pathway) => pathway is null ? "Pathway not stated" : ReferralCodes.Pathways.LabelOf(pathway);

    /// <summary>
    /// A triage task's decision as the commands store it ("accepted: reablement", "accepted: rehabilitation bed, Site",
    /// "declined: out-of-area", "redirected to bed bureau"), in words. Reports and FHIR read the stored form.
    /// </summary>
    public static string? Decision(string? decision)
    {
        if (decision is null)
        {
            return null;
        }
        var (kind, detail) = decision.IndexOf(": ", StringComparison.Ordinal) is var colon and >= 0
            ? (decision[..colon], decision[(colon + 2)..])
            : (decision, "");
        return kind switch
        {
            "accepted" when detail.IndexOf(" bed, ", StringComparison.Ordinal) is var bed and > 0 =>
                $"Accepted: {MatchBeds.Label(detail[..bed])} bed at {detail[(bed + 6)..]}",
            "accepted" => $"Accepted: {ReferralCodes.ServiceKinds.LabelOf(detail)}",
            "declined" => $"Declined: {ReferralCodes.DeclineReasons.LabelOf(detail)}",
            "redirected to bed bureau" => "Passed to the bed bureau",
            "returned to coordination" => $"Handed back to the coordination centre: {detail}",
            _ => decision,
        };
    }

    public static string Time(DateTimeOffset at) => LondonTime.ToLocal(at).ToString("ddd d MMM HH:mm", British);

    public static string Date(DateOnly? date) => date?.ToString("d MMM yyyy", British) ?? "";

    public static int Age(DateOnly born, DateOnly today) =>
        today.Year - born.Year - (today < born.AddYears(today.Year - born.Year) ? 1 : 0);

    public static string Duration(TimeSpan span) => span switch
    {
        { TotalMinutes: < 1 } => "just now",
        { TotalHours: < 1 } => $"{(int)span.TotalMinutes} min",
        { TotalDays: < 1 } => $"{(int)span.TotalHours} h {span.Minutes} min",
        _ => $"{(int)span.TotalDays} d {span.Hours} h",
    };

    public static string Change(string kind) => kind switch
    {
        "referral.drafted" => "Started",
        "referral.submitted" => "Sent to the coordination centre",
        "referral.entered-from-paper" => "Entered from a paper referral made during downtime",
        "referral.triage-started" => "Taken for triage",
        "referral.information-requested" => "Information asked for",
        "referral.information-received" => "Information given",
        "referral.redirected" => "Passed to another team",
        "referral.accepted" => "Accepted into a service",
        "referral.placed" => "Support started",
        "referral.completed" => "Completed",
        "referral.declined" => "Declined",
        "referral.cancelled" => "Cancelled",
        "referral.note-added" => "Note added",
        "referral.discharged" => "Left hospital",
        "referral.discharge-corrected" => "Discharge from hospital corrected",
        "referral.delay-recorded" => "Reason for the delay recorded",
        "task.created" => "Queued",
        "task.taken" => "Taken by a coordinator",
        "task.released" => "Released back to the queue",
        "task.handed" => "Handed to a colleague",
        "task.reprioritised" => "Priority changed",
        "task.recontact-due" => "Waited past target: re-contact due",
        "task.recontacted" => "Re-contacted while waiting",
        "task.on-hold" => "Clock paused, waiting for information",
        "task.resumed" => "Clock running again",
        "task.completed" => "Triage finished",
        "task.rejected" => "Triage finished: declined",
        "task.cancelled" => "Triage stopped: cancelled",
        "placement.reserved" => "Place reserved",
        "placement.started" => "Placement started",
        "placement.ended" => "Placement ended",
        "placement.cancelled" => "Reserved place given back",
        "placement.expired" => "Reserved bed given back: not confirmed in time",
        "referral.reservation-expired" => "Back in triage: the reserved bed was not confirmed in time",
        "approval.requested" => "Manager's approval asked for (provider under amber caution)",
        "approval.approved" => "Approved by a manager (provider under amber caution)",
        "approval.refused" => "Refused by a manager (provider under amber caution)",
        "carer-message.queued" => "E-mail to the carer queued",
        "carer-message.sent" => "E-mail to the carer sent",
        "carer-message.retrying" => "E-mail to the carer not delivered yet",
        "carer-message.failed" => "E-mail to the carer failed",
        "carer-message.not-sent" => "E-mail to the carer not sent",
        _ => kind,
    };
}
