using CareCoordination.Domain;
using CareCoordination.Features.Coordination;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using CareCoordination.Tests.Support;
using Dapper;
using Mediator;

namespace CareCoordination.Tests.Features.Coordination;

/// <summary>
/// Every legal move of a triage task works and every illegal one is refused with a clear message and no
/// change at all: not to the task, the referral, the service, the change feed or the placements.
/// </summary>
public abstract class TriageDecisionTests(AppFactory app)
{
    private DateOnly Today => LondonTime.Today(app.Clock);

    // Init properties, not a positional record: Dapper maps SQLite's integers onto them by name.
    protected sealed record Snapshot
    {
        public string ReferralStatus { get; init; } = "";
        public int ReferralVersion { get; init; }
        public string TaskStatus { get; init; } = "";
        public long? Owner { get; init; }
        public int TaskVersion { get; init; }
        public long LastSeq { get; init; }
        public long Placements { get; init; }
        public long Notes { get; init; }
    }

    protected async Task<(long ReferralId, long TaskId)> NewReferralAsync(Action<ReferralForm>? change = null)
    {
        var form = ReferralForms.Discharge(Today, await app.NewNhsNumberAsync());
        change?.Invoke(form);
        var sent = await app.SendAsync<SubmitReferral.Result>(new SubmitReferral.Command(form, Guid.NewGuid().ToString("N")), await app.StaffAsync("referrer"));
        var referralId = sent.ReferralId!.Value;
        return (referralId, await OpenTaskAsync(referralId));
    }

    private async Task<long> OpenTaskAsync(long referralId)
    {
        await using var connection = await app.OpenAsync();
        return await connection.ExecuteScalarAsync<long>(
            "SELECT id FROM triage_task WHERE referral_id = @referralId AND status IN ('requested', 'in-progress', 'on-hold')", new { referralId });
    }

    protected async Task<Snapshot> SnapshotAsync(long referralId, long taskId)
    {
        await using var connection = await app.OpenAsync();
        return await connection.QuerySingleAsync<Snapshot>(
            """
            SELECT r.status AS ReferralStatus, r.version AS ReferralVersion, t.status AS TaskStatus, t.owner_user_id AS Owner, t.version AS TaskVersion,
                   (SELECT MAX(seq) FROM change) AS LastSeq,
                   (SELECT COUNT(*) FROM placement WHERE referral_id = r.id) AS Placements,
                   (SELECT COUNT(*) FROM referral_note WHERE referral_id = r.id) AS Notes
            FROM referral r JOIN triage_task t ON t.referral_id = r.id
            WHERE r.id = @referralId AND t.id = @taskId
            """, new { referralId, taskId });
    }

    private async Task<long> ServiceIdAsync(string name)
    {
        await using var connection = await app.OpenAsync();
        return await connection.ExecuteScalarAsync<long>("SELECT id FROM service WHERE name = @name", new { name });
    }

    private async Task<int> AvailableAsync(long serviceId)
    {
        await using var connection = await app.OpenAsync();
        return await connection.ExecuteScalarAsync<int>("SELECT available_today FROM service WHERE id = @serviceId", new { serviceId });
    }

    protected async Task SendAsync(IMessage message, string user) => await app.SendAsync(message, await app.StaffAsync(user));

