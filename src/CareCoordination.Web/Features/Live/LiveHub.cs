using System.Text.Json;
using CareCoordination.Auth;
using CareCoordination.Changes;
using CareCoordination.Domain;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.SignalR;

namespace CareCoordination.Features.Live;

/// <summary>
/// What a live screen receives, as method "change", once per topic the change belongs to: a client on two
/// topics may get the same change twice, and Topic tells it which board the copy is for. Data is the
/// change's JSON as an object, not a string.
/// </summary>
/// <remarks>
/// The copies of one change are separate messages, so a connection can drop between them. A client
/// therefore keeps its place per topic (the last seq it got on that topic, or what Subscribe returned), and
/// on reconnecting asks GetChangesSince for the smallest of those and drops what is at or below each
/// topic's own place. One place for the whole connection would lose the copies it had not yet got.
/// </remarks>
public sealed record LiveChange(
    long Seq, string Kind, string EntityType, long Id, DateTimeOffset At, long? OrganisationId, string? Actor, JsonElement? Data, string Topic)
{
    public const string Method = "change";

    public static LiveChange From(Change change, JsonElement? data, string topic) =>
        topic == LiveTopics.Capacity
            // Capacity is counts: which queue, bed or service moved and to what. Whose referral it was, and who
            // acted, stay with those allowed to see the referral (partners read capacity too).
            ? new(change.Seq, change.Kind, change.EntityType, change.EntityId, change.At, null, null, CapacityOnly(data), topic)
            : new(change.Seq, change.Kind, change.EntityType, change.EntityId, change.At, change.OrganisationId, change.Actor, data, topic);

    private static readonly string[] CapacityFields = ["queue", "status", "siteId", "wardId", "bedType", "closedReason", "availableToday", "unit"];

    private static JsonElement? CapacityOnly(JsonElement? data)
    {
        if (data is not { ValueKind: JsonValueKind.Object } d)
        {
            return null;
        }
        // Written field by field, in CapacityFields' order: once per change on the capacity topic, so no dictionary and no
        // serializer to build one JSON object of a few codes (issue 14).
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            foreach (var field in CapacityFields)
            {
                if (!d.TryGetProperty(field, out var value))
                {
                    continue;
                }
                // Codes only. Closures recorded before the detail was kept apart carry "code: detail", which may name a patient:
                // the change log is append-only, so the code is taken from them here, on the way out.
                if (field == "closedReason" && value.ValueKind == JsonValueKind.String)
                {
                    var code = value.GetString()!.Split(':', 2)[0].Trim();
                    if (BedBureau.Beds.ClosureReasons.Has(code))
                    {
                        json.WriteString(field, code);
                    }
                    continue;
                }
                json.WritePropertyName(field);
                value.WriteTo(json);
            }
            json.WriteEndObject();
        }
        using var document = JsonDocument.Parse(buffer.WrittenMemory);
        return document.RootElement.Clone();
    }
}

/// <summary>
/// /hubs/live: board screens and partner systems subscribe to topics (see LiveTopics) and are pushed each
/// change as it is published. A client that was away calls GetChangesSince with the last seq it saw.
/// </summary>
[Authorize]
public sealed class LiveHub(ChangeFeed feed) : Hub
{
    /// <summary>Changes per resync page.</summary>
    public const int PageSize = 1000;

    private static readonly object SubscriptionsKey = new();

    /// <summary>Joins the topic's group and returns the seq published so far: pushes from here on are newer, anything older comes from GetChangesSince.</summary>
    public async Task<long> Subscribe(string topic)
    {
        var (granted, refusal) = LiveTopics.Grant(Actor.From(Context.User), topic);
        if (granted is null)
        {
            throw new HubException(refusal);
        }
        await Groups.AddToGroupAsync(Context.ConnectionId, granted.Group, Context.ConnectionAborted);
        Subscriptions[granted.Topic] = granted.Group;
        // Read after joining: a change published before the join is at or below this number, so a resync
        // from the client's last seq finds it; one published after is pushed. Nothing falls between.
        return feed.Published;
    }

    public async Task Unsubscribe(string topic)
    {
        if (Subscriptions.Remove(topic, out var group))
        {
            await Groups.RemoveFromGroupAsync(Context.ConnectionId, group, Context.ConnectionAborted);
        }
    }

    /// <summary>
    /// The published changes after seq on this connection's topics, oldest first, one entry per (change, topic)
    /// as the push sends them. At most PageSize changes: when a page is full the client calls again from the
    /// last seq it got, until a page comes back short.
    /// </summary>
    public async Task<IReadOnlyList<LiveChange>> GetChangesSince(long seq)
    {
        var subscriptions = Subscriptions;
        var found = new List<LiveChange>();
        var changes = 0;
        var after = seq;
        while (true)
        {
            // Scanned a page at a time: a page of other topics' changes must not look like the end.
            var page = await feed.SinceAsync(after, PageSize, Context.ConnectionAborted);
            foreach (var change in page)
            {
                var data = LiveTopics.Parse(change.Data);
                var topics = LiveTopics.Of(change, data).Where(t => subscriptions.TryGetValue(t.Topic, out var group) && group == t.Group).ToList();
                if (topics.Count == 0)
                {
                    continue;
                }
                found.AddRange(topics.Select(t => LiveChange.From(change, data, t.Topic)));
                if (++changes == PageSize)
                {
                    return found;
                }
            }
            // Short: the end of what is published (SinceAsync serves nothing beyond it).
            if (page.Count < PageSize)
            {
                return found;
            }
            after = page[^1].Seq;
        }
    }

    /// <summary>Topic to group. A connection's hub calls run one at a time, so a plain dictionary is safe.</summary>
    private Dictionary<string, string> Subscriptions
    {
        get
        {
            if (Context.Items.TryGetValue(SubscriptionsKey, out var held) && held is Dictionary<string, string> subscriptions)
            {
                return subscriptions;
            }
            subscriptions = new Dictionary<string, string>(StringComparer.Ordinal);
            Context.Items[SubscriptionsKey] = subscriptions;
            return subscriptions;
        }
    }
}

public static class LiveHubEndpoints
{
    public static void MapLiveHub(this IEndpointRouteBuilder app) =>
        // A partner token runs out within the hour: its connection closes then, rather than listening on.
        app.MapHub<LiveHub>("/hubs/live", options => options.CloseOnAuthenticationExpiration = true);
}
