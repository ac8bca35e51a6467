using CareCoordination.Domain;
using CareCoordination.Features.Coordination;
using CareCoordination.Features.Referrals;
using CareCoordination.Tests.Support;
using Dapper;

namespace CareCoordination.Tests.Features.Coordination;

/// <summary>The queue as a coordinator sees it: order, filters, counts, and waiting well.</summary>
public sealed class CoordinationQueueTests(AppFactory app) : IClassFixture<AppFactory>
{
    private DateOnly Today => LondonTime.Today(app.Clock);

    private async Task<(long ReferralId, long TaskId)> SendAsync(Action<ReferralForm> change)
    {
        var form = ReferralForms.Discharge(Today, await app.NewNhsNumberAsync());
        change(form);
        var sent = await app.SendAsync<SubmitReferral.Result>(new SubmitReferral.Command(form, Guid.NewGuid().ToString("N")), await app.StaffAsync("referrer"));
        await using var connection = await app.OpenAsync();
        return (sent.ReferralId!.Value, await connection.ExecuteScalarAsync<long>("SELECT id FROM triage_task WHERE referral_id = @id", new { id = sent.ReferralId }));
    }

    [Fact]
    public async Task Queue_IsInPriorityOrder_FiltersByPathway_AndCountsEachState()
    {
        var coordinator = await app.StaffAsync("coordinator");
        var (_, routine) = await SendAsync(f => { f.Urgency = "routine"; f.Pathway = "0"; f.FallsRisk = false; });
        var (_, immediate) = await SendAsync(f => { f.Urgency = "immediate"; f.Pathway = "0"; });
        var (earlyReferral, early) = await SendAsync(f => { f.Pathway = "0"; f.MedicallyOptimisedOn = Today.AddDays(3); f.ExpectedDischargeOn = Today.AddDays(4); });
        await app.SendAsync(new TakeReferral.Command(early), coordinator);

        var queue = await app.SendAsync<CoordinationQueue.Result>(new CoordinationQueue.Query(Pathway: "0"), coordinator);

        Assert.All(queue.Rows, r => Assert.Equal("0", r.Pathway));
        Assert.Equal(queue.Rows.OrderByDescending(r => r.Priority.Score).Select(r => r.TaskId), queue.Rows.Select(r => r.TaskId));
        var ours = queue.Rows.Where(r => r.TaskId == routine || r.TaskId == immediate || r.TaskId == early).Select(r => r.TaskId).ToList();
        Assert.Equal(immediate, ours[0]);
        Assert.Equal(routine, ours[^1]);
        var earlyRow = queue.Rows.Single(r => r.TaskId == early);
        Assert.True(earlyRow.EarlyRequest);
        Assert.Equal((CoordinationQueue.State.Taken, "Tom Okafor"), (earlyRow.State, earlyRow.HeldBy));
        Assert.Equal(queue.Rows.Count(r => r.State == CoordinationQueue.State.Waiting), queue.Counts.Waiting);
        Assert.Equal(queue.Rows.Count(r => r.State == CoordinationQueue.State.Taken), queue.Counts.Taken);

        var taken = await app.SendAsync<CoordinationQueue.Result>(new CoordinationQueue.Query(Show: CoordinationQueue.State.Taken, Pathway: "0"), coordinator);
        Assert.All(taken.Rows, r => Assert.Equal(CoordinationQueue.State.Taken, r.State));
        Assert.Contains(taken.Rows, r => r.ReferralId == earlyReferral);
        var mine = await app.SendAsync<CoordinationQueue.Result>(new CoordinationQueue.Query(MineOnly: true), coordinator);
        Assert.All(mine.Rows, r => Assert.Equal("Tom Okafor", r.HeldBy));
    }

    [Fact]
    public async Task WaitingPastTarget_RaisesOneRecontact_WhichIsRecorded_AndAnotherOnlyAfterAFurtherPeriod()
    {
        var coordinator = await app.StaffAsync("coordinator");
        var (referralId, taskId) = await SendAsync(_ => { });

        app.Clock.Advance(TimeSpan.FromMinutes(16));
        await RaiseAllAsync(coordinator);
        await RaiseAllAsync(coordinator);

        var story = await app.SendAsync<PersonStory.Result>(new PersonStory.Query(referralId), coordinator);
        var recontact = Assert.Single(story.Recontacts);
        Assert.Contains("past the 15 min taken target", recontact.Reason, StringComparison.Ordinal);
        var row = (await app.SendAsync<CoordinationQueue.Result>(new CoordinationQueue.Query(), coordinator)).Rows.Single(r => r.TaskId == taskId);
        Assert.True(row.RecontactDue);
        Assert.Equal(Rag.Red, row.Clock.Rag);

        await app.SendAsync(new RecordRecontact.Command(recontact.Id, "Spoke to the ward: she is safe and waiting; told them we will call by noon."), coordinator);
        await RaiseAllAsync(coordinator);
        Assert.Single((await app.SendAsync<PersonStory.Result>(new PersonStory.Query(referralId), coordinator)).Recontacts);

        app.Clock.Advance(TimeSpan.FromMinutes(31));
        await RaiseAllAsync(coordinator);
        Assert.Equal(2, (await app.SendAsync<PersonStory.Result>(new PersonStory.Query(referralId), coordinator)).Recontacts.Count);
        await using var connection = await app.OpenAsync();
        Assert.Equal(2, await connection.ExecuteScalarAsync<long>(
            "SELECT COUNT(*) FROM change WHERE kind = 'task.recontact-due' AND entity_id = @taskId", new { taskId }));
    }

