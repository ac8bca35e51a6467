using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CareCoordination.Domain;
using CareCoordination.Features.Coordination;
using CareCoordination.Features.Referrals;
using CareCoordination.Tests.Support;
using Dapper;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace CareCoordination.Tests.Features.Fhir;

/// <summary>
/// Topic-based subscriptions through the real host, delivered to a real HTTP receiver on 127.0.0.1 (a small Kestrel app
/// in the test), subscribed as a partner system: handshake, one notification per Task change in order, only the
/// partner's own organisation, catching up with $events, heartbeats, and a hanging receiver that slows nobody down.
/// </summary>
public abstract class FhirSubscriptionTests(AppFactory app)
{
    private const string Topic = "https://carecoordination.example.org/fhir/SubscriptionTopic/referral-task-changes";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    private DateOnly Today => LondonTime.Today(app.Clock);

    [Fact]
    public async Task Subscription_GetsTheHandshake_ThenOneNotificationPerTaskChange_InOrder_AndNothingOfAnotherOrganisation()
    {
        await using var ours = await Receiver.StartAsync();
        await using var theirs = await Receiver.StartAsync();
        using var partner = await app.PartnerAsync();
        var (other, _) = await OtherPartnerAsync();
        var id = await SubscribeAsync(partner, ours.Url);
        var otherId = await SubscribeAsync(other, theirs.Url);

        await ours.WaitForAsync(n => n.Any(x => x.Type == "handshake"), "the handshake");
        await theirs.WaitForAsync(n => n.Any(x => x.Type == "handshake"), "the other partner's handshake");
        // The receiver has the handshake before its answer reaches the server: active follows the 2xx.
        await UntilAsync(async () => await StatusAsync(partner, id) == "active", "active after the handshake");
        var (referralId, taskId) = await NewReferralAsync("referrer");
        var (otherReferralId, otherTaskId) = await NewReferralAsync("gareth.evans");
        await SendAsync(new TakeReferral.Command(taskId), "coordinator");
        await SendAsync(new TakeReferral.Command(otherTaskId), "coordinator");
        await SendAsync(new RequestInformation.Command(taskId, "Is there a key safe?"), "coordinator");
        await SendAsync(new AnswerInformationRequest.Command(referralId, "Yes, code with the daughter."), "referrer");
        await SendAsync(new DeclineReferral.Command(taskId, "needs-met", "Family have arranged care."), "coordinator");
        var changes = await TaskChangesAsync(referralId);
        Assert.True(changes >= 5, $"created, taken, on hold, resumed, declined: {changes} task changes");

        var received = await ours.WaitForAsync(n => n.Count(x => x.Type == "event-notification") >= changes, $"{changes} notifications");
        var events = received.Where(x => x.Type == "event-notification").ToList();
        Assert.Equal(changes, events.Count);
        // One event each, numbered 1, 2, 3 ... in the order they arrived, each naming our task and nothing else.
        Assert.All(events, e => Assert.Single(e.Events));
        Assert.Equal(Enumerable.Range(1, changes).Select(n => (long)n), events.Select(e => e.Events[0].Number));
        Assert.Equal(events.Select(e => e.Events[0].Number), events.Select(e => e.EventsSinceStart));
        Assert.All(events, e => Assert.EndsWith($"/fhir/Task/{taskId}", e.Events[0].Focus, StringComparison.Ordinal));
        Assert.All(events, e => Assert.EndsWith($"/fhir/Subscription/{id}", e.Subscription, StringComparison.Ordinal));
        Assert.All(events, e => Assert.Equal(Topic, e.Topic));
        Assert.DoesNotContain(received, n => n.Raw.Contains($"/Task/{otherTaskId}\"", StringComparison.Ordinal) || n.Raw.Contains($"ServiceRequest/{otherReferralId}\"", StringComparison.Ordinal));
        // The other organisation's partner heard of its own referral only.
        var theirsReceived = await theirs.WaitForAsync(n => n.Count(x => x.Type == "event-notification") >= 2, "the other partner's task created and taken");
        Assert.All(theirsReceived.Where(x => x.Type == "event-notification"), e => Assert.EndsWith($"/fhir/Task/{otherTaskId}", e.Events[0].Focus, StringComparison.Ordinal));
        Assert.DoesNotContain(theirsReceived, n => n.Raw.Contains($"/Task/{taskId}\"", StringComparison.Ordinal));
        Assert.Equal("active", await StatusAsync(other, otherId));
    }

