using System.Net;
using System.Text.Json.Nodes;
using CareCoordination.Domain;
using CareCoordination.Features.BedBureau;
using CareCoordination.Features.Coordination;
using CareCoordination.Features.Discharges;
using CareCoordination.Features.Referrals;
using CareCoordination.Features.Reports.CodeLists;
using CareCoordination.Pipeline;
using CareCoordination.Tests.Support;
using Dapper;
using Mediator;
using Microsoft.Extensions.DependencyInjection;

namespace CareCoordination.Tests.Features.Discharges;

/// <summary>
/// What the discharge returns need, recorded as it happens (issue 13): the pathway intended at triage, the discharge from a
/// person, from a placement starting and from a partner's message, and delay reasons from the dated national lists.
/// </summary>
public abstract class DischargeRecordingTests
{
    private readonly AppFactory app;

    protected DischargeRecordingTests(AppFactory app)
    {
        this.app = app;
        // On a whole second: PostgreSQL keeps microseconds, so times the test compares must not carry ticks below them.
        app.Clock.Advance(TimeSpan.FromTicks(TimeSpan.TicksPerSecond - app.Clock.GetUtcNow().Ticks % TimeSpan.TicksPerSecond));
    }

    private DateOnly Today => LondonTime.Today(app.Clock);

    private DateTimeOffset Now => app.Clock.GetUtcNow();

    private sealed record Discharge
    {
        public DateTimeOffset? DischargedAt { get; init; }
        public string? RecordedFrom { get; init; }
        public string? PathwayIntended { get; init; }
        public string? PathwayAtDischarge { get; init; }
        public string? Destination { get; init; }
        public string? CareLevel { get; init; }
    }

    private async Task<Discharge> DischargeAsync(long referralId)
    {
        await using var connection = await app.OpenAsync();
        return await connection.QuerySingleAsync<Discharge>(
            """
            SELECT discharged_at AS DischargedAt, discharge_recorded_from AS RecordedFrom, pathway_intended AS PathwayIntended,
                   pathway_at_discharge AS PathwayAtDischarge, destination_at_discharge AS Destination, destination_care_level AS CareLevel
            FROM referral WHERE id = @referralId
            """, new { referralId });
    }

    private async Task<long> SendReferralAsync(Action<ReferralForm>? change = null)
    {
        var form = ReferralForms.Discharge(Today, await app.NewNhsNumberAsync());
        change?.Invoke(form);
        var sent = await app.SendAsync<SubmitReferral.Result>(new SubmitReferral.Command(form, Guid.NewGuid().ToString("N")), await app.StaffAsync("referrer"));
        return sent.ReferralId!.Value;
    }

    private async Task<long> OpenTaskAsync(long referralId)
    {
        await using var connection = await app.OpenAsync();
        return await connection.ExecuteScalarAsync<long>(
            "SELECT id FROM triage_task WHERE referral_id = @referralId AND status IN ('requested', 'in-progress', 'on-hold')", new { referralId });
    }

    private async Task SendAsync(IMessage message, string user) => await app.SendAsync(message, await app.StaffAsync(user));

    /// <summary>A service of this kind whose provider is under no caution: accepted with an override, so a full one does not matter.</summary>
    private async Task<long> AcceptIntoAsync(long referralId, string kind)
    {
        (long Id, string Unit) service;
        await using (var connection = await app.OpenAsync())
        {
            service = await connection.QueryFirstAsync<(long, string)>(
                """
                SELECT s.id, s.capacity_unit FROM service s JOIN organisation o ON o.id = s.organisation_id
                WHERE s.kind = @kind AND s.active AND o.caution = 'none' ORDER BY s.id
                """, new { kind });
        }
        var task = await OpenTaskAsync(referralId);
        await SendAsync(new TakeReferral.Command(task), "coordinator");
        var accepted = await app.SendAsync<AcceptIntoService.Result>(
            new AcceptIntoService.Command(task, service.Id, Today, HoursPerDay: service.Unit == "hours" ? 1 : null, OverrideFullService: true, OverrideReason: "Test: the person needs it today."), await app.StaffAsync("coordinator"));
        return accepted.PlacementId;
    }