    /// <summary>
    /// A task that leaves the queue before its re-contact is recorded (passed to the bed bureau; its referral cancelled) takes
    /// the re-contact with it: no longer due, closed by nobody, saying why. Before, it stayed due on the referral for good, and
    /// the bed bureau, offered its Record button, was refused it.
    /// </summary>
    [Fact]
    public async Task ARecontactStillDue_ClosesWithItsTask_WhenTheReferralLeavesTheQueue()
    {
        var coordinator = await app.StaffAsync("coordinator");
        var (redirectedReferral, redirected) = await SendAsync(_ => { });
        var (cancelledReferral, _) = await SendAsync(_ => { });
        app.Clock.Advance(TimeSpan.FromMinutes(16));
        await RaiseAllAsync(coordinator);

        await app.SendAsync(new TakeReferral.Command(redirected), coordinator);
        await app.SendAsync(new RedirectToBedBureau.Command(redirected, "Needs nursing care overnight."), coordinator);
        await app.SendAsync(new CancelReferral.Command(cancelledReferral, "She has gone to her daughter's."), await app.StaffAsync("referrer"));

        foreach (var (referral, why) in new[] { (redirectedReferral, "the referral left this queue"), (cancelledReferral, "the referral was cancelled") })
        {
            var recontact = Assert.Single((await app.SendAsync<PersonStory.Result>(new PersonStory.Query(referral), coordinator)).Recontacts);
            Assert.NotNull(recontact.DoneAt);
            Assert.Null(recontact.DoneBy);
            Assert.StartsWith($"No longer due: {why}", recontact.Outcome, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task TheTimer_ReadsOnlyTheTasksThatCouldBeDue_NotEveryOpenTask()
    {
        var coordinator = await app.StaffAsync("coordinator");
        var (_, open) = await SendAsync(_ => { });
        var (_, recontacted) = await SendAsync(_ => { });
        app.Clock.Advance(TimeSpan.FromMinutes(16));
        await RaiseAllAsync(coordinator);
        var story = await app.SendAsync<PersonStory.Result>(new PersonStory.Query(await ReferralOfAsync(recontacted)), coordinator);
        await app.SendAsync(new RecordRecontact.Command(Assert.Single(story.Recontacts).Id, "Called the ward: all well."), coordinator);
        var (_, fresh) = await SendAsync(_ => { });

        // Now: one with a re-contact open, one re-contacted a moment ago, one sent a moment ago. None could be due.
        Assert.Empty((await MayBeDueAsync()).Intersect([open, recontacted, fresh]));

        // A triage period on, the re-contacted and the fresh could be; the one whose re-contact is still open could not.
        app.Clock.Advance(TimeSpan.FromMinutes(31));
        Assert.Equal([recontacted, fresh], (await MayBeDueAsync()).Where(t => t == open || t == recontacted || t == fresh));

        async Task<List<long>> MayBeDueAsync()
        {
            await using var connection = await app.OpenAsync();
            var targets = new CoordinationTargets();
            return [.. (await connection.QueryAsync<Candidate>(WaitingWell.MayBeDue, WaitingWell.MayBeDueAt(app.Clock.GetUtcNow(), targets))).Select(c => c.TaskId)];
        }
    }

    private sealed record Candidate
    {
        public long TaskId { get; init; }
    }

    private async Task<long> ReferralOfAsync(long taskId)
    {
        await using var connection = await app.OpenAsync();
        return await connection.ExecuteScalarAsync<long>("SELECT referral_id FROM triage_task WHERE id = @taskId", new { taskId });
    }

    /// <summary>As the system's timer does: one re-contact per command, until none is due.</summary>
    private async Task RaiseAllAsync(System.Security.Claims.ClaimsPrincipal caller)
    {
        while (await app.SendAsync<int>(new WaitingWell.RaiseRecontacts(), caller) > 0)
        {
        }
    }

    [Fact]
    public async Task PersonStory_ShowsEarlierReferralsForTheSameNhsNumber_FromEveryOrganisation()
    {
        var coordinator = await app.StaffAsync("coordinator");
        var nhs = await app.NewNhsNumberAsync();
        var first = await app.SendAsync<SubmitReferral.Result>(new SubmitReferral.Command(ReferralForms.Discharge(Today, nhs), Guid.NewGuid().ToString("N")), await app.StaffAsync("gareth.evans"));
        await app.SendAsync(new CancelReferral.Command(first.ReferralId!.Value, "Readmitted."), coordinator);
        var second = await app.SendAsync<SubmitReferral.Result>(new SubmitReferral.Command(ReferralForms.Discharge(Today, nhs), Guid.NewGuid().ToString("N")), await app.StaffAsync("referrer"));

        var story = await app.SendAsync<PersonStory.Result>(new PersonStory.Query(second.ReferralId!.Value), coordinator);

        var earlier = Assert.Single(story.Earlier);
        Assert.Equal((first.ReferralId, "cancelled"), (earlier.Id, earlier.Status));
        Assert.Contains(story.Services, s => s.Kind == "reablement" && s.Locality == "Ashbury");
        // Home first is organised by locality: the person's own comes first.
        Assert.Equal("Ashbury", story.Services[0].Locality);
        var referrer = await app.StaffAsync("referrer");
        await Assert.ThrowsAsync<CareCoordination.Pipeline.AccessDenied>(() => app.SendAsync<PersonStory.Result>(new PersonStory.Query(second.ReferralId!.Value), referrer));
    }
}
