using System.Net;
using CareCoordination.Domain;
using CareCoordination.Features.Coordination;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using CareCoordination.Tests.Support;
using Dapper;

namespace CareCoordination.Tests.Features.Referrals;

/// <summary>After submitting: the referrer's list, answers, notes and cancelling, and nobody else's referrals.</summary>
public sealed class FollowReferralTests(AppFactory app) : IClassFixture<AppFactory>
{
    private DateOnly Today => LondonTime.Today(app.Clock);

    private async Task<long> SubmitAsync(string user = "referrer")
    {
        var result = await app.SendAsync<SubmitReferral.Result>(
            new SubmitReferral.Command(ReferralForms.Discharge(Today, await app.NewNhsNumberAsync()), Guid.NewGuid().ToString("N")), await app.StaffAsync(user));
        return result.ReferralId!.Value;
    }

    [Fact]
    public async Task MyReferrals_ShowsTheNewReferral_WaitingInTheCoordinationQueue()
    {
        var id = await SubmitAsync();

        var mine = await app.SendAsync<MyReferrals.Result>(new MyReferrals.Query(Search: "Trelawny", Take: 200), await app.StaffAsync("aisha.begum"));

        var row = Assert.Single(mine.Referrals, r => r.Id == id);
        Assert.Equal(("submitted", "coordination", "Edith Trelawny"), (row.Status, row.Queue, row.PersonName));
        var theirs = await app.SendAsync<MyReferrals.Result>(new MyReferrals.Query(MyReferrals.Show.All, Take: 200), await app.StaffAsync("gareth.evans"));
        Assert.DoesNotContain(theirs.Referrals, r => r.Id == id);
    }

