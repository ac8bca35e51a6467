using CareCoordination.Domain;
using CareCoordination.Features.Admin;
using CareCoordination.Features.BedBureau;
using CareCoordination.Features.Carers;
using CareCoordination.Features.Coordination;
using CareCoordination.Features.Referrals;
using CareCoordination.Tests.Support;
using Dapper;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using MimeKit;

namespace CareCoordination.Tests.Features.Carers;

/// <summary>The real host, with carers' e-mail sent to an SMTP server of the test's own on 127.0.0.1.</summary>
public class CarerMailAppFactory : AppFactory
{
    public CarerMailAppFactory() : this(new SqliteTestStore())
    {
    }

    protected CarerMailAppFactory(ITestStore store) : base(store)
    {
        Mail.Start();
    }

    public TestSmtpServer Mail { get; } = new();

    public const int RetryFirstSeconds = 60;

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.UseSetting("Smtp:Host", "127.0.0.1");
        builder.UseSetting("Smtp:Port", Mail.Port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        // Loopback, to a server with no certificate: the one place plain SMTP is right.
        builder.UseSetting("Smtp:SecureSocketOptions", "None");
        builder.UseSetting("Smtp:From", "care.updates@westmoor.example.org");
        builder.UseSetting("Smtp:TimeoutSeconds", "5");
        builder.UseSetting("CarerMessages:RetryFirstSeconds", RetryFirstSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture));
        builder.UseSetting("CarerMessages:Contact", "the Community Coordination Centre on 01632 960 000");
        builder.ConfigureTestServices(services => services.AddFakeLogging());
    }

    /// <summary>What the host logged.</summary>
    public Microsoft.Extensions.Logging.Testing.FakeLogCollector Logs => Services.GetRequiredService<Microsoft.Extensions.Logging.Testing.FakeLogCollector>();

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        await Mail.DisposeAsync();
        GC.SuppressFinalize(this);
    }
}

public sealed class PostgresCarerMailAppFactory() : CarerMailAppFactory(new PostgresTestStore());

/// <summary>
/// Carers and families kept informed (issue 16, point 9): with the person's agreement, the named carer is e-mailed once
/// when a decision is made and once when support starts, in plain words with nothing clinical; without it, never. The
/// message is an outbox row written with the decision, so a down e-mail server neither undoes nor delays the decision.
/// </summary>
public abstract class CarerMessageTests(CarerMailAppFactory app)
{
    private DateOnly Today => LondonTime.Today(app.Clock);

    private static string NewCarerAddress() => $"carer-{Guid.NewGuid():N}@example.org";

    private async Task<(long ReferralId, long TaskId, ReferralForm Form)> ReferAsync(string carerEmail, bool? agreed, string? infection = "Norovirus contact")
    {
        var form = ReferralForms.Discharge(Today, await app.NewNhsNumberAsync());
        form.CarerEmail = carerEmail;
        form.CarerMayBeTold = agreed;
        form.InfectionStatus = infection;
        form.SafeguardingConcern = true;
        var sent = await app.SendAsync<SubmitReferral.Result>(new SubmitReferral.Command(form, Guid.NewGuid().ToString("N")), await app.StaffAsync("referrer"));
        var referralId = sent.ReferralId!.Value;
        await using var connection = await app.OpenAsync();
        var taskId = await connection.ExecuteScalarAsync<long>(
            "SELECT id FROM triage_task WHERE referral_id = @referralId AND status = 'requested'", new { referralId });
        return (referralId, taskId, form);
    }

    private async Task<long> AcceptIntoReablementAsync(long taskId)
    {
        var coordinator = await app.StaffAsync("coordinator");
        await app.SendAsync(new TakeReferral.Command(taskId), coordinator);
        long serviceId;
        await using (var connection = await app.OpenAsync())
        {
            serviceId = await connection.ExecuteScalarAsync<long>("SELECT id FROM service WHERE name = 'Home First Reablement - North'");
        }
        var accepted = await app.SendAsync<AcceptIntoService.Result>(new AcceptIntoService.Command(taskId, serviceId, Today.AddDays(2)), coordinator);
        return accepted.PlacementId;
    }

