using System.Net;
using CareCoordination.Features.Reports;
using CareCoordination.Pipeline;
using CareCoordination.Tests.Support;
using CsvHelper;
using Dapper;

namespace CareCoordination.Tests.Features.Reports;

/// <summary>
/// The data quality scorecard over seven referrals of one trust with known faults, each check's figures counted by
/// hand below; the drill-down names the failing people and audits each one; the CSV parses back to the page's figures.
/// </summary>
public abstract class DataQualityTests(AppFactory app)
{
    private sealed record Built(ReportWorld World, Dictionary<string, long> Referrals)
    {
        public ReportFilter Period => new(World.Day(0), World.Day(9), World.TrustId);
    }

    /// <summary>
    /// Referrals Q1..Q7 and Q10 are submitted on days 0 to 3 (the period is day 0 to day 9); the report is read on day 12. The
    /// triage target is 30 minutes (the default). DRD = discharge ready date.
    ///   Q1 hospital, DRD d0, accepted after 10 min, placement started d1, discharged d1 10:00 on pathway 1, delay reason recorded;
    ///      a second coordination task made on d1 and completed 4 hours later.
    ///   Q2 hospital, DRD d0, ethnicity not stated (Z), accepted after 60 min, placement started d2, no discharge recorded
    ///      (cleared after the start, which now records one: a placement from before that).
    ///   Q3 GP step-up, no ethnicity and no postcode, declined after 5 min.
    ///   Q4 hospital, DRD d-2, never decided, still in hospital, no delay reason.
    ///   Q5 hospital, DRD d2, accepted after 20 min, started d3, discharge recorded d2 08:00 (before it was sent at 09:00), no pathway.
    ///   Q6 hospital, DRD d5 (sent early), declined after 10 min, discharge recorded d4 on pathway 0 (before its DRD).
    ///   Q7 hospital, its DRD lost (as a partner's message without one would leave it), cancelled d3.
    ///   Q10 hospital, DRD d1, declined on d3 after exactly 30 minutes (the target), still in hospital.
    /// Outside: Q8 sent on day 11 without a postcode; Q9 from a demo trust without a postcode.
    /// </summary>
    private async Task<Built> BuildAsync()
    {
        var w = await ReportWorld.CreateAsync(app);
        var q = new Dictionary<string, long>();

        w.Now(0, 9);
        q["Q1"] = await w.SubmitAsync();
        q["Q2"] = await w.SubmitAsync(f => f.Ethnicity = "Z");
        w.Now(0, 9, 10);
        var q1 = await w.AcceptAsync(q["Q1"], "Home First Reablement - North");
        w.Now(0, 10);
        var q2 = await w.AcceptAsync(q["Q2"], "Home First Reablement - North");

        w.Now(1, 9);
        q["Q3"] = await w.SubmitAsync(ReportWorld.FromGp);
        await w.SetPersonAsync(q["Q3"], ethnicity: null, postcode: null);
        q["Q4"] = await w.SubmitAsync(f => f.MedicallyOptimisedOn = w.Day(-2));
        w.Now(1, 9, 5);
        await w.DeclineAsync(q["Q3"], "not-eligible");
        w.Now(1, 10);
        await w.StartServiceAsync(q1);
        await w.RecordDischargeAsync(q["Q1"], w.At(1, 10), "1");
        await w.RecordDelayAsync(q["Q1"], w.At(0, 12));
        // A later coordination task for Q1, decided slowly: the check times the referral's first task, never a later one.
        await using (var connection = await app.OpenAsync())
        {
            await connection.ExecuteAsync(
                """
                INSERT INTO triage_task (referral_id, queue, status, created_at, updated_at, completed_at)
                VALUES (@id, 'coordination', 'completed', @created, @completed, @completed)
                """, new { id = q["Q1"], created = w.At(1, 11), completed = w.At(1, 15) });
        }

        w.Now(2, 9);
        q["Q5"] = await w.SubmitAsync();
        q["Q6"] = await w.SubmitAsync(f => { f.MedicallyOptimisedOn = w.Day(5); f.ExpectedDischargeOn = w.Day(6); });
        w.Now(2, 9, 10);
        await w.DeclineAsync(q["Q6"], "no-longer-needed");
        w.Now(2, 9, 20);
        var q5 = await w.AcceptAsync(q["Q5"], "Home First Reablement - North");
        w.Now(2, 10);
        await w.StartServiceAsync(q2);
        // Starting support now records the hospital discharge with it; Q2 stands for a placement started before it did (a
        // store from an earlier release), so the check has a record to find.
        await using (var connection = await app.OpenAsync())
        {
            await connection.ExecuteAsync(
                "UPDATE referral SET discharged_at = NULL, discharge_recorded_from = NULL, pathway_at_discharge = NULL, destination_at_discharge = NULL, destination_care_level = NULL WHERE id = @id",
                new { id = q["Q2"] });
        }

        w.Now(3, 9);
        q["Q7"] = await w.SubmitAsync();
        q["Q10"] = await w.SubmitAsync(f => f.MedicallyOptimisedOn = w.Day(1));
        w.Now(3, 9, 30);
        await w.DeclineAsync(q["Q10"], "not-eligible");
        w.Now(3, 10);
        await w.CancelAsync(q["Q7"]);
        await w.StartServiceAsync(q5);
        await using (var connection = await app.OpenAsync())
        {
            await connection.ExecuteAsync("UPDATE referral SET medically_optimised_on = NULL WHERE id = @id", new { id = q["Q7"] });
        }
        await w.RecordDischargeAsync(q["Q5"], w.At(2, 8), null);
        await w.RecordDischargeAsync(q["Q6"], w.At(4, 12), "0");

        w.Now(4, 9);
        var q9 = await w.SubmitAsync(referrer: "referrer");
        await w.SetPersonAsync(q9, ethnicity: "A", postcode: null);
        w.Now(11, 9);
        q["Q8"] = await w.SubmitAsync();
        await w.SetPersonAsync(q["Q8"], ethnicity: "A", postcode: null);
        w.Now(12, 9);
        return new Built(w, q);
    }

