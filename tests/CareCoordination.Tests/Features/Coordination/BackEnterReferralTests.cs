using CareCoordination.Domain;
using CareCoordination.Features.Boards;
using CareCoordination.Features.Coordination;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using CareCoordination.Tests.Support;
using Dapper;

namespace CareCoordination.Tests.Features.Coordination;

/// <summary>
/// Paper referrals typed in after downtime: the time each was really made is kept (for the queue and for reports),
/// who typed it and when is recorded and audited, its timeline says it came from paper, and it is triaged like any other.
/// </summary>
public abstract class BackEnterReferralTests(AppFactory app)
{
    private DateTimeOffset Now => app.Clock.GetUtcNow();

    // Whole seconds: the store keeps what it is given, and a test compares what it stored with what it sent.
    private static DateTimeOffset Seconds(DateTimeOffset at) => new(at.Ticks - at.Ticks % TimeSpan.TicksPerSecond, TimeSpan.Zero);

    private async Task<long> ReferringOrganisationAsync()
    {
        await using var connection = await app.OpenAsync();
        return await connection.ExecuteScalarAsync<long>("SELECT MIN(id) FROM organisation WHERE kind = 'acute-trust'");
    }

    private async Task<ReferralForm> FormAsync(DateOnly madeOn) => ReferralForms.Discharge(madeOn, await app.NewNhsNumberAsync());

    private async Task<SubmitReferral.Result> EnterAsync(ReferralForm form, DateTimeOffset? receivedAt, bool olderConfirmed = false) =>
        await app.SendAsync<SubmitReferral.Result>(
            new BackEnterReferral.Command(form, await ReferringOrganisationAsync(), receivedAt, Guid.NewGuid().ToString("N"), olderConfirmed),
            await app.StaffAsync("coordinator"));