    private sealed record MessageRow
    {
        public string Kind { get; init; } = "";
        public string Status { get; init; } = "";
        public int Attempts { get; init; }
        public string? LastError { get; init; }
        public string? Body { get; init; }
    }

    private async Task<IReadOnlyList<MessageRow>> MessagesAsync(long referralId)
    {
        await using var connection = await app.OpenAsync();
        return (await connection.QueryAsync<MessageRow>(
            "SELECT kind AS Kind, status AS Status, attempts AS Attempts, last_error AS LastError, body AS Body FROM carer_message WHERE referral_id = @referralId ORDER BY id",
            new { referralId })).ToList();
    }

    /// <summary>Waits for the background sender to get the referral's messages to a state; fails, saying where they are, if it never does.</summary>
    private async Task<IReadOnlyList<MessageRow>> WhenAsync(long referralId, Func<IReadOnlyList<MessageRow>, bool> done)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var messages = await MessagesAsync(referralId);
            if (done(messages))
            {
                return messages;
            }
            Assert.True(DateTime.UtcNow < deadline,
                "The carer's messages did not get there: " + string.Join("; ", messages.Select(m => $"{m.Kind} {m.Status} x{m.Attempts} {m.LastError}")));
            await Task.Delay(50);
        }
    }

    /// <summary>The sender's log lines once one of them is <paramref name="expected"/>; fails, saying what it logged, if none is within 10 s.</summary>
    private async Task<IReadOnlyList<string>> LoggedBySenderAsync(Func<string, bool> expected)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            var logged = app.Logs.GetSnapshot().Where(l => l.Category == typeof(CarerMessageSender).FullName).Select(l => l.Message).ToList();
            if (logged.Any(expected))
            {
                return logged;
            }
            Assert.True(DateTime.UtcNow < deadline, "The sender did not log the line expected; it logged: " + string.Join(" | ", logged));
            await Task.Delay(50);
        }
    }

    private async Task<IReadOnlyList<TrackReferral.Event>> TimelineAsync(long referralId) =>
        (await app.SendAsync<TrackReferral.Result>(new TrackReferral.Query(referralId), await app.StaffAsync("referrer"))).Timeline;

    private static string BodyOf(MimeMessage message) => (message.TextBody ?? "").ReplaceLineEndings("\n");

    /// <summary>Nothing the e-mail could leak: the NHS number however written, the needs, risks, summary, wishes, strengths and goals.</summary>
    private static void SaysNothingClinical(string body, ReferralForm form)
    {
        var nhs = NhsNumber.Normalise(form.NhsNumber)!;
        Assert.DoesNotContain(nhs, body.Replace(" ", "", StringComparison.Ordinal), StringComparison.Ordinal);
        Assert.DoesNotContain(NhsNumber.Format(nhs), body, StringComparison.Ordinal);
        foreach (var need in form.Needs)
        {
            Assert.DoesNotContain(need, body, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain(ReferralCodes.Needs.LabelOf(need), body, StringComparison.OrdinalIgnoreCase);
        }
        foreach (var words in new[] { form.Summary, form.Strengths, form.Goals, form.PersonWishes, form.FamilyExpectations, form.StaffExpectations, form.InfectionStatus }.OfType<string>())
        {
            Assert.DoesNotContain(words, body, StringComparison.OrdinalIgnoreCase);
        }
        foreach (var word in new[] { "fall", "fracture", "norovirus", "infection", "safeguarding", "diagnos", "pathway", "hospital" })
        {
            Assert.DoesNotContain(word, body, StringComparison.OrdinalIgnoreCase);
        }
    }

    [Fact]
    public async Task AgreedCarer_IsEmailedOnceOnTheDecision_AndOnceWhenSupportStarts_InPlainWords_WithNothingClinical()
    {
        var carer = NewCarerAddress();
        var (referralId, taskId, form) = await ReferAsync(carer, agreed: true);
        await using (var connection = await app.OpenAsync())
        {
            var agreement = await connection.QuerySingleAsync<(string Email, bool Agreed, string RecordedBy)>(
                "SELECT email, agreed, recorded_by FROM referral_carer WHERE referral_id = @referralId", new { referralId });
            Assert.Equal((carer, true, "Priya Shah"), agreement);
        }
        var shown = (await app.SendAsync<TrackReferral.Result>(new TrackReferral.Query(referralId), await app.StaffAsync("coordinator"))).Referral;
        Assert.Equal((true, carer, "Priya Shah"), (shown.CarerMayBeTold, shown.CarerEmail, shown.CarerAgreementRecordedBy));
        Assert.InRange(shown.CarerAgreementRecordedAt!.Value, app.Clock.GetUtcNow().AddMilliseconds(-1), app.Clock.GetUtcNow());
        Assert.StartsWith($"Yes: the person agrees the carer is e-mailed at {carer} when a decision is made and when support starts (recorded by Priya Shah, ",
            CarerAgreement.Describe(shown.CarerMayBeTold, shown.CarerEmail, shown.CarerAgreementRecordedBy, shown.CarerAgreementRecordedAt), StringComparison.Ordinal);

        var placementId = await AcceptIntoReablementAsync(taskId);

        await WhenAsync(referralId, m => m.Count == 1 && m[0].Status == "sent");
        var decision = Assert.Single(app.Mail.To(carer));
        Assert.Equal("Edith's support has been agreed", decision.Subject);
        var body = BodyOf(decision);
        Assert.StartsWith("Dear Susan Trelawny,", body, StringComparison.Ordinal);
        Assert.Contains("Edith has been offered support from Home First Reablement - North.", body, StringComparison.Ordinal);
        Assert.Contains($"It is planned to start on {Today.AddDays(2).ToString("dddd d MMMM yyyy", System.Globalization.CultureInfo.GetCultureInfo("en-GB"))}.", body, StringComparison.Ordinal);
        Assert.Contains($"please contact the Community Coordination Centre on 01632 960 000 and give the reference referral {referralId}.", body, StringComparison.Ordinal);
        SaysNothingClinical(body, form);

        await app.SendAsync(new StartServicePlacement.Command(placementId), await app.StaffAsync("coordinator"));

        await WhenAsync(referralId, m => m.Count == 2 && m.All(x => x.Status == "sent"));
        Assert.Equal(2, app.Mail.To(carer).Count);
        var started = app.Mail.To(carer).Single(m => m.Subject == "Edith's support has started");
        Assert.Contains($"Edith's support from Home First Reablement - North started on {Today.ToString("dddd d MMMM yyyy", System.Globalization.CultureInfo.GetCultureInfo("en-GB"))}.", BodyOf(started), StringComparison.Ordinal);
        SaysNothingClinical(BodyOf(started), form);

        var timeline = await TimelineAsync(referralId);
        var entries = timeline.Where(e => e.Kind.StartsWith("carer-message.", StringComparison.Ordinal)).Select(e => (e.Kind, e.Detail)).ToList();
        Assert.Equal(
            [
                ("carer-message.queued", "the decision (accepted)"),
                ("carer-message.sent", $"the decision (accepted), to {carer}"),
                ("carer-message.queued", "the start of support"),
                ("carer-message.sent", $"the start of support, to {carer}"),
            ], entries);
    }

    [Fact]
    public async Task CarerNamedButNotAsked_KeepsNoAgreement_ShowsNotAsked_AndNothingIsQueued()
    {
        var form = ReferralForms.Discharge(Today, await app.NewNhsNumberAsync());
        form.CarerName = "Susan Trelawny";
        form.CarerRelationship = "Daughter";
        form.CarerEmail = null;
        form.CarerMayBeTold = null;
        var referralId = (await app.SendAsync<SubmitReferral.Result>(new SubmitReferral.Command(form, Guid.NewGuid().ToString("N")), await app.StaffAsync("referrer"))).ReferralId!.Value;
        long taskId;
        await using (var connection = await app.OpenAsync())
        {
            Assert.Equal(0, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM referral_carer WHERE referral_id = @referralId", new { referralId }));
            taskId = await connection.ExecuteScalarAsync<long>("SELECT id FROM triage_task WHERE referral_id = @referralId AND status = 'requested'", new { referralId });
        }
        var shown = (await app.SendAsync<TrackReferral.Result>(new TrackReferral.Query(referralId), await app.StaffAsync("coordinator"))).Referral;
        // The carer is still on the referral, as the person's carer; only the agreement is "not asked".
        Assert.Equal(("Susan Trelawny", "Daughter"), (shown.Person.CarerName, shown.Person.CarerRelationship));
        Assert.Equal("Not asked: nothing is sent to the carer.",
            CarerAgreement.Describe(shown.CarerMayBeTold, shown.CarerEmail, shown.CarerAgreementRecordedBy, shown.CarerAgreementRecordedAt));

        // A decision, which would tell a carer who had agreed (the outbox row is written with it).
        await app.SendAsync(new TakeReferral.Command(taskId), await app.StaffAsync("coordinator"));
        await app.SendAsync(new DeclineReferral.Command(taskId, "other", "Needs a specialist assessment first"), await app.StaffAsync("coordinator"));

        await using var after = await app.OpenAsync();
        Assert.Equal(0, await after.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM carer_message WHERE referral_id = @referralId", new { referralId }));
    }

    [Fact]
    public async Task PersonDidNotAgree_NoMessageIsQueued_AndNoEmailIsSent()
    {
        var carer = NewCarerAddress();
        var (referralId, taskId, _) = await ReferAsync(carer, agreed: false);
        await using (var connection = await app.OpenAsync())
        {
            Assert.False(await connection.ExecuteScalarAsync<bool>("SELECT agreed FROM referral_carer WHERE referral_id = @referralId", new { referralId }));
        }

        var placementId = await AcceptIntoReablementAsync(taskId);
        await app.SendAsync(new StartServicePlacement.Command(placementId), await app.StaffAsync("coordinator"));

        Assert.Empty(await MessagesAsync(referralId));
        // A later agreed message goes out: by then anything wrongly sent for the first would have gone before it.
        var (other, otherTask, _) = await ReferAsync(NewCarerAddress(), agreed: true);
        await AcceptIntoReablementAsync(otherTask);
        await WhenAsync(other, m => m.Count == 1 && m[0].Status == "sent");
        Assert.Empty(app.Mail.To(carer));
        Assert.DoesNotContain(await TimelineAsync(referralId), e => e.Kind.StartsWith("carer-message.", StringComparison.Ordinal));
    }

    [Fact]
    public async Task DeclinedAndClosed_AreToldWithoutTheReason()
    {
        var declinedCarer = NewCarerAddress();
        var (declined, declinedTask, form) = await ReferAsync(declinedCarer, agreed: true);
        await app.SendAsync(new TakeReferral.Command(declinedTask), await app.StaffAsync("coordinator"));
        await app.SendAsync(new DeclineReferral.Command(declinedTask, "other", "Needs a specialist dementia nursing assessment first"), await app.StaffAsync("coordinator"));
        var closedCarer = NewCarerAddress();
        var (closed, _, _) = await ReferAsync(closedCarer, agreed: true);
        await app.SendAsync(new CancelReferral.Command(closed, "Readmitted with a chest infection"), await app.StaffAsync("referrer"));

        await WhenAsync(declined, m => m.Count == 1 && m[0].Status == "sent");
        await WhenAsync(closed, m => m.Count == 1 && m[0].Status == "sent");
        var no = BodyOf(Assert.Single(app.Mail.To(declinedCarer)));
        Assert.Contains("The coordination centre has decided not to arrange support through this referral.", no, StringComparison.Ordinal);
        Assert.DoesNotContain("dementia", no, StringComparison.OrdinalIgnoreCase);
        SaysNothingClinical(no, form);
        var gone = BodyOf(Assert.Single(app.Mail.To(closedCarer)));
        Assert.Contains("The referral for support for Edith has been closed", gone, StringComparison.Ordinal);
        Assert.DoesNotContain("chest", gone, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("readmitted", gone, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task AdmissionToABed_TellsTheCarerTheDayAndThePlace()
    {
        var carer = NewCarerAddress();
        var (referralId, _, reserved, bed) = await ReserveABedForTodayAsync(carer, agreed: true, infection: "Norovirus contact");
        var bureau = await app.StaffAsync("bedbureau");
        await app.SendAsync(new ConfirmAdmission.Command(reserved.PlacementId), bureau);

        await WhenAsync(referralId, m => m.Count == 2 && m.All(x => x.Status == "sent"));
        var mail = app.Mail.To(carer);
        Assert.Contains($"Edith has been offered support from {bed.Site}.", BodyOf(mail.Single(m => m.Subject == "Edith's support has been agreed")), StringComparison.Ordinal);
        Assert.Contains($"Edith's support from {bed.Site} started on", BodyOf(mail.Single(m => m.Subject == "Edith's support has started")), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnAgreedPlaceNoLongerHeld_TellsTheCarerWhoWasToldItWasAgreed_AndAPersonWhoDidNotAgreeHasNothingSent()
    {
        var carer = NewCarerAddress();
        var (referralId, form, site) = await ReserveABedThenLetTheReservationLapseAsync(carer, agreed: true,
            beforeItLapses: id => WhenAsync(id, m => m.Count == 1 && m[0].Status == "sent"));
        var (unagreed, _, _) = await ReserveABedThenLetTheReservationLapseAsync(NewCarerAddress(), agreed: false, beforeItLapses: _ => Task.CompletedTask);

        var messages = await WhenAsync(referralId, m => m.Count == 2 && m.All(x => x.Status == "sent"));
        Assert.Equal([CarerMessages.Accepted, CarerMessages.PlaceNoLongerHeld], messages.Select(m => m.Kind));
        var lapsed = app.Mail.To(carer).Single(m => m.Subject == "An update about Edith's support");
        var body = BodyOf(lapsed);
        Assert.Contains($"The place at {site} that was agreed for Edith is no longer being held for them. "
            + "We are arranging support again, and you will hear from us when it is agreed.", body, StringComparison.Ordinal);
        // The site's own name (a community hospital's) is the place the carer was told of already; nothing else may say more.
        SaysNothingClinical(body.Replace(site, "the site", StringComparison.Ordinal), form);
        Assert.Contains(await TimelineAsync(referralId), e => (e.Kind, e.Detail) == ("carer-message.queued", "the agreed place no longer being held"));
        Assert.Empty(await MessagesAsync(unagreed));
    }

    [Fact]
    public async Task AnAgreedPlaceNoLongerHeld_BeforeTheCarerWasToldOfIt_WithdrawsThatNewsInsteadOfSendingMore()
    {
        var carer = NewCarerAddress();
        // The acceptance is waiting for its next attempt (the e-mail server was down) when the reservation runs out.
        var (referralId, _, _) = await ReserveABedThenLetTheReservationLapseAsync(carer, agreed: true, beforeItLapses: async id =>
        {
            await WhenAsync(id, m => m.Count == 1 && m[0].Status == "sent");
            await using var connection = await app.OpenAsync();
            await connection.ExecuteAsync(
                "UPDATE carer_message SET status = 'queued', sent_at = NULL, next_attempt_at = @later WHERE referral_id = @id",
                new { id, later = app.Clock.GetUtcNow().AddDays(3) });
        });

        var withdrawn = Assert.Single(await MessagesAsync(referralId));
        Assert.Equal((CarerMessages.Accepted, "not-sent", "withdrawn before it was sent: the place it told of is no longer held"),
            (withdrawn.Kind, withdrawn.Status, withdrawn.LastError));
        Assert.Contains(await TimelineAsync(referralId), e => (e.Kind, e.Detail)
            == ("carer-message.not-sent", "the decision (accepted): withdrawn before it was sent: the place it told of is no longer held"));
    }

    /// <summary>A bed reserved for today, and then the day and its grace gone by without an admission.</summary>
    private async Task<(long ReferralId, ReferralForm Form, string Site)> ReserveABedThenLetTheReservationLapseAsync(string carer, bool agreed,
        Func<long, Task> beforeItLapses)
    {
        var (referralId, form, reserved, bed) = await ReserveABedForTodayAsync(carer, agreed, infection: null);
        await beforeItLapses(referralId);
        app.Clock.Advance(reserved.ReservedUntil - app.Clock.GetUtcNow() + TimeSpan.FromMinutes(1));
        var bureau = await app.StaffAsync("bedbureau");
        while (await app.SendAsync<int>(new ExpireReservations.Command(), bureau) > 0)
        {
        }
        return (referralId, form, bed.Site);
    }

    private static int _bedsAdded;

    /// <summary>
    /// Referred, redirected to the bed bureau and a rehabilitation side room reserved for today. The bed is one the test adds:
    /// which of the demo's beds are free depends on the day the demo was made (on 28 February 2027 no side room was).
    /// </summary>
    private async Task<(long ReferralId, ReferralForm Form, ReserveBed.Result Reserved, (long Id, string Site) Bed)> ReserveABedForTodayAsync(
        string carer, bool agreed, string? infection)
    {
        var (referralId, taskId, form) = await ReferAsync(carer, agreed, infection);
        var coordinator = await app.StaffAsync("coordinator");
        var bureau = await app.StaffAsync("bedbureau");
        await app.SendAsync(new TakeReferral.Command(taskId), coordinator);
        await app.SendAsync(new RedirectToBedBureau.Command(taskId, "Needs a rehabilitation bed for two weeks first."), coordinator);
        long bureauTask;
        (long Id, string Site) ward;
        await using (var connection = await app.OpenAsync())
        {
            bureauTask = await connection.ExecuteScalarAsync<long>(
                "SELECT id FROM triage_task WHERE referral_id = @referralId AND status = 'requested'", new { referralId });
            ward = await connection.QueryFirstAsync<(long, string)>(
                """
                SELECT w.id, s.name FROM ward w JOIN site s ON s.id = w.site_id JOIN organisation o ON o.id = s.organisation_id
                WHERE s.active = @yes AND o.caution = 'none' AND EXISTS (SELECT 1 FROM bed b WHERE b.ward_id = w.id AND b.bed_type = 'rehabilitation')
                ORDER BY w.id
                """, new { yes = true });
        }
        var bed = (Assert.Single(await app.SendAsync<IReadOnlyList<long>>(
            new AddBeds.Command(ward.Id, 1, "Carer", "rehabilitation", "any", SingleRoom: true, FirstNumber: Interlocked.Increment(ref _bedsAdded)), await app.StaffAsync("admin"))), ward.Site);
        await app.SendAsync(new TakeReferral.Command(bureauTask), bureau);
        var reserved = await app.SendAsync<ReserveBed.Result>(new ReserveBed.Command(bureauTask, bed.Item1, Today), bureau);
        return (referralId, form, reserved, bed);
    }

    [Fact]
    public async Task EmailServerDown_TheDecisionStands_TheMessageWaitsAndIsRetried_ThenDeliveredOnceWhenTheServerIsBack()
    {
        var carer = NewCarerAddress();
        var (referralId, taskId, _) = await ReferAsync(carer, agreed: true);
        await app.Mail.StopAsync();
        try
        {
            await AcceptIntoReablementAsync(taskId);

            await using (var connection = await app.OpenAsync())
            {
                Assert.Equal("accepted", await connection.ExecuteScalarAsync<string>("SELECT status FROM referral WHERE id = @referralId", new { referralId }));
            }
            var waiting = Assert.Single(await WhenAsync(referralId, m => m.Count == 1 && m[0].Attempts == 1));
            Assert.Equal("queued", waiting.Status);
            Assert.Contains("could not be reached", waiting.LastError, StringComparison.Ordinal);
            var retrying = Assert.Single(await TimelineAsync(referralId), e => e.Kind == "carer-message.retrying");
            Assert.StartsWith("the decision (accepted), attempt 1: The e-mail server could not be reached", retrying.Detail, StringComparison.Ordinal);
            Assert.Contains("Trying again at", retrying.Detail, StringComparison.Ordinal);
        }
        finally
        {
            app.Mail.Start();
        }
        // Not before its time: a poke now finds nothing due.
        var sender = app.Services.GetRequiredService<CarerMessageSender>();
        sender.Poke();
        Assert.Empty(app.Mail.To(carer));

        app.Clock.Advance(TimeSpan.FromSeconds(CarerMailAppFactory.RetryFirstSeconds + 1));
        sender.Poke();

        var sent = Assert.Single(await WhenAsync(referralId, m => m.Count == 1 && m[0].Status == "sent"));
        Assert.Equal(2, sent.Attempts);
        Assert.Single(app.Mail.To(carer));
        Assert.Equal(["carer-message.queued", "carer-message.retrying", "carer-message.sent"],
            (await TimelineAsync(referralId)).Where(e => e.Kind.StartsWith("carer-message.", StringComparison.Ordinal)).Select(e => e.Kind));
    }

    /// <summary>
    /// A server that refuses the carer's address for good: the message fails, with the server's words kept for the staff who
    /// follow it, and the log says why by the codes alone, never the carer's address the server's words carry.
    /// </summary>
    [Fact]
    public async Task AnAddressTheServerRefuses_FailsTheMessage_AndTheLogDoesNotNameIt()
    {
        var carer = NewCarerAddress();
        app.Mail.Refuse(carer);
        var (referralId, _, _) = await ReferAsync(carer, agreed: true);

        // Closed by the referrer: the carer is told of it (and no service's slot is used).
        await app.SendAsync(new CancelReferral.Command(referralId, "Went home with family."), await app.StaffAsync("referrer"));

        var failed = Assert.Single(await WhenAsync(referralId, m => m.Count == 1 && m[0].Status == "failed"));
        Assert.Contains(carer, failed.LastError, StringComparison.OrdinalIgnoreCase);
        // The sender logs the failure once it is recorded (the line says what it became), so the line follows the row by a moment.
        var logged = await LoggedBySenderAsync(line => line.Contains("refused it (550", StringComparison.Ordinal));
        Assert.DoesNotContain(logged, line => line.Contains(carer, StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public async Task TwoSendersAtOnce_SendEachMessageOnce()
    {
        // A second sender beside the host's: the same store, as a second node would be.
        var second = ActivatorUtilities.CreateInstance<CarerMessageSender>(app.Services);
        using var stop = new CancellationTokenSource();
        await second.StartAsync(stop.Token);
        try
        {
            var carers = new List<(long ReferralId, string Carer)>();
            for (var i = 0; i < 4; i++)
            {
                var carer = NewCarerAddress();
                var (referralId, taskId, _) = await ReferAsync(carer, agreed: true);
                await AcceptIntoReablementAsync(taskId);
                second.Poke();
                carers.Add((referralId, carer));
            }
            foreach (var (referralId, carer) in carers)
            {
                await WhenAsync(referralId, m => m.Count == 1 && m[0].Status == "sent");
                Assert.Single(app.Mail.To(carer));
            }
        }
        finally
        {
            await stop.CancelAsync();
            await second.StopAsync(CancellationToken.None);
            second.Dispose();
        }
    }
}

public sealed class CarerMessagesOnSqliteTests(CarerMailAppFactory app) : CarerMessageTests(app), IClassFixture<CarerMailAppFactory>;

public sealed class CarerMessagesOnPostgresTests(PostgresCarerMailAppFactory app) : CarerMessageTests(app), IClassFixture<PostgresCarerMailAppFactory>;