    [Fact]
    public async Task Scorecard_GivesEachCheckItsShareOfTheReferralsItAppliesTo()
    {
        var built = await BuildAsync();

        var measures = await app.SendAsync<IReadOnlyList<DataQuality.Measure>>(new DataQuality.Scorecard(built.Period), await app.StaffAsync("manager"));

        Assert.Equal(
            [
                // Hospital referrals Q1, Q2, Q4, Q5, Q6, Q7, Q10 = 7; Q7 lost its DRD: 6 pass, 85.7%.
                ("drd-recorded", 7, 6, (double?)85.7),
                // Hospital referrals whose placement started: Q1, Q2, Q5 = 3; Q2 has no discharge: 2 pass, 66.7%.
                ("discharge-recorded", 3, 2, 66.7),
                // All 8; Q2 is Z, Q3 has none: 6 pass, 75.0%.
                ("ethnicity-stated", 8, 6, 75.0),
                // All 8; Q3 has none (Q8 and Q9 are outside): 7 pass, 87.5%.
                ("postcode-known", 8, 7, 87.5),
                // Past their DRD, not declined or cancelled: Q1 (left d1 > d0), Q2 (in since d0), Q4 (in since d-2) = 3; only Q1 has a reason: 33.3%.
                // Not Q5 (left on its DRD), Q6 (declined, and left before its DRD), Q7 (cancelled, no DRD), Q10 (declined, though still in past its DRD).
                ("delay-reason-recorded", 3, 1, 33.3),
                // Decided: Q1 10 min, Q2 60, Q3 5, Q5 20, Q6 10, Q10 30 = 6; Q2 is over 30 (Q10's 30 is within): 5 pass, 83.3%.
                // Q4 is undecided, Q7 cancelled.
                ("decided-within-target", 6, 5, 83.3),
                // DRD and discharge: Q1 (d1 >= d0), Q5 (d2 >= d2), Q6 (d4 < d5) = 3; 2 pass, 66.7%.
                ("discharge-not-before-drd", 3, 2, 66.7),
                // Discharged: Q1, Q5 (08:00 before 09:00), Q6 = 3; 2 pass, 66.7%.
                ("discharge-not-before-referral", 3, 2, 66.7),
                // Discharged: Q1 (1), Q5 (none), Q6 (0) = 3; 2 pass, 66.7%.
                ("pathway-at-discharge-recorded", 3, 2, 66.7),
            ],
            measures.Select(m => (m.Code, m.Applies, m.Passing, m.Percent)));
        Assert.All(measures, m => Assert.False(string.IsNullOrWhiteSpace(m.Definition)));

        // A period with no referrals: every check applies to none, and says so rather than 0% or 100%.
        var empty = await app.SendAsync<IReadOnlyList<DataQuality.Measure>>(
            new DataQuality.Scorecard(new ReportFilter(built.World.Day(5), built.World.Day(9), built.World.TrustId)), await app.StaffAsync("manager"));
        Assert.All(empty, m => Assert.Equal((0, (double?)null), (m.Applies, m.Percent)));
    }

    [Fact]
    public async Task Scorecard_AddsUpThePartsOfItsPeriod_EachCountedAsItIsRead()
    {
        var built = await BuildAsync();
        // Days 2 and 3: with two or more parts read at once (ReportFilter.ReadParts), day 2 (Q5, Q6) and day 3 (Q7, Q10) are
        // counted apart and added up.
        var period = new ReportFilter(built.World.Day(2), built.World.Day(3), built.World.TrustId);

        var measures = await app.SendAsync<IReadOnlyList<DataQuality.Measure>>(new DataQuality.Scorecard(period), await app.StaffAsync("manager"));

        Assert.Equal(
            [
                // Hospital: all four; Q7 lost its DRD.
                ("drd-recorded", 4, 3, (double?)75.0),
                // Placement started: Q5 only, discharged.
                ("discharge-recorded", 1, 1, 100.0),
                ("ethnicity-stated", 4, 4, 100.0),
                ("postcode-known", 4, 4, 100.0),
                // Q5 left on its DRD, Q6 and Q10 declined, Q7 cancelled: none applies.
                ("delay-reason-recorded", 0, 0, null),
                // Q5 20 min, Q6 10, Q10 30 (Q7 cancelled, never decided).
                ("decided-within-target", 3, 3, 100.0),
                // Q5 (d2 on its DRD d2) passes, Q6 (d4 before d5) fails.
                ("discharge-not-before-drd", 2, 1, 50.0),
                // Q5 discharged before it was sent, Q6 not.
                ("discharge-not-before-referral", 2, 1, 50.0),
                // Q5 no pathway, Q6 pathway 0.
                ("pathway-at-discharge-recorded", 2, 1, 50.0),
            ],
            measures.Select(m => (m.Code, m.Applies, m.Passing, m.Percent)));
    }