    private async Task<long> RedirectToBedBureauAsync(long referralId)
    {
        var task = await OpenTaskAsync(referralId);
        await SendAsync(new TakeReferral.Command(task), "coordinator");
        await SendAsync(new RedirectToBedBureau.Command(task, "Not yet safe at home even with reablement."), "coordinator");
        task = await OpenTaskAsync(referralId);
        await SendAsync(new TakeReferral.Command(task), "bedbureau");
        return task;
    }

    /// <summary>A bed of a caution-free provider that fits a woman without an infection, freed for the test if none is, and its site's kind.</summary>
    private async Task<(long BedId, string SiteKind)> FreeBedAsync(bool longTerm = false)
    {
        var types = longTerm ? new[] { "residential", "nursing", "dementia" } : ["rehabilitation", "step-down-nursing"];
        await using var connection = await app.OpenAsync();
        var id = await connection.ExecuteScalarAsync<long?>(
            """
            SELECT b.id FROM bed b JOIN ward w ON w.id = b.ward_id JOIN site s ON s.id = w.site_id JOIN organisation o ON o.id = s.organisation_id
            WHERE b.status = 'available' AND o.caution = 'none' AND NOT b.single_room AND b.allowed_sex = 'any'
              AND b.bed_type IN (@Type0, @Type1, @Type2) AND s.active
              AND b.id NOT IN (SELECT bed_id FROM placement WHERE bed_id IS NOT NULL AND status IN ('reserved', 'active'))
            ORDER BY b.id LIMIT 1
            """, new { Type0 = types[0], Type1 = types[1], Type2 = types[^1] });
        if (id is null)
        {
            id = await connection.ExecuteScalarAsync<long>(
                """
                SELECT b.id FROM bed b JOIN ward w ON w.id = b.ward_id JOIN site s ON s.id = w.site_id JOIN organisation o ON o.id = s.organisation_id
                WHERE o.caution = 'none' AND s.active AND b.status IN ('closed', 'cleaning', 'available') ORDER BY b.id LIMIT 1
                """);
            await connection.ExecuteAsync(
                "UPDATE bed SET status = 'available', closed_reason = NULL, single_room = FALSE, allowed_sex = 'any', bed_type = @type WHERE id = @id", new { id, type = types[0] });
        }
        var siteKind = await connection.ExecuteScalarAsync<string>(
            "SELECT s.kind FROM bed b JOIN ward w ON w.id = b.ward_id JOIN site s ON s.id = w.site_id WHERE b.id = @id", new { id });
        return (id.Value, siteKind!);
    }

    // ---- The pathway intended and the discharge a placement implies -----------------------------------------

    [Fact]
    public async Task AcceptingIntoAService_IntendsPathway1_OrPathway0ForTheVoluntarySector_AndStartingItRecordsTheDischargeHome()
    {
        var reablement = await SendReferralAsync();
        var placement = await AcceptIntoAsync(reablement, "reablement");
        Assert.Equal("1", (await DischargeAsync(reablement)).PathwayIntended);
        Assert.Null((await DischargeAsync(reablement)).DischargedAt);

        await SendAsync(new StartServicePlacement.Command(placement), "coordinator");

        Assert.Equal(new Discharge { DischargedAt = Now, RecordedFrom = "placement", PathwayIntended = "1", PathwayAtDischarge = "1", Destination = "home", CareLevel = "new" },
            await DischargeAsync(reablement));
        await using (var connection = await app.OpenAsync())
        {
            // A change row for live screens, and the start's audit row says the discharge was recorded with it.
            Assert.Equal(1, await connection.ExecuteScalarAsync<long>(
                "SELECT COUNT(*) FROM change WHERE entity_type = 'referral' AND entity_id = @reablement AND kind = 'referral.discharged'", new { reablement }));
            Assert.Contains("discharge from hospital recorded", await connection.ExecuteScalarAsync<string>(
                "SELECT detail FROM audit_event WHERE action = 'StartServicePlacement' AND entity_type = 'referral' AND entity_id = @reablement", new { reablement }),
                StringComparison.Ordinal);
        }

        var voluntary = await SendReferralAsync(f => f.Pathway = "0");
        await AcceptIntoAsync(voluntary, "voluntary-sector");
        Assert.Equal("0", (await DischargeAsync(voluntary)).PathwayIntended);
    }