    /// <summary>The failure is of the stated kind, says what it should, and nothing at all was written.</summary>
    private async Task RefusedAsync<TFailure>(IMessage message, string user, string saying, long referralId, long taskId)
        where TFailure : DomainFailure
    {
        var before = await SnapshotAsync(referralId, taskId);
        var failure = await Assert.ThrowsAsync<TFailure>(() => SendAsync(message, user));
        Assert.Contains(saying, failure.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(before, await SnapshotAsync(referralId, taskId));
    }

    [Fact]
    public async Task Take_GivesTheReferralToOneCoordinator_AndStartsTriage()
    {
        var (referralId, taskId) = await NewReferralAsync();

        await SendAsync(new TakeReferral.Command(taskId), "coordinator");

        var after = await SnapshotAsync(referralId, taskId);
        Assert.Equal(("in-triage", "in-progress"), (after.ReferralStatus, after.TaskStatus));
        await RefusedAsync<Conflict>(new TakeReferral.Command(taskId), "jo.nankivell", "Tom Okafor has already taken", referralId, taskId);
        await RefusedAsync<RuleBroken>(new TakeReferral.Command(taskId), "coordinator", "already hold", referralId, taskId);
        await RefusedAsync<RuleBroken>(new TakeReferral.Command(taskId), "bedbureau", "coordination centre's queue", referralId, taskId);
    }

    [Fact]
    public async Task ReleaseAndHand_MoveTheReferralBetweenCoordinators_OnlyFromItsHolder()
    {
        var (referralId, taskId) = await NewReferralAsync();
        await RefusedAsync<RuleBroken>(new ReleaseReferral.Command(taskId), "coordinator", "Take the referral first", referralId, taskId);
        await SendAsync(new TakeReferral.Command(taskId), "coordinator");
        var jo = (await app.StaffAsync("jo.nankivell")).FindFirst(System.Security.Claims.ClaimTypes.NameIdentifier)!.Value;
        var bureau = (await app.StaffAsync("bedbureau")).FindFirst(System.Security.Claims.ClaimTypes.NameIdentifier)!.Value;

        await RefusedAsync<Conflict>(new ReleaseReferral.Command(taskId), "jo.nankivell", "Tom Okafor holds this referral", referralId, taskId);
        await RefusedAsync<RuleBroken>(new HandReferral.Command(taskId, long.Parse(bureau)), "coordinator", "does not work the coordination centre's queue", referralId, taskId);
        await SendAsync(new HandReferral.Command(taskId, long.Parse(jo), "Jo knows the family."), "coordinator");
        var handed = await SnapshotAsync(referralId, taskId);
        Assert.Equal(long.Parse(jo), handed.Owner);

        await SendAsync(new ReleaseReferral.Command(taskId), "jo.nankivell");
        var released = await SnapshotAsync(referralId, taskId);
        Assert.Equal(("requested", (long?)null, "in-triage"), (released.TaskStatus, released.Owner, released.ReferralStatus));
    }

    [Fact]
    public async Task Accept_IntoAServiceWithRoom_TakesASlot_ReservesThePlacement_AndClosesTheTask()
    {
        var (referralId, taskId) = await NewReferralAsync();
        var service = await ServiceIdAsync("Home First Reablement - North");
        await RefusedAsync<RuleBroken>(new AcceptIntoService.Command(taskId, service, Today), "coordinator", "Take the referral first", referralId, taskId);
        await SendAsync(new TakeReferral.Command(taskId), "coordinator");
        await RefusedAsync<Conflict>(new AcceptIntoService.Command(taskId, service, Today), "jo.nankivell", "Tom Okafor holds", referralId, taskId);
        await RefusedAsync<ValidationFailed>(new AcceptIntoService.Command(taskId, service, Today.AddDays(-1)), "coordinator", "cannot be in the past", referralId, taskId);
        var before = await AvailableAsync(service);

        var accepted = await app.SendAsync<AcceptIntoService.Result>(new AcceptIntoService.Command(taskId, service, Today.AddDays(1)), await app.StaffAsync("coordinator"));

        Assert.Equal(before - 1, await AvailableAsync(service));
        Assert.Equal(before - 1, accepted.AvailableAfter);
        await using var connection = await app.OpenAsync();
        var task = await connection.QuerySingleAsync<(string Status, string Decision)>("SELECT status, decision FROM triage_task WHERE id = @taskId", new { taskId });
        Assert.Equal(("completed", "accepted: reablement"), task);
        Assert.Equal("accepted", await connection.ExecuteScalarAsync<string>("SELECT status FROM referral WHERE id = @referralId", new { referralId }));
        var placement = await connection.QuerySingleAsync<(string Status, long ServiceId)>("SELECT status, service_id FROM placement WHERE referral_id = @referralId", new { referralId });
        Assert.Equal(("reserved", service), placement);
        var kinds = (await connection.QueryAsync<string>("SELECT kind FROM change WHERE seq > (SELECT MAX(seq) - 5 FROM change) ORDER BY seq")).ToList();
        Assert.Equal(["task.completed", "placement.reserved", "service.capacity-changed", "referral.accepted"], kinds.TakeLast(4));
        Assert.Equal(1, await connection.ExecuteScalarAsync<long>(
            "SELECT COUNT(*) FROM audit_event WHERE action = 'AcceptIntoService' AND outcome = 'success' AND actor_name = 'Tom Okafor' AND entity_type = 'triage_task' AND entity_id = @taskId",
            new { taskId }));

        // Decided: nothing more can be decided on this task.
        await RefusedAsync<RuleBroken>(new DeclineReferral.Command(taskId, "not-eligible"), "coordinator", "left the queue", referralId, taskId);
        await RefusedAsync<RuleBroken>(new TakeReferral.Command(taskId), "jo.nankivell", "left the queue", referralId, taskId);
    }

    [Fact]
    public async Task Accept_IntoAFullService_IsRefused_UnlessOverriddenWithAReason_WhichIsKept()
    {
        var (referralId, taskId) = await NewReferralAsync();
        var service = await ServiceIdAsync("Home First Reablement - South");
        await using (var connection = await app.OpenAsync())
        {
            await connection.ExecuteAsync("UPDATE service SET available_today = 0 WHERE id = @service", new { service });
        }
        await SendAsync(new TakeReferral.Command(taskId), "coordinator");

        await RefusedAsync<RuleBroken>(new AcceptIntoService.Command(taskId, service, Today), "coordinator", "0 slots free today", referralId, taskId);
        await RefusedAsync<ValidationFailed>(new AcceptIntoService.Command(taskId, service, Today, OverrideFullService: true), "coordinator",
            "Say why the person must go into a service that is full", referralId, taskId);
        await SendAsync(new AcceptIntoService.Command(taskId, service, Today, OverrideFullService: true, OverrideReason: "Only provider covering Saltmouth; agreed with the team lead."), "coordinator");

        await using var check = await app.OpenAsync();
        Assert.Equal("Only provider covering Saltmouth; agreed with the team lead.",
            await check.ExecuteScalarAsync<string>("SELECT capacity_override FROM placement WHERE referral_id = @referralId", new { referralId }));
        Assert.Equal(0, await AvailableAsync(service));
    }

    [Fact]
    public async Task Accept_IntoAnHoursService_NeedsTheHours_AndTakesThem()
    {
        var (referralId, taskId) = await NewReferralAsync();
        var service = await ServiceIdAsync("Carewell Home Care - North");
        await SendAsync(new TakeReferral.Command(taskId), "coordinator");
        await RefusedAsync<ValidationFailed>(new AcceptIntoService.Command(taskId, service, Today), "coordinator", "how many hours a day", referralId, taskId);
        var before = await AvailableAsync(service);

        await SendAsync(new AcceptIntoService.Command(taskId, service, Today, HoursPerDay: 3), "coordinator");

        Assert.Equal(before - 3, await AvailableAsync(service));
    }

    [Fact]
    public async Task Accept_WithACautionedProvider_RedIsRefused_AmberWithoutAManagersApprovalIsRefused()
    {
        var (referralId, taskId) = await NewReferralAsync();
        var service = await ServiceIdAsync("Carewell Home Care - South");
        await SendAsync(new TakeReferral.Command(taskId), "coordinator");
        await using var connection = await app.OpenAsync();
        const string Caution = "UPDATE organisation SET caution = @caution, caution_note = @note WHERE id = (SELECT organisation_id FROM service WHERE id = @service)";
        try
        {
            await connection.ExecuteAsync(Caution, new { caution = "red", note = "Suspended after inspection.", service });
            await RefusedAsync<RuleBroken>(new AcceptIntoService.Command(taskId, service, Today, HoursPerDay: 2), "coordinator", "red caution", referralId, taskId);
            await connection.ExecuteAsync(Caution, new { caution = "amber", note = "Missed calls under review.", service });
            // The approval is a manager's, asked for and given on the record: see CautionApprovalTests.
            await RefusedAsync<RuleBroken>(new AcceptIntoService.Command(taskId, service, Today, HoursPerDay: 2), "coordinator", "ask a manager", referralId, taskId);
        }
        finally
        {
            await connection.ExecuteAsync(Caution, new { caution = "none", note = (string?)null, service });
        }
    }

    [Fact]
    public async Task Redirect_NeedsWhyNotHomeFirst_ThenOpensABedBureauTask_WhichTheBureauCanHandBack()
    {
        var (referralId, taskId) = await NewReferralAsync(f => f.Pathway = "2");
        await SendAsync(new TakeReferral.Command(taskId), "coordinator");
        await RefusedAsync<ValidationFailed>(new RedirectToBedBureau.Command(taskId, " "), "coordinator", "why a home-first service is not right", referralId, taskId);
        await RefusedAsync<AccessDenied>(new HandBackToCoordination.Command(taskId, "Home is possible with equipment."), "coordinator", "may not", referralId, taskId);

        await SendAsync(new RedirectToBedBureau.Command(taskId, "Needs two carers overnight; no package can start this week."), "coordinator");

        var bureauTask = await OpenTaskAsync(referralId);
        Assert.NotEqual(taskId, bureauTask);
        var redirected = await SnapshotAsync(referralId, bureauTask);
        Assert.Equal(("redirected", "requested"), (redirected.ReferralStatus, redirected.TaskStatus));
        await RefusedAsync<RuleBroken>(new TakeReferral.Command(bureauTask), "coordinator", "bed bureau's queue", referralId, bureauTask);

        await SendAsync(new TakeReferral.Command(bureauTask), "bedbureau");
        Assert.Equal("in-triage", (await SnapshotAsync(referralId, bureauTask)).ReferralStatus);
        await SendAsync(new HandBackToCoordination.Command(bureauTask, "Equipment arrives tomorrow: reablement at home is possible."), "bedbureau");

        var back = await OpenTaskAsync(referralId);
        await using var connection = await app.OpenAsync();
        Assert.Equal("coordination", await connection.ExecuteScalarAsync<string>("SELECT queue FROM triage_task WHERE id = @back", new { back }));
        Assert.Equal("returned to coordination: home first is possible",
            await connection.ExecuteScalarAsync<string>("SELECT decision FROM triage_task WHERE id = @bureauTask", new { bureauTask }));
    }

    [Fact]
    public async Task AskForInformation_PausesTheClock_UntilTheReferrerAnswers()
    {
        var (referralId, taskId) = await NewReferralAsync();
        await SendAsync(new TakeReferral.Command(taskId), "coordinator");
        app.Clock.Advance(TimeSpan.FromMinutes(10));

        await SendAsync(new RequestInformation.Command(taskId, "Is a key safe fitted?"), "coordinator");
        var onHold = await SnapshotAsync(referralId, taskId);
        Assert.Equal(("awaiting-information", "on-hold"), (onHold.ReferralStatus, onHold.TaskStatus));
        await RefusedAsync<RuleBroken>(new AcceptIntoService.Command(taskId, await ServiceIdAsync("Home First Reablement - North"), Today), "coordinator",
            "waiting for the referrer's answer", referralId, taskId);
        app.Clock.Advance(TimeSpan.FromHours(2));
        await app.SendAsync(new AnswerInformationRequest.Command(referralId, "Yes, fitted last year."), await app.StaffAsync("referrer"));

        var resumed = await SnapshotAsync(referralId, taskId);
        Assert.Equal(("in-triage", "in-progress"), (resumed.ReferralStatus, resumed.TaskStatus));
        Assert.Equal(onHold.Owner, resumed.Owner);
        var story = await app.SendAsync<PersonStory.Result>(new PersonStory.Query(referralId), await app.StaffAsync("coordinator"));
        // Ten minutes of triage, not two hours and ten: the pause does not count.
        Assert.InRange(story.Task!.Clock.Waited, TimeSpan.FromMinutes(10), TimeSpan.FromMinutes(11));
    }

    [Fact]
    public async Task Decline_NeedsACodedReason_AndDetailForOther_AndTellsTheReferrer()
    {
        var (referralId, taskId) = await NewReferralAsync();
        await SendAsync(new TakeReferral.Command(taskId), "coordinator");
        await RefusedAsync<ValidationFailed>(new DeclineReferral.Command(taskId, "because"), "coordinator", "Choose why", referralId, taskId);
        await RefusedAsync<ValidationFailed>(new DeclineReferral.Command(taskId, "other"), "coordinator", "Say why", referralId, taskId);

        await SendAsync(new DeclineReferral.Command(taskId, "out-of-area", "Lives in the next county; referred to their hub."), "coordinator");

        var track = await app.SendAsync<TrackReferral.Result>(new TrackReferral.Query(referralId), await app.StaffAsync("referrer"));
        Assert.Equal("declined", track.Referral.Status);
        Assert.Equal("Out of area: Lives in the next county; referred to their hub.", track.Referral.OutcomeReason);
    }

    [Fact]
    public async Task Cancel_ByTheCoordinator_ClosesTheTask_AndNothingCanBeDecidedAfter()
    {
        var (referralId, taskId) = await NewReferralAsync();
        await SendAsync(new TakeReferral.Command(taskId), "coordinator");

        await SendAsync(new CancelReferral.Command(referralId, "Readmitted to the acute ward."), "coordinator");

        var cancelled = await SnapshotAsync(referralId, taskId);
        Assert.Equal(("cancelled", "cancelled"), (cancelled.ReferralStatus, cancelled.TaskStatus));
        await RefusedAsync<RuleBroken>(new AcceptIntoService.Command(taskId, await ServiceIdAsync("Home First Reablement - North"), Today), "coordinator", "left the queue", referralId, taskId);
        await RefusedAsync<RuleBroken>(new CancelReferral.Command(referralId, "again"), "coordinator", "cannot be cancelled", referralId, taskId);
    }

    [Fact]
    public async Task Cancelling_AnAcceptedReferral_GivesTheServiceItsSlotBack_AndStartingSupportPlacesIt()
    {
        var service = await ServiceIdAsync("Home First Reablement - North");
        var (referralId, taskId) = await NewReferralAsync();
        await SendAsync(new TakeReferral.Command(taskId), "coordinator");
        var before = await AvailableAsync(service);
        await SendAsync(new AcceptIntoService.Command(taskId, service, Today), "coordinator");
        Assert.Equal(before - 1, await AvailableAsync(service));

        await SendAsync(new CancelReferral.Command(referralId, "Family are taking her home and caring for her."), "coordinator");

        Assert.Equal(before, await AvailableAsync(service));

        var (started, startedTask) = await NewReferralAsync();
        await SendAsync(new TakeReferral.Command(startedTask), "coordinator");
        var accepted = await app.SendAsync<AcceptIntoService.Result>(new AcceptIntoService.Command(startedTask, service, Today), await app.StaffAsync("coordinator"));
        await SendAsync(new StartServicePlacement.Command(accepted.PlacementId), "coordinator");
        Assert.Equal("placed", (await SnapshotAsync(started, startedTask)).ReferralStatus);
        await RefusedAsync<RuleBroken>(new StartServicePlacement.Command(accepted.PlacementId), "coordinator", "not reserved", started, startedTask);
    }

    [Fact]
    public async Task Released_WhileWaitingForAnAnswer_TheAnswerPutsItBackInTheQueue_NotWithNobody()
    {
        var (referralId, taskId) = await NewReferralAsync();
        await SendAsync(new TakeReferral.Command(taskId), "coordinator");
        await SendAsync(new RequestInformation.Command(taskId, "Is there a key safe?"), "coordinator");
        await SendAsync(new ReleaseReferral.Command(taskId), "coordinator");

        await app.SendAsync(new AnswerInformationRequest.Command(referralId, "Yes."), await app.StaffAsync("referrer"));

        var after = await SnapshotAsync(referralId, taskId);
        Assert.Equal(("requested", (long?)null), (after.TaskStatus, after.Owner));
        await SendAsync(new TakeReferral.Command(taskId), "jo.nankivell");
    }

    [Fact]
    public async Task Reprioritise_IsLoggedWithWhoAndWhy_AndMovesTheQueueOrder()
    {
        var (referralId, taskId) = await NewReferralAsync(f => f.Urgency = "routine");
        await RefusedAsync<RuleBroken>(new ReprioritiseReferral.Command(taskId, "routine", "no change"), "coordinator", "already routine", referralId, taskId);
        await RefusedAsync<ValidationFailed>(new ReprioritiseReferral.Command(taskId, "immediate", ""), "coordinator", "Say why", referralId, taskId);
        var coordinator = await app.StaffAsync("coordinator");
        var before = (await app.SendAsync<CoordinationQueue.Result>(new CoordinationQueue.Query(), coordinator)).Rows.Single(r => r.TaskId == taskId);

        await SendAsync(new ReprioritiseReferral.Command(taskId, "immediate", "Daughter rang: no food in the house."), "coordinator");

        var after = (await app.SendAsync<CoordinationQueue.Result>(new CoordinationQueue.Query(), coordinator)).Rows.Single(r => r.TaskId == taskId);
        Assert.Equal(before.Priority.Score + Priority.ImmediatePoints, after.Priority.Score);
        Assert.True(after.Reprioritised);
        await using var connection = await app.OpenAsync();
        var change = await connection.QuerySingleAsync<(string Actor, string Data)>(
            "SELECT actor, data FROM change WHERE kind = 'task.reprioritised' AND entity_id = @taskId", new { taskId });
        Assert.Equal("Tom Okafor", change.Actor);
        Assert.Contains("Daughter rang: no food in the house.", change.Data, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Referrers_AndManagers_CannotDecide()
    {
        var (referralId, taskId) = await NewReferralAsync();
        await RefusedAsync<AccessDenied>(new TakeReferral.Command(taskId), "referrer", "may not", referralId, taskId);
        await RefusedAsync<AccessDenied>(new TakeReferral.Command(taskId), "manager", "may not", referralId, taskId);
        await RefusedAsync<AccessDenied>(new DeclineReferral.Command(taskId, "not-eligible"), "referrer", "may not", referralId, taskId);
        await RefusedAsync<AccessDenied>(new AcceptIntoService.Command(taskId, 1, Today), "bedbureau", "may not", referralId, taskId);
    }

    [Fact]
    public async Task TwoCoordinators_TakingAtOnce_ExactlyOneHoldsIt_TheOthersAreToldWho_ManyTimesOver()
    {
        string[] team = ["coordinator", "jo.nankivell", "kemal.arslan", "ben.rowe"];
        var principals = await Task.WhenAll(team.Select(app.StaffAsync));
        for (var round = 0; round < 15; round++)
        {
            var (referralId, taskId) = await NewReferralAsync();
            var attempts = await Task.WhenAll(principals.Select(async p =>
            {
                try
                {
                    await app.SendAsync(new TakeReferral.Command(taskId), p);
                    return (Won: true, Message: "");
                }
                catch (Conflict conflict)
                {
                    return (Won: false, conflict.Message);
                }
            }));

            Assert.Single(attempts, a => a.Won);
            var taken = await SnapshotAsync(referralId, taskId);
            await using var connection = await app.OpenAsync();
            var holder = await connection.ExecuteScalarAsync<string>("SELECT display_name FROM staff_user WHERE id = @Owner", new { taken.Owner });
            Assert.All(attempts.Where(a => !a.Won), a => Assert.Contains(holder!, a.Message, StringComparison.Ordinal));
            Assert.Equal(1, await connection.ExecuteScalarAsync<long>(
                "SELECT COUNT(*) FROM change WHERE kind = 'task.taken' AND entity_id = @taskId", new { taskId }));
        }
    }

    [Fact]
    public async Task TwoDecisionsAtOnce_OnOneReferral_ExactlyOneIsApplied_ManyTimesOver()
    {
        var coordinator = await app.StaffAsync("coordinator");
        var service = await ServiceIdAsync("Home First Reablement - Central");
        for (var round = 0; round < 15; round++)
        {
            var (referralId, taskId) = await NewReferralAsync();
            await app.SendAsync(new TakeReferral.Command(taskId), coordinator);
            // The same coordinator in two tabs: accept in one, decline in the other, at the same moment.
            IMessage[] decisions =
            [
                new AcceptIntoService.Command(taskId, service, Today, OverrideFullService: true, OverrideReason: "test"),
                new DeclineReferral.Command(taskId, "needs-met"),
                new RedirectToBedBureau.Command(taskId, "Needs a bed: two carers at night."),
            ];
            var outcomes = await Task.WhenAll(decisions.Select(async d =>
            {
                try
                {
                    await app.SendAsync(d, coordinator);
                    return true;
                }
                catch (DomainFailure failure) when (failure is Conflict or RuleBroken)
                {
                    return false;
                }
            }));

            Assert.Single(outcomes, won => won);
            await using var connection = await app.OpenAsync();
            var closed = await connection.ExecuteScalarAsync<long>(
                "SELECT COUNT(*) FROM change WHERE entity_type = 'triage_task' AND entity_id = @taskId AND kind IN ('task.completed', 'task.rejected')", new { taskId });
            Assert.Equal(1, closed);
            var referralChanges = await connection.ExecuteScalarAsync<long>(
                "SELECT COUNT(*) FROM change WHERE entity_type = 'referral' AND entity_id = @referralId AND kind IN ('referral.accepted', 'referral.declined', 'referral.redirected')",
                new { referralId });
            Assert.Equal(1, referralChanges);
        }
    }
}

public sealed class TriageDecisionOnSqliteTests(AppFactory app) : TriageDecisionTests(app), IClassFixture<AppFactory>;

public sealed class TriageDecisionOnPostgresTests(PostgresAppFactory app) : TriageDecisionTests(app), IClassFixture<PostgresAppFactory>
{
    /// <summary>
    /// The referrer answers while the coordinator who asked releases the task: the release is held uncommitted on the task's
    /// row, the answer (which read the task as still held) waits for it, then the release commits. The task goes back to
    /// waiting, not "in progress" with nobody working it.
    /// </summary>
    [Fact]
    public async Task AnAnswer_ArrivingAsTheTaskIsReleased_PutsItBackInTheQueue_NotInProgressWithNobody()
    {
        var (referralId, taskId) = await NewReferralAsync();
        await SendAsync(new TakeReferral.Command(taskId), "coordinator");
        await SendAsync(new RequestInformation.Command(taskId, "Is there a key safe?"), "coordinator");

        await using var release = await app.HoldAsync(
            "UPDATE triage_task SET owner_user_id = NULL, version = version + 1 WHERE id = @taskId", new { taskId });
        var answering = Task.Run(async () => await app.SendAsync(new AnswerInformationRequest.Command(referralId, "Yes."), await app.StaffAsync("referrer")));
        await app.UntilBlockedByAsync(release, [answering], "The answer");
        await release.CommitAsync();
        await answering;

        var after = await SnapshotAsync(referralId, taskId);
        Assert.Equal(("requested", (long?)null), (after.TaskStatus, after.Owner));
    }

    /// <summary>
    /// The re-contact timer runs as a coordinator declines the waiting referral: the decision is held uncommitted on the
    /// task's row, the timer (which read the task as waiting) waits for it, then the decision commits. No re-contact is left
    /// due on the closed task.
    /// </summary>
    [Fact]
    public async Task AReContact_RaisedAsItsTaskIsDecided_IsNotLeftDueOnTheClosedTask()
    {
        var (_, taskId) = await NewReferralAsync();
        app.Clock.Advance(TimeSpan.FromMinutes(16));

        await using var decision = await app.HoldAsync(
            "UPDATE triage_task SET status = 'rejected', decision = 'declined: not-eligible', completed_at = updated_at, version = version + 1 WHERE id = @taskId", new { taskId });
        var raising = Task.Run(async () =>
        {
            var coordinator = await app.StaffAsync("coordinator");
            while (await app.SendAsync<int>(new WaitingWell.RaiseRecontacts(), coordinator) > 0)
            {
            }
        });
        await app.UntilBlockedByAsync(decision, [raising], "The re-contact timer");
        await decision.CommitAsync();
        await raising;

        await using var connection = await app.OpenAsync();
        Assert.Equal(0, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM recontact WHERE triage_task_id = @taskId AND done_at IS NULL", new { taskId }));
    }
}
