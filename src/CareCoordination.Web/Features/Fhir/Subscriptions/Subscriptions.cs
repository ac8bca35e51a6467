using System.Globalization;
using System.Text.Json;
using Hl7.Fhir.Model;
using FhirSubscription = Hl7.Fhir.Model.Subscription;

namespace CareCoordination.Features.Fhir.Subscriptions;

/// <summary>The names the HL7 FHIR Subscriptions R5 Backport IG gives things in R4, and the one topic this server publishes.</summary>
public static class Backport
{
    private const string Ig = "http://hl7.org/fhir/uv/subscriptions-backport";
    public const string SubscriptionProfile = Ig + "/StructureDefinition/backport-subscription";
    public const string FilterCriteria = Ig + "/StructureDefinition/backport-filter-criteria";
    public const string PayloadContent = Ig + "/StructureDefinition/backport-payload-content";
    public const string HeartbeatPeriod = Ig + "/StructureDefinition/backport-heartbeat-period";
    public const string Timeout = Ig + "/StructureDefinition/backport-timeout";
    public const string MaxCount = Ig + "/StructureDefinition/backport-max-count";
    public const string StatusProfile = Ig + "/StructureDefinition/backport-subscription-status-r4";
    public const string NotificationProfile = Ig + "/StructureDefinition/backport-subscription-notification-r4";
    public const string StatusOperation = Ig + "/OperationDefinition/backport-subscription-status";
    public const string EventsOperation = Ig + "/OperationDefinition/backport-subscription-events";

    /// <summary>Every change of a triage task (FHIR Task) of the subscriber's own organisation's referrals.</summary>
    public const string ReferralTaskChanges = "https://carecoordination.example.org/fhir/SubscriptionTopic/referral-task-changes";

    /// <summary>The payload content that carries each event's Task, and so what it says of the person: audited as read.</summary>
    public const string FullResource = "full-resource";

    public static IReadOnlyList<string> Contents { get; } = ["empty", "id-only", FullResource];

    /// <summary>
    /// Whether <paramref name="partner"/> may be sent events with this content: full-resource carries each Task, and so its
    /// person's NHS number and name, which only a client that may read Tasks (system/Task.r) may have. Asked when a
    /// subscription is made or changed, when its $events are asked for, and before each delivery, of the client as it is then.
    /// </summary>
    public static bool MayReceive(string content, CareCoordination.Auth.Actor partner) =>
        content != FullResource || CareCoordination.Pipeline.AccessPolicy<ReadTask.Query>.Policy.Allows(partner);

    /// <summary>Refuses full-resource to a token that may not read Tasks.</summary>
    public static void RequireMayReceive(string content, CareCoordination.Auth.Actor partner)
    {
        if (!MayReceive(content, partner))
        {
            throw new CareCoordination.Pipeline.AccessDenied(
                "full-resource carries each Task and what it says of the person, which this token may not read (it has no system/Task.r): "
                + "ask for id-only, or use a token with Task read.");
        }
    }
}

/// <summary>A subscription as stored, for the partner client that made it.</summary>
public sealed record FhirSubscriptionRow
{
    public long Id { get; init; }
    public string ClientId { get; init; } = "";
    public long OrganisationId { get; init; }
    public string Status { get; init; } = "";
    public string Topic { get; init; } = "";
    public string? FilterCriteria { get; init; }
    public string Endpoint { get; init; } = "";
    public string ServerBase { get; init; } = "";
    public string? ChannelHeader { get; init; }
    public string PayloadType { get; init; } = "";
    public string Content { get; init; } = "";
    public int? HeartbeatSeconds { get; init; }
    public int TimeoutSeconds { get; init; }
    public string? Reason { get; init; }
    public int Version { get; init; }
    public DateTimeOffset UpdatedAt { get; init; }
    public long ChangesThrough { get; init; }
    public long EventsNumbered { get; init; }
    public long DeliveredThrough { get; init; }
    public DateTimeOffset? HandshakeAt { get; init; }
    public DateTimeOffset? LastSentAt { get; init; }
    public int Failures { get; init; }
    public DateTimeOffset? NextAttemptAt { get; init; }
    public string? LastError { get; init; }

