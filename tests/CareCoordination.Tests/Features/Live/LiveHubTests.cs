using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Threading.Channels;
using CareCoordination.Auth;
using CareCoordination.Changes;
using CareCoordination.Domain;
using CareCoordination.Features.Referrals;
using CareCoordination.Tests.Support;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.Http.Connections.Client;
using Microsoft.AspNetCore.Mvc.Testing.Handlers;
using Microsoft.AspNetCore.SignalR;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;

namespace CareCoordination.Tests.Features.Live;

/// <summary>/hubs/live through the real host, over the SignalR client as a board screen or partner system would hold it, on each store.</summary>
public abstract class LiveHubTests(AppFactory app)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    private DateOnly Today => LondonTime.Today(app.Clock);

    [Fact]
    public async Task Coordinator_OnTheCoordinationQueue_IsPushedTheNewTask_AfterTheSeqSubscribeReturned()
    {
        await using var coordinator = await StaffAsync("coordinator");
        var subscribedAt = await coordinator.SubscribeAsync("queue/coordination");

        var referralId = await SubmitAsync("referrer");

        var pushed = await coordinator.WaitForAsync(p => p.IsTaskCreatedFor(referralId), $"task.created for referral {referralId}");
        Assert.True(pushed.Seq > subscribedAt, $"seq {pushed.Seq} should be after {subscribedAt}");
        Assert.Equal(("triage_task", "queue/coordination", "coordination"), (pushed.EntityType, pushed.Topic, pushed.Data.GetProperty("queue").GetString()));
        // A queue topic carries task changes only: the referral and the person stay off it.
        Assert.All(coordinator.Received, p => Assert.Equal("triage_task", p.EntityType));
    }

    [Fact]
    public async Task Referrer_OnMyReferrals_HearsTheirOwnOrganisation_AndNotAnothers()
    {
        var westmoor = Actor.From(await app.StaffAsync("referrer")).OrganisationId;
        var other = Actor.From(await app.StaffAsync("gareth.evans")).OrganisationId;
        Assert.NotEqual(westmoor, other);
        await using var referrer = await StaffAsync("referrer");
        await using var gareth = await StaffAsync("gareth.evans");
        await referrer.SubscribeAsync("referrals/mine");
        var before = await gareth.SubscribeAsync("referrals/mine");

        // Interleaved, so each side's last wait comes after the other organisation's referral was pushed (changes arrive in seq order).
        var first = await SubmitAsync("referrer");
        var theirs = await SubmitAsync("gareth.evans");
        var second = await SubmitAsync("referrer");
        await referrer.WaitForAsync(p => p.IsTaskCreatedFor(second), "the referrer's second task");
        await gareth.WaitForAsync(p => p.IsTaskCreatedFor(theirs), "Gareth's task");

        Assert.Contains(referrer.Received, p => p is { Kind: "referral.submitted" } && p.Id == first);
        Assert.Contains(referrer.Received, p => p.IsTaskCreatedFor(first));
        Assert.DoesNotContain(referrer.Received, p => p.ReferralId == theirs);
        Assert.All(referrer.Received, p => Assert.Equal((westmoor, "referrals/mine"), (p.OrganisationId, p.Topic)));
        Assert.Contains(gareth.Received, p => p is { Kind: "referral.submitted" } && p.Id == theirs);
        Assert.DoesNotContain(gareth.Received, p => p.ReferralId == first);
        Assert.All(gareth.Received, p => Assert.Equal((other, "referrals/mine"), (p.OrganisationId, p.Topic)));
        // Nor does a resync hand over another organisation's referrals.
        var resynced = await gareth.ChangesSinceAsync(before);
        Assert.Contains(resynced, p => p.IsTaskCreatedFor(theirs));
        Assert.DoesNotContain(resynced, p => p.OrganisationId != other);
        // The person recorded with each referral is never broadcast.
        Assert.DoesNotContain(referrer.Received.Concat(gareth.Received), p => p.EntityType == "person");
    }

    [Fact]
    public async Task Subscribe_ToATopicNotOpenToTheCaller_OrToNoTopic_IsRefusedWithTheReason()
    {
        await using var referrer = await StaffAsync("referrer");
        await using var coordinator = await StaffAsync("coordinator");
        var before = app.Services.GetRequiredService<ChangeFeed>().Published;

        var queue = await Assert.ThrowsAsync<HubException>(() => referrer.SubscribeAsync("queue/coordination"));
        var nonsense = await Assert.ThrowsAsync<HubException>(() => coordinator.SubscribeAsync("nonsense"));

        Assert.Contains("The queue/coordination topic is for", queue.Message, StringComparison.Ordinal);
        Assert.Contains("you are referrer", queue.Message, StringComparison.Ordinal);
        Assert.Contains("There is no live topic 'nonsense'", nonsense.Message, StringComparison.Ordinal);
        // A refused subscription joined nothing. The referrer's own topic is pushed after the queue's for the
        // same change, so once it is here a queue copy would have been too; and a resync finds no queue either.
        await referrer.SubscribeAsync("referrals/mine");
        var referralId = await SubmitAsync("referrer");
        await referrer.WaitForAsync(p => p.IsTaskCreatedFor(referralId), "the task on my referrals");
        Assert.All(referrer.Received, p => Assert.Equal("referrals/mine", p.Topic));
        var resynced = await referrer.ChangesSinceAsync(before);
        Assert.Contains(resynced, p => p.IsTaskCreatedFor(referralId));
        Assert.All(resynced, p => Assert.Equal("referrals/mine", p.Topic));
    }

    [Fact]
    public async Task Anonymous_IsRefusedAtNegotiate()
    {
        await using var anonymous = Connect("hubs/live", _ => { });

        var refused = await Assert.ThrowsAsync<HttpRequestException>(() => anonymous.StartAsync());

        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
    }

    [Fact]
    public async Task Changes_FromManyConcurrentSubmissions_ArriveInStrictlyIncreasingSeqOrder()
    {
        await using var coordinator = await StaffAsync("coordinator");
        await using var referrer = await StaffAsync("referrer");
        await coordinator.SubscribeAsync("queue/coordination");
        await referrer.SubscribeAsync("referrals/mine");
        var nhsNumbers = new HashSet<string>();
        while (nhsNumbers.Count < 20)
        {
            nhsNumbers.Add(await app.NewNhsNumberAsync());
        }
        var principal = await app.StaffAsync("referrer");

        var referralIds = (await Task.WhenAll(nhsNumbers.Select(nhs => Task.Run(async () =>
            (await app.SendAsync<SubmitReferral.Result>(
                new SubmitReferral.Command(ReferralForms.Discharge(Today, nhs), Guid.NewGuid().ToString("N")), principal)).ReferralId!.Value)))).ToHashSet();

        bool AllTasks(IReadOnlyList<Pushed> received) =>
            received.Where(p => p.Kind == "task.created" && p.ReferralId is { } id && referralIds.Contains(id)).Select(p => p.ReferralId).Distinct().Count() == referralIds.Count;
        await coordinator.UntilAsync(AllTasks, "all 20 tasks on the coordination queue");
        await referrer.UntilAsync(AllTasks, "all 20 tasks on my referrals");
        AssertStrictlyIncreasing(coordinator.Received);
        AssertStrictlyIncreasing(referrer.Received);
        Assert.True(referrer.Received.Count >= 40, "each submission pushes its referral and its task");
    }

    [Fact]
    public async Task OneBoardOnCapacityAndTheQueue_UnderConcurrentSubmissions_GetsEachTopicsChangesOnce_InSeqOrder_AndCapacityCopiesNameNoOne()
    {
        await using var board = await StaffAsync("coordinator");
        var from = await board.SubscribeAsync("capacity");
        await board.SubscribeAsync("queue/coordination");
        var nhsNumbers = new HashSet<string>();
        while (nhsNumbers.Count < 12)
        {
            nhsNumbers.Add(await app.NewNhsNumberAsync());
        }
        var principal = await app.StaffAsync("referrer");

        var referralIds = (await Task.WhenAll(nhsNumbers.Select(nhs => Task.Run(async () =>
            (await app.SendAsync<SubmitReferral.Result>(
                new SubmitReferral.Command(ReferralForms.Discharge(Today, nhs), Guid.NewGuid().ToString("N")), principal)).ReferralId!.Value)))).ToHashSet();

        await board.UntilAsync(received => referralIds.All(id => received.Any(p => p.IsTaskCreatedFor(id))), "every task on the queue");
        var tasks = board.Received.Where(p => p.Kind == "task.created" && p.ReferralId is { } id && referralIds.Contains(id)).Select(p => p.Id).ToHashSet();
        await board.UntilAsync(received => tasks.All(task => received.Any(p => p is { Kind: "task.created", Topic: "capacity" } && p.Id == task)), "every task on capacity");
        // A change's copies go out capacity first: below the last seq read, every copy sent has been read.
        var upTo = board.Received.Max(p => p.Seq);
        var published = (await board.ChangesSinceAsync(from)).Where(p => p.Seq < upTo).ToList();
        foreach (var topic in new[] { "capacity", "queue/coordination" })
        {
            var got = board.Received.Where(p => p.Topic == topic && p.Seq < upTo).Select(p => p.Seq).ToList();
            Assert.Equal(published.Where(p => p.Topic == topic).Select(p => p.Seq), got);
            AssertStrictlyIncreasing(board.Received.Where(p => p.Topic == topic).ToList());
        }
        var capacity = board.Received.Where(p => p.Topic == "capacity").ToList();
        Assert.All(capacity, p => Assert.Equal(((long?)null, (string?)null), (p.OrganisationId, p.Actor)));
        Assert.All(capacity, p => Assert.False(p.Data.ValueKind == JsonValueKind.Object && p.Data.TryGetProperty("referralId", out _), $"capacity copy of {p.Seq} names its referral"));
    }

    [Fact]
    public async Task Resync_AfterADisconnect_EndsWithTheSameChangesAsAClientThatStayed()
    {
        string[] topics = ["queue/coordination", "capacity"];
        await using var stayed = await StaffAsync("coordinator");
        foreach (var topic in topics)
        {
            await stayed.SubscribeAsync(topic);
        }
        await using var away = await StaffAsync("manager");
        var awaySubscribedAt = 0L;
        foreach (var topic in topics)
        {
            awaySubscribedAt = await away.SubscribeAsync(topic);
        }
        var early = new List<long>();
        for (var i = 0; i < 3; i++)
        {
            early.Add(await SubmitAsync("referrer"));
        }
        foreach (var id in early)
        {
            await stayed.WaitForAsync(p => p.IsTaskCreatedFor(id), $"task for {id}");
            await away.WaitForAsync(p => p.IsTaskCreatedFor(id), $"task for {id}");
        }
        // It drops with a change's second copy possibly unread, as a real connection can: so it keeps its place per topic.
        var awaySaw = away.Received.ToList();
        var places = topics.ToDictionary(t => t, t => awaySaw.Where(p => p.Topic == t).Select(p => p.Seq).DefaultIfEmpty(awaySubscribedAt).Max());
        await away.DisposeAsync();

        var late = new List<long>();
        for (var i = 0; i < 3; i++)
        {
            late.Add(await SubmitAsync("referrer"));
        }
        foreach (var id in late)
        {
            // The capacity copy names only the task, not its referral: find the task by its queue copy.
            await stayed.UntilAsync(received => received.FirstOrDefault(p => p.IsTaskCreatedFor(id)) is { } task
                && topics.All(t => received.Any(p => p.Kind == "task.created" && p.Id == task.Id && p.Topic == t)), $"task for {id} on both topics");
        }
        await using var back = await StaffAsync("manager");
        foreach (var topic in topics)
        {
            await back.SubscribeAsync(topic);
        }
        var missed = (await back.ChangesSinceAsync(places.Values.Min())).Where(p => p.Seq > places[p.Topic]).ToList();

        Assert.All(late, id => Assert.Contains(missed, p => p.IsTaskCreatedFor(id)));
        Assert.All(missed, p => Assert.Contains(p.Topic, topics));
        var upTo = stayed.Received.Max(p => p.Seq);
        HashSet<(long, string, long, string)> Window(IEnumerable<Pushed> changes) =>
            changes.Where(p => p.Seq > awaySubscribedAt && p.Seq <= upTo).Select(p => (p.Seq, p.Kind, p.Id, p.Topic)).ToHashSet();
        var ended = Window(awaySaw.Concat(missed).Concat(back.Received));
        Assert.NotEmpty(ended);
        Assert.Equal(Window(stayed.Received).Order(), ended.Order());
    }

    [Fact]
    public async Task Partner_WithAToken_ConnectsByAccessToken_AndHearsItsReferralsAndCapacity()
    {
        var token = await PartnerTokenAsync();
        var westmoor = Actor.From(await app.StaffAsync("referrer")).OrganisationId;
        // The .NET client sends the token as a bearer header; a browser's WebSocket can only put it in the query string.
        await using var byHeader = await LiveClient.StartAsync(Connect("hubs/live", options => options.AccessTokenProvider = () => Task.FromResult<string?>(token)));
        await using var byQuery = await LiveClient.StartAsync(Connect("hubs/live?access_token=" + Uri.EscapeDataString(token), _ => { }));
        await byHeader.SubscribeAsync("referrals/mine");
        await byHeader.SubscribeAsync("capacity");
        await byQuery.SubscribeAsync("capacity");
        var queue = await Assert.ThrowsAsync<HubException>(() => byHeader.SubscribeAsync("queue/coordination"));
        Assert.Contains("you are a partner system", queue.Message, StringComparison.Ordinal);

        var referralId = await SubmitAsync("referrer");

        var mine = await byHeader.WaitForAsync(p => p.IsTaskCreatedFor(referralId) && p.Topic == "referrals/mine", "the task on my referrals");
        // On capacity the same task change only says which queue grew: not whose referral, nor who acted.
        var capacity = await byHeader.WaitForAsync(p => p is { Kind: "task.created", Topic: "capacity" } && p.Id == mine.Id, "the task on capacity");
        await byQuery.WaitForAsync(p => p is { Kind: "task.created", Topic: "capacity" } && p.Id == mine.Id, "the task on capacity, by query-string token");
        Assert.Equal(((long?)null, (string?)null, "coordination"), (capacity.OrganisationId, capacity.Actor, capacity.Data.GetProperty("queue").GetString()));
        Assert.False(capacity.Data.TryGetProperty("referralId", out _));
        Assert.Contains(byHeader.Received, p => p is { Kind: "referral.submitted", Topic: "referrals/mine" } && p.Id == referralId);
        Assert.All(byHeader.Received.Where(p => p.Topic == "referrals/mine"), p => Assert.Equal(westmoor, p.OrganisationId));
    }

    [Fact]
    public async Task EveryDecision_ReachesTheCoordinationQueue_InSeqOrder_AndAClientThatResyncs_EndsWithTheSameQueue()
    {
        await using var stayed = await StaffAsync("jo.nankivell");
        await using var away = await StaffAsync("kemal.arslan");
        await stayed.SubscribeAsync("queue/coordination");
        await away.SubscribeAsync("queue/coordination");
        var coordinator = await app.StaffAsync("coordinator");
        var first = await SubmitAsync("referrer");
        var second = await SubmitAsync("referrer");
        var firstTask = (await away.WaitForAsync(p => p.IsTaskCreatedFor(first), "the first task")).Id;
        var secondTask = (await away.WaitForAsync(p => p.IsTaskCreatedFor(second), "the second task")).Id;
        await app.SendAsync(new CareCoordination.Features.Coordination.TakeReferral.Command(firstTask), coordinator);
        await away.WaitForAsync(p => p.Kind == "task.taken" && p.Id == firstTask, "the take");
        var awaySaw = away.Received.ToList();
        await away.DisposeAsync();

        // While one screen is away: ask, answer, re-prioritise, take, decline, accept.
        await app.SendAsync(new CareCoordination.Features.Coordination.RequestInformation.Command(firstTask, "Is a key safe fitted?"), coordinator);
        await app.SendAsync(new AnswerInformationRequest.Command(first, "Yes."), await app.StaffAsync("referrer"));
        await app.SendAsync(new CareCoordination.Features.Coordination.ReprioritiseReferral.Command(secondTask, "immediate", "Carer taken ill."), coordinator);
        await app.SendAsync(new CareCoordination.Features.Coordination.TakeReferral.Command(secondTask), coordinator);
        await app.SendAsync(new CareCoordination.Features.Coordination.DeclineReferral.Command(secondTask, "needs-met", "Family have arranged care."), coordinator);
        long reablement;
        await using (var connection = await app.OpenAsync())
        {
            reablement = await Dapper.SqlMapper.ExecuteScalarAsync<long>(connection, "SELECT id FROM service WHERE name = 'Home First Reablement - Central'");
        }
        await app.SendAsync(new CareCoordination.Features.Coordination.AcceptIntoService.Command(firstTask, reablement, Today, OverrideFullService: true, OverrideReason: "test"), coordinator);
        await stayed.WaitForAsync(p => p.Kind == "task.completed" && p.Id == firstTask, "the acceptance");

        string[] Kinds(IEnumerable<Pushed> changes, long task) => changes.Where(p => p.Id == task).Select(p => p.Kind).ToArray();
        Assert.Equal(["task.created", "task.taken", "task.on-hold", "task.resumed", "task.completed"], Kinds(stayed.Received, firstTask));
        Assert.Equal(["task.created", "task.reprioritised", "task.taken", "task.rejected"], Kinds(stayed.Received, secondTask));
        AssertStrictlyIncreasing(stayed.Received);

        await using var back = await StaffAsync("kemal.arslan");
        await back.SubscribeAsync("queue/coordination");
        var missed = await back.ChangesSinceAsync(awaySaw.Max(p => p.Seq));

        // The queue as each screen would draw it: every task's last status, read from its changes in order.
        static IReadOnlyDictionary<long, string> Queue(IEnumerable<Pushed> changes, params long[] tasks) => changes
            .Where(p => tasks.Contains(p.Id)).OrderBy(p => p.Seq)
            .GroupBy(p => p.Id).ToDictionary(g => g.Key, g => g.Last().Data.GetProperty("status").GetString()!);
        var expected = Queue(stayed.Received, firstTask, secondTask);
        Assert.Equal(new Dictionary<long, string> { [firstTask] = "completed", [secondTask] = "rejected" }, expected);
        Assert.Equal(expected, Queue(awaySaw.Concat(missed), firstTask, secondTask));
        AssertStrictlyIncreasing(missed);
    }

    [Fact]
    public async Task EveryBedAction_ReachesCapacity_AndAResyncedBoardEndsWithTheSameBeds()
    {
        await using var stayed = await StaffAsync("manager");
        await using var away = await StaffAsync("bedbureau");
        await stayed.SubscribeAsync("capacity");
        var awayAt = await away.SubscribeAsync("capacity");
        var bureau = await app.StaffAsync("bedbureau");
        long bedId;
        await using (var connection = await app.OpenAsync())
        {
            bedId = await Dapper.SqlMapper.ExecuteScalarAsync<long>(connection,
                """
                SELECT b.id FROM bed b JOIN ward w ON w.id = b.ward_id JOIN site s ON s.id = w.site_id JOIN organisation o ON o.id = s.organisation_id
                WHERE b.status = 'available' AND b.allowed_sex = 'any' AND NOT b.single_room AND o.caution = 'none' AND s.active
                  AND b.bed_type IN ('rehabilitation', 'step-down-nursing') ORDER BY b.id DESC LIMIT 1
                """);
        }
        // A pathway 2 referral reaches the bureau, which reserves, admits, discharges and cleans, then closes and reopens the bed.
        var referralId = await SubmitAsync("referrer");
        var coordinator = await app.StaffAsync("coordinator");
        async Task<long> OpenTaskAsync()
        {
            await using var connection = await app.OpenAsync();
            return await Dapper.SqlMapper.ExecuteScalarAsync<long>(connection,
                "SELECT id FROM triage_task WHERE referral_id = @referralId AND status IN ('requested', 'in-progress')", new { referralId });
        }
        await app.SendAsync(new CareCoordination.Features.Coordination.TakeReferral.Command(await OpenTaskAsync()), coordinator);
        await app.SendAsync(new CareCoordination.Features.Coordination.RedirectToBedBureau.Command(await OpenTaskAsync(), "Needs a rehabilitation bed first."), coordinator);
        await app.SendAsync(new CareCoordination.Features.Coordination.TakeReferral.Command(await OpenTaskAsync()), bureau);
        var reserved = await app.SendAsync<CareCoordination.Features.BedBureau.ReserveBed.Result>(
            new CareCoordination.Features.BedBureau.ReserveBed.Command(await OpenTaskAsync(), bedId, Today), bureau);
        await away.WaitForAsync(p => p.Kind == "bed.reserved" && p.Id == bedId, "the reservation");
        var awaySaw = away.Received.ToList();
        await away.DisposeAsync();

        await app.SendAsync(new CareCoordination.Features.BedBureau.ConfirmAdmission.Command(reserved.PlacementId), bureau);
        await app.SendAsync(new CareCoordination.Features.BedBureau.DischargeFromBed.Command(reserved.PlacementId), bureau);
        await app.SendAsync(new CareCoordination.Features.BedBureau.ChangeBedState.Command(bedId, CareCoordination.Features.BedBureau.ChangeBedState.Move.Cleaned), bureau);
        await app.SendAsync(new CareCoordination.Features.BedBureau.ChangeBedState.Command(bedId, CareCoordination.Features.BedBureau.ChangeBedState.Move.Close, "staffing"), bureau);
        await app.SendAsync(new CareCoordination.Features.BedBureau.ChangeBedState.Command(bedId, CareCoordination.Features.BedBureau.ChangeBedState.Move.Reopen), bureau);
        await stayed.WaitForAsync(p => p.Kind == "bed.reopened" && p.Id == bedId, "the reopening");

        string[] BedKinds(IEnumerable<Pushed> changes) => changes.Where(p => p.EntityType == "bed" && p.Id == bedId).Select(p => p.Kind).ToArray();
        Assert.Equal(["bed.reserved", "bed.occupied", "bed.cleaning", "bed.available", "bed.closed", "bed.reopened"], BedKinds(stayed.Received));
        AssertStrictlyIncreasing(stayed.Received);

        await using var back = await StaffAsync("bedbureau");
        await back.SubscribeAsync("capacity");
        var missed = await back.ChangesSinceAsync(awaySaw.Where(p => p.Seq > awayAt).Max(p => p.Seq));

        // The board as each would draw it: every bed's last status.
        static IReadOnlyDictionary<long, string> BedStates(IEnumerable<Pushed> changes) => changes
            .Where(p => p.EntityType == "bed").OrderBy(p => p.Seq)
            .GroupBy(p => p.Id).ToDictionary(g => g.Key, g => g.Last().Data.GetProperty("status").GetString()!);
        var expected = BedStates(stayed.Received);
        Assert.Equal("available", expected[bedId]);
        Assert.Equal(expected, BedStates(awaySaw.Concat(missed)));
    }

    [Fact]
    public async Task ABedClosedWithADetailNamingAPatient_ReachesPartners_AsTheReasonCodeOnly()
    {
        const string Detail = "Mrs Edna Pascoe in the next bed has C. difficile";
        long bedId;
        await using (var connection = await app.OpenAsync())
        {
            bedId = await Dapper.SqlMapper.ExecuteScalarAsync<long>(connection,
                "SELECT b.id FROM bed b JOIN ward w ON w.id = b.ward_id JOIN site s ON s.id = w.site_id WHERE b.status = 'available' AND s.active ORDER BY b.id LIMIT 1");
        }
        var token = await PartnerTokenAsync();
        await using var partner = await LiveClient.StartAsync(Connect("hubs/live", options => options.AccessTokenProvider = () => Task.FromResult<string?>(token)));
        var before = await partner.SubscribeAsync("capacity");
        var bureau = await app.StaffAsync("bedbureau");

        await app.SendAsync(new CareCoordination.Features.BedBureau.ChangeBedState.Command(bedId, CareCoordination.Features.BedBureau.ChangeBedState.Move.Close, "infection", Detail), bureau);

        var pushed = await partner.WaitForAsync(p => p.Kind == "bed.closed" && p.Id == bedId, "the closure on capacity");
        Assert.Equal("infection", pushed.Data.GetProperty("closedReason").GetString());
        var resynced = await partner.ChangesSinceAsync(before);
        Assert.Contains(resynced, p => p.Kind == "bed.closed" && p.Id == bedId);
        Assert.All(partner.Received.Concat(resynced), p => Assert.DoesNotContain("Pascoe", p.Data.GetRawText(), StringComparison.Ordinal));
        // Nor in FHIR: the bed, its versions, its site's report. A bed closed for infection is K, whatever the detail.
        using var fhir = await app.PartnerAsync();
        var location = await fhir.GetStringAsync($"/fhir/Location/bed-{bedId}");
        Assert.Contains("\"code\":\"K\"", location, StringComparison.Ordinal);
        foreach (var body in new[] { location, await fhir.GetStringAsync($"/fhir/Location/bed-{bedId}/_history"), await fhir.GetStringAsync("/fhir/MeasureReport") })
        {
            Assert.DoesNotContain("Pascoe", body, StringComparison.Ordinal);
        }
        // The bureau still reads why, on its board.
        var board = await app.SendAsync<CareCoordination.Features.BedBureau.BedBoard.Result>(new CareCoordination.Features.BedBureau.BedBoard.Query(), bureau);
        var closed = board.Sites.SelectMany(s => s.Wards).SelectMany(w => w.Beds).Single(b => b.Row.Id == bedId).Row;
        Assert.Equal(("infection", Detail), (closed.ClosedReason, closed.ClosedDetail));
    }

    private static void AssertStrictlyIncreasing(IReadOnlyList<Pushed> received)
    {
        Assert.NotEmpty(received);
        for (var i = 1; i < received.Count; i++)
        {
            Assert.True(received[i - 1].Seq < received[i].Seq, $"seq {received[i].Seq} arrived after {received[i - 1].Seq}");
        }
    }

    private async Task<long> SubmitAsync(string user) =>
        (await app.SendAsync<SubmitReferral.Result>(
            new SubmitReferral.Command(ReferralForms.Discharge(Today, await app.NewNhsNumberAsync()), Guid.NewGuid().ToString("N")),
            await app.StaffAsync(user))).ReferralId!.Value;

    private HubConnection Connect(string path, Action<HttpConnectionOptions> configure) => app.LiveHub(configure, path);

    /// <summary>Signs in through the real sign-in page and connects with the session cookie it set.</summary>
    private async Task<LiveClient> StaffAsync(string username)
    {
        var cookie = await app.SessionCookieAsync(username);
        return await LiveClient.StartAsync(Connect("hubs/live", options => options.Headers["Cookie"] = cookie));
    }

    private async Task<string> PartnerTokenAsync()
    {
        using var client = app.CreateBrowserlessClient();
        using var form = new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = "demo-acute-trust",
            ["client_secret"] = AppFactory.PartnerSecret,
        });
        var response = await client.PostAsync("/oauth/token", form);
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("access_token").GetString()!;
    }

    /// <summary>A change as it arrives on the wire, read by the contract's own (camelCase) names.</summary>
    private sealed record Pushed(long Seq, string Kind, string EntityType, long Id, DateTimeOffset At, long? OrganisationId, string? Actor, JsonElement Data, string Topic)
    {
        public static Pushed From(JsonElement e) => new(
            e.GetProperty("seq").GetInt64(),
            e.GetProperty("kind").GetString()!,
            e.GetProperty("entityType").GetString()!,
            e.GetProperty("id").GetInt64(),
            e.GetProperty("at").GetDateTimeOffset(),
            e.GetProperty("organisationId") is { ValueKind: JsonValueKind.Number } organisation ? organisation.GetInt64() : null,
            e.GetProperty("actor").GetString(),
            e.GetProperty("data"),
            e.GetProperty("topic").GetString()!);

        /// <summary>The referral a change is about: its own id for a referral, data.referralId for a task or placement.</summary>
        public long? ReferralId => EntityType == "referral" ? Id
            : Data.ValueKind == JsonValueKind.Object && Data.TryGetProperty("referralId", out var id) ? id.GetInt64() : null;

        public bool IsTaskCreatedFor(long referralId) => Kind == "task.created" && EntityType == "triage_task" && ReferralId == referralId;
    }

    /// <summary>One hub connection, keeping every change pushed to it in the order it arrived.</summary>
    private sealed class LiveClient : IAsyncDisposable
    {
        private readonly HubConnection _connection;
        private readonly Channel<Pushed> _arrivals = Channel.CreateUnbounded<Pushed>();
        private readonly List<Pushed> _received = [];

        private LiveClient(HubConnection connection)
        {
            _connection = connection;
            // Data must arrive as a JSON object, not a string holding JSON.
            _connection.On<JsonElement>("change", change => _arrivals.Writer.TryWrite(Pushed.From(change)));
        }

        /// <summary>What the test has read so far (through WaitForAsync and UntilAsync).</summary>
        public IReadOnlyList<Pushed> Received => _received;

        public static async Task<LiveClient> StartAsync(HubConnection connection)
        {
            var client = new LiveClient(connection);
            await connection.StartAsync();
            return client;
        }

        public Task<long> SubscribeAsync(string topic) => _connection.InvokeAsync<long>("Subscribe", topic);

        public async Task<IReadOnlyList<Pushed>> ChangesSinceAsync(long seq) =>
            (await _connection.InvokeAsync<JsonElement[]>("GetChangesSince", seq)).Select(Pushed.From).ToList();

        public async Task<Pushed> WaitForAsync(Func<Pushed, bool> match, string what)
        {
            await UntilAsync(received => received.Any(match), what);
            return _received.First(match);
        }

        /// <summary>Reads pushed changes until the condition holds, for at most ten seconds.</summary>
        public async Task UntilAsync(Func<IReadOnlyList<Pushed>, bool> done, string what)
        {
            using var patience = new CancellationTokenSource(Patience);
            while (!done(_received))
            {
                try
                {
                    _received.Add(await _arrivals.Reader.ReadAsync(patience.Token));
                }
                catch (OperationCanceledException)
                {
                    Assert.Fail($"Waited {Patience.TotalSeconds} s for {what}; {_received.Count} changes arrived.");
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _connection.DisposeAsync();
            GC.SuppressFinalize(this);
        }
    }
}

public sealed class LiveHubOnSqliteTests(AppFactory app) : LiveHubTests(app), IClassFixture<AppFactory>;

public sealed class LiveHubOnPostgresTests(PostgresAppFactory app) : LiveHubTests(app), IClassFixture<PostgresAppFactory>;
