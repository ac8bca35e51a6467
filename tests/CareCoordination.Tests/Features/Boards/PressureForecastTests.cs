using System.Data.Common;
using CareCoordination.Domain;
using CareCoordination.Features.Boards;
using CareCoordination.Pipeline;
using CareCoordination.Tests.Support;
using Dapper;
using Microsoft.AspNetCore.Hosting;

namespace CareCoordination.Tests.Features.Boards;

/// <summary>
/// The pressure forecast on a small county the test builds, against figures worked out by hand (in the comments).
/// Today is a Wednesday (the next one: the test clock only moves forward), 14:00 in London; two weeks of history
/// (the Wednesday a fortnight ago to yesterday); the forecast covers tomorrow, Thursday, to next Wednesday.
/// </summary>
public abstract class PressureForecastTests(PressureForecastTests.EmptyCounty app)
{
    /// <summary>The real host on an empty store (no demo), learning from two weeks.</summary>
    public abstract class EmptyCounty(ITestStore store) : AppFactory(store)
    {
        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            base.ConfigureWebHost(builder);
            builder.UseSetting("Demo:Seed", "false");
            builder.UseSetting("Boards:ForecastWeeks", "2");
        }
    }

    public sealed class EmptyCountyOnSqlite() : EmptyCounty(new SqliteTestStore());

    public sealed class EmptyCountyOnPostgres() : EmptyCounty(new PostgresTestStore());

    /// <summary>Today: the first Wednesday after the real today (or the day the suite's clock is set to start).</summary>
    private static readonly DateOnly Today = NextWednesday();

    private static readonly DateTimeOffset Now = At(Today, 14);

    private static DateOnly NextWednesday()
    {
        var day = LondonTime.DateOf(AppFactory.TestNow ?? DateTimeOffset.UtcNow).AddDays(1);
        while (day.DayOfWeek != DayOfWeek.Wednesday)
        {
            day = day.AddDays(1);
        }
        return day;
    }

    /// <summary>A day by its distance from today (Wednesday): -14 the Wednesday a fortnight ago, 1 tomorrow (Thursday).</summary>
    private static DateOnly Day(int fromToday) => Today.AddDays(fromToday);

    private static DateTimeOffset At(DateOnly day, double hour) => LondonTime.StartOf(day).AddHours(hour);

    [Fact]
    public async Task Forecast_OnASmallCounty_EqualsTheFiguresWorkedByHand()
    {
        app.Clock.SetUtcNow(Now);
        await using (var connection = await app.OpenAsync())
        {
            await new County(connection).BuildAsync();
        }

        var forecast = await app.SendAsync<PressureForecast.Result>(new PressureForecast.Query(), await app.StaffAsync("fc-manager"));

        Assert.Equal(2, forecast.WeeksUsed);
        // Open now: one in triage, one awaiting information, one in the bed bureau's queue.
        Assert.Equal(new PressureForecast.PipelineNow(1, 1, 1), forecast.Pipeline);
        Assert.Equal(Enumerable.Range(1, 7).Select(Day), forecast.Days.Select(d => d.Date));

        // Outcomes of the 24 referrals of the fortnight: 12 reablement (share 0.5), 6 rehabilitation beds (0.25), 2 home care, 4 declined.
        // Pathway 1 (16): reablement 12/16 = 0.75. Pathway 2 (8): rehabilitation 6/8; through the bed bureau 6/6 = 1.
        // Open: pathway 1 in triage lands Thu (0.75 reablement); pathway 3 (none seen: all-referral shares) awaiting information, discharge date
        // passed, lands Thu (0.5 reablement, 0.25 rehabilitation); pathway 2 in the bed bureau's queue, expected discharge on Saturday (1 rehabilitation).
        var expected = new Dictionary<DateOnly, (double[] Referrals, double[] Reablement, double[] Rehabilitation)>
        {
            // The last two Thursdays had 8 and 12 referrals. Reablement 10 x 0.5 + 1.25 = 6.25; low Poisson(8 x 0.5 + 1.25 = 5.25) 10th percentile = 2
            // (P(0..1) = 0.033, P(0..2) = 0.105); high Poisson(12 x 0.5 + 1.25 = 7.25) 90th = 11. Rehabilitation 10 x 0.25 + 0.25 = 2.75;
            // low Poisson(2.25) 10th = 0 (P(0) = 0.105); high Poisson(3.25) 90th = 6 (P(0..5) = 0.889, P(0..6) = 0.952).
            [Day(1)] = ([8, 10, 12], [2, 6.3, 11], [0, 2.8, 6]),
            // Fridays 1 and 1: reablement 0.5, Poisson(0.5) 90th = 1 (P(0..1) = 0.910); rehabilitation 0.25, Poisson(0.25) 90th = 1.
            [Day(2)] = ([1, 1, 1], [0, 0.5, 1], [0, 0.3, 1]),
            // No Saturday referrals; the bed bureau's referral lands: 1 rehabilitation, Poisson(1) 90th = 2 (P(0..1) = 0.736, P(0..2) = 0.920).
            [Day(3)] = ([0, 0, 0], [0, 0, 0], [0, 1, 2]),
            [Day(4)] = ([0, 0, 0], [0, 0, 0], [0, 0, 0]),
            [Day(5)] = ([0, 0, 0], [0, 0, 0], [0, 0, 0]),
            [Day(6)] = ([0, 0, 0], [0, 0, 0], [0, 0, 0]),
            // The last two Wednesdays had 1 each.
            [Day(7)] = ([1, 1, 1], [0, 0.5, 1], [0, 0.3, 1]),
        };
        foreach (var day in forecast.Days)
        {
            var (referrals, reablement, rehabilitation) = expected[day.Date];
            Assert.Equal(referrals, Figures(day.Referrals));
            Assert.Equal(reablement, Figures(day.Demand["reablement"]));
            Assert.Equal(rehabilitation, Figures(day.Demand["rehabilitation"]));
            foreach (var type in new[] { "step-down-nursing", "residential", "nursing", "dementia" })
            {
                Assert.Equal([0, 0, 0], Figures(day.Demand[type]));
            }
        }

        var outlook = forecast.Outlooks.ToDictionary(o => o.Measure);
        // Reablement: 4 + 2 slots a day (a service not taking people does not count); Thursday's likely 6.3 is more.
        Assert.Equal(new PressureForecast.Outlook("reablement", 6, 6, Day(1), Day(1)), outlook["reablement"]);
        // Rehabilitation: 3 free + 1 cleaning at active sites; Fridays freed one bed each week. Likely 4 - 2.8 = 1.2, + 1 - 0.3 = 1.9,
        // - 1 = 0.9, ..., - 0.3 = 0.6 on Wed: enough. Busy end: 4 - 6 below none on Thursday.
        Assert.Equal(new PressureForecast.Outlook("rehabilitation", 4, null, null, Day(1)), outlook["rehabilitation"]);
        Assert.Equal(new PressureForecast.Outlook("dementia", 0, null, null, null), outlook["dementia"]);
    }

    [Fact]
    public async Task Forecast_IsForTheBoardsReaders_NotReferrers()
    {
        await using (var connection = await app.OpenAsync())
        {
            await County.StaffAsync(connection);
        }

        await Assert.ThrowsAsync<AccessDenied>(async () =>
            await app.SendAsync<PressureForecast.Result>(new PressureForecast.Query(), await app.StaffAsync("fc-referrer")));
    }

    private static double[] Figures(PressureForecast.Band band) => [band.Low, band.Likely, band.High];

    /// <summary>The small county, written straight into the store.</summary>
    private sealed class County(DbConnection connection)
    {
        private long _organisation;
        private long _person;
        private long _reablementService;
        private long _homeCareService;
        private long _rehabBed;

        public static async Task<long> StaffAsync(DbConnection connection)
        {
            var existing = await connection.ExecuteScalarAsync<long?>("SELECT id FROM organisation WHERE code = 'FC1'");
            if (existing is { } id)
            {
                return id;
            }
            var organisation = await connection.ExecuteScalarAsync<long>(
                "INSERT INTO organisation (code, name, kind, created_at) VALUES ('FC1', 'Forecast Council', 'council', @Now) RETURNING id", new { Now });
            foreach (var (username, role) in new[] { ("fc-manager", "manager"), ("fc-referrer", "referrer") })
            {
                await connection.ExecuteAsync(
                    "INSERT INTO staff_user (username, display_name, role, organisation_id, created_at) VALUES (@username, @username, @role, @organisation, @Now)",
                    new { username, role, organisation, Now });
            }
            return organisation;
        }

        public async Task BuildAsync()
        {
            _organisation = await StaffAsync(connection);
            _person = await connection.ExecuteScalarAsync<long>(
                """
                INSERT INTO person (nhs_number, given_name, family_name, date_of_birth, sex, created_at, updated_at)
                VALUES ('9990000018', 'Test', 'Person', @born, 'female', @Now, @Now) RETURNING id
                """, new { born = new DateOnly(1940, 5, 1), Now });
            _reablementService = await Service("Reablement North", "reablement", "slots", 4, true);
            await Service("Reablement South", "reablement", "slots", 2, true);
            await Service("Reablement closed", "reablement", "slots", 50, false);
            _homeCareService = await Service("Home care", "home-care", "hours", 100, true);

            var ward = await Ward("Open Site", true);
            _rehabBed = await Bed(ward, "B1", "rehabilitation", "occupied");
            await Bed(ward, "B2", "rehabilitation", "available");
            await Bed(ward, "B3", "rehabilitation", "available");
            await Bed(ward, "B4", "rehabilitation", "available");
            await Bed(ward, "B5", "rehabilitation", "cleaning");
            await Bed(ward, "B6", "rehabilitation", "closed");
            await Bed(await Ward("Closed Site", false), "B1", "rehabilitation", "available");

            // Thursdays: 8 then 12 referrals. Pathway 1 ends in reablement (12 of 16), home care (2) or a decline (2);
            // pathway 2 in a rehabilitation bed through the bed bureau (6 of 8) or a decline (2).
            var outcomes = new Queue<(string Pathway, string Outcome)>(
                Enumerable.Repeat(("1", "reablement"), 12).Concat(Enumerable.Repeat(("1", "home-care"), 2)).Concat(Enumerable.Repeat(("1", "declined"), 2))
                    .Concat(Enumerable.Repeat(("2", "rehabilitation"), 6)).Concat(Enumerable.Repeat(("2", "declined"), 2)));
            var days = new (DateOnly Day, int Count)[] { (Day(-14), 1), (Day(-13), 8), (Day(-12), 1), (Day(-7), 1), (Day(-6), 12), (Day(-5), 1) };
            foreach (var (day, count) in days)
            {
                for (var i = 0; i < count; i++)
                {
                    var (pathway, outcome) = outcomes.Dequeue();
                    await Decided(At(day, 9 + i * 0.25), pathway, outcome);
                }
            }
            // Two rehabilitation stays ended, on the last two Fridays, of people referred before the fortnight (so neither a referral nor an outcome in it).
            foreach (var day in new[] { Day(-12), Day(-5) })
            {
                var referral = await Referral(At(Day(-22), 8), "2", "completed", null);
                await connection.ExecuteAsync(
                    "INSERT INTO placement (referral_id, bed_id, status, start_on, started_at, ended_at, created_at) VALUES (@referral, @bed, 'ended', @start, @start, @end, @start)",
                    new { referral, bed = _rehabBed, start = At(Day(-22), 12), end = At(day, 11) });
            }

            // Open now: in triage, awaiting information (since 10:00 today), and in the bed bureau's queue.
            var inTriage = await Referral(At(Day(0), 9), "1", "in-triage", null);
            await Task(inTriage, "coordination", "in-progress", At(Day(0), 9), null);
            var awaiting = await Referral(At(Day(0), 9.5), "3", "awaiting-information", Day(-1));
            await Task(awaiting, "coordination", "on-hold", At(Day(0), 9.5), null, onHoldSince: At(Day(0), 10));
            var bureau = await Referral(At(Day(0), 10), "2", "redirected", Day(3));
            await Task(bureau, "coordination", "completed", At(Day(0), 10), At(Day(0), 11));
            await Task(bureau, "bed-bureau", "requested", At(Day(0), 11), null);
        }

        private async Task Decided(DateTimeOffset sent, string pathway, string outcome)
        {
            var decided = sent.AddHours(2);
            var referral = await Referral(sent, pathway, outcome == "declined" ? "declined" : "accepted", null);
            if (outcome == "rehabilitation")
            {
                await Task(referral, "coordination", "completed", sent, sent.AddHours(1));
                await Task(referral, "bed-bureau", "completed", sent.AddHours(1), decided);
                await connection.ExecuteAsync(
                    "INSERT INTO placement (referral_id, bed_id, status, start_on, created_at) VALUES (@referral, @bed, 'cancelled', @start, @decided)",
                    new { referral, bed = _rehabBed, start = DateOnly.FromDateTime(decided.UtcDateTime), decided });
                return;
            }
            await Task(referral, "coordination", outcome == "declined" ? "rejected" : "completed", sent, decided);
            if (outcome != "declined")
            {
                await connection.ExecuteAsync(
                    "INSERT INTO placement (referral_id, service_id, status, start_on, created_at) VALUES (@referral, @service, 'ended', @start, @decided)",
                    new { referral, service = outcome == "reablement" ? _reablementService : _homeCareService, start = DateOnly.FromDateTime(decided.UtcDateTime), decided });
            }
        }

        private Task<long> Referral(DateTimeOffset sent, string pathway, string status, DateOnly? expectedDischarge) =>
            connection.ExecuteScalarAsync<long>(
                """
                INSERT INTO referral (person_id, organisation_id, status, source, pathway, urgency, expected_discharge_on, consent_to_share,
                                      created_at, submitted_at, updated_at)
                VALUES (@_person, @_organisation, @status, 'acute-hospital', @pathway, 'routine', @expectedDischarge, TRUE, @sent, @sent, @sent) RETURNING id
                """, new { _person, _organisation, status, pathway, expectedDischarge, sent });

        private Task Task(long referral, string queue, string status, DateTimeOffset created, DateTimeOffset? completed, DateTimeOffset? onHoldSince = null) =>
            connection.ExecuteAsync(
                """
                INSERT INTO triage_task (referral_id, queue, status, on_hold_since, created_at, updated_at, completed_at)
                VALUES (@referral, @queue, @status, @onHoldSince, @created, @created, @completed)
                """, new { referral, queue, status, onHoldSince, created, completed });

        private Task<long> Service(string name, string kind, string unit, int perDay, bool active) =>
            connection.ExecuteScalarAsync<long>(
                """
                INSERT INTO service (organisation_id, name, kind, capacity_unit, capacity_per_day, available_today, confirmed_at, active)
                VALUES (@_organisation, @name, @kind, @unit, @perDay, 0, @Now, @active) RETURNING id
                """, new { _organisation, name, kind, unit, perDay, Now, active });

        private async Task<long> Ward(string site, bool active)
        {
            var siteId = await connection.ExecuteScalarAsync<long>(
                "INSERT INTO site (organisation_id, name, kind, locality, postcode, active) VALUES (@_organisation, @site, 'community-hospital', 'Test', 'TR1 1AA', @active) RETURNING id",
                new { _organisation, site, active });
            return await connection.ExecuteScalarAsync<long>("INSERT INTO ward (site_id, name) VALUES (@siteId, 'Ward') RETURNING id", new { siteId });
        }

        private Task<long> Bed(long ward, string label, string type, string status) =>
            connection.ExecuteScalarAsync<long>(
                """
                INSERT INTO bed (ward_id, label, bed_type, allowed_sex, status, closed_reason, confirmed_at)
                VALUES (@ward, @label, @type, 'any', @status, @reason, @Now) RETURNING id
                """, new { ward, label, type, status, reason = status == "closed" ? "staffing" : null, Now });
    }
}