    public const string Select = """
        SELECT id AS Id, client_id AS ClientId, organisation_id AS OrganisationId, status AS Status, topic AS Topic, filter_criteria AS FilterCriteria,
               endpoint AS Endpoint, server_base AS ServerBase, channel_header AS ChannelHeader, payload_type AS PayloadType, content AS Content, heartbeat_seconds AS HeartbeatSeconds,
               timeout_seconds AS TimeoutSeconds, reason AS Reason, version AS Version, updated_at AS UpdatedAt, changes_through AS ChangesThrough,
               events_numbered AS EventsNumbered, delivered_through AS DeliveredThrough, handshake_at AS HandshakeAt, last_sent_at AS LastSentAt,
               failures AS Failures, next_attempt_at AS NextAttemptAt, last_error AS LastError
        FROM fhir_subscription
        """;
}

/// <summary>One numbered event of a subscription: a change of one of its Tasks.</summary>
public sealed record SubscriptionEvent
{
    public long EventNumber { get; init; }
    public long ChangeSeq { get; init; }
    public long TaskId { get; init; }
    public DateTimeOffset At { get; init; }

    public const string Select = "SELECT event_number AS EventNumber, change_seq AS ChangeSeq, task_id AS TaskId, at AS At FROM fhir_subscription_event";
}

/// <summary>
/// backport-filter-criteria on our topic: <c>Task?status=accepted,rejected&amp;focus=ServiceRequest/12</c>. Status is
/// the Task's status as FHIR shows it (FhirMapping.ToTask) just after the change.
/// </summary>
public sealed record TaskFilter(IReadOnlyList<string> Statuses, long? FocusReferralId)
{
    public static TaskFilter None { get; } = new([], null);

    /// <summary>The filter, or why it cannot be one.</summary>
    public static (TaskFilter? Filter, string? Error) Parse(string? criteria)
    {
        if (string.IsNullOrWhiteSpace(criteria))
        {
            return (None, null);
        }
        if (!criteria.StartsWith("Task?", StringComparison.Ordinal))
        {
            return (null, $"Filter criteria on this topic are a Task search: Task?status=...&focus=ServiceRequest/{{id}} (not '{criteria}').");
        }
        var statuses = new List<string>();
        long? focus = null;
        foreach (var pair in criteria["Task?".Length..].Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            var (name, value) = equals < 0 ? (pair, "") : (pair[..equals], Uri.UnescapeDataString(pair[(equals + 1)..]));
            switch (name)
            {
                case "status":
                    var codes = value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                    if (codes.Length == 0 || codes.Any(c => !SearchTasks.Query.StatusCodes.Contains(c)))
                    {
                        return (null, $"Task status filter: use {string.Join(", ", SearchTasks.Query.StatusCodes)}.");
                    }
                    statuses.AddRange(codes);
                    break;
                case "focus":
                    var id = value.StartsWith("ServiceRequest/", StringComparison.Ordinal) ? value["ServiceRequest/".Length..] : value;
                    if (!long.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out var referralId))
                    {
                        return (null, "Task focus filter: focus=ServiceRequest/{id}.");
                    }
                    focus = referralId;
                    break;
                default:
                    return (null, $"This topic filters Task changes by status and focus only, not '{name}'.");
            }
        }
        return (new TaskFilter(statuses, focus), null);
    }

    /// <summary>Whether a triage task change (its data as ChangeLog wrote it) passes this filter.</summary>
    public bool Matches(string? data)
    {
        if (Statuses.Count == 0 && FocusReferralId is null)
        {
            return true;
        }
        using var document = JsonDocument.Parse(data ?? "{}");
        var root = document.RootElement;
        if (FocusReferralId is { } focus && !(root.TryGetProperty("referralId", out var referral) && referral.TryGetInt64(out var id) && id == focus))
        {
            return false;
        }
        return Statuses.Count == 0 || Statuses.Contains(FhirStatus(root));
    }

    // As FhirMapping.ToTask shows it: a task completed by accepting the referral is "accepted".
    private static string FhirStatus(JsonElement change)
    {
        var status = change.TryGetProperty("status", out var s) ? s.GetString() ?? "" : "";
        var decision = change.TryGetProperty("detail", out var detail) && detail.ValueKind == JsonValueKind.Object
            && detail.TryGetProperty("decision", out var d) && d.ValueKind == JsonValueKind.String ? d.GetString() : null;
        return status == "completed" && decision?.StartsWith("accepted", StringComparison.Ordinal) == true ? "accepted" : status;
    }
}