    [Fact]
    public async Task StartingSupport_ForAStepUpReferral_RecordsNoHospitalDischarge()
    {
        var stepUp = await SendReferralAsync(f => (f.Source, f.Pathway, f.Ward, f.BedLabel, f.MedicallyOptimisedOn, f.ExpectedDischargeOn) = ("gp", "step-up", null, null, null, null));
        var placement = await AcceptIntoAsync(stepUp, "reablement");

        await SendAsync(new StartServicePlacement.Command(placement), "coordinator");

        Assert.Null((await DischargeAsync(stepUp)).DischargedAt);
        var refused = await Assert.ThrowsAsync<RuleBroken>(() => SendAsync(new RecordDischarge.Command(stepUp, Now), "referrer"));
        Assert.Contains("no hospital discharge", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ABedAdmission_RecordsTheDischargeToTheBedsSetting_ButNeverOverwritesOneAPersonRecorded()
    {
        // Pathway 2 asked for: a short-term bed intended; the admission records the discharge, to the bed's kind of place.
        var shortTerm = await SendReferralAsync(f => f.Pathway = "2");
        var task = await RedirectToBedBureauAsync(shortTerm);
        Assert.Equal("2", (await DischargeAsync(shortTerm)).PathwayIntended);
        var (bed, siteKind) = await FreeBedAsync();
        var reserved = await app.SendAsync<ReserveBed.Result>(new ReserveBed.Command(task, bed, Today), await app.StaffAsync("bedbureau"));
        await SendAsync(new ConfirmAdmission.Command(reserved.PlacementId), "bedbureau");
        var expectedDestination = siteKind == "care-home" ? "care-home" : "community-hospital";
        Assert.Equal(new Discharge { DischargedAt = Now, RecordedFrom = "placement", PathwayIntended = "2", PathwayAtDischarge = "2", Destination = expectedDestination, CareLevel = "new" },
            await DischargeAsync(shortTerm));

        // Pathway 3 asked for: a long-term bed intended. The referrer said when the person left, to where: the admission keeps it.
        var longTerm = await SendReferralAsync(f => f.Pathway = "3");
        task = await RedirectToBedBureauAsync(longTerm);
        Assert.Equal("3", (await DischargeAsync(longTerm)).PathwayIntended);
        (bed, _) = await FreeBedAsync(longTerm: true);
        reserved = await app.SendAsync<ReserveBed.Result>(new ReserveBed.Command(task, bed, Today), await app.StaffAsync("bedbureau"));
        var left = Now.AddHours(-3);
        await SendAsync(new RecordDischarge.Command(longTerm, left, "3", "care-home", "restart"), "referrer");
        app.Clock.Advance(TimeSpan.FromMinutes(1));
        await SendAsync(new ConfirmAdmission.Command(reserved.PlacementId), "bedbureau");

        Assert.Equal(new Discharge { DischargedAt = left, RecordedFrom = "referrer", PathwayIntended = "3", PathwayAtDischarge = "3", Destination = "care-home", CareLevel = "restart" },
            await DischargeAsync(longTerm));
    }

    // ---- A person recording the discharge -------------------------------------------------------------------

    [Fact]
    public async Task RecordDischarge_TakesThePlacementsDefaults_AndEveryEditIsAudited_WithWhatWasThereBefore()
    {
        var referral = await SendReferralAsync();
        await AcceptIntoAsync(referral, "home-care");
        var first = Now.AddHours(-2);

        await SendAsync(new RecordDischarge.Command(referral, first), "referrer");
        Assert.Equal(new Discharge { DischargedAt = first, RecordedFrom = "referrer", PathwayIntended = "1", PathwayAtDischarge = "1", Destination = "home", CareLevel = "new" },
            await DischargeAsync(referral));

        var corrected = Now.AddHours(-1);
        await SendAsync(new RecordDischarge.Command(referral, corrected, Destination: "temporary-accommodation"), "coordinator");
        Assert.Equal(new Discharge { DischargedAt = corrected, RecordedFrom = "coordination", PathwayIntended = "1", PathwayAtDischarge = "1", Destination = "temporary-accommodation", CareLevel = "new" },
            await DischargeAsync(referral));

        await using var connection = await app.OpenAsync();
        var audits = (await connection.QueryAsync<(string Actor, string Detail)>(
            "SELECT actor_name, detail FROM audit_event WHERE action = 'RecordDischarge' AND outcome = 'success' AND entity_id = @referral ORDER BY id", new { referral })).ToList();
        Assert.Equal(2, audits.Count);
        Assert.DoesNotContain("(was", audits[0].Detail, StringComparison.Ordinal);
        Assert.Contains($"was {first:O}", audits[1].Detail, StringComparison.Ordinal);
        Assert.Contains("destination temporary-accommodation", audits[1].Detail, StringComparison.Ordinal);
        Assert.Equal(["referral.discharged", "referral.discharge-corrected"], (await connection.QueryAsync<string>(
            "SELECT kind FROM change WHERE entity_type = 'referral' AND entity_id = @referral AND kind LIKE 'referral.discharge%' ORDER BY seq", new { referral })).ToArray());
    }

    [Fact]
    public async Task RecordDischarge_RefusesAFutureTime_ADateLongBeforeTheReferral_AndCallersWhoMayNot_WritingNothing()
    {
        var referral = await SendReferralAsync();

        var future = await Assert.ThrowsAsync<ValidationFailed>(() => SendAsync(new RecordDischarge.Command(referral, Now.AddHours(1)), "referrer"));
        Assert.Contains("cannot be in the future", future.Message, StringComparison.Ordinal);
        var early = await Assert.ThrowsAsync<RuleBroken>(() => SendAsync(new RecordDischarge.Command(referral, Now.AddDays(-31)), "referrer"));
        Assert.Contains("more than 30 days before the referral was sent", early.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<ValidationFailed>(() => SendAsync(new RecordDischarge.Command(referral, Now, Destination: "the moon"), "referrer"));
        await Assert.ThrowsAsync<AccessDenied>(() => SendAsync(new RecordDischarge.Command(referral, Now), "manager"));
        await Assert.ThrowsAsync<AccessDenied>(() => SendAsync(new RecordDelayReason.Command(referral, "hp-transport"), "referrer"));
        // Another trust's referrer cannot tell that the referral exists, let alone record or read its discharge.
        await Assert.ThrowsAsync<NotFound>(() => SendAsync(new RecordDischarge.Command(referral, Now), "gareth.evans"));
        var otherTrust = await app.StaffAsync("gareth.evans");
        await Assert.ThrowsAsync<NotFound>(() => app.SendAsync<DischargeRecord.Result>(new DischargeRecord.Query(referral), otherTrust));

        Assert.Null((await DischargeAsync(referral)).DischargedAt);
        // Within the window, a discharge shortly before the referral was sent is a late referral, and is taken.
        await SendAsync(new RecordDischarge.Command(referral, Now.AddDays(-29)), "referrer");
        Assert.Equal(Now.AddDays(-29), (await DischargeAsync(referral)).DischargedAt);
    }

    // ---- Delay reasons ----------------------------------------------------------------------------------------

    [Fact]
    public async Task DelayReasons_HoldOneAtATime_WithTheirHistory_AndTheDischargeEndsTheLast()
    {
        var referral = await SendReferralAsync(f => f.MedicallyOptimisedOn = Today.AddDays(-4));
        var coordinator = await app.StaffAsync("coordinator");
        var firstFrom = Now.AddDays(-3);

        await app.SendAsync(new RecordDelayReason.Command(referral, "tc-assessment", firstFrom), coordinator);
        var secondFrom = Now.AddDays(-1);
        await SendAsync(new RecordDelayReason.Command(referral, "cap-reablement", secondFrom, "No reablement slot until Friday"), "bedbureau");

        var view = await app.SendAsync<DischargeRecord.Result>(new DischargeRecord.Query(referral), await app.StaffAsync("referrer"));
        Assert.Equal(
            [
                ("tc-assessment", firstFrom, (DateTimeOffset?)secondFrom, "Care transfer hub process", "Awaiting an assessment of care and support needs (Care Act or continuing healthcare)"),
                ("cap-reablement", secondFrom, null, "Capacity", "Awaiting availability of reablement or intermediate care at home (pathway 1)"),
            ],
            view.Delays.Select(d => (d.Code, d.FromAt, d.ToAt, d.FamilyLabel, d.Label)).ToArray());
        Assert.Equal("No reablement slot until Friday", view.Delays[1].Note);

        // Leaving hospital ends the reason that held, at the time the person left.
        var left = Now.AddHours(-2);
        await SendAsync(new RecordDischarge.Command(referral, left), "referrer");
        view = await app.SendAsync<DischargeRecord.Result>(new DischargeRecord.Query(referral), coordinator);
        Assert.Equal(left, view.Delays[1].ToAt);
        // Four London days from the discharge ready date (today - 4) to today.
        Assert.Equal(LondonTime.ToLocal(left).Date == LondonTime.ToLocal(Now).Date ? 4 : 3, view.DaysDelayed);

        await using var connection = await app.OpenAsync();
        Assert.Equal(2, await connection.ExecuteScalarAsync<long>(
            "SELECT COUNT(*) FROM change WHERE entity_type = 'referral' AND entity_id = @referral AND kind = 'referral.delay-recorded'", new { referral }));
        Assert.Equal(2, await connection.ExecuteScalarAsync<long>(
            "SELECT COUNT(*) FROM audit_event WHERE action = 'RecordDelayReason' AND outcome = 'success' AND entity_id = @referral", new { referral }));
    }

    /// <summary>
    /// A discharge corrected to a later time moves the end of the reason it had ended with it: the person was still waiting,
    /// for that reason, until they really left. An earlier reason, ended by the next one, keeps its end.
    /// </summary>
    [Fact]
    public async Task ADischargeCorrectedToLater_EndsTheLastDelayReasonAtTheNewTime()
    {
        var referral = await SendReferralAsync(f => f.MedicallyOptimisedOn = Today.AddDays(-4));
        var (firstFrom, secondFrom) = (Now.AddDays(-3), Now.AddDays(-2));
        await SendAsync(new RecordDelayReason.Command(referral, "tc-assessment", firstFrom), "coordinator");
        await SendAsync(new RecordDelayReason.Command(referral, "cap-reablement", secondFrom), "coordinator");
        var (recorded, corrected) = (Now.AddDays(-1), Now.AddHours(-3));
        await SendAsync(new RecordDischarge.Command(referral, recorded), "referrer");

        await SendAsync(new RecordDischarge.Command(referral, corrected), "referrer");

        var view = await app.SendAsync<DischargeRecord.Result>(new DischargeRecord.Query(referral), await app.StaffAsync("coordinator"));
        Assert.Equal([("tc-assessment", (DateTimeOffset?)secondFrom), ("cap-reablement", corrected)], view.Delays.Select(d => (d.Code, d.ToAt)).ToArray());
    }

    [Fact]
    public async Task DelayReasons_AreRefused_BeforeTheReadyDate_OutOfTheList_OutOfOrder_AndAfterTheDischarge()
    {
        var referral = await SendReferralAsync(f => f.MedicallyOptimisedOn = Today.AddDays(-2));

        var early = await Assert.ThrowsAsync<RuleBroken>(() => SendAsync(new RecordDelayReason.Command(referral, "hp-transport", Now.AddDays(-4)), "coordinator"));
        Assert.Contains("not yet ready to leave", early.Message, StringComparison.Ordinal);
        var unknown = await Assert.ThrowsAsync<ValidationFailed>(() => SendAsync(new RecordDelayReason.Command(referral, "no-such-reason"), "coordinator"));
        Assert.Contains("is not a reason in the list", unknown.Message, StringComparison.Ordinal);

        await SendAsync(new RecordDelayReason.Command(referral, "hp-transport", Now.AddHours(-5)), "coordinator");
        var backwards = await Assert.ThrowsAsync<RuleBroken>(() => SendAsync(new RecordDelayReason.Command(referral, "hp-medicines", Now.AddHours(-6)), "coordinator"));
        Assert.Contains("a new reason starts after it", backwards.Message, StringComparison.Ordinal);

        await SendAsync(new RecordDischarge.Command(referral, Now.AddHours(-1)), "coordinator");
        var after = await Assert.ThrowsAsync<RuleBroken>(() => SendAsync(new RecordDelayReason.Command(referral, "hp-medicines"), "coordinator"));
        Assert.Contains("left hospital", after.Message, StringComparison.Ordinal);
        var beforeDelay = await Assert.ThrowsAsync<RuleBroken>(() => SendAsync(new RecordDischarge.Command(referral, Now.AddHours(-6)), "coordinator"));
        Assert.Contains("still waiting then", beforeDelay.Message, StringComparison.Ordinal);

        var noReadyDate = await SendReferralAsync(f => (f.Source, f.Pathway, f.Ward, f.BedLabel, f.MedicallyOptimisedOn, f.ExpectedDischargeOn) = ("gp", "step-up", null, null, null, null));
        Assert.Contains("no discharge ready date", (await Assert.ThrowsAsync<RuleBroken>(() =>
            SendAsync(new RecordDelayReason.Command(noReadyDate, "hp-transport"), "coordinator"))).Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ADelayRecordedUnderTheOldList_ReportsUnderItsLabels_AndTheMay2024ListTakesOverOnItsValidFrom()
    {
        var referral = await SendReferralAsync();
        await using (var connection = await app.OpenAsync())
        {
            // A person waiting since spring 2024: the back-series.
            await connection.ExecuteAsync("UPDATE referral SET medically_optimised_on = @ready WHERE id = @referral", new { ready = new DateOnly(2024, 4, 20), referral });
        }
        var oldFrom = new DateTimeOffset(2024, 4, 25, 9, 0, 0, TimeSpan.Zero);
        var newFrom = new DateTimeOffset(2024, 5, 1, 9, 0, 0, TimeSpan.Zero);

        // A 2024 list code does not exist before May 2024, and an old one not after.
        await Assert.ThrowsAsync<ValidationFailed>(() => SendAsync(new RecordDelayReason.Command(referral, "cap-care-home-nursing", oldFrom), "bedbureau"));
        await SendAsync(new RecordDelayReason.Command(referral, "care-home-bed", oldFrom), "bedbureau");
        await Assert.ThrowsAsync<ValidationFailed>(() => SendAsync(new RecordDelayReason.Command(referral, "care-home-bed", newFrom), "bedbureau"));
        await SendAsync(new RecordDelayReason.Command(referral, "cap-care-home-nursing", newFrom), "bedbureau");

        var view = await app.SendAsync<DischargeRecord.Result>(new DischargeRecord.Query(referral), await app.StaffAsync("manager"));
        Assert.Equal(
            [
                ("2023-04", "Community services and capacity",
                    "Awaiting availability of a bed in a residential or nursing home that is likely to be a permanent placement (pathway 3)"),
                ("2024-05", "Capacity", "Awaiting availability of a nursing home bed (pathway 3)"),
            ],
            view.Delays.Select(d => (d.ListVersion, d.FamilyLabel, d.Label)).ToArray());
    }

    [Fact]
    public async Task ANewListFile_LoadedThroughTheLoader_TakesEffectFromItsValidFrom_AndAnEarlierDayKeepsTheListBefore()
    {
        // Next year's list as a file: the 2024 list with one reason reworded and one added, from 1 May 2025.
        var folder = Testing.TestScratch.NewFolder("code-lists-");
        try
        {
            var next = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(AppContext.BaseDirectory, CodeListLoader.DefaultFolder, "discharge-delay-reason-2024-05.json")))!.AsObject();
            (next["version"], next["valid_from"], next["title"]) = ("2025-05", "2025-05-01", "Reasons for discharge delay (test list from May 2025)");
            var items = next["items"]!.AsArray();
            items.Single(i => (string?)i!["code"] == "hp-transport")!["label"] = "Awaiting transport home (2025 wording)";
            items.Add(new JsonObject { ["code"] = "cap-virtual-ward", ["family"] = "capacity", ["family_label"] = "Capacity", ["label"] = "Awaiting a virtual ward place", ["order"] = 395 });
            await File.WriteAllTextAsync(Path.Combine(folder, "discharge-delay-reason-2025-05.json"), next.ToJsonString());

            var loaded = await app.Services.GetRequiredService<CodeListLoader>().LoadAsync(folder, CancellationToken.None);
            Assert.Equal(["discharge-delay-reason 2025-05"], loaded.Loaded);

            var referral = await SendReferralAsync();
            await using (var connection = await app.OpenAsync())
            {
                await connection.ExecuteAsync("UPDATE referral SET medically_optimised_on = @ready WHERE id = @referral", new { ready = new DateOnly(2025, 4, 28), referral });
            }
            await Assert.ThrowsAsync<ValidationFailed>(() => SendAsync(
                new RecordDelayReason.Command(referral, "cap-virtual-ward", new DateTimeOffset(2025, 4, 30, 12, 0, 0, TimeSpan.Zero)), "coordinator"));
            await SendAsync(new RecordDelayReason.Command(referral, "hp-transport", new DateTimeOffset(2025, 4, 30, 12, 0, 0, TimeSpan.Zero)), "coordinator");
            // 23:30 UTC on 30 April is 00:30 on 1 May in London: the London day decides.
            await SendAsync(new RecordDelayReason.Command(referral, "hp-transport", new DateTimeOffset(2025, 4, 30, 23, 30, 0, TimeSpan.Zero)), "coordinator");
            await SendAsync(new RecordDelayReason.Command(referral, "cap-virtual-ward", new DateTimeOffset(2025, 5, 2, 8, 0, 0, TimeSpan.Zero)), "coordinator");

            var view = await app.SendAsync<DischargeRecord.Result>(new DischargeRecord.Query(referral), await app.StaffAsync("coordinator"));
            Assert.Equal(
                [
                    ("2024-05", "Awaiting transport"),
                    ("2025-05", "Awaiting transport home (2025 wording)"),
                    ("2025-05", "Awaiting a virtual ward place"),
                ],
                view.Delays.Select(d => (d.ListVersion, d.Label)).ToArray());
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    // ---- A partner's message ---------------------------------------------------------------------------------

    private static JsonObject UpdateMessage(long referralId, JsonObject? encounter, string? note = null)
    {
        var request = new JsonObject
        {
            ["resourceType"] = "ServiceRequest",
            ["id"] = referralId.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["status"] = "active",
            ["intent"] = "order",
            ["subject"] = new JsonObject { ["display"] = "The person referred" },
        };
        if (note is not null)
        {
            request["note"] = new JsonArray(new JsonObject { ["text"] = note });
        }
        var entries = new JsonArray(
            new JsonObject
            {
                ["fullUrl"] = "urn:uuid:1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
                ["resource"] = new JsonObject
                {
                    ["resourceType"] = "MessageHeader",
                    ["eventCoding"] = new JsonObject { ["system"] = "https://fhir.nhs.uk/CodeSystem/message-events-bars", ["code"] = "servicerequest-request" },
                    ["reason"] = new JsonObject { ["coding"] = new JsonArray(new JsonObject { ["system"] = "https://fhir.nhs.uk/CodeSystem/message-reason-bars", ["code"] = "update" }) },
                    ["source"] = new JsonObject { ["endpoint"] = "https://epr.example.nhs.uk" },
                    ["focus"] = new JsonArray(new JsonObject { ["reference"] = "urn:uuid:7c1e4b8a-2d3f-4e5a-8b9c-0d1e2f3a4b5c" }),
                },
            },
            new JsonObject { ["fullUrl"] = "urn:uuid:7c1e4b8a-2d3f-4e5a-8b9c-0d1e2f3a4b5c", ["resource"] = request });
        if (encounter is not null)
        {
            request["encounter"] = new JsonObject { ["reference"] = "urn:uuid:3e4f5a6b-7c8d-4e9f-8a0b-1c2d3e4f5a6b" };
            entries.Add(new JsonObject { ["fullUrl"] = "urn:uuid:3e4f5a6b-7c8d-4e9f-8a0b-1c2d3e4f5a6b", ["resource"] = encounter });
        }
        return new JsonObject { ["resourceType"] = "Bundle", ["id"] = Guid.NewGuid().ToString(), ["type"] = "message", ["entry"] = entries };
    }

    private static JsonObject Encounter(string end) => new()
    {
        ["resourceType"] = "Encounter",
        ["status"] = "finished",
        ["class"] = new JsonObject { ["system"] = "http://terminology.hl7.org/CodeSystem/v3-ActCode", ["code"] = "IMP" },
        ["period"] = new JsonObject { ["start"] = "2026-11-20T10:00:00Z", ["end"] = end },
    };

    [Fact]
    public async Task APartnersUpdateMessage_WithTheEncountersEnd_RecordsTheDischarge_AndADateAloneOrAnotherTrustIsRefused()
    {
        var referral = await SendReferralAsync();
        using var partner = await app.PartnerAsync();
        var left = Now.AddHours(-4);
        var end = left.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture);

        var dateAlone = await partner.PostAsync("/fhir/$process-message", FhirPayloads.Body(UpdateMessage(referral, Encounter(end[..10])).ToJsonString()));
        Assert.Equal(HttpStatusCode.BadRequest, dateAlone.StatusCode);
        Assert.Contains("Encounter.period.end", await dateAlone.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        // Another trust's system, even one allowed to update referrals, cannot find this one.
        var otherClient = await app.NewPartnerClientAsync("RSM", "system/ServiceRequest.cruds");
        using var other = await app.PartnerAsync(null, otherClient, FhirPartner.OtherSecret);
        Assert.Equal(HttpStatusCode.NotFound,
            (await other.PostAsync("/fhir/$process-message", FhirPayloads.Body(UpdateMessage(referral, Encounter(end)).ToJsonString()))).StatusCode);
        Assert.Null((await DischargeAsync(referral)).DischargedAt);

        var message = UpdateMessage(referral, Encounter(end));
        var recorded = await partner.PostAsync("/fhir/$process-message", FhirPayloads.Body(message.ToJsonString()));
        Assert.Equal(HttpStatusCode.OK, recorded.StatusCode);
        var discharge = await DischargeAsync(referral);
        Assert.Equal((left, "partner"), (discharge.DischargedAt, discharge.RecordedFrom));
        // Kept as sent with the referral, though it carried no note: the coordination centre sees the message that discharged them.
        var asSent = await app.SendAsync<CareCoordination.Features.Coordination.AsSent.Result>(new CareCoordination.Features.Coordination.AsSent.Query(referral), await app.StaffAsync("coordinator"));
        Assert.Contains(asSent.Messages, m => m.BundleId == (string?)message["id"]);

        // Neither a note nor an Encounter end: nothing to do, said plainly.
        var empty = await partner.PostAsync("/fhir/$process-message", FhirPayloads.Body(UpdateMessage(referral, null).ToJsonString()));
        Assert.Equal(HttpStatusCode.UnprocessableEntity, empty.StatusCode);
        // The ServiceRequest with its new note alone (a message need not send the summary back): added as a note.
        var note = "Family have set up the downstairs bedroom " + Guid.NewGuid().ToString("N");
        var noted = await partner.PostAsync("/fhir/$process-message", FhirPayloads.Body(UpdateMessage(referral, null, note).ToJsonString()));
        Assert.Equal(HttpStatusCode.OK, noted.StatusCode);
        await using var connection = await app.OpenAsync();
        Assert.Equal(1, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM referral_note WHERE referral_id = @referral AND text = @note", new { referral, note }));
    }

    [Fact]
    public async Task AnUpdateMessage_WithTheEncountersEndAndANote_AtTheVersionItRead_RecordsBoth_AndAtAnOlderOneNeither()
    {
        var referral = await SendReferralAsync();
        using var partner = await app.PartnerAsync();
        var left = Now.AddHours(-2);
        var end = left.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture);
        // A note first, so that the version the referral was sent at is an older one.
        Assert.Equal(HttpStatusCode.OK, (await partner.PostAsync("/fhir/$process-message",
            FhirPayloads.Body(UpdateMessage(referral, null, "Ready from noon " + Guid.NewGuid().ToString("N")).ToJsonString()))).StatusCode);
        await using var connection = await app.OpenAsync();
        var version = await connection.ExecuteScalarAsync<int>("SELECT version FROM referral WHERE id = @referral", new { referral });
        var note = "Home by ambulance; the daughter met her there " + Guid.NewGuid().ToString("N");
        JsonObject At(int read)
        {
            var message = UpdateMessage(referral, Encounter(end), note);
            message["entry"]![1]!["resource"]!["meta"] = new JsonObject { ["versionId"] = read.ToString(System.Globalization.CultureInfo.InvariantCulture) };
            return message;
        }

        // The discharge is the message's first write and moves the referral on; the note that follows is the same message's.
        var stale = await partner.PostAsync("/fhir/$process-message", FhirPayloads.Body(At(version - 1).ToJsonString()));
        Assert.Equal(HttpStatusCode.PreconditionFailed, stale.StatusCode);
        Assert.Null((await DischargeAsync(referral)).DischargedAt);
        var recorded = await partner.PostAsync("/fhir/$process-message", FhirPayloads.Body(At(version).ToJsonString()));

        Assert.True(recorded.StatusCode == HttpStatusCode.OK, await recorded.Content.ReadAsStringAsync());
        Assert.Equal(left, (await DischargeAsync(referral)).DischargedAt);
        Assert.Equal(1, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM referral_note WHERE referral_id = @referral AND text = @note", new { referral, note }));
    }
}

public sealed class DischargeRecordingOnSqliteTests(AppFactory app) : DischargeRecordingTests(app), IClassFixture<AppFactory>;

public sealed class DischargeRecordingOnPostgresTests(PostgresAppFactory app) : DischargeRecordingTests(app), IClassFixture<PostgresAppFactory>;
