using CareCoordination.Domain;
using CareCoordination.Features.Coordination;
using CareCoordination.Features.Providers;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using CareCoordination.Tests.Support;
using Dapper;
using Mediator;

namespace CareCoordination.Tests.Features.Providers;

/// <summary>
/// A placement with a provider under amber caution goes ahead only on a signed-in manager's approval, for that
/// referral and that service: the coordinator asks, a manager approves or refuses, and who decided and when is kept.
/// </summary>
public abstract class CautionApprovalTests(AppFactory app)
{
    private DateOnly Today => LondonTime.Today(app.Clock);

    private const string South = "Carewell Home Care - South";
    private const string North = "Carewell Home Care - North";

    private async Task SendAsync(IMessage message, string user) => await app.SendAsync(message, await app.StaffAsync(user));

    private async Task<T> SendAsync<T>(IMessage message, string user) => await app.SendAsync<T>(message, await app.StaffAsync(user));

    /// <summary>A new referral, taken by a coordinator.</summary>
    private async Task<(long ReferralId, long TaskId)> TakenAsync(string coordinator = "coordinator")
    {
        var sent = await SendAsync<SubmitReferral.Result>(
            new SubmitReferral.Command(ReferralForms.Discharge(Today, await app.NewNhsNumberAsync()), Guid.NewGuid().ToString("N")), "referrer");
        var referralId = sent.ReferralId!.Value;
        await using var connection = await app.OpenAsync();
        var taskId = await connection.ExecuteScalarAsync<long>("SELECT id FROM triage_task WHERE referral_id = @referralId", new { referralId });
        await SendAsync(new TakeReferral.Command(taskId), coordinator);
        return (referralId, taskId);
    }

    private async Task<(long ServiceId, long ProviderId)> ServiceAsync(string name)
    {
        await using var connection = await app.OpenAsync();
        return await connection.QuerySingleAsync<(long, long)>("SELECT id, organisation_id FROM service WHERE name = @name", new { name });
    }

    /// <summary>Carewell under amber caution for the test's length: its services are home care, which the coordinator places.</summary>
    private async Task<IAsyncDisposable> AmberAsync()
    {
        var (_, provider) = await ServiceAsync(South);
        const string Caution = "UPDATE organisation SET caution = @caution, caution_note = @note WHERE id = @provider";
        await using (var connection = await app.OpenAsync())
        {
            await connection.ExecuteAsync(Caution, new { caution = "amber", note = "Missed calls under review.", provider });
        }
        return new Restore(async () =>
        {
            await using var connection = await app.OpenAsync();
            await connection.ExecuteAsync(Caution, new { caution = "none", note = (string?)null, provider });
        });
    }