/// <summary>What a partner asks for in its Subscription, checked: the same for create and update.</summary>
public sealed record SubscriptionRequest(string? FilterCriteria, string Endpoint, string ServerBase, string? Header, string PayloadType, string Content,
    int? HeartbeatSeconds, int TimeoutSeconds, bool Off, string? Reason)
{
    /// <summary>Reads the Subscription a partner sent, or refuses it (400) naming the element.</summary>
    public static SubscriptionRequest From(FhirSubscription subscription, SubscriptionSettings settings, string serverBase)
    {
        if (subscription.Criteria != Backport.ReferralTaskChanges)
        {
            throw new InvalidResource("Subscription.criteria", $"Subscription.criteria must be the canonical URL of a topic this server publishes: {Backport.ReferralTaskChanges}.");
        }
        var filters = subscription.CriteriaElement.Extension.Where(e => e.Url == Backport.FilterCriteria).ToList();
        if (filters.Count > 1 || filters.Any(f => f.Value is not FhirString))
        {
            throw new InvalidResource("Subscription.criteria.extension", "Give at most one backport-filter-criteria, as valueString.");
        }
        var filterCriteria = (filters.SingleOrDefault()?.Value as FhirString)?.Value;
        if (TaskFilter.Parse(filterCriteria).Error is { } filterError)
        {
            throw new InvalidResource("Subscription.criteria.extension", filterError);
        }
        var channel = subscription.Channel ?? throw new InvalidResource("Subscription.channel", "Subscription.channel is required.");
        if (channel.Type != FhirSubscription.SubscriptionChannelType.RestHook)
        {
            throw new InvalidResource("Subscription.channel.type", "This server delivers by rest-hook only.");
        }
        if (subscription.End is not null)
        {
            throw new InvalidResource("Subscription.end", "Subscription.end is not supported: set status off, or DELETE the subscription, when you no longer want it.");
        }
        if (settings.Refuse(channel.Endpoint) is { } endpointError)
        {
            throw new InvalidResource("Subscription.channel.endpoint", endpointError);
        }
        var payload = channel.Payload;
        if (payload is not (null or "application/fhir+json" or "application/json"))
        {
            throw new InvalidResource("Subscription.channel.payload", "Notifications are FHIR JSON: channel.payload application/fhir+json.");
        }
        var contentCode = channel.PayloadElement?.Extension.FirstOrDefault(e => e.Url == Backport.PayloadContent)?.Value;
        var content = payload is null ? "empty" : contentCode is Code code ? code.Value : "id-only";
        if (!Backport.Contents.Contains(content))
        {
            throw new InvalidResource("Subscription.channel.payload.extension", $"backport-payload-content is one of {string.Join(", ", Backport.Contents)}.");
        }
        var heartbeat = UnsignedInt(channel, Backport.HeartbeatPeriod);
        if (heartbeat is { } period && period < settings.MinimumHeartbeatSeconds)
        {
            throw new InvalidResource("Subscription.channel.extension", $"backport-heartbeat-period must be at least {settings.MinimumHeartbeatSeconds} seconds here.");
        }
        var timeout = UnsignedInt(channel, Backport.Timeout);
        if (timeout is 0)
        {
            throw new InvalidResource("Subscription.channel.extension", "backport-timeout must be at least 1 second.");
        }
        var headers = channel.Header.Where(h => !string.IsNullOrWhiteSpace(h)).ToList();
        if (headers.Count > 1 || headers.Any(h => !h!.Contains(':', StringComparison.Ordinal) || h!.Any(char.IsControl)))
        {
            throw new InvalidResource("Subscription.channel.header", "At most one channel.header, as 'Name: value' (e.g. Authorization: Bearer ...).");
        }
        return new SubscriptionRequest(filterCriteria, channel.Endpoint!, serverBase, headers.SingleOrDefault(), payload ?? "application/fhir+json", content!,
            heartbeat, Math.Min(timeout ?? settings.RequestTimeoutSeconds, settings.RequestTimeoutSeconds),
            subscription.Status == FhirSubscription.SubscriptionStatus.Off, subscription.Reason);
    }

    private static int? UnsignedInt(FhirSubscription.ChannelComponent channel, string url) =>
        channel.Extension.FirstOrDefault(e => e.Url == url)?.Value switch
        {
            null => null,
            UnsignedInt value when value.Value is { } v => v,
            PositiveInt value when value.Value is { } v => v,
            _ => throw new InvalidResource("Subscription.channel.extension", $"{url} takes valueUnsignedInt (seconds)."),
        };
}