    [Fact]
    public async Task AnotherOrganisation_CannotSeeOrActOnTheReferral_AndIsToldNotFound()
    {
        var id = await SubmitAsync();
        var other = await app.StaffAsync("gareth.evans");

        await Assert.ThrowsAsync<NotFound>(() => app.SendAsync<TrackReferral.Result>(new TrackReferral.Query(id), other));
        await Assert.ThrowsAsync<NotFound>(() => app.SendAsync(new AddReferralNote.Command(id, "Hello"), other));
        await Assert.ThrowsAsync<NotFound>(() => app.SendAsync(new CancelReferral.Command(id, "Not mine"), other));
        await Assert.ThrowsAsync<NotFound>(() => app.SendAsync(new AnswerInformationRequest.Command(id, "Answer"), other));

        await using var connection = await app.OpenAsync();
        Assert.Equal("submitted", await connection.ExecuteScalarAsync<string>("SELECT status FROM referral WHERE id = @id", new { id }));
        Assert.Equal(0, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM referral_note WHERE referral_id = @id", new { id }));
    }

    [Fact]
    public async Task Summary_IsServedToItsOrganisation_And404ToAnother()
    {
        var id = await SubmitAsync();
        using var own = app.CreateBrowserlessClient();
        await app.SignInAsync(own, "referrer", AppFactory.Password);
        using var other = app.CreateBrowserlessClient();
        await app.SignInAsync(other, "gareth.evans", AppFactory.Password);

        var page = await own.GetAsync($"/referrals/{id}/summary");
        var refused = await other.GetAsync($"/referrals/{id}/summary");

        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("Edith Trelawny", await page.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, refused.StatusCode);
        Assert.DoesNotContain("Trelawny", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cancel_ClosesTheReferralAndItsTask_AndCannotBeDoneTwice()
    {
        var id = await SubmitAsync();
        var referrer = await app.StaffAsync("referrer");

        await app.SendAsync(new CancelReferral.Command(id, "Family have arranged private care."), referrer);

        await using var connection = await app.OpenAsync();
        Assert.Equal(("cancelled", "Family have arranged private care."), await connection.QuerySingleAsync<(string, string)>(
            "SELECT status, outcome_reason FROM referral WHERE id = @id", new { id }));
        Assert.Equal("cancelled", await connection.ExecuteScalarAsync<string>("SELECT status FROM triage_task WHERE referral_id = @id", new { id }));
        var again = await Assert.ThrowsAsync<RuleBroken>(() => app.SendAsync(new CancelReferral.Command(id, "Again"), referrer));
        Assert.Contains("cancelled", again.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<ValidationFailed>(() => app.SendAsync(new CancelReferral.Command(id, " "), referrer));
    }

    /// <summary>
    /// A referral of the referrer's trust that a coordinator has asked about: made here, as the demo seed's history has one
    /// only on some days (CI found none on 4 December). Its id and its task's.
    /// </summary>
    private async Task<(long Id, long Task)> AskedAboutAsync()
    {
        var id = await SubmitAsync();
        await using var connection = await app.OpenAsync();
        var task = await connection.ExecuteScalarAsync<long>("SELECT id FROM triage_task WHERE referral_id = @id", new { id });
        var coordinator = await app.StaffAsync("coordinator");
        await app.SendAsync(new TakeReferral.Command(task), coordinator);
        await app.SendAsync(new RequestInformation.Command(task, "Is a key safe fitted?"), coordinator);
        return (id, task);
    }

    [Fact]
    public async Task Answer_ReturnsTheReferralToTriage_AndRestartsTheClock()
    {
        await using var connection = await app.OpenAsync();
        var (id, _) = await AskedAboutAsync();
        var referrer = await app.StaffAsync("referrer");
        var notAsked = await SubmitAsync();
        await Assert.ThrowsAsync<RuleBroken>(() => app.SendAsync(new AnswerInformationRequest.Command(notAsked, "Early answer"), referrer));

        await app.SendAsync(new AnswerInformationRequest.Command(id, "Key safe code is with the daughter."), referrer);

        var view = await app.SendAsync<TrackReferral.Result>(new TrackReferral.Query(id), referrer);
        Assert.Equal("in-triage", view.Referral.Status);
        Assert.Equal("in-progress", await connection.ExecuteScalarAsync<string>(
            "SELECT status FROM triage_task WHERE referral_id = @id ORDER BY id DESC LIMIT 1", new { id }));
        Assert.Equal(("information-response", "Key safe code is with the daughter."), (view.Notes[^1].Kind, view.Notes[^1].Text));
        Assert.Equal("referral.information-received", view.Timeline[^1].Kind);
    }

    [Fact]
    public async Task AReferrersUpdate_IsTheAnswer_WhileAQuestionWaits_AndANoteOtherwise()
    {
        // A partner's update message sends what is new without knowing whether a question was asked meanwhile: the command
        // decides on the referral as it reads it, so an answer is never kept as a plain note with the task left on hold.
        await using var connection = await app.OpenAsync();
        var (asked, task) = await AskedAboutAsync();
        var notAsked = await SubmitAsync();
        var referrer = await app.StaffAsync("referrer");
        // The pages keep their two commands: a note added while the question waits is a note, and the task stays on hold.
        await app.SendAsync(new AddReferralNote.Command(asked, "Spoke to the daughter."), referrer);
        Assert.Equal("on-hold", await connection.ExecuteScalarAsync<string>("SELECT status FROM triage_task WHERE id = @task", new { task }));
        Assert.Equal("note", (await app.SendAsync<TrackReferral.Result>(new TrackReferral.Query(asked), referrer)).Notes[^1].Kind);

        await app.SendAsync(new AddReferrersUpdate.Command(asked, "Yes, by the back door."), referrer);
        await app.SendAsync(new AddReferrersUpdate.Command(notAsked, "Daughter will be at the house from 2pm."), referrer);

        var answered = await app.SendAsync<TrackReferral.Result>(new TrackReferral.Query(asked), referrer);
        Assert.Equal(("in-triage", "information-response"), (answered.Referral.Status, answered.Notes[^1].Kind));
        Assert.Equal("in-progress", await connection.ExecuteScalarAsync<string>("SELECT status FROM triage_task WHERE id = @task", new { task }));
        var noted = await app.SendAsync<TrackReferral.Result>(new TrackReferral.Query(notAsked), referrer);
        Assert.Equal(("submitted", "note"), (noted.Referral.Status, Assert.Single(noted.Notes).Kind));
        // Once answered, the same words again are a note: nothing is waiting for an answer now.
        await app.SendAsync(new AddReferrersUpdate.Command(asked, "And the key is under the mat."), referrer);
        Assert.Equal("note", (await app.SendAsync<TrackReferral.Result>(new TrackReferral.Query(asked), referrer)).Notes[^1].Kind);
    }

    [Fact]
    public async Task Note_IsAddedAndShowsInTheTimeline()
    {
        var id = await SubmitAsync();
        var referrer = await app.StaffAsync("referrer");

        await app.SendAsync(new AddReferralNote.Command(id, "Daughter will be at the house from 2pm."), referrer);

        var view = await app.SendAsync<TrackReferral.Result>(new TrackReferral.Query(id), referrer);
        Assert.Equal("Daughter will be at the house from 2pm.", Assert.Single(view.Notes).Text);
        Assert.Equal(["referral.submitted", "task.created", "referral.note-added"], view.Timeline.Select(e => e.Kind));
        Assert.Equal(2, view.Referral.Version);
    }
}