    private sealed class Restore(Func<Task> restore) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync() => await restore();
    }

    private AcceptIntoService.Command Accept(long taskId, long serviceId) => new(taskId, serviceId, Today, HoursPerDay: 2);

    private async Task<long> AskAsync(long taskId, long providerId, long? serviceId, string user = "coordinator") =>
        await SendAsync<long>(new AskCautionApproval.Command(taskId, providerId, serviceId, "Discussed with the family: they will be in for the first week."), user);

    [Fact]
    public async Task AnAmberProvidersService_IsPlacedOnlyOnAManagersApproval_WhichTheCoordinatorCannotGive()
    {
        await using var amber = await AmberAsync();
        var (referralId, taskId) = await TakenAsync();
        var (service, provider) = await ServiceAsync(South);

        var unasked = await Assert.ThrowsAsync<RuleBroken>(() => SendAsync(Accept(taskId, service), "coordinator"));
        Assert.Contains("amber caution", unasked.Message, StringComparison.Ordinal);
        Assert.Contains("manager", unasked.Message, StringComparison.Ordinal);
        var approvalId = await AskAsync(taskId, provider, service);
        var waiting = await Assert.ThrowsAsync<RuleBroken>(() => SendAsync(Accept(taskId, service), "coordinator"));
        Assert.Contains("waiting for a manager", waiting.Message, StringComparison.Ordinal);
        // Nobody but a manager decides: not the coordinator who asked, nor the bed bureau.
        await Assert.ThrowsAsync<AccessDenied>(() => SendAsync(new DecideCautionApproval.Command(approvalId, true, "Fine by me."), "coordinator"));
        await Assert.ThrowsAsync<AccessDenied>(() => SendAsync(new DecideCautionApproval.Command(approvalId, true, "Fine by me."), "bedbureau"));
        var asked = Assert.Single((await SendAsync<CautionApprovals.Result>(new CautionApprovals.Query(), "manager")).Waiting, a => a.Id == approvalId);
        Assert.Equal((referralId, "Edith Trelawny", "Carewell Home Care Ltd", South, "Tom Okafor"), (asked.ReferralId, asked.PersonName, asked.Provider, asked.ServiceName, asked.RequestedBy));

        app.Clock.Advance(TimeSpan.FromMinutes(7));
        await SendAsync(new DecideCautionApproval.Command(approvalId, true, "Agreed: check calls twice a week."), "manager");
        var placed = await SendAsync<AcceptIntoService.Result>(Accept(taskId, service), "coordinator");

        await using var connection = await app.OpenAsync();
        var decided = await connection.QuerySingleAsync<(string Status, long DecidedBy, string Name, DateTimeOffset At, string Note)>(
            "SELECT status, decided_by_user_id, decided_by_name, decided_at, decision_note FROM caution_approval WHERE id = @approvalId", new { approvalId });
        var manager = await connection.ExecuteScalarAsync<long>("SELECT id FROM staff_user WHERE username = 'manager'");
        Assert.Equal(("approved", manager, "David Trelawney", "Agreed: check calls twice a week."), (decided.Status, decided.DecidedBy, decided.Name, decided.Note));
        Assert.Equal(app.Clock.GetUtcNow(), decided.At, TimeSpan.FromMilliseconds(1));
        Assert.Equal(approvalId, await connection.ExecuteScalarAsync<long?>("SELECT caution_approval_id FROM placement WHERE id = @PlacementId", new { placed.PlacementId }));
        Assert.DoesNotContain((await SendAsync<CautionApprovals.Result>(new CautionApprovals.Query(), "manager")).Waiting, a => a.Id == approvalId);
        // The referral's story says who asked, who approved, and what was agreed.
        var story = await SendAsync<TrackReferral.Result>(new TrackReferral.Query(referralId), "coordinator");
        Assert.Contains(story.Timeline, e => e is { Kind: "approval.requested", Actor: "Tom Okafor" });
        Assert.Contains(story.Timeline, e => e is { Kind: "approval.approved", Actor: "David Trelawney" });
        Assert.Contains(story.Notes, n => n.Text.Contains("approved by David Trelawney", StringComparison.Ordinal) && n.Text.Contains("check calls twice a week", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AnApproval_IsForItsOwnReferralAndService_OnceOnly_AndARefusalStopsThePlacement()
    {
        await using var amber = await AmberAsync();
        var (south, provider) = await ServiceAsync(South);
        var (north, _) = await ServiceAsync(North);
        var (_, approvedTask) = await TakenAsync();
        var (otherReferral, otherTask) = await TakenAsync("jo.nankivell");
        var approvalId = await AskAsync(approvedTask, provider, south);
        await SendAsync(new DecideCautionApproval.Command(approvalId, true, "Agreed."), "manager");

        // Not for another service of the provider, nor for another referral.
        await Assert.ThrowsAsync<RuleBroken>(() => SendAsync(Accept(approvedTask, north), "coordinator"));
        await Assert.ThrowsAsync<RuleBroken>(() => SendAsync(Accept(otherTask, south), "jo.nankivell"));
        // Decided once: a second decision is refused, and the first stands.
        var again = await Assert.ThrowsAsync<Conflict>(() => SendAsync(new DecideCautionApproval.Command(approvalId, false, "Changed my mind."), "manager"));
        Assert.Contains("David Trelawney", again.Message, StringComparison.Ordinal);

        var refusedId = await AskAsync(otherTask, provider, south, "jo.nankivell");
        await Assert.ThrowsAsync<Conflict>(() => AskAsync(otherTask, provider, south, "jo.nankivell"));
        await SendAsync(new DecideCautionApproval.Command(refusedId, false, "Not while the missed calls are open: use Home First."), "manager");
        var refused = await Assert.ThrowsAsync<RuleBroken>(() => SendAsync(Accept(otherTask, south), "jo.nankivell"));
        Assert.Contains("refused", refused.Message, StringComparison.Ordinal);
        Assert.Contains("Home First", refused.Message, StringComparison.Ordinal);
        // A refusal can be asked about again, after a new discussion.
        await AskAsync(otherTask, provider, south, "jo.nankivell");
        Assert.Contains((await SendAsync<TrackReferral.Result>(new TrackReferral.Query(otherReferral), "coordinator")).Timeline, e => e is { Kind: "approval.refused", Actor: "David Trelawney" });

        await SendAsync(Accept(approvedTask, south), "coordinator");
    }

    [Fact]
    public async Task AnApproval_IsAskedOnlyByTheReferralsHolder_ForAProviderUnderAmberCaution()
    {
        var (_, taskId) = await TakenAsync();
        var (south, provider) = await ServiceAsync(South);

        var none = await Assert.ThrowsAsync<RuleBroken>(() => AskAsync(taskId, provider, south));
        Assert.Contains("not under an amber caution", none.Message, StringComparison.Ordinal);
        await using var amber = await AmberAsync();
        await Assert.ThrowsAsync<Conflict>(() => AskAsync(taskId, provider, south, "jo.nankivell"));
        await Assert.ThrowsAsync<AccessDenied>(() => AskAsync(taskId, provider, south, "manager"));
        var (other, _) = await ServiceAsync("Home First Reablement - North");
        await Assert.ThrowsAsync<RuleBroken>(() => AskAsync(taskId, provider, other));
    }
}

public sealed class CautionApprovalOnSqliteTests(AppFactory app) : CautionApprovalTests(app), IClassFixture<AppFactory>;

public sealed class CautionApprovalOnPostgresTests(PostgresAppFactory app) : CautionApprovalTests(app), IClassFixture<PostgresAppFactory>;
