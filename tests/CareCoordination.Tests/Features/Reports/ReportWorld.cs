using System.Globalization;
using System.Security.Claims;
using CareCoordination.Domain;
using CareCoordination.Features.BedBureau;
using CareCoordination.Features.Coordination;
using CareCoordination.Features.Referrals;
using CareCoordination.Tests.Support;
using Dapper;

namespace CareCoordination.Tests.Features.Reports;

/// <summary>
/// A trust of its own for one report test, so the demo county's referrals never enter its figures (every report
/// filters by the referring trust), with a referrer, a provider with two beds, and a clock set to London days
/// counted from day 0. Referrals are made and decided through the real commands. What the discharge returns record
/// (actual discharge, pathway at discharge, delay reasons) is written here by SQL on top of them: the commands and
/// pages that record those facts are built in parallel on another branch (fix/record), on the schema of 0017.
/// </summary>
public sealed class ReportWorld
{
    private readonly AppFactory _app;
    private readonly DateOnly _day0;

    private ReportWorld(AppFactory app, DateOnly day0, long trustId, string trustName, string referrer, long[] beds)
    {
        _app = app;
        _day0 = day0;
        TrustId = trustId;
        TrustName = trustName;
        Referrer = referrer;
        Beds = beds;
    }

    public long TrustId { get; }

    public string TrustName { get; }

    public string Referrer { get; }

    public IReadOnlyList<long> Beds { get; }

    public DateOnly Day(int n) => _day0.AddDays(n);

    /// <summary>The UTC instant of a London day and time, counted from day 0.</summary>
    public DateTimeOffset At(int day, int hour, int minute = 0)
    {
        var local = Day(day).ToDateTime(new TimeOnly(hour, minute));
        return new DateTimeOffset(local, LondonTime.Zone.GetUtcOffset(local)).ToUniversalTime();
    }

    /// <summary>Moves the clock forward to a London day and time (never back: the tests are written in time order).</summary>
    public void Now(int day, int hour, int minute = 0) => _app.Clock.Advance(At(day, hour, minute) - _app.Clock.GetUtcNow());

    public static async Task<ReportWorld> CreateAsync(AppFactory app)
    {
        // Day 0 is a fresh London day after anything an earlier test in this class did.
        var day0 = LondonTime.Today(app.Clock).AddDays(2);
        var tag = Guid.NewGuid().ToString("N")[..8];
        await using var connection = await app.OpenAsync();
        var now = app.Clock.GetUtcNow();
        var trust = await connection.ExecuteScalarAsync<long>(
            "INSERT INTO organisation (code, name, kind, locality, created_at) VALUES (@code, @name, 'acute-trust', 'Kelworth', @now) RETURNING id",
            new { code = "RT" + tag, name = $"Report Trust {tag}", now });
        var referrer = "report.referrer." + tag;
        await connection.ExecuteAsync(
            "INSERT INTO staff_user (username, display_name, role, organisation_id, created_at) VALUES (@referrer, 'Report Referrer', 'referrer', @trust, @now)",
            new { referrer, trust, now });
        var provider = await connection.ExecuteScalarAsync<long>(
            "INSERT INTO organisation (code, name, kind, locality, created_at) VALUES (@code, @name, 'provider', 'Kelworth', @now) RETURNING id",
            new { code = "RP" + tag, name = $"Report Beds {tag}", now });
        var site = await connection.ExecuteScalarAsync<long>(
            "INSERT INTO site (organisation_id, name, kind, locality, postcode) VALUES (@provider, @name, 'step-down-unit', 'Kelworth', 'WM1 4QT') RETURNING id",
            new { provider, name = $"Report Unit {tag}" });
        var ward = await connection.ExecuteScalarAsync<long>("INSERT INTO ward (site_id, name) VALUES (@site, 'Ward R') RETURNING id", new { site });
        var beds = new long[2];
        for (var i = 0; i < beds.Length; i++)
        {
            beds[i] = await connection.ExecuteScalarAsync<long>(
                "INSERT INTO bed (ward_id, label, bed_type, allowed_sex, status, confirmed_at) VALUES (@ward, @label, 'rehabilitation', 'any', 'available', @now) RETURNING id",
                new { ward, label = $"R{i + 1}", now });
        }
        // Room in every service, so accepting never depends on what other tests took today.
        await connection.ExecuteAsync("UPDATE service SET available_today = 500");
        var world = new ReportWorld(app, day0, trust, $"Report Trust {tag}", referrer, beds);
        world.Now(0, 8);
        return world;
    }

    public async Task<long> ServiceIdAsync(string name)
    {
        await using var connection = await _app.OpenAsync();
        return await connection.ExecuteScalarAsync<long>("SELECT id FROM service WHERE name = @name", new { name });
    }

    /// <summary>Sends a referral from this world's trust (or, with <paramref name="referrer"/>, from a demo trust).</summary>
    public async Task<long> SubmitAsync(Action<ReferralForm>? change = null, string? referrer = null)
    {
        var form = ReferralForms.Discharge(LondonTime.Today(_app.Clock), await _app.NewNhsNumberAsync());
        change?.Invoke(form);
        var sent = await _app.SendAsync<SubmitReferral.Result>(new SubmitReferral.Command(form, Guid.NewGuid().ToString("N")),
            await _app.StaffAsync(referrer ?? Referrer));
        return sent.ReferralId!.Value;
    }

    public static void FromGp(ReferralForm form)
    {
        form.Source = "gp";
        form.Pathway = "step-up";
        form.Ward = null;
        form.BedLabel = null;
        form.MedicallyOptimisedOn = null;
        form.ExpectedDischargeOn = null;
    }

