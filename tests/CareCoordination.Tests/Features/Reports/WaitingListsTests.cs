using System.Globalization;
using System.Net;
using CareCoordination.Features.Referrals;
using CareCoordination.Features.Reports;
using CareCoordination.Tests.Support;
using CsvHelper;
using Dapper;

namespace CareCoordination.Tests.Features.Reports;

/// <summary>
/// The waiting lists over referrals from a trust of the test's own, in June 2026, every figure counted by hand; and the
/// CSV, parsed back, equal to the page's figures.
/// </summary>
public abstract class WaitingListsTests(AppFactory app)
{
    private const string Locality = "Handcount";

    // June 2026 is British Summer Time: 12:00 UTC is 13:00 in London, the same day. The period ends at the end of
    // 30 June (23:00 UTC), which is the as-at time of the waiting lists.
    private static readonly ReportFilter June = new(new DateOnly(2026, 6, 1), new DateOnly(2026, 6, 30));

    private static readonly SemaphoreSlim Once = new(1, 1);
    private static readonly Dictionary<AppFactory, long> Trusts = [];

    private static DateTimeOffset Noon(int year, int month, int day) => new(year, month, day, 12, 0, 0, TimeSpan.Zero);

    /// <summary>
    /// R1  sent 20 May, undecided (in triage)                   -> triage, 1 to 3 months (20 May + 1 month = 20 Jun &lt;= 30 Jun)
    /// R2  sent 25 Jun, undecided                               -> triage, under 1 month
    /// R3  sent 10 Jan, undecided (awaiting information)        -> triage, 3 to 6 months (10 Apr &lt;= 30 Jun &lt; 10 Jul)
    /// R4  sent 1 Dec 2025, redirected to the bed bureau 2 Dec  -> triage (a redirect is not a decision), 6 months or more (1 Jun)
    /// R5  sent 10 Jun, accepted (service) 12 Jun, started 15 Jun -> not waiting; decision 2 days, start 5 days
    /// R6  sent 1 Jun, accepted (service) 4 Jun, not started    -> service, under 1 month; decision 3 days
    /// R7  sent 1 Mar, accepted by the bed bureau 20 Mar         -> bed, 3 to 6 months (20 Jun &lt;= 30 Jun &lt; 20 Sep)
    /// R8  sent 2 Jun, declined 3 Jun                           -> not waiting; decision 1 day
    /// R9  sent 20 Jun, cancelled 22 Jun                        -> not waiting
    /// R10 sent 28 Jun, accepted 2 Jul, started 5 Jul           -> triage at 30 Jun, under 1 month; decision and start after the period
    /// R11 sent 1 May, accepted by the bed bureau 10 May, admitted 20 Jun -> not waiting; start 50 days (1 May to 20 Jun)
    /// R12 sent 3 Jul                                           -> after the as-at time: nowhere
    /// R14 sent 26 Jun, undecided, person in locality Elsewhere -> triage, under 1 month, only without the locality filter
    /// R15 sent 5 Jun, cancelled 8 Jun, a note added 10 Jul     -> not waiting (its last update is after the as-at time)
    /// </summary>
    private async Task<long> SeedAsync()
    {
        await Once.WaitAsync();
        try
        {
            if (Trusts.TryGetValue(app, out var existing))
            {
                return existing;
            }
            await using var connection = await app.OpenAsync();
            var at = Noon(2025, 11, 1);
            var trust = await connection.ExecuteScalarAsync<long>(
                "INSERT INTO organisation (code, name, kind, created_at) VALUES ('HC-T', 'Handcount Hospital', 'acute-trust', @at) RETURNING id", new { at });
            var service = await connection.ExecuteScalarAsync<long>(
                """
                INSERT INTO service (organisation_id, name, kind, capacity_unit, capacity_per_day, available_today, confirmed_at)
                VALUES (@trust, 'Handcount Reablement', 'reablement', 'slots', 5, 5, @at) RETURNING id
                """, new { trust, at });
            var n = 0;
            async Task<long> Referral(string status, DateTimeOffset sent, DateTimeOffset? updated = null, string locality = Locality)
            {
                n++;
                var person = await connection.ExecuteScalarAsync<long>(
                    """
                    INSERT INTO person (nhs_number, given_name, family_name, date_of_birth, sex, locality, created_at, updated_at)
                    VALUES (@nhs, 'Hand', 'Count', @born, 'female', @locality, @sent, @sent) RETURNING id
                    """, new { nhs = "97" + trust.ToString("D4", CultureInfo.InvariantCulture) + n.ToString("D4", CultureInfo.InvariantCulture), born = new DateOnly(1940, 1, 1), locality, sent });
                return await connection.ExecuteScalarAsync<long>(
                    """
                    INSERT INTO referral (person_id, organisation_id, status, source, pathway, urgency, consent_to_share, created_at, submitted_at, updated_at)
                    VALUES (@person, @trust, @status, 'acute-hospital', '1', 'routine', TRUE, @sent, @sent, @updated) RETURNING id
                    """, new { person, trust, status, sent, updated = updated ?? sent });
            }
            // Each write keeps the referral's first decision and start beside it, as the product's commands do (ReferralFirsts).
            async Task Task(long referral, string queue, string status, DateTimeOffset created, DateTimeOffset? completed = null, string? decision = null)
            {
                await connection.ExecuteAsync(
                    """
                    INSERT INTO triage_task (referral_id, queue, status, decision, created_at, updated_at, completed_at)
                    VALUES (@referral, @queue, @status, @decision, @created, @updated, @completed)
                    """, new { referral, queue, status, decision, created, updated = completed ?? created, completed });
                await ReferralFirsts.KeepAsync(connection, null, referral);
            }
            async Task Start(long referral, DateTimeOffset started)
            {
                await connection.ExecuteAsync(
                    """
                    INSERT INTO placement (referral_id, service_id, status, start_on, started_at, created_at)
                    VALUES (@referral, @service, 'active', @day, @started, @started)
                    """, new { referral, service, day = DateOnly.FromDateTime(started.UtcDateTime), started });
                await ReferralFirsts.KeepAsync(connection, null, referral);
            }

            var r1 = await Referral("in-triage", Noon(2026, 5, 20));
            await Task(r1, "coordination", "in-progress", Noon(2026, 5, 20));
            var r2 = await Referral("submitted", Noon(2026, 6, 25));
            await Task(r2, "coordination", "requested", Noon(2026, 6, 25));
            var r3 = await Referral("awaiting-information", Noon(2026, 1, 10));
            await Task(r3, "coordination", "on-hold", Noon(2026, 1, 10));
            var r4 = await Referral("redirected", Noon(2025, 12, 1), Noon(2025, 12, 2));
            await Task(r4, "coordination", "completed", Noon(2025, 12, 1), Noon(2025, 12, 2), "redirected to bed bureau");
            await Task(r4, "bed-bureau", "requested", Noon(2025, 12, 2));
            var r5 = await Referral("placed", Noon(2026, 6, 10), Noon(2026, 6, 15));
            await Task(r5, "coordination", "completed", Noon(2026, 6, 10), Noon(2026, 6, 12), "accepted: reablement");
            await Start(r5, Noon(2026, 6, 15));
            var r6 = await Referral("accepted", Noon(2026, 6, 1), Noon(2026, 6, 4));
            await Task(r6, "coordination", "completed", Noon(2026, 6, 1), Noon(2026, 6, 4), "accepted: home-care");
            var r7 = await Referral("accepted", Noon(2026, 3, 1), Noon(2026, 3, 20));
            await Task(r7, "bed-bureau", "completed", Noon(2026, 3, 1), Noon(2026, 3, 20), "accepted: nursing bed, Handcount House");
            var r8 = await Referral("declined", Noon(2026, 6, 2), Noon(2026, 6, 3));
            await Task(r8, "coordination", "rejected", Noon(2026, 6, 2), Noon(2026, 6, 3), "declined: not-eligible");
            var r9 = await Referral("cancelled", Noon(2026, 6, 20), Noon(2026, 6, 22));
            await Task(r9, "coordination", "cancelled", Noon(2026, 6, 20), Noon(2026, 6, 22));
            var r10 = await Referral("placed", Noon(2026, 6, 28), Noon(2026, 7, 5));
            await Task(r10, "coordination", "completed", Noon(2026, 6, 28), Noon(2026, 7, 2), "accepted: reablement");
            await Start(r10, Noon(2026, 7, 5));
            var r11 = await Referral("placed", Noon(2026, 5, 1), Noon(2026, 6, 20));
            await Task(r11, "bed-bureau", "completed", Noon(2026, 5, 1), Noon(2026, 5, 10), "accepted: rehabilitation bed, Handcount House");
            await Start(r11, Noon(2026, 6, 20));
            var r12 = await Referral("submitted", Noon(2026, 7, 3));
            await Task(r12, "coordination", "requested", Noon(2026, 7, 3));
            var r14 = await Referral("submitted", Noon(2026, 6, 26), locality: "Elsewhere");
            await Task(r14, "coordination", "requested", Noon(2026, 6, 26));
            var r15 = await Referral("cancelled", Noon(2026, 6, 5), Noon(2026, 7, 10));
            await Task(r15, "coordination", "cancelled", Noon(2026, 6, 5), Noon(2026, 6, 8));
            await connection.ExecuteAsync(
                "INSERT INTO change (at, kind, entity_type, entity_id, organisation_id) VALUES (@at, 'referral.cancelled', 'referral', @r15, @trust)",
                new { at = Noon(2026, 6, 8), r15, trust });
            Trusts[app] = trust;
            return trust;
        }
        finally
        {
            Once.Release();
        }
    }