/// <summary>Subscriptions and their notification Bundles as FHIR R4 resources, in the backport IG's shapes.</summary>
public static class SubscriptionMapping
{
    public static FhirSubscription ToSubscription(FhirSubscriptionRow row)
    {
        var subscription = new FhirSubscription
        {
            Id = FhirMapping.Id(row.Id),
            Meta = new Meta
            {
                VersionId = row.Version.ToString(CultureInfo.InvariantCulture),
                LastUpdated = row.UpdatedAt.ToUniversalTime(),
                Profile = [Backport.SubscriptionProfile],
            },
            Status = row.Status switch
            {
                "requested" => FhirSubscription.SubscriptionStatus.Requested,
                "active" => FhirSubscription.SubscriptionStatus.Active,
                "error" => FhirSubscription.SubscriptionStatus.Error,
                _ => FhirSubscription.SubscriptionStatus.Off,
            },
            Reason = row.Reason ?? "Changes of our referrals' triage tasks",
            Criteria = row.Topic,
            Error = row.Status == "error" ? row.LastError : null,
            Channel = new FhirSubscription.ChannelComponent
            {
                Type = FhirSubscription.SubscriptionChannelType.RestHook,
                Endpoint = row.Endpoint,
                Payload = row.PayloadType,
                Header = row.ChannelHeader is null ? [] : [row.ChannelHeader],
            },
        };
        if (row.FilterCriteria is not null)
        {
            subscription.CriteriaElement.Extension.Add(new Extension(Backport.FilterCriteria, new FhirString(row.FilterCriteria)));
        }
        subscription.Channel.PayloadElement!.Extension.Add(new Extension(Backport.PayloadContent, new Code(row.Content)));
        if (row.HeartbeatSeconds is { } heartbeat)
        {
            subscription.Channel.Extension.Add(new Extension(Backport.HeartbeatPeriod, new UnsignedInt(heartbeat)));
        }
        subscription.Channel.Extension.Add(new Extension(Backport.Timeout, new UnsignedInt(row.TimeoutSeconds)));
        // Each notification carries one event, in event-number order.
        subscription.Channel.Extension.Add(new Extension(Backport.MaxCount, new PositiveInt(1)));
        return subscription;
    }

