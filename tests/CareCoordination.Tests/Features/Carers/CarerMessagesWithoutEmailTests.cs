using CareCoordination.Domain;
using CareCoordination.Features.Carers;
using CareCoordination.Features.Coordination;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using CareCoordination.Tests.Support;
using Dapper;

namespace CareCoordination.Tests.Features.Carers;

/// <summary>
/// The demo default, no Smtp:Host: a message the person agreed to is still written with the decision, and recorded as
/// not sent, with why, on the referral's timeline: never dropped without a word.
/// </summary>
public abstract class CarerMessagesWithoutEmailTests(AppFactory app)
{
    private DateOnly Today => LondonTime.Today(app.Clock);

    [Fact]
    public async Task NoEmailServerConfigured_TheMessageIsRecordedAsNotSent_OnTheTimeline()
    {
        var form = ReferralForms.Discharge(Today, await app.NewNhsNumberAsync());
        form.CarerEmail = "susan@example.org";
        form.CarerMayBeTold = true;
        var referralId = (await app.SendAsync<SubmitReferral.Result>(new SubmitReferral.Command(form, Guid.NewGuid().ToString("N")), await app.StaffAsync("referrer"))).ReferralId!.Value;
        long taskId;
        await using (var connection = await app.OpenAsync())
        {
            taskId = await connection.ExecuteScalarAsync<long>("SELECT id FROM triage_task WHERE referral_id = @referralId", new { referralId });
        }
        var coordinator = await app.StaffAsync("coordinator");
        await app.SendAsync(new TakeReferral.Command(taskId), coordinator);
        await app.SendAsync(new DeclineReferral.Command(taskId, "needs-met"), coordinator);

        var deadline = DateTime.UtcNow.AddSeconds(30);
        (string Status, string? LastError, int Attempts) message;
        while (true)
        {
            await using var connection = await app.OpenAsync();
            message = await connection.QuerySingleAsync<(string, string?, int)>(
                "SELECT status, last_error, attempts FROM carer_message WHERE referral_id = @referralId", new { referralId });
            if (message.Status != "queued")
            {
                break;
            }
            Assert.True(DateTime.UtcNow < deadline, "The message was never recorded as not sent.");
            await Task.Delay(50);
        }
        Assert.Equal(("not-sent", "e-mail is not configured (Smtp:Host).", 0), message);
        var timeline = (await app.SendAsync<TrackReferral.Result>(new TrackReferral.Query(referralId), await app.StaffAsync("referrer"))).Timeline;
        var notSent = Assert.Single(timeline, e => e.Kind == "carer-message.not-sent");
        Assert.Equal("the decision (declined): e-mail is not configured (Smtp:Host).", notSent.Detail);
        Assert.Equal("E-mail to the carer not sent", ReferralText.Change(notSent.Kind));
        Assert.Equal("declined", (await app.SendAsync<TrackReferral.Result>(new TrackReferral.Query(referralId), coordinator)).Referral.Status);
    }

    [Fact]
    public async Task AgreementWithoutAnEmail_IsRefusedOnSubmission_SayingWhatToDo()
    {
        var form = ReferralForms.Discharge(Today, await app.NewNhsNumberAsync());
        form.CarerMayBeTold = true;
        var referrer = await app.StaffAsync("referrer");

        var failed = await Assert.ThrowsAsync<ValidationFailed>(() => app.SendAsync(new SubmitReferral.Command(form, Guid.NewGuid().ToString("N")), referrer));

        Assert.Equal(["Give the carer's e-mail address, so they can be told."], failed.Errors["Form.CarerEmail"]);
    }
}

public sealed class CarerMessagesWithoutEmailOnSqliteTests(AppFactory app) : CarerMessagesWithoutEmailTests(app), IClassFixture<AppFactory>;

public sealed class CarerMessagesWithoutEmailOnPostgresTests(PostgresAppFactory app) : CarerMessagesWithoutEmailTests(app), IClassFixture<PostgresAppFactory>;
