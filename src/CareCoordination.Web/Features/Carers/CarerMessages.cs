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
    /// <summary>The kinds of news a carer is sent: three decisions, the start of support, and an agreed place no longer held.</summary>
    public const string Accepted = "accepted";
    public const string Declined = "declined";
    public const string Closed = "closed";
    public const string Started = "started";
    public const string PlaceNoLongerHeld = "place-no-longer-held";

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

    /// <summary>
    /// An agreed bed at <paramref name="place"/> is no longer held (its reservation ran out). The carer hears so only if
    /// they heard it was agreed: the latest acceptance they were sent, for that place, went (or is going at this moment). One
    /// still waiting to go is withdrawn instead, so the carer is never told of a place that has gone; one that never went
    /// (failed, not sent) leaves nothing to undo.
    /// </summary>
    public static async Task TellOfPlaceNoLongerHeldAsync(Work work, long referralId, long organisationId, string place)
    {
        var scope = work.Scope;
        var told = await work.Connection.QueryFirstOrDefaultAsync<(long Id, string Status, string? Place)>(
            "SELECT id, status, place FROM carer_message WHERE referral_id = @referralId AND kind = @Accepted ORDER BY id DESC LIMIT 1",
            new { referralId, Accepted }, work.Transaction);
        if (told == default || told.Place != place)
        {
            return;
        }
        if (told.Status == "queued")
        {
            const string reason = "withdrawn before it was sent: the place it told of is no longer held";
            // Not while a sender holds it: that e-mail may be on its way, and then the news that undoes it must follow.
            var withdrawn = await work.Connection.ExecuteAsync(
                """
                UPDATE carer_message SET status = 'not-sent', last_error = @reason, claimed_by = NULL, claimed_until = NULL, updated_at = @now
                WHERE id = @Id AND status = 'queued' AND (claimed_until IS NULL OR claimed_until < @now)
                """, new { reason, now = scope.Now, told.Id }, work.Transaction);
            if (withdrawn == 1)
            {
                scope.RecordChange("carer-message.not-sent", "carer_message", told.Id, organisationId,
                    new { referralId, status = "not-sent", detail = $"{About(Accepted)}: {reason}" });
                return;
            }
        }
        else if (told.Status != "sent")
        {
            return;
        }
        await QueueAsync(work, referralId, organisationId, PlaceNoLongerHeld, place);
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
        PlaceNoLongerHeld => "the agreed place no longer being held",
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
            CarerMessages.PlaceNoLongerHeld => ($"An update about {name}'s support",
                $"The place{(place is null ? "" : $" at {place}")} that was agreed for {name} is no longer being held for them. "
                + "We are arranging support again, and you will hear from us when it is agreed."),
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