    /// <summary>
    /// A notification Bundle (type history): first the status Parameters, then, unless the content is empty, one entry per
    /// event naming its Task (id-only) or carrying it (full-resource). Tasks missing from <paramref name="tasks"/> go id-only.
    /// </summary>
    public static Bundle Notification(FhirSubscriptionRow row, string baseUrl, string type, IReadOnlyList<SubscriptionEvent> events,
        string content, IReadOnlyDictionary<long, FhirTriageTask> tasks, PatientIds patientIds, DateTimeOffset now)
    {
        var subscriptionUrl = $"{baseUrl}/Subscription/{FhirMapping.Id(row.Id)}";
        var status = Status(row, subscriptionUrl, type, events.Count > 0 && type == "event-notification" ? events[^1].EventNumber : row.EventsNumbered);
        foreach (var change in events)
        {
            var parts = new List<Parameters.ParameterComponent>
            {
                new() { Name = "event-number", Value = new FhirString(change.EventNumber.ToString(CultureInfo.InvariantCulture)) },
                new() { Name = "timestamp", Value = new Instant(change.At.ToUniversalTime()) },
            };
            if (content != "empty")
            {
                parts.Add(new() { Name = "focus", Value = new ResourceReference($"{baseUrl}/Task/{FhirMapping.Id(change.TaskId)}") });
            }
            status.Parameter.Add(new Parameters.ParameterComponent { Name = "notification-event", Part = parts });
        }
        var bundle = new Bundle
        {
            Id = Guid.NewGuid().ToString(),
            Meta = new Meta { Profile = [Backport.NotificationProfile] },
            Type = Bundle.BundleType.History,
            Timestamp = now.ToUniversalTime(),
            Entry =
            [
                new Bundle.EntryComponent
                {
                    FullUrl = "urn:uuid:" + status.Id,
                    Resource = status,
                    Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.GET, Url = subscriptionUrl + "/$status" },
                    Response = new Bundle.ResponseComponent { Status = "200" },
                },
            ],
        };
        if (content == "empty")
        {
            return bundle;
        }
        foreach (var change in events)
        {
            var entry = new Bundle.EntryComponent
            {
                FullUrl = $"{baseUrl}/Task/{FhirMapping.Id(change.TaskId)}",
                Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.PUT, Url = $"Task/{FhirMapping.Id(change.TaskId)}" },
                Response = new Bundle.ResponseComponent { Status = "200" },
            };
            if (content == Backport.FullResource && tasks.TryGetValue(change.TaskId, out var task))
            {
                // The subscriber's organisation's ids for the person, as its reads give them.
                entry.Resource = FhirMapping.ToTask(task, patientIds.For(row.OrganisationId));
            }
            bundle.Entry.Add(entry);
        }
        return bundle;
    }

    /// <summary>$status: a searchset of the subscription's status Parameters.</summary>
    public static Bundle StatusSet(FhirSubscriptionRow row, string baseUrl)
    {
        var subscriptionUrl = $"{baseUrl}/Subscription/{FhirMapping.Id(row.Id)}";
        var status = Status(row, subscriptionUrl, "query-status", row.EventsNumbered);
        return new Bundle
        {
            Type = Bundle.BundleType.Searchset,
            Total = 1,
            Entry = [new Bundle.EntryComponent { FullUrl = "urn:uuid:" + status.Id, Resource = status, Search = new Bundle.SearchComponent { Mode = Bundle.SearchEntryMode.Match } }],
        };
    }

    private static Parameters Status(FhirSubscriptionRow row, string subscriptionUrl, string type, long eventsSinceStart)
    {
        var status = new Parameters
        {
            Id = Guid.NewGuid().ToString(),
            Meta = new Meta { Profile = [Backport.StatusProfile] },
        };
        status.Parameter.Add(new() { Name = "subscription", Value = new ResourceReference(subscriptionUrl) });
        status.Parameter.Add(new() { Name = "topic", Value = new Canonical(row.Topic) });
        status.Parameter.Add(new() { Name = "status", Value = new Code(row.Status) });
        status.Parameter.Add(new() { Name = "type", Value = new Code(type) });
        status.Parameter.Add(new() { Name = "events-since-subscription-start", Value = new FhirString(eventsSinceStart.ToString(CultureInfo.InvariantCulture)) });
        if (type == "query-status" && row.Status == "error" && row.LastError is not null)
        {
            status.Parameter.Add(new() { Name = "error", Value = new CodeableConcept { Text = row.LastError } });
        }
        return status;
    }
}