public sealed class PressureForecastOnSqliteTests(PressureForecastTests.EmptyCountyOnSqlite app)
    : PressureForecastTests(app), IClassFixture<PressureForecastTests.EmptyCountyOnSqlite>;

public sealed class PressureForecastOnPostgresTests(PressureForecastTests.EmptyCountyOnPostgres app)
    : PressureForecastTests(app), IClassFixture<PressureForecastTests.EmptyCountyOnPostgres>;

/// <summary>The forecast's look-back, from its inputs alone (PressureForecast.Make), with no store.</summary>
public sealed class PressureForecastLookBackTests
{
    /// <summary>
    /// Made on Wednesday 2 December for Thursday to Wednesday 9 December, from four weeks of history ending yesterday. The
    /// last day, a Wednesday, learns from the four Wednesdays before today (60, 56, 58 and, four weeks back, 82), as every
    /// other day learns from four of its weekday: today is not a complete day, so the look-back reaches a week further.
    /// </summary>
    [Fact]
    public void TheLastForecastDay_LearnsFromAsManyWeeksAsTheOthers()
    {
        var today = new DateOnly(2026, 12, 2);
        Assert.Equal(DayOfWeek.Wednesday, today.DayOfWeek);
        var wednesdays = new Dictionary<int, int> { [7] = 60, [14] = 56, [21] = 58, [28] = 82 };
        var history = Enumerable.Range(1, 28).Select(back => new PressureForecast.HistoryDay(
            today.AddDays(-back), wednesdays.GetValueOrDefault(back, 1), new Dictionary<string, int>())).ToList();
        var inputs = new PressureForecast.Inputs(today.AddDays(1), 4, history, [], [], new PressureForecast.Capacity(0, new Dictionary<string, int>()));

        var forecast = PressureForecast.Make(inputs, LondonTime.StartOf(today).AddHours(14));

        var wednesday = forecast.Days[^1];
        Assert.Equal(today.AddDays(7), wednesday.Date);
        // Fewest 56, the mean (60 + 56 + 58 + 82) / 4 = 64, most 82.
        Assert.Equal(new PressureForecast.Band(56, 64, 82), wednesday.Referrals);
        Assert.Equal(new PressureForecast.Band(1, 1, 1), forecast.Days[0].Referrals);
    }
}
