using CareCoordination.Domain;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;

namespace CareCoordination.Features.Providers;

/// <summary>A manager's approval a placement went ahead on, as it is recorded with the placement.</summary>
public sealed record CautionApproval(long Id, string DecidedBy, DateTimeOffset DecidedAt, string Note)
{
    /// <summary>For the referral's notes: the caution, who approved it, when, and what was agreed.</summary>
    public string Describe(string provider) =>
        $"Amber caution on {provider}: approved by {DecidedBy} on {LondonTime.ToLocal(DecidedAt):d MMM yyyy HH:mm}: {Note}";
}

/// <summary>
/// The commissioners' cautions list, applied the same way to beds and services: red means no new placements; amber
/// means a placement goes ahead only on a signed-in manager's approval, after a risk discussion, for that referral and
/// that service (or that provider's beds). A coordinator asks (AskCautionApproval), a manager decides
/// (DecideCautionApproval), and the placement records the approval it used: each approval makes one placement.
/// </summary>
public static class ProviderCaution
{
    /// <summary>The lock a provider's caution is set under, and read under by a placement (PostgreSQL; SQLite's one writer already takes turns).</summary>
    public static string Lock(long providerId) => "provider:" + providerId.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>
    /// The approval the placement goes ahead on, null when the provider is under no caution; refuses under red, and
    /// under amber without a current approval (approved, for this referral and service, not yet used by a placement).
    /// The caution is read under the provider's lock, which ChangeProviderRating takes too: one set at the same moment has
    /// either committed, and is applied here, or waits until this placement is made. Read with the bed or service, a red
    /// caution committed in between let a placement through on PostgreSQL, and an amber one skipped the manager.
    /// </summary>
    public static async Task<CautionApproval?> RequireAsync(Work work, Database database, long referralId, long providerId, long? serviceId, string provider)
    {
        await database.LockAsync(work.Connection, work.Transaction, Lock(providerId));
        var (caution, note) = await work.Connection.QuerySingleAsync<(string Caution, string? Note)>(
            "SELECT caution, caution_note FROM organisation WHERE id = @providerId", new { providerId }, work.Transaction);
        switch (caution)
        {
            case "red":
                throw new RuleBroken($"{provider} is under a red caution: no new placements. {note}".Trim());
            case not "amber":
                return null;
        }
        // The latest asked for this referral and service decides: a refusal after an approval stands, and so on.
        var latest = await work.Connection.QueryFirstOrDefaultAsync<Asked>(
            $"""
            SELECT a.id AS Id, a.status AS Status, a.decided_by_name AS DecidedBy, a.decided_at AS DecidedAt, a.decision_note AS Note,
                   (SELECT COUNT(*) FROM placement pl WHERE pl.caution_approval_id = a.id AND pl.status <> 'cancelled') AS Placements
            FROM caution_approval a
            WHERE a.referral_id = @referralId AND a.provider_id = @providerId AND {ForService(serviceId)}
            ORDER BY a.id DESC LIMIT 1
            """, new { referralId, providerId, serviceId }, work.Transaction);
        var what = serviceId is null ? $"a bed with {provider}" : "this placement";
        return latest switch
        {
            null => throw new RuleBroken($"{provider} is under an amber caution: ask a manager to approve {what} first, after a risk discussion. {note}".Trim()),
            { Status: "requested" } => throw new RuleBroken($"{provider} is under an amber caution: the approval asked for is waiting for a manager."),
            { Status: "refused" } => throw new RuleBroken($"{latest.DecidedBy} refused {what} under {provider}'s amber caution: {latest.Note}"),
            { Placements: > 0 } => throw new RuleBroken($"The manager's approval for {what} has been used by a placement already: ask again."),
            _ => new CautionApproval(latest.Id, latest.DecidedBy!, latest.DecidedAt!.Value, latest.Note!),
        };
    }

    private sealed record Asked
    {
        public long Id { get; init; }
        public string Status { get; init; } = "";
        public string? DecidedBy { get; init; }
        public DateTimeOffset? DecidedAt { get; init; }
        public string? Note { get; init; }
        public long Placements { get; init; }
    }

    /// <summary>An approval is for one service, or (service_id NULL) for the provider's beds.</summary>
    public static string ForService(long? serviceId) => serviceId is null ? "a.service_id IS NULL" : "a.service_id = @serviceId";
}
