using System.Security.Claims;
using CareCoordination.Domain;
using CareCoordination.Features.Referrals;
using CareCoordination.Tests.Support;
using Dapper;

namespace CareCoordination.Tests.Features.Reports;

/// <summary>
/// The facts the discharge returns read, put into the store for report tests. Referrals are made through the real
/// form (SubmitReferral, as a referrer of a trust made here), carrying their discharge ready date and admission; the
/// discharge, pathway, destination, delay reasons and code lists are then written by SQL, so each dataset is exactly the
/// hand-counted one (the commands that record them are tested in DischargeRecordingTests).
/// Every person referred here lives in one locality of the dataset's own, so a report filtered to it sees only this
/// dataset and never the demo county.
/// </summary>
public sealed class DischargeFacts(AppFactory app)
{
    private readonly string _suffix = Guid.NewGuid().ToString("N")[..8];

    public string Locality => "Sitrep locality " + _suffix;

    public string ListVersion2023 => "2023-" + _suffix;

    public string ListVersion2024 => "2024-" + _suffix;

    public sealed record Trust(long Id, string Name, ClaimsPrincipal Referrer);

    /// <summary>An acute trust, with a referrer of its own.</summary>
    public async Task<Trust> TrustAsync(string name)
    {
        var username = $"sitrep-{_suffix}-{name.Replace(' ', '-').ToLowerInvariant()}";
        long id;
        await using (var connection = await app.OpenAsync())
        {
            id = await connection.ExecuteScalarAsync<long>(
                "INSERT INTO organisation (code, name, kind, locality, created_at) VALUES (@code, @name, 'acute-trust', @Locality, @now) RETURNING id",
                new { code = "S" + _suffix + name.Length + name[^1], name = $"{name} {_suffix}", Locality, now = DateTimeOffset.UtcNow });
            await connection.ExecuteAsync(
                """
                INSERT INTO staff_user (username, display_name, password_hash, role, organisation_id, active, created_at)
                SELECT @username, 'Sitrep Referrer', password_hash, 'referrer', @id, TRUE, created_at FROM staff_user WHERE username = 'referrer'
                """, new { username, id });
        }
        return new Trust(id, $"{name} {_suffix}", await app.StaffAsync(username));
    }

    private int _sites;

    /// <summary>A hospital site of the trust; returns its ODS site code (unique to this dataset).</summary>
    public async Task<string> SiteAsync(Trust trust, string name)
    {
        var code = $"S{_suffix}{++_sites}".ToUpperInvariant();
        await ExecuteAsync("INSERT INTO hospital_site (organisation_id, code, name, active) VALUES (@Id, @code, @name, TRUE)",
            new { trust.Id, code, name = $"{name} {_suffix}" });
        return code;
    }

    /// <summary>
    /// A hospital discharge referral sent on the form from the ward (on the site of that code, if given), ready for discharge
    /// on <paramref name="ready"/>, admitted on <paramref name="admitted"/> if given.
    /// </summary>
    public async Task<long> ReferAsync(Trust trust, string ward, DateOnly ready, DateOnly? admitted = null, string? site = null)
    {
        var form = ReferralForms.Discharge(LondonTime.Today(app.Clock), await app.NewNhsNumberAsync());
        form.HospitalSite = site;
        form.Ward = ward;
        form.AdmittedOn = admitted;
        form.MedicallyOptimisedOn = ready;
        form.ExpectedDischargeOn = null;
        var sent = await app.SendAsync<SubmitReferral.Result>(new SubmitReferral.Command(form, Guid.NewGuid().ToString("N")), trust.Referrer);
        var referral = sent.ReferralId ?? throw new InvalidOperationException("The referral was not made.");
        // The form's postcode is in a demo locality; the person is moved to this dataset's own.
        await ExecuteAsync("UPDATE person SET locality = @Locality WHERE id = (SELECT person_id FROM referral WHERE id = @referral)", new { Locality, referral });
        return referral;
    }

    /// <summary>The person left hospital at this London time, on this pathway, to this destination.</summary>
    public Task DischargeAsync(long referral, DateOnly day, int hour, int minute, string? pathway, string? destination, string? careLevel) =>
        ExecuteAsync(
            """
            UPDATE referral SET discharged_at = @at, discharge_recorded_from = 'coordination', pathway_at_discharge = @pathway,
                destination_at_discharge = @destination, destination_care_level = @careLevel
            WHERE id = @referral
            """, new { referral, at = London(day, hour, minute), pathway, destination, careLevel });

    public Task SetStatusAsync(long referral, string status) =>
        ExecuteAsync("UPDATE referral SET status = @status, outcome_reason = 'Test' WHERE id = @referral", new { referral, status });

    public Task ForgetReadyDateAsync(long referral) =>
        ExecuteAsync("UPDATE referral SET medically_optimised_on = NULL WHERE id = @referral", new { referral });

    /// <summary>
    /// Two versions of the delay reason list, as the loader would hold them: the pre-May-2024 list and the 2024 one.
    /// Code C1 is in both, in a different family and with different words, so a report that took the newer labels for an
    /// older reason would show it.
    /// </summary>
    public async Task CodeListsAsync()
    {
        const string list = "discharge-delay-reason";
        await ExecuteAsync(
            """
            INSERT INTO code_list (name, version, title, valid_from, valid_to, source_file, content_hash, loaded_at)
            VALUES (@list, @v2023, 'Delay reasons before May 2024', @from2023, @from2024, 'test', 'test', @now),
                   (@list, @v2024, 'Delay reasons from May 2024', @from2024, NULL, 'test', 'test', @now)
            """, new { list, v2023 = ListVersion2023, v2024 = ListVersion2024, from2023 = new DateOnly(2023, 4, 1), from2024 = new DateOnly(2024, 5, 1), now = DateTimeOffset.UtcNow });
        await ExecuteAsync(
            """
            INSERT INTO code_list_item (list_name, list_version, code, family, family_label, label, sort_order)
            VALUES (@list, @v2023, 'C1', 'social-care', 'Awaiting social care (2023 list)', 'Awaiting a care package in own home (2023 wording)', 1),
                   (@list, @v2024, 'C1', 'capacity', 'Capacity (2024 list)', 'Awaiting home care to start (2024 wording)', 2),
                   (@list, @v2024, 'C2', 'hospital-process', 'Hospital process (2024 list)', 'Awaiting medicines to take home (2024 wording)', 1)
            """, new { list, v2023 = ListVersion2023, v2024 = ListVersion2024 });
    }

    /// <summary>A delay reason chosen from a list version, holding from one London day's start until another's (open when null).</summary>
    public Task DelayAsync(long referral, string listVersion, string code, DateOnly from, DateOnly? to) =>
        ExecuteAsync(
            """
            INSERT INTO discharge_delay (referral_id, list_name, list_version, code, from_at, to_at, recorded_by_name, recorded_at)
            VALUES (@referral, 'discharge-delay-reason', @listVersion, @code, @fromAt, @toAt, 'Test coordinator', @fromAt)
            """, new { referral, listVersion, code, fromAt = London(from, 9, 0), toAt = to is { } t ? London(t, 9, 0) : (DateTimeOffset?)null });

    public static DateTimeOffset London(DateOnly day, int hour, int minute)
    {
        var local = day.ToDateTime(new TimeOnly(hour, minute));
        return new DateTimeOffset(local, LondonTime.Zone.GetUtcOffset(local)).ToUniversalTime();
    }

    private async Task ExecuteAsync(string sql, object parameters)
    {
        await using var connection = await app.OpenAsync();
        await connection.ExecuteAsync(sql, parameters);
    }
}