    [Fact]
    public async Task Failures_NameThePeopleThatFailACheck_AndEveryOpenIsAudited()
    {
        var built = await BuildAsync();
        var admin = await app.StaffAsync("admin");

        var failing = await app.SendAsync<IReadOnlyList<DataQuality.Failure>>(new DataQuality.Failures("delay-reason-recorded", built.Period), admin);

        // Q2 and Q4, as counted above.
        Assert.Equal([built.Referrals["Q2"], built.Referrals["Q4"]], failing.Select(f => f.ReferralId));
        Assert.All(failing, f => Assert.Equal(("Edith Trelawny", built.World.TrustName), (f.Name, f.Trust)));
        Assert.Equal($"Ready {built.World.Day(-2):d MMM yyyy}, still in hospital, no delay reason", failing[1].Why);

        await using var connection = await app.OpenAsync();
        // One row for the page (its kind, no one referral: a page read, issue 14), each person on it named against it.
        var audited = Assert.Single(await connection.QueryAsync<(long Id, long? EntityId, long? PersonId)>(
            """
            SELECT id, entity_id, person_id FROM audit_event
            WHERE action = 'DataQuality' AND outcome = 'success' AND actor_name = 'Sam Whitfield' AND entity_type = 'referral' AND detail = @detail
            """, new { detail = $"Data quality: delay-reason-recorded, {built.World.Ymd(0)} to {built.World.Ymd(9)}: 2 referrals" }));
        Assert.Equal((null, null), (audited.EntityId, audited.PersonId));
        var personOf = (await connection.QueryAsync<(long Id, long PersonId)>(
            "SELECT id, person_id FROM referral WHERE organisation_id = @TrustId", new { built.World.TrustId })).ToDictionary(x => x.Id, x => x.PersonId);
        Assert.Equal(
            new[] { "Q2", "Q4" }.Select(k => personOf[built.Referrals[k]]).Distinct().Order(),
            await app.PeopleReadByAsync(audited.Id));

        // Opening it again writes again: each open is on the trail.
        await app.SendAsync<IReadOnlyList<DataQuality.Failure>>(new DataQuality.Failures("delay-reason-recorded", built.Period), admin);
        Assert.Equal(2, await connection.ExecuteScalarAsync<long>(
            "SELECT COUNT(*) FROM audit_event WHERE action = 'DataQuality' AND detail = @detail",
            new { detail = $"Data quality: delay-reason-recorded, {built.World.Ymd(0)} to {built.World.Ymd(9)}: 2 referrals" }));

        var coordinator = await app.StaffAsync("coordinator");
        await Assert.ThrowsAsync<AccessDenied>(() => app.SendAsync(new DataQuality.Failures("postcode-known", built.Period), coordinator));
        await Assert.ThrowsAsync<ValidationFailed>(() => app.SendAsync(new DataQuality.Failures("no-such-check", built.Period), admin));
    }

    [Fact]
    public async Task ScorecardCsv_ParsesBackToThePagesFigures_AndNamesNoOne()
    {
        var built = await BuildAsync();
        var measures = await app.SendAsync<IReadOnlyList<DataQuality.Measure>>(new DataQuality.Scorecard(built.Period), await app.StaffAsync("manager"));
        using var client = app.CreateBrowserlessClient();
        (await app.SignInAsync(client, "manager", AppFactory.Password)).Dispose();

        using var response = await client.GetAsync($"/reports/data-quality.csv?{built.Period.ToQueryString()}");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var bytes = await response.Content.ReadAsByteArrayAsync();
        using var reader = CsvReader.Create(bytes);
        var parsed = reader.GetRecords<DataQuality.Row>().ToList();
        Assert.Equal(measures.Select(m => m.ToRow()), parsed);
        var text = System.Text.Encoding.UTF8.GetString(bytes);
        Assert.DoesNotContain("Edith", text, StringComparison.Ordinal);
    }
}

public sealed class DataQualityOnSqliteTests(AppFactory app) : DataQualityTests(app), IClassFixture<AppFactory>;

public sealed class DataQualityOnPostgresTests(PostgresAppFactory app) : DataQualityTests(app), IClassFixture<PostgresAppFactory>;