    private async Task<WaitingLists.Result> ReportAsync(ReportFilter filter) =>
        await app.SendAsync<WaitingLists.Result>(new WaitingLists.Query(filter), await app.StaffAsync("manager"));

    [Fact]
    public async Task WaitingLists_InJune_AreAsCountedByHand()
    {
        var trust = await SeedAsync();
        var report = await ReportAsync(June with { Trust = trust, Locality = Locality });

        Assert.Equal(new DateOnly(2026, 6, 30), report.AsAt);
        // Triage: R2, R10 under 1 month; R1 1 to 3; R3 3 to 6; R4 6 or more. Service: R6 under 1 month. Bed: R7 3 to 6.
        Assert.Equal(
            [
                (WaitingLists.ForTriage, new[] { 2, 1, 1, 1 }),
                (WaitingLists.ForService, new[] { 1, 0, 0, 0 }),
                (WaitingLists.ForBed, new[] { 0, 0, 1, 0 }),
            ],
            report.Waiting.Select(w => (w.WaitingFor, w.ByBand.ToArray())));
        Assert.Equal([5, 1, 1], report.Waiting.Select(w => w.Total));
        // Decisions in June: R8 1 day, R5 2 days, R6 3 days: median 2. Starts in June: R5 5 days, R11 50 days: median 27.5.
        Assert.Equal(new WaitingLists.Median(2, 3), report.RequestToDecision);
        Assert.Equal(new WaitingLists.Median(27.5, 2), report.RequestToStart);
    }

