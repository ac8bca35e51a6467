using System.Globalization;
using System.Text.Json;
using CareCoordination.Auth;
using CareCoordination.Changes;

namespace CareCoordination.Features.Live;

/// <summary>A topic a change is pushed under, and the SignalR group that carries it (one group per organisation for referrals/mine).</summary>
public sealed record TopicGroup(string Topic, string Group);

/// <summary>
/// Which topics a change belongs to, and which topics a caller may watch. Pure rules, no I/O, so the push
/// (LiveBroadcaster) and the resync (LiveHub.GetChangesSince) cannot disagree about who sees what.
/// </summary>
public static class LiveTopics
{
    /// <summary>Beds, wards, sites, services and queue sizes: the capacity board.</summary>
    public const string Capacity = "capacity";
    public const string CoordinationQueue = "queue/coordination";
    public const string BedBureauQueue = "queue/bed-bureau";

    /// <summary>The caller's own organisation's referrals, their triage tasks and placements.</summary>
    public const string MyReferrals = "referrals/mine";

    public static IReadOnlyList<string> All { get; } = [Capacity, CoordinationQueue, BedBureauQueue, MyReferrals];

    // Staff roles per topic. Referrers are left off capacity and the queues: they follow their own referrals.
    private static readonly Dictionary<string, string[]> StaffRoles = new(StringComparer.Ordinal)
    {
        [Capacity] = [Roles.Coordinator, Roles.BedBureau, Roles.Manager, Roles.Admin],
        // Task changes carry clinical reasons (why declined, why not home first): the teams and their managers only.
        [CoordinationQueue] = [Roles.Coordinator, Roles.BedBureau, Roles.Manager],
        [BedBureauQueue] = [Roles.BedBureau, Roles.Coordinator, Roles.Manager],
        // The same task changes, for the organisation's own referrals: those who may read its referrals. Not admin, who opens
        // no referral (the bed board hides who is in a bed from them too).
        [MyReferrals] = [Roles.Referrer, Roles.Coordinator, Roles.BedBureau, Roles.Manager],
    };

    // Partner systems read capacity (as they may as FHIR) and their own organisation's referrals, never a working queue.
    private static readonly HashSet<string> PartnerTopics = new(StringComparer.Ordinal) { Capacity, MyReferrals };

    // A partner streams only what its token may read as FHIR: capacity as Location, HealthcareService or
    // MeasureReport; its referrals as ServiceRequest or Task.
    private static readonly Dictionary<string, string[]> PartnerReadScopes = new(StringComparer.Ordinal)
    {
        [Capacity] = ["system/Location.r", "system/HealthcareService.r", "system/MeasureReport.r"],
        [MyReferrals] = ["system/ServiceRequest.r", "system/Task.r"],
    };

    private static readonly HashSet<string> CapacityEntities = new(StringComparer.Ordinal) { "bed", "ward", "site", "service" };

    private static readonly HashSet<string> ReferralEntities = new(StringComparer.Ordinal) { "referral", "triage_task", "placement" };

    public static string OrganisationGroup(long organisationId) =>
        "referrals/org:" + organisationId.ToString(CultureInfo.InvariantCulture);

    /// <summary>The group this actor joins for the topic, or why they may not watch it.</summary>
    public static (TopicGroup? Granted, string? Refusal) Grant(Actor actor, string? topic)
    {
        if (topic is null || !StaffRoles.TryGetValue(topic, out var roles))
        {
            return (null, $"There is no live topic '{topic}'. The topics are: {string.Join(", ", All)}.");
        }
        var allowed = actor.Kind switch
        {
            ActorKind.Staff => actor.Role is { } role && roles.Contains(role, StringComparer.Ordinal),
            ActorKind.Partner => PartnerTopics.Contains(topic) && actor.Scopes.Any(granted => PartnerReadScopes[topic].Any(needed => Pipeline.AccessPolicy.ScopeGrants(granted, needed))),
            _ => false,
        };
        if (!allowed)
        {
            var who = actor.Kind == ActorKind.Partner ? "a partner system" : Roles.Describe(actor.Role ?? "nobody").ToLowerInvariant();
            var partners = PartnerTopics.Contains(topic) ? " and partner systems" : "";
            return (null, $"The {topic} topic is for {string.Join(", ", roles.Select(r => Roles.Describe(r).ToLowerInvariant()))}{partners}; you are {who}.");
        }
        if (topic != MyReferrals)
        {
            return (new TopicGroup(topic, topic), null);
        }
        // Always the caller's own organisation: there is no way to ask for another's.
        return actor.OrganisationId is { } organisation
            ? (new TopicGroup(topic, OrganisationGroup(organisation)), null)
            : (null, "referrals/mine needs an organisation, and you have none.");
    }

    /// <summary>
    /// The topics a change is pushed under. Drafts and person changes go nowhere: a draft is its author's
    /// business, and a person's details must not travel on a broadcast channel.
    /// </summary>
    public static IReadOnlyList<TopicGroup> Of(Change change, JsonElement? data)
    {
        var topics = new List<TopicGroup>(3);
        if (CapacityEntities.Contains(change.EntityType) || change.EntityType == "triage_task")
        {
            // Every task change moves a queue's size, which the capacity board shows.
            topics.Add(new TopicGroup(Capacity, Capacity));
        }
        if (change.EntityType == "triage_task" && QueueOf(data) is { } queue)
        {
            topics.Add(new TopicGroup(queue, queue));
        }
        if (ReferralEntities.Contains(change.EntityType) && change.OrganisationId is { } organisation)
        {
            topics.Add(new TopicGroup(MyReferrals, OrganisationGroup(organisation)));
        }
        return topics;
    }

    /// <summary>A change's data as JSON, parsed once and shared by the topic rule and the payload.</summary>
    public static JsonElement? Parse(string? data)
    {
        if (string.IsNullOrEmpty(data))
        {
            return null;
        }
        using var document = JsonDocument.Parse(data);
        return document.RootElement.Clone();
    }

    private static string? QueueOf(JsonElement? data) =>
        data is { ValueKind: JsonValueKind.Object } d && d.TryGetProperty("queue", out var queue) && queue.ValueKind == JsonValueKind.String
            ? queue.GetString() switch
            {
                "coordination" => CoordinationQueue,
                "bed-bureau" => BedBureauQueue,
                _ => null,
            }
            : null;
}
