using System.Globalization;
using System.Text;
using CareCoordination.Domain;
using CareCoordination.Features.BedBureau;
using CareCoordination.Pipeline;
using Dapper;

namespace CareCoordination.Features.Carers;

/// <summary>
/// The outbox side: a decision or a start queues a message to the carer in its own transaction, so the message exists
/// exactly when the decision does, and no e-mail server can slow or undo the decision. CarerMessageSender delivers it.
/// </summary>
public static class CarerMessages
{
    /// <summary>The kinds of news a carer is sent: three decisions, the start of support, and an agreed bed no longer held.</summary>
    public const string Accepted = "accepted";
    public const string Declined = "declined";
    public const string Closed = "closed";
    public const string Started = "started";
    public const string BedNoLongerHeld = "bed-no-longer-held";

    /// <summary>Queues the message only if the person agreed, on this referral, that the carer is told and an address was given.</summary>
    public static async Task QueueAsync(Work work, long referralId, long organisationId, string kind, string? place = null, DateOnly? on = null)
    {
        var scope = work.Scope;
        var agreed = await work.Connection.ExecuteScalarAsync<long>(
            "SELECT COUNT(*) FROM referral_carer WHERE referral_id = @referralId AND agreed = @yes AND email IS NOT NULL",
            new { referralId, yes = true }, work.Transaction);
        if (agreed == 0)
        {
            return;
        }
        var id = await work.Connection.ExecuteScalarAsync<long>(
            """
            INSERT INTO carer_message (referral_id, organisation_id, kind, place, on_date, status, attempts, next_attempt_at, created_at, updated_at)
            VALUES (@referralId, @organisationId, @kind, @place, @on, 'queued', 0, @now, @now, @now) RETURNING id
            """, new { referralId, organisationId, kind, place, on, now = scope.Now }, work.Transaction);
        scope.RecordChange("carer-message.queued", "carer_message", id, organisationId, new { referralId, kind, detail = About(kind) });
    }

    /// <summary>Support has started (a service at home, or admission to a bed): the day is today, in London.</summary>
    public static async Task QueueStartAsync(Work work, PlacementRow placement)
    {
        var place = await work.Connection.ExecuteScalarAsync<string?>(
            """
            SELECT COALESCE(s.name, st.name) FROM placement pl
            LEFT JOIN service s ON s.id = pl.service_id
            LEFT JOIN bed b ON b.id = pl.bed_id LEFT JOIN ward w ON w.id = b.ward_id LEFT JOIN site st ON st.id = w.site_id
            WHERE pl.id = @Id
            """, new { placement.Id }, work.Transaction);
        await QueueAsync(work, placement.ReferralId, placement.OrganisationId, Started, place, LondonTime.DateOf(work.Scope.Now));
    }

    /// <summary>What a message is about, as the referral's timeline says it.</summary>
    public static string About(string kind) => kind switch
    {
        Accepted => "the decision (accepted)",
        Declined => "the decision (declined)",
        Closed => "the referral being closed",
        Started => "the start of support",
        BedNoLongerHeld => "the agreed bed no longer being held",
        _ => kind,
    };
}

/// <summary>What a carer's message is made from: only what the carer needs, never the person's health or needs.</summary>
public sealed record LetterFacts
{
    public long ReferralId { get; init; }
    public string Kind { get; init; } = "";
    public string? Place { get; init; }
    public DateOnly? OnDate { get; init; }
    public string PersonGivenName { get; init; } = "";
    public string CarerName { get; init; } = "";
    public string? CarerEmail { get; init; }
    public bool? Agreed { get; init; }
    public string ReferringOrganisation { get; init; } = "";
}

/// <summary>
/// The carer's e-mail: plain English, short, who to contact. It names the person by their first name only and says what
/// was decided and when support starts; never the NHS number, needs, risks, diagnosis or why a referral was declined.
/// </summary>
public static class CarerLetter
{
    private static readonly CultureInfo British = CultureInfo.GetCultureInfo("en-GB");

    public static (string Subject, string Body) Compose(LetterFacts facts, string? contact)
    {
        var name = facts.PersonGivenName;
        var when = facts.OnDate?.ToString("dddd d MMMM yyyy", British);
        var place = string.IsNullOrWhiteSpace(facts.Place) ? null : facts.Place;
        var (subject, news) = facts.Kind switch
        {
            CarerMessages.Accepted => ($"{name}'s support has been agreed",
                $"{name} has been offered support{(place is null ? "" : $" from {place}")}." + (when is null ? "" : $" It is planned to start on {when}.")),
            CarerMessages.Declined => ($"An update about {name}'s referral",
                $"The coordination centre has decided not to arrange support through this referral. The team who referred {name} will talk with them about what happens next."),
            CarerMessages.Closed => ($"An update about {name}'s referral",
                $"The referral for support for {name} has been closed, so no support will be arranged through it."),
            CarerMessages.Started => ($"{name}'s support has started",
                $"{name}'s support{(place is null ? "" : $" from {place}")} started" + (when is null ? "." : $" on {when}.")),
            CarerMessages.BedNoLongerHeld => ($"An update about {name}'s support",
                $"The bed{(place is null ? "" : $" at {place}")} that was agreed for {name} is no longer being held, so {name} will not go there as planned. "
                + "The bed bureau is looking for another place, and you will hear from us again when one is agreed."),
            _ => throw new ArgumentException($"'{facts.Kind}' is not a kind of carer message.", nameof(facts)),
        };
        var who = string.IsNullOrWhiteSpace(contact) ? $"the team at {facts.ReferringOrganisation} who referred {name}" : contact.Trim();
        var body = new StringBuilder()
            .Append(CultureInfo.InvariantCulture, $"Dear {facts.CarerName},\n\n")
            .Append(CultureInfo.InvariantCulture, $"{name} asked us to keep you informed about their support.\n\n")
            .Append(news).Append("\n\n")
            .Append(CultureInfo.InvariantCulture, $"If you have any questions, please contact {who} and give the reference {Reference(facts.ReferralId)}.\n\n")
            .Append("Please do not reply to this e-mail: nobody reads replies.\n")
            .ToString();
        return (subject, body);
    }

    /// <summary>The number staff find the referral by: not the NHS number, which never leaves in an e-mail.</summary>
    public static string Reference(long referralId) => string.Create(CultureInfo.InvariantCulture, $"referral {referralId}");
}