    [Fact]
    public async Task Payload_IdOnly_NamesTheTask_FullResource_CarriesIt()
    {
        await using var idOnly = await Receiver.StartAsync();
        await using var full = await Receiver.StartAsync();
        using var partner = await app.PartnerAsync();
        await SubscribeAsync(partner, idOnly.Url, "id-only");
        await SubscribeAsync(partner, full.Url, "full-resource");
        await idOnly.WaitForAsync(n => n.Any(x => x.Type == "handshake"), "handshake");
        await full.WaitForAsync(n => n.Any(x => x.Type == "handshake"), "handshake");

        var (_, taskId) = await NewReferralAsync("referrer");
        await SendAsync(new TakeReferral.Command(taskId), "coordinator");

        bool Taken(IReadOnlyList<Notification> n) => n.Count(x => x.Type == "event-notification" && x.Events[0].Focus.EndsWith($"/Task/{taskId}", StringComparison.Ordinal)) >= 2;
        var named = (await idOnly.WaitForAsync(Taken, "created and taken")).Where(x => x.Type == "event-notification").ToList();
        var carried = (await full.WaitForAsync(Taken, "created and taken")).Where(x => x.Type == "event-notification").ToList();
        var idOnlyEntry = named[^1].Bundle.GetProperty("entry")[1];
        Assert.EndsWith($"/fhir/Task/{taskId}", idOnlyEntry.GetProperty("fullUrl").GetString(), StringComparison.Ordinal);
        Assert.False(idOnlyEntry.TryGetProperty("resource", out _));
        var fullEntry = carried[^1].Bundle.GetProperty("entry")[1];
        var task = fullEntry.GetProperty("resource");
        Assert.Equal(("Task", taskId.ToString(System.Globalization.CultureInfo.InvariantCulture)), (task.GetProperty("resourceType").GetString(), task.GetProperty("id").GetString()));
        Assert.Equal("in-progress", task.GetProperty("status").GetString());
        // What was sent about the person is in the partner's own audit trail, as its read would be.
        await UntilAsync(async () =>
        {
            await using var connection = await app.OpenAsync();
            return await connection.ExecuteScalarAsync<long>(
                "SELECT COUNT(*) FROM audit_event WHERE action = 'NotifySubscription' AND actor_kind = 'partner' AND actor_id = @client AND entity_type = 'triage_task' AND entity_id = @taskId AND outcome = 'success'",
                new { client = FhirPartner.DemoClient, taskId }) >= 2;
        }, "the full-resource notifications in the partner's audit trail");
        // Both are history Bundles whose first entry is the backport status Parameters.
        Assert.All(named.Concat(carried), n => Assert.Equal("history", n.Bundle.GetProperty("type").GetString()));
        Assert.All(named.Concat(carried), n => Assert.Equal("http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-status-r4",
            n.Bundle.GetProperty("entry")[0].GetProperty("resource").GetProperty("meta").GetProperty("profile")[0].GetString()));
    }

    [Fact]
    public async Task ReceiverDown_EventsReturnsWhatItMissed_ThenDeliveryResumesInOrder()
    {
        var receiver = await Receiver.StartAsync();
        using var partner = await app.PartnerAsync();
        var id = await SubscribeAsync(partner, receiver.Url);
        await receiver.WaitForAsync(n => n.Any(x => x.Type == "handshake"), "handshake");
        var (referralId, taskId) = await NewReferralAsync("referrer");
        await receiver.WaitForAsync(n => n.Any(x => x.Type == "event-notification"), "task created");
        var port = receiver.Port;
        await receiver.DisposeAsync();

        await SendAsync(new TakeReferral.Command(taskId), "coordinator");
        await SendAsync(new RequestInformation.Command(taskId, "Who has the key?"), "coordinator");
        var missed = await TaskChangesAsync(referralId) - 1;
        Assert.True(missed >= 2);
        // Repeated failures put the subscription in error; the events are numbered all the same.
        await UntilAsync(async () => await StatusAsync(partner, id) == "error", "status error while the receiver is down");
        await UntilAsync(async () => await EventsSinceStartAsync(partner, id) == 1 + missed, "the missed events numbered");

        var replay = await partner.GetFromJsonAsync<JsonElement>($"/fhir/Subscription/{id}/$events?eventsSinceNumber=2");
        var replayed = Notification.Read(replay, replay.GetRawText());
        Assert.Equal("query-event", replayed.Type);
        Assert.Equal(Enumerable.Range(2, missed).Select(n => (long)n), replayed.Events.Select(e => e.Number));
        Assert.All(replayed.Events, e => Assert.EndsWith($"/fhir/Task/{taskId}", e.Focus, StringComparison.Ordinal));
        var upToTwo = await partner.GetFromJsonAsync<JsonElement>($"/fhir/Subscription/{id}/$events?eventsSinceNumber=1&eventsUntilNumber=2");
        Assert.Equal([1L, 2L], Notification.Read(upToTwo, upToTwo.GetRawText()).Events.Select(e => e.Number));
        // The Task, and so its person, is disclosed (and audited as read) only by an answer that carries it.
        async Task<long> TaskReadsAuditedAsync()
        {
            await using var connection = await app.OpenAsync();
            return await connection.ExecuteScalarAsync<long>(
                "SELECT COUNT(*) FROM audit_event WHERE action = 'SubscriptionEvents' AND entity_type = 'triage_task' AND entity_id = @taskId", new { taskId });
        }
        var audited = await TaskReadsAuditedAsync();
        foreach (var named in new[] { "empty", "id-only" })
        {
            var answer = await partner.GetFromJsonAsync<JsonElement>($"/fhir/Subscription/{id}/$events?eventsSinceNumber=2&content={named}");
            Assert.DoesNotContain("\"resourceType\":\"Task\"", answer.GetRawText(), StringComparison.Ordinal);
        }
        Assert.Equal(audited, await TaskReadsAuditedAsync());
        var carried = await partner.GetFromJsonAsync<JsonElement>($"/fhir/Subscription/{id}/$events?eventsSinceNumber=2&content=full-resource");
        Assert.Contains("\"resourceType\":\"Task\"", carried.GetRawText(), StringComparison.Ordinal);
        Assert.Equal(audited + 1, await TaskReadsAuditedAsync());
        // The Task carried names its person by the subscriber's own id for them, as the subscriber's read of it does.
        var read = await FhirPartner.ParseAsync<Hl7.Fhir.Model.Task>(await partner.GetAsync($"/fhir/Task/{taskId}"));
        Assert.Contains($"\"reference\":\"{read.For!.Reference}\"", carried.GetRawText(), StringComparison.Ordinal);

        await using var back = await Receiver.StartAsync(port);
        var resumed = await back.WaitForAsync(n => n.Count(x => x.Type == "event-notification") >= missed, "the missed notifications");
        Assert.Equal(Enumerable.Range(2, missed).Select(n => (long)n), resumed.Where(x => x.Type == "event-notification").Select(e => e.Events[0].Number));
        await UntilAsync(async () => await StatusAsync(partner, id) == "active", "active again");
    }