    [Fact]
    public async Task PaperReferral_KeepsTheTimeItWasMade_RecordsWhoEnteredItAndWhen_AndSaysSoOnItsTimelineAndInTheAudit()
    {
        var madeAt = Seconds(Now.AddHours(-3));
        var form = await FormAsync(LondonTime.DateOf(madeAt));

        var entered = await EnterAsync(form, madeAt);

        var referralId = entered.ReferralId!.Value;
        await using var connection = await app.OpenAsync();
        var row = await connection.QuerySingleAsync<(DateTimeOffset SubmittedAt, DateTimeOffset CreatedAt, bool EnteredFromPaper, DateTimeOffset EnteredAt, long EnteredBy, long? Referrer, long Organisation)>(
            """
            SELECT submitted_at, created_at, entered_from_paper, entered_at, entered_by_user_id, referrer_user_id, organisation_id
            FROM referral WHERE id = @referralId
            """, new { referralId });
        var coordinatorId = await connection.ExecuteScalarAsync<long>("SELECT id FROM staff_user WHERE username = 'coordinator'");
        Assert.Equal(madeAt, row.SubmittedAt);
        Assert.Equal(madeAt, row.CreatedAt);
        Assert.True(row.EnteredFromPaper);
        Assert.Equal(Seconds(Now), Seconds(row.EnteredAt));
        Assert.Equal(coordinatorId, row.EnteredBy);
        Assert.Null(row.Referrer);
        Assert.Equal(await ReferringOrganisationAsync(), row.Organisation);
        Assert.Equal(madeAt, await connection.ExecuteScalarAsync<DateTimeOffset>("SELECT created_at FROM triage_task WHERE referral_id = @referralId", new { referralId }));

        var timeline = (await app.SendAsync<TrackReferral.Result>(new TrackReferral.Query(referralId), await app.StaffAsync("coordinator"))).Timeline;
        var paper = Assert.Single(timeline, e => e.Kind == "referral.entered-from-paper");
        Assert.Equal("Tom Okafor", paper.Actor);
        Assert.Contains(timeline, e => e.Kind == "referral.submitted");
        Assert.Equal("Entered from a paper referral made during downtime", ReferralText.Change(paper.Kind));
        var audit = await connection.QuerySingleAsync<(string ActorName, string Detail)>(
            "SELECT actor_name, detail FROM audit_event WHERE action = 'BackEnterReferral' AND outcome = 'success' AND entity_type = 'referral' AND entity_id = @referralId",
            new { referralId });
        Assert.Equal("Tom Okafor", audit.ActorName);
        Assert.Contains("paper referral made " + madeAt.ToString("yyyy-MM-ddTHH:mm:ss", System.Globalization.CultureInfo.InvariantCulture), audit.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PaperReferral_NamesTheHospitalSiteOfTheOrganisationOnThePaper()
    {
        var organisation = await ReferringOrganisationAsync();
        var sites = (await app.SendAsync<IReadOnlyList<BackEnterReferral.Site>>(new BackEnterReferral.Sites(), await app.StaffAsync("coordinator")))
            .Where(s => s.OrganisationId == organisation).ToList();
        Assert.True(sites.Count > 1, "The demo's first acute trust has several sites, so the page asks which.");
        var form = await FormAsync(LondonTime.DateOf(Now));
        form.HospitalSite = sites[^1].Code;

        var entered = await EnterAsync(form, Seconds(Now.AddMinutes(-30)));

        await using var connection = await app.OpenAsync();
        Assert.Equal(sites[^1].Code, await connection.ExecuteScalarAsync<string>(
            "SELECT hs.code FROM referral r JOIN hospital_site hs ON hs.id = r.hospital_site_id WHERE r.id = @Id", new { Id = entered.ReferralId }));
    }

    [Fact]
    public async Task PaperReferral_MadeInTheFuture_IsRefused_AndOneFromOverAWeekAgoOnlyOnceConfirmed()
    {
        var future = await Assert.ThrowsAsync<ValidationFailed>(async () => await EnterAsync(await FormAsync(LondonTime.Today(app.Clock)), Now.AddMinutes(5)));
        Assert.Contains("in the future", Assert.Single(future.Errors["ReceivedAt"]), StringComparison.Ordinal);

        var old = Seconds(Now.AddDays(-8));
        var form = await FormAsync(LondonTime.DateOf(old));
        form.ExpectedDischargeOn = null;
        var unconfirmed = await Assert.ThrowsAsync<ValidationFailed>(async () => await EnterAsync(form, old));
        Assert.Contains("more than 7 days ago", Assert.Single(unconfirmed.Errors["ReceivedAt"]), StringComparison.Ordinal);

        var confirmed = await EnterAsync(form, old, olderConfirmed: true);
        Assert.NotNull(confirmed.ReferralId);
    }

    [Fact]
    public async Task PaperReferral_MadeBeforeOneSentOnline_IsAheadOfItInTheQueue_WithItsClockRunningFromWhenItWasMade()
    {
        var coordinator = await app.StaffAsync("coordinator");
        var today = LondonTime.Today(app.Clock);
        var online = await FormAsync(today);
        online.Urgency = "routine";
        var sentOnline = await app.SendAsync<SubmitReferral.Result>(new SubmitReferral.Command(online, Guid.NewGuid().ToString("N")), await app.StaffAsync("referrer"));
        app.Clock.Advance(TimeSpan.FromMinutes(5));
        var paper = await FormAsync(today);
        paper.Urgency = "routine";
        var madeAt = Seconds(Now.AddHours(-2));

        var entered = await EnterAsync(paper, madeAt);

        var rows = (await app.SendAsync<CoordinationQueue.Result>(new CoordinationQueue.Query(), coordinator)).Rows.ToList();
        var paperAt = rows.FindIndex(r => r.ReferralId == entered.ReferralId);
        var onlineAt = rows.FindIndex(r => r.ReferralId == sentOnline.ReferralId);
        Assert.True(paperAt >= 0 && onlineAt >= 0);
        Assert.True(paperAt < onlineAt, $"the paper referral made two hours ago is at {paperAt}, after the one sent online five minutes ago at {onlineAt}");
        Assert.True(rows[paperAt].Clock.Waited >= TimeSpan.FromHours(2));
    }

    [Fact]
    public async Task PaperReferral_WithOnlyWhatThePaperMustCarry_IsEntered_AndWhatItLacksIsMarkedForTriage()
    {
        var form = new ReferralForm
        {
            NhsNumber = await app.NewNhsNumberAsync(), GivenName = "Ada", FamilyName = "Penrose", DateOfBirth = new DateOnly(1936, 3, 4),
            AddressLine = "1 Mill Lane, Ashbury", Postcode = "WM1 4QT", Sex = "unknown", Ethnicity = "Z", Urgency = "routine", ConsentToShare = true,
        };

        var entered = await EnterAsync(form, Seconds(Now.AddMinutes(-40)));

        var row = (await app.SendAsync<CoordinationQueue.Result>(new CoordinationQueue.Query(), await app.StaffAsync("coordinator"))).Rows
            .Single(r => r.ReferralId == entered.ReferralId);
        Assert.Equal(["Source", "Pathway", "Needs", "PersonWishes", "ConsentGivenBy", "Summary"], row.InformationNeeded.Select(i => i.Property));
    }

    [Fact]
    public async Task PaperReferral_MadeYesterday_CountsInYesterdaysFigures_NotTodays()
    {
        var manager = await app.StaffAsync("manager");
        var before = (await app.SendAsync<CapacityBoard.Result>(new CapacityBoard.Query(), manager)).ReferralsToday;
        var yesterdayEvening = LondonTime.StartOfToday(app.Clock).AddHours(-2);
        var form = await FormAsync(LondonTime.DateOf(yesterdayEvening));

        await EnterAsync(form, yesterdayEvening);

        Assert.Equal(before, (await app.SendAsync<CapacityBoard.Result>(new CapacityBoard.Query(), manager)).ReferralsToday);
    }

    [Fact]
    public async Task PaperReferral_MayBeEnteredOnlyByTheCoordinationCentre()
    {
        var command = new BackEnterReferral.Command(await FormAsync(LondonTime.Today(app.Clock)), await ReferringOrganisationAsync(), Now.AddHours(-1), Guid.NewGuid().ToString("N"));

        await Assert.ThrowsAsync<AccessDenied>(async () => await app.SendAsync(command, await app.StaffAsync("referrer")));
        await Assert.ThrowsAsync<AccessDenied>(async () => await app.SendAsync(command, await app.StaffAsync("bedbureau")));
    }
}

public sealed class BackEnterReferralOnSqliteTests(AppFactory app) : BackEnterReferralTests(app), IClassFixture<AppFactory>;

public sealed class BackEnterReferralOnPostgresTests(PostgresAppFactory app) : BackEnterReferralTests(app), IClassFixture<PostgresAppFactory>;