    [Fact]
    public async Task WaitingLists_WithoutTheLocality_CountThePersonElsewhereToo_AndAnotherTrustsReferralsNot()
    {
        var trust = await SeedAsync();
        var report = await ReportAsync(June with { Trust = trust });
        // R14 (Elsewhere) joins triage under 1 month: 3 instead of 2.
        Assert.Equal([3, 1, 1, 1], report.Waiting[0].ByBand);

        // Every other trust's referrals are the demo county's: none of ours among them, so ours alone make the difference.
        var all = await ReportAsync(June);
        var others = await ReportAsync(June with { Trust = -1 });
        Assert.Equal([0, 0, 0, 0], others.Waiting[0].ByBand);
        Assert.True(all.Waiting[0].Total >= report.Waiting[0].Total);
    }

    [Fact]
    public async Task WaitingLists_APeriodThatEndsBeforeItStarts_IsRefused()
    {
        var refused = await Record.ExceptionAsync(() => ReportAsync(new ReportFilter(new DateOnly(2026, 6, 30), new DateOnly(2026, 6, 1))));
        Assert.IsType<CareCoordination.Pipeline.ValidationFailed>(refused);
    }

    [Fact]
    public async Task WaitingListsCsv_ParsesBackToThePagesFigures()
    {
        var trust = await SeedAsync();
        var filter = June with { Trust = trust, Locality = Locality };
        var report = await ReportAsync(filter);
        using var client = app.CreateBrowserlessClient();
        (await app.SignInAsync(client, "manager", AppFactory.Password)).Dispose();

        using var response = await client.GetAsync("/reports/waiting-lists.csv?" + filter.ToQueryString());
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("waiting-lists-2026-06-01-to-2026-06-30.csv", response.Content.Headers.ContentDisposition?.FileName?.Trim('"'));
        using var reader = CsvReader.Create(await response.Content.ReadAsByteArrayAsync());
        var parsed = new List<(string, string, double?)>();
        while (reader.Read())
        {
            var value = reader.GetString("Value");
            parsed.Add((reader.GetString("Figure"), reader.GetString("Wait"), value.Length == 0 ? null : double.Parse(value, CultureInfo.InvariantCulture)));
        }
        Assert.Equal(["Figure", "Wait", "Value"], reader.Headers.ToArray());
        Assert.Equal(report.Rows().Select(r => (r.Figure, r.Wait, r.Value)), parsed);
        Assert.Contains(("Median days from request to service start", "", 27.5), parsed);
        Assert.Contains((WaitingLists.ForTriage, "6 months or more", 1.0), parsed);
    }
}

public sealed class WaitingListsOnSqliteTests(AppFactory app) : WaitingListsTests(app), IClassFixture<AppFactory>;

public sealed class WaitingListsOnPostgresTests(PostgresAppFactory app) : WaitingListsTests(app), IClassFixture<PostgresAppFactory>;