    [Fact]
    public async Task Heartbeat_ArrivesAtThePeriod_WhenNothingHappens()
    {
        await using var receiver = await Receiver.StartAsync();
        using var partner = await app.PartnerAsync();
        await SubscribeAsync(partner, receiver.Url, heartbeatSeconds: 1);

        var received = await receiver.WaitForAsync(n => n.Count(x => x.Type == "heartbeat") >= 2, "two heartbeats");

        var heartbeat = received.First(x => x.Type == "heartbeat");
        Assert.Empty(heartbeat.Events);
        Assert.Equal(Topic, heartbeat.Topic);
    }

    [Fact]
    public async Task HangingReceiver_DoesNotDelayACoordinatorsDecision()
    {
        await using var hanging = await Receiver.StartAsync(hangAfterHandshake: true);
        using var partner = await app.PartnerAsync();
        var warmUp = await NewTakenReferralAsync();
        var without = await NewTakenReferralAsync();
        var with = await NewTakenReferralAsync();
        await DeclineAsync(warmUp);

        var baseline = await DeclineAsync(without);
        await SubscribeAsync(partner, hanging.Url);
        await hanging.WaitForAsync(n => n.Any(x => x.Type == "handshake"), "handshake");
        // A change after the handshake: its notification is now held open by the receiver.
        await NewReferralAsync("referrer");
        await UntilAsync(() => Task.FromResult(hanging.Hanging > 0), "a notification hanging at the receiver");
        var decided = await DeclineAsync(with);

        Assert.True(hanging.Hanging > 0, "the receiver was still holding a notification during the decision");
        Assert.True(decided < TimeSpan.FromSeconds(RequestTimeoutSeconds) / 2, $"the decision took {decided.TotalMilliseconds} ms with a receiver hanging for {RequestTimeoutSeconds} s");
        Assert.True(decided < baseline * 3 || decided < baseline + TimeSpan.FromSeconds(1),
            $"the decision took {decided.TotalMilliseconds} ms with a hanging receiver, {baseline.TotalMilliseconds} ms without");
    }