    public static void StepUp(ReferralForm form)
    {
        FromGp(form);
        form.Source = "community-step-up";
    }

    public async Task<long> OpenTaskAsync(long referralId)
    {
        await using var connection = await _app.OpenAsync();
        return await connection.ExecuteScalarAsync<long>(
            "SELECT id FROM triage_task WHERE referral_id = @referralId AND status IN ('requested', 'in-progress', 'on-hold')", new { referralId });
    }

    private Task<ClaimsPrincipal> StaffAsync(string username) => _app.StaffAsync(username);

    public async Task TakeAsync(long referralId, string who = "coordinator") =>
        await _app.SendAsync(new TakeReferral.Command(await OpenTaskAsync(referralId)), await StaffAsync(who));

    public async Task<long> AcceptAsync(long referralId, string service, int? hoursPerDay = null)
    {
        await TakeAsync(referralId);
        await _app.SendAsync(new AcceptIntoService.Command(await OpenTaskAsync(referralId), await ServiceIdAsync(service),
            LondonTime.Today(_app.Clock), HoursPerDay: hoursPerDay), await StaffAsync("coordinator"));
        return await PlacementAsync(referralId);
    }

    public async Task DeclineAsync(long referralId, string reason)
    {
        await TakeAsync(referralId);
        await _app.SendAsync(new DeclineReferral.Command(await OpenTaskAsync(referralId), reason, reason == "other" ? "Test" : null), await StaffAsync("coordinator"));
    }

    public async Task RedirectAsync(long referralId)
    {
        await TakeAsync(referralId);
        await _app.SendAsync(new RedirectToBedBureau.Command(await OpenTaskAsync(referralId), "Needs two carers overnight."), await StaffAsync("coordinator"));
    }

    public async Task<long> ReserveBedAsync(long referralId, long bedId)
    {
        await TakeAsync(referralId, "bedbureau");
        var reserved = await _app.SendAsync<ReserveBed.Result>(
            new ReserveBed.Command(await OpenTaskAsync(referralId), bedId, LondonTime.Today(_app.Clock)), await StaffAsync("bedbureau"));
        return reserved.PlacementId;
    }

    public async Task StartServiceAsync(long placementId) =>
        await _app.SendAsync(new StartServicePlacement.Command(placementId), await StaffAsync("coordinator"));

    public async Task AdmitAsync(long placementId) => await _app.SendAsync(new ConfirmAdmission.Command(placementId), await StaffAsync("bedbureau"));

    public async Task DischargeFromBedAsync(long placementId) => await _app.SendAsync(new DischargeFromBed.Command(placementId), await StaffAsync("bedbureau"));

    public async Task CancelAsync(long referralId) =>
        await _app.SendAsync(new CancelReferral.Command(referralId, "Family taking her home."), await StaffAsync(Referrer));

    public async Task<long> PlacementAsync(long referralId)
    {
        await using var connection = await _app.OpenAsync();
        return await connection.ExecuteScalarAsync<long>("SELECT MAX(id) FROM placement WHERE referral_id = @referralId", new { referralId });
    }

    // ---- Facts of the discharge returns, by SQL (see the class comment) ----------------------------------------

    /// <summary>A service placement ends: no command ends one yet, so the test writes what ending it would.</summary>
    public async Task EndServiceAsync(long placementId)
    {
        await using var connection = await _app.OpenAsync();
        await connection.ExecuteAsync("UPDATE placement SET status = 'ended', ended_at = @now WHERE id = @placementId",
            new { placementId, now = _app.Clock.GetUtcNow() });
    }

    public async Task RecordDischargeAsync(long referralId, DateTimeOffset at, string? pathway)
    {
        await using var connection = await _app.OpenAsync();
        await connection.ExecuteAsync(
            "UPDATE referral SET discharged_at = @at, discharge_recorded_from = 'referrer', pathway_at_discharge = @pathway WHERE id = @referralId",
            new { referralId, at, pathway });
    }

    public async Task SetPersonAsync(long referralId, string? ethnicity, string? postcode)
    {
        await using var connection = await _app.OpenAsync();
        await connection.ExecuteAsync("UPDATE person SET ethnicity = @ethnicity, postcode = @postcode WHERE id = (SELECT person_id FROM referral WHERE id = @referralId)",
            new { referralId, ethnicity, postcode });
    }

    /// <summary>A delay reason from a small test list (the real national lists are loaded from files by the record branch).</summary>
    public async Task RecordDelayAsync(long referralId, DateTimeOffset from)
    {
        await using var connection = await _app.OpenAsync();
        var now = _app.Clock.GetUtcNow();
        if (await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM code_list WHERE name = 'test-delay' AND version = '1'") == 0)
        {
            await connection.ExecuteAsync(
                """
                INSERT INTO code_list (name, version, title, valid_from, valid_to, source_file, content_hash, loaded_at)
                VALUES ('test-delay', '1', 'Test delay reasons', @validFrom, NULL, 'tests', 'none', @now)
                """, new { validFrom = new DateOnly(2000, 1, 1), now });
            await connection.ExecuteAsync(
                """
                INSERT INTO code_list_item (list_name, list_version, code, family, family_label, label, sort_order)
                VALUES ('test-delay', '1', 'capacity-bed', 'capacity', 'Capacity', 'Awaiting a bed', 1)
                """);
        }
        await connection.ExecuteAsync(
            """
            INSERT INTO discharge_delay (referral_id, list_name, list_version, code, from_at, to_at, recorded_by_name, recorded_at)
            VALUES (@referralId, 'test-delay', '1', 'capacity-bed', @from, NULL, 'Test', @now)
            """, new { referralId, from, now });
    }

    public string Ymd(int day) => Day(day).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
}