    [Fact]
    public async Task AnotherOrganisationsPartner_CannotReadSearchOrDeleteTheSubscription()
    {
        using var partner = await app.PartnerAsync();
        var (other, _) = await OtherPartnerAsync();
        var id = await SubscribeAsync(partner, "https://receiver.example.org/hooks/care");

        Assert.Equal(HttpStatusCode.NotFound, (await other.GetAsync($"/fhir/Subscription/{id}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await other.GetAsync($"/fhir/Subscription/{id}/$status")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await other.GetAsync($"/fhir/Subscription/{id}/$events")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await other.DeleteAsync($"/fhir/Subscription/{id}")).StatusCode);
        var search = await other.GetFromJsonAsync<JsonElement>("/fhir/Subscription");
        Assert.False(search.TryGetProperty("entry", out var entries) && entries.EnumerateArray().Any(e => e.GetProperty("resource").GetProperty("id").GetString() == id));
        Assert.Equal(HttpStatusCode.OK, (await partner.GetAsync($"/fhir/Subscription/{id}")).StatusCode);

        Assert.Equal(HttpStatusCode.NoContent, (await partner.DeleteAsync($"/fhir/Subscription/{id}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await partner.GetAsync($"/fhir/Subscription/{id}")).StatusCode);
    }

    [Fact]
    public async Task Update_TurnsItOff_AndBackOnWithANewHandshake_AndAStaleIfMatchIs412()
    {
        await using var receiver = await Receiver.StartAsync();
        using var partner = await app.PartnerAsync();
        var id = await SubscribeAsync(partner, receiver.Url);
        await receiver.WaitForAsync(n => n.Count(x => x.Type == "handshake") == 1, "the first handshake");

        async Task<HttpResponseMessage> PutAsync(string status, string? ifMatch)
        {
            var body = SubscriptionJson(receiver.Url);
            body["id"] = id;
            body["status"] = status;
            using var put = new HttpRequestMessage(HttpMethod.Put, $"/fhir/Subscription/{id}") { Content = FhirPayloads.Body(body.ToJsonString()) };
            if (ifMatch is not null)
            {
                put.Headers.TryAddWithoutValidation("If-Match", ifMatch);
            }
            return await partner.SendAsync(put);
        }

        using var off = await PutAsync("off", "W/\"1\"");
        Assert.Equal(HttpStatusCode.OK, off.StatusCode);
        Assert.Equal("off", await StatusAsync(partner, id));
        using var stale = await PutAsync("requested", "W/\"1\"");
        Assert.Equal(HttpStatusCode.PreconditionFailed, stale.StatusCode);
        Assert.Equal("off", await StatusAsync(partner, id));

        using var on = await PutAsync("requested", null);
        Assert.Equal(HttpStatusCode.OK, on.StatusCode);
        await receiver.WaitForAsync(n => n.Count(x => x.Type == "handshake") == 2, "a second handshake");
        await UntilAsync(async () => await StatusAsync(partner, id) == "active", "active again");
    }

    [Fact]
    public async Task AnAnswerToTheOldHandshake_ArrivingAfterOffAndOnAgain_DoesNotStandInForTheNewOne()
    {
        var answer = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var receiver = await Receiver.StartAsync(holdFirstAnswer: answer.Task);
        using var partner = await app.PartnerAsync();
        var id = await SubscribeAsync(partner, receiver.Url);
        await receiver.WaitForAsync(n => n.Count(x => x.Type == "handshake") == 1, "the first handshake");

        // While the first handshake's answer is still on its way, the partner turns the subscription off and on again.
        foreach (var (status, ifMatch) in new[] { ("off", "W/\"1\""), ("requested", "W/\"2\"") })
        {
            var body = SubscriptionJson(receiver.Url);
            body["id"] = id;
            body["status"] = status;
            using var put = new HttpRequestMessage(HttpMethod.Put, $"/fhir/Subscription/{id}") { Content = FhirPayloads.Body(body.ToJsonString()) };
            put.Headers.TryAddWithoutValidation("If-Match", ifMatch);
            using var response = await partner.SendAsync(put);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        answer.SetResult();

        await receiver.WaitForAsync(n => n.Count(x => x.Type == "handshake") == 2, "a handshake for the subscription as it now stands");
        await UntilAsync(async () => await StatusAsync(partner, id) == "active", "active again");
    }

    [Fact]
    public async Task AClient_HasAtMostTwentySubscriptions()
    {
        using var partner = await app.PartnerAsync(null, await app.NewPartnerClientAsync("RWM", "system/Subscription.cruds", "many"), FhirPartner.OtherSecret);
        for (var i = 0; i < 20; i++)
        {
            await SubscribeAsync(partner, $"https://receiver.example.org/hooks/{i}");
        }

        using var refused = await partner.PostAsync("/fhir/Subscription", FhirPayloads.Body(SubscriptionJson("https://receiver.example.org/hooks/20").ToJsonString()));

        Assert.Equal(HttpStatusCode.UnprocessableEntity, refused.StatusCode);
        Assert.Contains("20 subscriptions already", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("http://receiver.example.org/hook", "https")]
    [InlineData("https://10.1.2.3/hook", "private or reserved")]
    [InlineData("https://169.254.169.254/latest/meta-data", "private or reserved")]
    [InlineData("ftp://receiver.example.org/hook", "absolute https URL")]
    public async Task Endpoint_ThatIsNotHttpsOrIsInternal_IsRefused(string endpoint, string saying)
    {
        using var partner = await app.PartnerAsync();

        using var response = await partner.PostAsync("/fhir/Subscription", FhirPayloads.Body(SubscriptionJson(endpoint).ToJsonString()));

        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, body);
        Assert.Contains(saying, body, StringComparison.Ordinal);
        Assert.Contains("Subscription.channel.endpoint", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Subscription_WithoutTheScope_IsRefused_AndTheCapabilityStatementDescribesIt()
    {
        using var readOnly = await app.PartnerAsync("system/Task.rs");
        using var refused = await readOnly.PostAsync("/fhir/Subscription", FhirPayloads.Body(SubscriptionJson("https://receiver.example.org/hook").ToJsonString()));
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);

        var metadata = await app.CreateClient().GetFromJsonAsync<JsonElement>("/fhir/metadata");
        var subscription = metadata.GetProperty("rest")[0].GetProperty("resource").EnumerateArray().Single(r => r.GetProperty("type").GetString() == "Subscription");
        Assert.Contains(Topic, subscription.GetProperty("documentation").GetString(), StringComparison.Ordinal);
        Assert.Equal(["status", "events"], subscription.GetProperty("operation").EnumerateArray().Select(o => o.GetProperty("name").GetString()));
        Assert.Equal(["create", "read", "search-type", "update", "delete"], subscription.GetProperty("interaction").EnumerateArray().Select(i => i.GetProperty("code").GetString()));
    }

    /// <summary>
    /// A subscription outlives the token that made it: once its partner client is deactivated, nothing more is sent to it (a
    /// full-resource notification names the person), and the subscription is turned off saying why. Another client of the same
    /// organisation, still active, hears of the same Task: the events were there to send.
    /// </summary>
    [Fact]
    public async Task AClientDeactivated_IsSentNothingMore_AndItsSubscriptionIsTurnedOff()
    {
        await using var revoked = await Receiver.StartAsync();
        await using var control = await Receiver.StartAsync();
        var (revokedPartner, revokedClient) = await SubscriberAsync();
        var (controlPartner, _) = await SubscriberAsync();
        var revokedId = await SubscribeAsync(revokedPartner, revoked.Url, "full-resource");
        await SubscribeAsync(controlPartner, control.Url, "full-resource");
        await revoked.WaitForAsync(n => n.Any(x => x.Type == "handshake"), "the handshake");
        await control.WaitForAsync(n => n.Any(x => x.Type == "handshake"), "the control's handshake");

        await using (var connection = await app.OpenAsync())
        {
            await connection.ExecuteAsync("UPDATE partner_client SET active = FALSE WHERE client_id = @revokedClient", new { revokedClient });
        }
        var error = await TurnedOffAsync(revokedId);
        var (_, taskId) = await NewReferralAsync("gareth.evans");
        await SendAsync(new TakeReferral.Command(taskId), "coordinator");

        await control.WaitForAsync(n => n.Count(x => x.Type == "event-notification" && x.Events[0].Focus.EndsWith($"/Task/{taskId}", StringComparison.Ordinal)) >= 2,
            "the control's created and taken");
        Assert.Contains("deactivated", error, StringComparison.Ordinal);
        Assert.DoesNotContain(revoked.Received, n => n.Raw.Contains($"/Task/{taskId}\"", StringComparison.Ordinal));
    }

    /// <summary>A client that may no longer read Tasks is sent no more full-resource notifications: its subscription is turned off.</summary>
    [Fact]
    public async Task AClientThatMayNoLongerReadTasks_IsSentNoMoreFullResource()
    {
        await using var receiver = await Receiver.StartAsync();
        var (partner, clientId) = await SubscriberAsync();
        var id = await SubscribeAsync(partner, receiver.Url, "full-resource");
        await receiver.WaitForAsync(n => n.Any(x => x.Type == "handshake"), "the handshake");

        await using (var connection = await app.OpenAsync())
        {
            await connection.ExecuteAsync("UPDATE partner_client SET scopes = 'system/Subscription.cruds' WHERE client_id = @clientId", new { clientId });
        }

        Assert.Contains("may no longer read Tasks", await TurnedOffAsync(id), StringComparison.Ordinal);
    }

    /// <summary>
    /// A client moved to another organisation does not find its old organisation's subscription (whose $events would read that
    /// organisation's Tasks), and delivery to it ends.
    /// </summary>
    [Fact]
    public async Task AClientMovedToAnotherOrganisation_NoLongerFindsItsOldSubscription()
    {
        await using var receiver = await Receiver.StartAsync();
        var (partner, clientId) = await SubscriberAsync();
        var id = await SubscribeAsync(partner, receiver.Url, "full-resource");
        await receiver.WaitForAsync(n => n.Any(x => x.Type == "handshake"), "the handshake");

        await using (var connection = await app.OpenAsync())
        {
            await connection.ExecuteAsync("UPDATE partner_client SET organisation_id = (SELECT organisation_id FROM partner_client WHERE client_id = @demo) WHERE client_id = @clientId",
                new { demo = FhirPartner.DemoClient, clientId });
        }
        using var moved = await app.PartnerAsync(null, clientId, FhirPartner.OtherSecret);

        using var events = await moved.GetAsync($"/fhir/Subscription/{id}/$events?content=full-resource");
        Assert.Equal(HttpStatusCode.NotFound, events.StatusCode);
        Assert.Contains("moved to another organisation", await TurnedOffAsync(id), StringComparison.Ordinal);
    }

    /// <summary>Full-resource carries each Task and its person: a token that may not read Tasks is refused it, and may have id-only.</summary>
    [Fact]
    public async Task FullResource_IsRefusedToATokenThatMayNotReadTasks()
    {
        using var subscriptionsOnly = await app.PartnerAsync("system/Subscription.cruds");

        using var full = await subscriptionsOnly.PostAsync("/fhir/Subscription", FhirPayloads.Body(SubscriptionJson("https://receiver.example.org/hook", "full-resource").ToJsonString()));
        Assert.Equal(HttpStatusCode.Forbidden, full.StatusCode);
        Assert.Contains("system/Task.r", await full.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        var id = await SubscribeAsync(subscriptionsOnly, "https://receiver.example.org/hook");
        using var replayed = await subscriptionsOnly.GetAsync($"/fhir/Subscription/{id}/$events");
        Assert.Equal(HttpStatusCode.OK, replayed.StatusCode);
        using var replayedFull = await subscriptionsOnly.GetAsync($"/fhir/Subscription/{id}/$events?content=full-resource");
        Assert.Equal(HttpStatusCode.Forbidden, replayedFull.StatusCode);
        var changed = SubscriptionJson("https://receiver.example.org/hook", "full-resource");
        changed["id"] = id;
        using var update = await subscriptionsOnly.PutAsync($"/fhir/Subscription/{id}", FhirPayloads.Body(changed.ToJsonString()));
        Assert.Equal(HttpStatusCode.Forbidden, update.StatusCode);
    }

    // ---- helpers ----------------------------------------------------------------------------------------

    private const int RequestTimeoutSeconds = 6;

    private async Task<(HttpClient Client, string ClientId)> OtherPartnerAsync()
    {
        var clientId = await app.NewPartnerClientAsync("RSM", "system/*.rs system/Subscription.cruds");
        return (await app.PartnerAsync(null, clientId, FhirPartner.OtherSecret), clientId);
    }

    /// <summary>A new client of the demo's other trust that may read Tasks and subscribe: one a test may deactivate or change.</summary>
    private async Task<(HttpClient Client, string ClientId)> SubscriberAsync()
    {
        var clientId = await app.NewPartnerClientAsync(CareCoordination.Demo.DemoCounty.OtherAcuteTrust, "system/*.rs system/Subscription.cruds", "subscriber");
        return (await app.PartnerAsync(null, clientId, FhirPartner.OtherSecret), clientId);
    }

    /// <summary>Waits for delivery to turn the subscription off, and answers why, as its partner would read it (Subscription.error).</summary>
    private async Task<string> TurnedOffAsync(string id)
    {
        string? error = null;
        await UntilAsync(async () =>
        {
            await using var connection = await app.OpenAsync();
            var row = await connection.QuerySingleAsync<(string Status, string? Error)>("SELECT status, last_error FROM fhir_subscription WHERE id = @id",
                new { id = long.Parse(id, System.Globalization.CultureInfo.InvariantCulture) });
            error = row.Error;
            return row.Status == "off";
        }, $"Subscription/{id} turned off");
        return error ?? "";
    }

    private static JsonObject SubscriptionJson(string endpoint, string content = "id-only", int? heartbeatSeconds = null)
    {
        var channelExtensions = new JsonArray();
        if (heartbeatSeconds is { } period)
        {
            channelExtensions.Add(new JsonObject { ["url"] = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-heartbeat-period", ["valueUnsignedInt"] = period });
        }
        var channel = new JsonObject
        {
            ["type"] = "rest-hook",
            ["endpoint"] = endpoint,
            ["payload"] = "application/fhir+json",
            ["_payload"] = new JsonObject
            {
                ["extension"] = new JsonArray(new JsonObject { ["url"] = "http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content", ["valueCode"] = content }),
            },
        };
        if (channelExtensions.Count > 0)
        {
            channel["extension"] = channelExtensions;
        }
        return new JsonObject
        {
            ["resourceType"] = "Subscription",
            ["status"] = "requested",
            ["reason"] = "Tell our EPR when triage moves",
            ["criteria"] = Topic,
            ["channel"] = channel,
        };
    }

    private static async Task<string> SubscribeAsync(HttpClient partner, string endpoint, string content = "id-only", int? heartbeatSeconds = null)
    {
        using var response = await partner.PostAsync("/fhir/Subscription", FhirPayloads.Body(SubscriptionJson(endpoint, content, heartbeatSeconds).ToJsonString()));
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.Created, body);
        var created = JsonDocument.Parse(body).RootElement;
        Assert.Equal("requested", created.GetProperty("status").GetString());
        Assert.NotNull(response.Headers.Location);
        return created.GetProperty("id").GetString()!;
    }

    private static async Task<string> StatusAsync(HttpClient partner, string id) =>
        (await partner.GetFromJsonAsync<JsonElement>($"/fhir/Subscription/{id}")).GetProperty("status").GetString()!;

    private static async Task<long> EventsSinceStartAsync(HttpClient partner, string id)
    {
        var status = await partner.GetFromJsonAsync<JsonElement>($"/fhir/Subscription/{id}/$status");
        var parameters = status.GetProperty("entry")[0].GetProperty("resource");
        Assert.Equal("query-status", Notification.Parameter(parameters, "type")!.Value.GetProperty("valueCode").GetString());
        return long.Parse(Notification.Parameter(parameters, "events-since-subscription-start")!.Value.GetProperty("valueString").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
    }

    private async Task<(long ReferralId, long TaskId)> NewReferralAsync(string referrer)
    {
        var form = ReferralForms.Discharge(Today, await app.NewNhsNumberAsync());
        var sent = await app.SendAsync<SubmitReferral.Result>(new SubmitReferral.Command(form, Guid.NewGuid().ToString("N")), await app.StaffAsync(referrer));
        var referralId = sent.ReferralId!.Value;
        await using var connection = await app.OpenAsync();
        return (referralId, await connection.ExecuteScalarAsync<long>("SELECT id FROM triage_task WHERE referral_id = @referralId", new { referralId }));
    }

    private async Task<long> NewTakenReferralAsync()
    {
        var (_, taskId) = await NewReferralAsync("referrer");
        await SendAsync(new TakeReferral.Command(taskId), "coordinator");
        return taskId;
    }

    private async Task<TimeSpan> DeclineAsync(long taskId)
    {
        var coordinator = await app.StaffAsync("coordinator");
        var watch = Stopwatch.StartNew();
        await app.SendAsync(new DeclineReferral.Command(taskId, "needs-met", "Family have arranged care."), coordinator);
        return watch.Elapsed;
    }

    /// <summary>How many changes the referral's triage tasks have had, as the change table has them.</summary>
    private async Task<int> TaskChangesAsync(long referralId)
    {
        await using var connection = await app.OpenAsync();
        var data = await connection.QueryAsync<string>("SELECT data FROM change WHERE entity_type = 'triage_task' ORDER BY seq");
        return data.Count(d => JsonDocument.Parse(d).RootElement.GetProperty("referralId").GetInt64() == referralId);
    }

    private async Task SendAsync(Mediator.IMessage message, string user) => await app.SendAsync(message, await app.StaffAsync(user));

    private static async Task UntilAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"Waited {Patience.TotalSeconds} s for {what}.");
            await Task.Delay(100);
        }
    }

    /// <summary>One notification as the receiver read it.</summary>
    public sealed record Notification(string Type, string Subscription, string Topic, long EventsSinceStart, IReadOnlyList<(long Number, string Focus)> Events, JsonElement Bundle, string Raw)
    {
        public static Notification Read(JsonElement bundle, string raw)
        {
            var status = bundle.GetProperty("entry")[0].GetProperty("resource");
            var events = status.GetProperty("parameter").EnumerateArray().Where(p => p.GetProperty("name").GetString() == "notification-event")
                .Select(p =>
                {
                    var parts = p.GetProperty("part").EnumerateArray().ToList();
                    var number = long.Parse(parts.Single(x => x.GetProperty("name").GetString() == "event-number").GetProperty("valueString").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
                    var focus = parts.SingleOrDefault(x => x.GetProperty("name").GetString() == "focus") is { ValueKind: JsonValueKind.Object } f
                        ? f.GetProperty("valueReference").GetProperty("reference").GetString()! : "";
                    return (number, focus);
                }).ToList();
            return new Notification(
                Parameter(status, "type")!.Value.GetProperty("valueCode").GetString()!,
                Parameter(status, "subscription")!.Value.GetProperty("valueReference").GetProperty("reference").GetString()!,
                Parameter(status, "topic")!.Value.GetProperty("valueCanonical").GetString()!,
                long.Parse(Parameter(status, "events-since-subscription-start")!.Value.GetProperty("valueString").GetString()!, System.Globalization.CultureInfo.InvariantCulture),
                events, bundle, raw);
        }

        public static JsonElement? Parameter(JsonElement parameters, string name) =>
            parameters.GetProperty("parameter").EnumerateArray().Where(p => p.GetProperty("name").GetString() == name).Select(p => (JsonElement?)p).FirstOrDefault();
    }

    /// <summary>A partner's notification endpoint: Kestrel on 127.0.0.1, recording what it is sent; or holding it open.</summary>
    private sealed class Receiver : IAsyncDisposable
    {
        private readonly ConcurrentQueue<Notification> _received = new();

        /// <summary>Every notification read so far.</summary>
        public IReadOnlyList<Notification> Received => [.. _received];
        private readonly CancellationTokenSource _stopping = new();
        private WebApplication? _app;
        private int _hanging;

        public int Port { get; private set; }

        public string Url => $"http://127.0.0.1:{Port}/notify";

        /// <summary>Notifications being held open right now.</summary>
        public int Hanging => Volatile.Read(ref _hanging);

        /// <param name="holdFirstAnswer">When given, the first notification is recorded at once but answered only when this completes.</param>
        public static async Task<Receiver> StartAsync(int port = 0, bool hangAfterHandshake = false, Task? holdFirstAnswer = null)
        {
            var first = 0;
            var receiver = new Receiver();
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.UseKestrel(options => options.Listen(IPAddress.Loopback, port));
            var app = builder.Build();
            app.MapPost("/notify", async (HttpRequest request) =>
            {
                using var reader = new StreamReader(request.Body, Encoding.UTF8);
                var raw = await reader.ReadToEndAsync();
                var notification = Notification.Read(JsonDocument.Parse(raw).RootElement.Clone(), raw);
                if (hangAfterHandshake && notification.Type != "handshake")
                {
                    Interlocked.Increment(ref receiver._hanging);
                    try
                    {
                        await Task.Delay(Timeout.Infinite, CancellationTokenSource.CreateLinkedTokenSource(request.HttpContext.RequestAborted, receiver._stopping.Token).Token);
                    }
                    catch (OperationCanceledException)
                    {
                    }
                    finally
                    {
                        Interlocked.Decrement(ref receiver._hanging);
                    }
                    return Results.StatusCode(StatusCodes.Status503ServiceUnavailable);
                }
                receiver._received.Enqueue(notification);
                if (holdFirstAnswer is not null && Interlocked.Exchange(ref first, 1) == 0)
                {
                    await holdFirstAnswer;
                }
                return Results.Ok();
            });
            await app.StartAsync();
            receiver._app = app;
            receiver.Port = new Uri(app.Urls.First()).Port;
            return receiver;
        }

        public async Task<IReadOnlyList<Notification>> WaitForAsync(Func<IReadOnlyList<Notification>, bool> condition, string what)
        {
            var deadline = DateTime.UtcNow + Patience;
            while (true)
            {
                var received = _received.ToList();
                if (condition(received))
                {
                    return received;
                }
                Assert.True(DateTime.UtcNow < deadline, $"Waited {Patience.TotalSeconds} s for {what}; received {string.Join(", ", received.Select(r => r.Type))}.");
                await Task.Delay(50);
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (_app is null)
            {
                return;
            }
            await _stopping.CancelAsync();
            await _app.StopAsync();
            await _app.DisposeAsync();
            _app = null;
        }
    }
}

/// <summary>
/// What the two-node tests share: a second node on the first's PostgreSQL store, a partner's endpoint that notes the event
/// numbers of each notification, a rest-hook subscription to it, and a referral sent on a node.
/// </summary>
internal static class TwoNodes
{
    public sealed class SecondNode(string connectionString) : SubscriptionAppFactory(new ExistingStore(connectionString));

    private sealed class ExistingStore(string connectionString) : ITestStore
    {
        public CareCoordination.Store.StoreProvider Provider => CareCoordination.Store.StoreProvider.PostgreSQL;

        public Task<string> CreateEmptyAsync() => Task.FromResult(connectionString);
    }

    /// <summary>An endpoint on loopback: each notification's event numbers go to <paramref name="received"/>, then <paramref name="answer"/> runs.</summary>
    public static async Task<WebApplication> ReceiverAsync(ConcurrentQueue<long> received, Func<IReadOnlyList<long>, Task>? answer = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseKestrel(options => options.Listen(IPAddress.Loopback, 0));
        var receiver = builder.Build();
        receiver.MapPost("/notify", async (HttpRequest request) =>
        {
            var bundle = await JsonDocument.ParseAsync(request.Body);
            var status = bundle.RootElement.GetProperty("entry")[0].GetProperty("resource");
            var events = status.GetProperty("parameter").EnumerateArray().Where(p => p.GetProperty("name").GetString() == "notification-event")
                .Select(p => long.Parse(p.GetProperty("part")[0].GetProperty("valueString").GetString()!, System.Globalization.CultureInfo.InvariantCulture)).ToList();
            foreach (var number in events)
            {
                received.Enqueue(number);
            }
            if (answer is not null)
            {
                await answer(events);
            }
            return Results.Ok();
        });
        await receiver.StartAsync();
        return receiver;
    }

    public static async Task SubscribeAsync(AppFactory node, WebApplication receiver, string reason)
    {
        using var partner = await node.PartnerAsync();
        using var created = await partner.PostAsync("/fhir/Subscription", FhirPayloads.Body(
            $$$"""{"resourceType":"Subscription","status":"requested","reason":"{{{reason}}}","criteria":"{{{CareCoordination.Features.Fhir.Subscriptions.Backport.ReferralTaskChanges}}}","channel":{"type":"rest-hook","endpoint":"{{{receiver.Urls.First()}}}/notify","payload":"application/fhir+json"}}"""));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
    }

    /// <summary>A referral sent on the node: its triage task is one event.</summary>
    public static async Task ReferAsync(AppFactory node)
    {
        var form = ReferralForms.Discharge(LondonTime.Today(node.Clock), await node.NewNhsNumberAsync());
        await node.SendAsync(new SubmitReferral.Command(form, Guid.NewGuid().ToString("N")), await node.StaffAsync("referrer"));
    }

    public static async Task UntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"Waited 30 s for {what}.");
            await Task.Delay(100);
        }
    }
}

/// <summary>
/// A node that stops while it is posting a notification finishes the post and records it, so the node that takes the
/// subscription over does not send the same event again (a rolling restart delivered an event twice: the stop cancelled the
/// post, or the write that records it).
/// </summary>
public sealed class FhirSubscriptionHandoverTests(PostgresSubscriptionAppFactory first) : IClassFixture<PostgresSubscriptionAppFactory>
{
    [Fact]
    public async Task ANodeStoppingWhileItPosts_FinishesThePost_AndTheNodeTakingOverDoesNotSendItAgain()
    {
        _ = first.Services;
        var received = new ConcurrentQueue<long>();
        var posting = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var answer = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var receiver = await TwoNodes.ReceiverAsync(received, async events =>
        {
            if (events.Contains(1))
            {
                // The first event's post is held open until its node has begun to stop.
                posting.TrySetResult();
                await answer.Task;
            }
        });
        await TwoNodes.SubscribeAsync(first, receiver, "handover");
        // The first node alone is running, so it holds the subscription; the second starts only now.
        await TwoNodes.ReferAsync(first);
        await posting.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var second = new TwoNodes.SecondNode(first.ConnectionString);
        _ = second.Services;

        // The first node stops with event 1's post open; the endpoint answers once the stop has begun.
        var stopped = first.DisposeAsync().AsTask();
        await Task.Delay(TimeSpan.FromSeconds(1));
        answer.TrySetResult();
        await stopped.WaitAsync(TimeSpan.FromSeconds(30));
        await TwoNodes.ReferAsync(second);

        await TwoNodes.UntilAsync(() => received.Contains(2), "the second node to send event 2");
        Assert.Equal([1L, 2L], received.ToList());
        await second.DisposeAsync();
    }
}

/// <summary>Two nodes on one PostgreSQL store: one node at a time delivers a subscription, and the other takes over when it stops.</summary>
public sealed class FhirSubscriptionTwoNodeTests(PostgresSubscriptionAppFactory first) : IClassFixture<PostgresSubscriptionAppFactory>
{
    [Fact]
    public async Task TwoNodes_DeliverEachEventOnce_InOrder_AndTheSurvivorCarriesOn()
    {
        _ = first.Services;
        var second = new TwoNodes.SecondNode(first.ConnectionString);
        _ = second.Services;
        var received = new ConcurrentQueue<long>();
        await using var receiver = await TwoNodes.ReceiverAsync(received);
        await TwoNodes.SubscribeAsync(first, receiver, "two nodes");

        // Referrals sent on both nodes: every task change is one event, whichever node wrote it.
        var nodes = new AppFactory[] { first, second };
        for (var i = 0; i < 6; i++)
        {
            await TwoNodes.ReferAsync(nodes[i % 2]);
        }
        await TwoNodes.UntilAsync(() => received.Count >= 6, "six notifications");
        await first.DisposeAsync();
        for (var i = 0; i < 2; i++)
        {
            await TwoNodes.ReferAsync(second);
        }
        await TwoNodes.UntilAsync(() => received.Count >= 8, "eight notifications");
        // Had both nodes delivered, an event would arrive twice or out of order.
        Assert.Equal(Enumerable.Range(1, 8).Select(n => (long)n), received.ToList());
        await second.DisposeAsync();
    }
}

/// <summary>The host with delivery paced for tests: loopback receivers, short back-off, heartbeats down to a second.</summary>
public class SubscriptionAppFactory : AppFactory
{
    public SubscriptionAppFactory() : this(new SqliteTestStore())
    {
    }

    protected SubscriptionAppFactory(ITestStore store) : base(store)
    {
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.UseSetting("Subscriptions:AllowLoopback", "true");
        builder.UseSetting("Subscriptions:MinimumHeartbeatSeconds", "1");
        builder.UseSetting("Subscriptions:RequestTimeoutSeconds", "6");
        builder.UseSetting("Subscriptions:LeaseSeconds", "30");
        builder.UseSetting("Subscriptions:RetryFirstSeconds", "0.2");
        builder.UseSetting("Subscriptions:RetryMaxSeconds", "1");
        builder.UseSetting("Subscriptions:ErrorAfterFailures", "2");
        builder.UseSetting("Subscriptions:PollSeconds", "0.5");
    }
}

public sealed class PostgresSubscriptionAppFactory() : SubscriptionAppFactory(new PostgresTestStore());

public sealed class FhirSubscriptionOnSqliteTests(SubscriptionAppFactory app) : FhirSubscriptionTests(app), IClassFixture<SubscriptionAppFactory>;

public sealed class FhirSubscriptionOnPostgresTests(PostgresSubscriptionAppFactory app) : FhirSubscriptionTests(app), IClassFixture<PostgresSubscriptionAppFactory>;
