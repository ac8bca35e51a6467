using System.Collections.Concurrent;
using System.Data.Common;
using System.Globalization;
using System.Net;
using System.Text;
using CareCoordination.Features.Referrals;
using CareCoordination.Features.Reports;
using CareCoordination.Tests.Support;
using CsvHelper;
using Dapper;
using Microsoft.Extensions.DependencyInjection;

namespace CareCoordination.Tests.Features.Reports;

/// <summary>
/// The equity report over 60 referrals of one test trust, sent in the week of Monday 1 to Sunday 7 June 2026 (British
/// Summer Time), whose every figure was counted by hand from the table below. The referral numbers (#1 to #60) are
/// used in the comments that show the counting.
///
///   #      ethnic code    decision (hours after sending)            service start   age   sex      postcode -> IMD decile
///   1-26   A White        accepted into reablement (2 h)            48 h            *     female   *
///   27-34  A White        passed to bed bureau (1 h), bed (30 h)    72 h            80    27-33 female, 34 male
///   35-39  A White        declined (4 h)                            -               80    male     EQ1 1AA -> 1
///   40     A White        still waiting for triage                  -               80    male     EQ10 1AA -> 10
///   41-43  H Asian        reablement (2 h)                          48 h            90    male     EQ1 1AB -> 1
///   44-45  H Asian        bed (1 h, then 30 h)                      72 h            90    male     EQ1 1AB -> 1
///   46-50  H Asian        declined (4 h)                            -               90    male     EQ1 1AB -> 1
///   51-53  M Black        reablement (2 h)                          48 h            90    male     EQ1 1AA -> 1
///   54-58  Z Not stated   reablement (2 h)                          48 h            90    male     54-56 EQ10 1AA -> 10; 57-58 not known
///   59-60  Z Not stated   bed (1 h, then 30 h)                      72 h            90    59 male, 60 not known   not known
///
///   ages: 1-6 are 60, 7-18 are 70, 19-40 are 80, 41-60 are 90 (#60: 85 on the London day it was sent, 84 on the UTC day)
///   postcodes of 1-26: 1-12 EQ3 1AA -> 3; 13-23 EQ7 1AA -> 7; 24-26 EQ10 1AA -> 10; 27-34 EQ10 1AA -> 10
///   not known: #57 EQ2 1AA (an LSOA of another local authority, filtered out), #58 EQ9 9ZZ (not in the lookup),
///   #59 no postcode, #60 EQ8 1AA (an LSOA the index does not rank)
///   #27 first had a reablement place that was cancelled; it counts as a bed.
/// Not counted: a draft, a referral sent at 00:30 London time on Monday 8 June, and one from another trust in the week.
/// </summary>
public abstract class EquityReportTests(AppFactory app)
{
    private static readonly ConcurrentDictionary<AppFactory, Lazy<Task<World>>> Worlds = new();

    private static readonly DateOnly Monday = new(2026, 6, 1);

    private sealed record World(long TrustId, ReportFilter Filter);

    private Task<World> WorldAsync() => Worlds.GetOrAdd(app, a => new Lazy<Task<World>>(() => BuildAsync(a))).Value;

    private async Task<EquityReport.Result> ReportAsync()
    {
        var world = await WorldAsync();
        return await app.SendAsync<EquityReport.Result>(new EquityReport.Query(world.Filter), await app.StaffAsync("manager"));
    }

    [Fact]
    public async Task Everyone_IsTheSixtyReferralsOfTheWeek()
    {
        var report = await ReportAsync();
        // 37 home-based (#1-26, 41-43, 51-58), 12 beds (#27-34, 44-45, 59-60), 10 declined (#35-39, 46-50), #40 open.
        // Decisions: 37 at 2 h, 10 at 4 h, 12 at 30 h: the 30th of 59 is 2 h (1/12 day). Starts: 37 at 48 h, 12 at 72 h: the 25th of 49 is 48 h.
        Assert.Equal("All: n=60 share=100.0 | home 37 61.7 1.00 = | bed 12 20.0 1.00 = | declined 10 16.7 1.00 = | decision 0.08 1.00 = | start 2.00 1.00 =",
            Line(report.Everyone));
        Assert.True(report.DeprivationLoaded);
        Assert.Equal(20, report.ThresholdPercent);
    }

    [Fact]
    public async Task ByEthnicGroup_SuppressesSmallNumbers_AndMarksTheDisproportion()
    {
        var report = await ReportAsync();
        AssertLines(
        [
            // #1-40. Home 26/40 = 65.0% over 37/60 = 1.05; beds 8/40 = 20% as everyone; declined 5/40 = 12.5% over 16.7% = 0.75 < 0.80.
            // Decisions 26 at 2 h, 5 at 4 h, 8 at 30 h (the 1-hour pass to the bed bureau is not a decision): median 2 h.
            "White: n=40 share=66.7 | home 26 65.0 1.05 = | bed 8 20.0 1.00 = | declined 5 12.5 0.75 lower | decision 0.08 1.00 = | start 2.00 1.00 =",
            "Mixed: n=0 share=0.0 | home 0 - - = | bed 0 - - = | declined 0 - - = | decision - - = | start - - =",
            // #41-50. Home 3 and beds 2 are under 5. Declined 5/10 = 50% over 16.7% = 3.00. Decisions 2,2,2,4,4,4,4,4,30,30 h:
            // median (4+4)/2 = 4 h = 0.17 day, twice everyone's. Starts 48,48,48,72,72: 48 h.
            "Asian or Asian British: n=10 share=16.7 | home <5 - - = | bed <5 - - = | declined 5 50.0 3.00 higher | decision 0.17 2.00 higher | start 2.00 1.00 =",
            // #51-53: 3 referrals, under 5; so are its 3 home-based; its zeros show, but no rate over a hidden number.
            "Black or Black British: n=<5 share=- | home <5 - - = | bed 0 - - = | declined 0 - - = | decision - - = | start - - =",
            "Other ethnic groups: n=0 share=0.0 | home 0 - - = | bed 0 - - = | declined 0 - - = | decision - - = | start - - =",
            // #54-60: 7 referrals, hidden (*) because Black's 3 is the only hidden count of the column: 60 - 40 - 10 would give it
            // away. 7 is the smallest count above zero still shown. Home 5 shows, but not as a rate of a hidden number.
            "Not stated: n=* share=- | home 5 - - = | bed <5 - - = | declined 0 - - = | decision 0.08 1.00 = | start 2.00 1.00 =",
            "Not known: n=0 share=0.0 | home 0 - - = | bed 0 - - = | declined 0 - - = | decision - - = | start - - =",
        ], Lines(report, EquityReport.Ethnicity));
    }

    [Fact]
    public async Task ByDeprivation_UsesTheLoadedLookup_AndHidesOneMoreBesideALoneSmallCount()
    {
        var report = await ReportAsync();
        string Empty(string decile) => $"{decile}: n=0 share=0.0 | home 0 - - = | bed 0 - - = | declined 0 - - = | decision - - = | start - - =";
        AssertLines(
        [
            // #35-53: 18. Home 6 (#41-43, 51-53) is hidden (*): Not known's 2 is the only small home count, and 6 is the
            // smallest shown (decile 10 also has 6; the first in order is taken). Declined 10/18 = 55.6% over 16.7% = 3.33.
            // Decisions 6 at 2 h, 10 at 4 h, 2 at 30 h: median (4+4)/2 = 4 h. Starts 6 at 48 h, 2 at 72 h: 48 h.
            "1 (most deprived): n=18 share=30.0 | home * - - = | bed <5 - - = | declined 10 55.6 3.33 higher | decision 0.17 2.00 higher | start 2.00 1.00 =",
            Empty("2"),
            // #1-12, all home-based: 100% over 61.7% = 1.62.
            "3: n=12 share=20.0 | home 12 100.0 1.62 higher | bed 0 0.0 0.00 lower | declined 0 0.0 0.00 lower | decision 0.08 1.00 = | start 2.00 1.00 =",
            Empty("4"), Empty("5"), Empty("6"),
            // #13-23: 11, hidden (*) for Not known's 4, the only small referral count.
            "7: n=* share=- | home 11 - - = | bed 0 - - = | declined 0 - - = | decision 0.08 1.00 = | start 2.00 1.00 =",
            Empty("8"), Empty("9"),
            // #24-34, 40, 54-56: 15. Home 6/15 = 40% over 61.7% = 0.65; beds 8/15 = 53.3% over 20% = 2.67.
            // Decisions 6 at 2 h, 8 at 30 h (#40 has none): median (30+30)/2 = 30 h = 1.25 days, 15 times everyone's.
            // Starts 6 at 48 h, 8 at 72 h: median 72 h = 3 days, 1.5 times.
            "10 (least deprived): n=15 share=25.0 | home 6 40.0 0.65 lower | bed 8 53.3 2.67 higher | declined 0 0.0 0.00 lower | decision 1.25 15.00 higher | start 3.00 1.50 higher",
            // #57-60: another authority's LSOA (filtered out), a postcode not in the lookup, none, an LSOA the index does not rank.
            "Not known: n=<5 share=- | home <5 - - = | bed <5 - - = | declined 0 - - = | decision - - = | start - - =",
        ], Lines(report, EquityReport.Deprivation));
    }

    [Fact]
    public async Task ByAgeBand_CountsAgeOnTheLondonDayTheReferralWasSent()
    {
        var report = await ReportAsync();
        AssertLines(
        [
            "Under 65: n=6 share=10.0 | home 6 100.0 1.62 higher | bed 0 0.0 0.00 lower | declined 0 0.0 0.00 lower | decision 0.08 1.00 = | start 2.00 1.00 =",
            "65 to 74: n=12 share=20.0 | home 12 100.0 1.62 higher | bed 0 0.0 0.00 lower | declined 0 0.0 0.00 lower | decision 0.08 1.00 = | start 2.00 1.00 =",
            // #19-40: home 8 (#19-26) 36.4% over 61.7% = 0.59; beds 8 hidden (*) beside 85-and-over's 4; declined 5/22 = 22.7% = 1.36.
            // Decisions 8 at 2 h, 5 at 4 h, 8 at 30 h: the 11th of 21 is 4 h. Starts 8 at 48 h, 8 at 72 h: (48+72)/2 = 60 h = 2.5 days.
            "75 to 84: n=22 share=36.7 | home 8 36.4 0.59 lower | bed * - - = | declined 5 22.7 1.36 higher | decision 0.17 2.00 higher | start 2.50 1.25 higher",
            // #41-60 (#60 turns 85 on Monday 1 June, London; sent at 00:30 that day, still Sunday 31 May in UTC).
            // Home 11/20 = 55% over 61.7% = 0.89, within 20%; beds 4 under 5; declined 5/20 = 25% = 1.50.
            "85 and over: n=20 share=33.3 | home 11 55.0 0.89 = | bed <5 - - = | declined 5 25.0 1.50 higher | decision 0.08 1.00 = | start 2.00 1.00 =",
        ], Lines(report, EquityReport.AgeBand));
    }

    [Fact]
    public async Task BySex_HidesTheLoneSmallCountAndTheNextSmallest()
    {
        var report = await ReportAsync();
        AssertLines(
        [
            // #1-33: home 26/33 = 78.8% over 61.7% = 1.28; beds 7 (#27-33) 21.2% = 1.06.
            "Female: n=33 share=55.0 | home 26 78.8 1.28 higher | bed 7 21.2 1.06 = | declined 0 0.0 0.00 lower | decision 0.08 1.00 = | start 2.00 1.00 =",
            // #34-59: 26, hidden (*) beside Not known's 1. Decisions 11 at 2 h, 10 at 4 h, 4 at 30 h: the 13th of 25 is 4 h.
            "Male: n=* share=- | home 11 - - = | bed <5 - - = | declined 10 - - = | decision 0.17 2.00 higher | start 2.00 1.00 =",
            "Other: n=0 share=0.0 | home 0 - - = | bed 0 - - = | declined 0 - - = | decision - - = | start - - =",
            "Not known: n=<5 share=- | home 0 - - = | bed <5 - - = | declined 0 - - = | decision - - = | start - - =",
        ], Lines(report, EquityReport.Sex));
    }

    [Fact]
    public async Task Csv_ParsesBackToThePageFigures()
    {
        var world = await WorldAsync();
        var report = await ReportAsync();
        using var client = app.CreateBrowserlessClient();
        await app.SignInAsync(client, "manager", AppFactory.Password);
        using var response = await client.GetAsync($"/reports/equity.csv?{world.Filter.ToQueryString()}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var bytes = await response.Content.ReadAsByteArrayAsync();
        using var reader = CsvReader.Create(bytes);
        var rows = reader.GetRecords<EquityReport.Row>().ToList();
        Assert.Equal(report.Rows.ToList(), rows);
        // 1 for everyone, then 7 ethnic groups, 4 age bands, 4 sexes and 11 deprivation groups.
        Assert.Equal(27, rows.Count);
        Assert.Contains(rows, r => r is { Group: "Asian or Asian British", Declined: "5", DeclinedRatio: 3.00, DeclinedMarker: "higher" });
        Assert.Contains(rows, r => r is { Group: "Black or Black British", Referrals: "<5", ShareOfReferralsPercent: null });
    }

    [Fact]
    public async Task Csv_IsRefusedToAReferrer()
    {
        var world = await WorldAsync();
        using var client = app.CreateBrowserlessClient();
        await app.SignInAsync(client, "referrer", AppFactory.Password);
        using var response = await client.GetAsync($"/reports/equity.csv?{world.Filter.ToQueryString()}");
        Assert.NotEqual(HttpStatusCode.OK, response.StatusCode);
        Assert.DoesNotContain("Asian", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    // ---- Showing a group's figures as one line, so each expected line reads as the page does ----

    /// <summary>Line by line, so that a failure shows the whole of the line that differs.</summary>
    private static void AssertLines(IReadOnlyList<string> expected, IReadOnlyList<string> actual) =>
        Assert.Equal(string.Join('\n', expected), string.Join('\n', actual));

    private static IReadOnlyList<string> Lines(EquityReport.Result report, string dimension) =>
        [.. report.Dimensions.Single(d => d.Name == dimension).Groups.Select(Line)];

    private static string Line(EquityReport.Group g) =>
        $"{(g.Dimension == "All referrals" ? "All" : g.Name)}: n={g.Referrals.Text} share={F1(g.SharePercent)} | home {Outcome(g.HomeBased)} | bed {Outcome(g.Bed)} | "
        + $"declined {Outcome(g.Declined)} | decision {Wait(g.ToDecision)} | start {Wait(g.ToServiceStart)}";

    private static string Outcome(EquityReport.Outcome o) => $"{o.Count.Text} {F1(o.RatePercent)} {F2(o.Ratio)} {Mark(o.Marker)}";

    private static string Wait(EquityReport.Wait w) => $"{F2(w.MedianDays)} {F2(w.Ratio)} {Mark(w.Marker)}";

    private static string Mark(EquityReport.Marker marker) => marker == EquityReport.Marker.None ? "=" : EquityReport.Words(marker);

    private static string F1(double? value) => value is { } v ? v.ToString("F1", CultureInfo.InvariantCulture) : "-";

    private static string F2(double? value) => value is { } v ? v.ToString("F2", CultureInfo.InvariantCulture) : "-";

    // ---- The dataset ----

    private enum Decided { Home, Bed, Declined, Waiting }

    private static (string Ethnicity, Decided Decided, int Age, string Sex, string? Postcode) Person(int n)
    {
        var (ethnicity, decided) = n switch
        {
            <= 26 => ("A", Decided.Home),
            <= 34 => ("A", Decided.Bed),
            <= 39 => ("A", Decided.Declined),
            40 => ("A", Decided.Waiting),
            <= 43 => ("H", Decided.Home),
            <= 45 => ("H", Decided.Bed),
            <= 50 => ("H", Decided.Declined),
            <= 53 => ("M", Decided.Home),
            <= 58 => ("Z", Decided.Home),
            _ => ("Z", Decided.Bed),
        };
        var age = n switch { <= 6 => 60, <= 18 => 70, <= 40 => 80, _ => 90 };
        var sex = n switch { <= 33 => "female", <= 59 => "male", _ => "unknown" };
        string? postcode = n switch
        {
            <= 12 => "EQ3 1AA",
            <= 23 => "EQ7 1AA",
            <= 34 => "EQ10 1AA",
            <= 39 => "EQ1 1AA",
            40 => "EQ10 1AA",
            <= 50 => "EQ1 1AB",
            <= 53 => "EQ1 1AA",
            <= 56 => "EQ10 1AA",
            57 => "EQ2 1AA",
            58 => "EQ9 9ZZ",
            59 => null,
            _ => "EQ8 1AA",
        };
        return (ethnicity, decided, age, sex, postcode);
    }

    private static async Task<World> BuildAsync(AppFactory app)
    {
        await LoadLookupAsync(app);
        await using var connection = await app.OpenAsync();
        var now = DateTimeOffset.UtcNow;
        var trust = await connection.ExecuteScalarAsync<long>(
            "INSERT INTO organisation (code, name, kind, created_at) VALUES ('EQT', 'Equity Test Hospitals NHS Trust', 'acute-trust', @now) RETURNING id", new { now });
        var otherTrust = await connection.ExecuteScalarAsync<long>(
            "INSERT INTO organisation (code, name, kind, created_at) VALUES ('EQO', 'Another Test Trust', 'acute-trust', @now) RETURNING id", new { now });
        var reablement = await connection.ExecuteScalarAsync<long>("SELECT MIN(id) FROM service WHERE kind = 'reablement'");
        var bed = await connection.ExecuteScalarAsync<long>("SELECT MIN(id) FROM bed");

        for (var n = 1; n <= 60; n++)
        {
            var p = Person(n);
            // Monday to Sunday at 09:00 London (08:00 UTC); #60 at 00:30 London on Monday, 23:30 UTC on Sunday 31 May.
            var sent = n == 60 ? new DateTimeOffset(2026, 5, 31, 23, 30, 0, TimeSpan.Zero)
                : new DateTimeOffset(Monday.AddDays(n % 7).ToDateTime(new TimeOnly(8, 0)), TimeSpan.Zero);
            var londonDay = Monday.AddDays(n == 60 ? 0 : n % 7);
            var born = n == 60 ? new DateOnly(1941, 6, 1) : londonDay.AddYears(-p.Age).AddDays(-100);
            var person = await AddPersonAsync(connection, n, born, p.Sex, p.Ethnicity, p.Postcode, now);
            var status = p.Decided switch { Decided.Home => "placed", Decided.Bed => "completed", Decided.Declined => "declined", _ => "in-triage" };
            var referral = await AddReferralAsync(connection, person, trust, status, sent);
            switch (p.Decided)
            {
                case Decided.Home:
                    await AddTaskAsync(connection, referral, "coordination", "completed", "accepted: reablement", sent.AddHours(2));
                    await AddPlacementAsync(connection, referral, reablement, null, "active", sent.AddHours(2), sent.AddHours(48));
                    break;
                case Decided.Bed:
                    if (n == 27)
                    {
                        await AddPlacementAsync(connection, referral, reablement, null, "cancelled", sent.AddMinutes(30), null);
                    }
                    await AddTaskAsync(connection, referral, "coordination", "completed", "redirected to bed bureau", sent.AddHours(1));
                    await AddTaskAsync(connection, referral, "bed-bureau", "completed", "accepted: rehabilitation bed, Test Site", sent.AddHours(30));
                    await AddPlacementAsync(connection, referral, null, bed, "ended", sent.AddHours(30), sent.AddHours(72));
                    break;
                case Decided.Declined:
                    await AddTaskAsync(connection, referral, "coordination", "rejected", "declined: not-eligible", sent.AddHours(4));
                    break;
                default:
                    await AddTaskAsync(connection, referral, "coordination", "requested", null, null);
                    break;
            }
        }

        // Not counted: a draft of the trust's; a referral sent at 00:30 London on Monday 8 June; another trust's in the week.
        var someone = await AddPersonAsync(connection, 61, new DateOnly(1940, 1, 1), "female", "H", "EQ1 1AB", now);
        await connection.ExecuteAsync(
            """
            INSERT INTO referral (person_id, organisation_id, status, source, pathway, urgency, consent_to_share, created_at, updated_at)
            VALUES (@someone, @trust, 'draft', 'acute-hospital', '1', 'routine', TRUE, @at, @at)
            """, new { someone, trust, at = new DateTimeOffset(2026, 6, 2, 8, 0, 0, TimeSpan.Zero) });
        var late = await AddReferralAsync(connection, someone, trust, "declined", new DateTimeOffset(2026, 6, 7, 23, 30, 0, TimeSpan.Zero));
        await AddTaskAsync(connection, late, "coordination", "rejected", "declined: not-eligible", new DateTimeOffset(2026, 6, 8, 1, 0, 0, TimeSpan.Zero));
        var elsewhere = await AddReferralAsync(connection, someone, otherTrust, "declined", new DateTimeOffset(2026, 6, 3, 8, 0, 0, TimeSpan.Zero));
        await AddTaskAsync(connection, elsewhere, "coordination", "rejected", "declined: not-eligible", new DateTimeOffset(2026, 6, 3, 9, 0, 0, TimeSpan.Zero));

        return new World(trust, new ReportFilter(Monday, Monday.AddDays(6), trust));
    }

    /// <summary>
    /// The lookup as the published files lay it out: the ONS postcode file with all its columns, and IoD2019 File 7's first
    /// columns and one more; two local authorities, of which only the first is kept.
    /// </summary>
    private static async Task LoadLookupAsync(AppFactory app)
    {
        var folder = Testing.TestScratch.NewPath("equity-");
        Directory.CreateDirectory(folder);
        var postcodes = Path.Combine(folder, "PCD_OA_LSOA_MSOA_LAD_TEST_UK_LU.csv");
        await File.WriteAllTextAsync(postcodes,
            """
            pcd7,pcd8,pcds,dointr,doterm,usertype,oa11cd,lsoa11cd,msoa11cd,ladcd,lsoa11nm,msoa11nm,ladnm,ladnmw
            "EQ1 1AA","EQ1  1AA","EQ1 1AA","198001","","0","E00900001","E01900001","E02900001","E06000901","Testshire 001A","Testshire 001","Testshire",""
            "EQ1 1AB","EQ1  1AB","EQ1 1AB","198001","","0","E00900001","E01900001","E02900001","E06000901","Testshire 001A","Testshire 001","Testshire",""
            "EQ3 1AA","EQ3  1AA","EQ3 1AA","198001","","0","E00900003","E01900003","E02900001","E06000901","Testshire 001C","Testshire 001","Testshire",""
            "EQ7 1AA","EQ7  1AA","EQ7 1AA","198001","","0","E00900007","E01900007","E02900002","E06000901","Testshire 002A","Testshire 002","Testshire",""
            "EQ101AA","EQ10 1AA","EQ10 1AA","198001","","0","E00900010","E01900010","E02900003","E06000901","Testshire 003A","Testshire 003","Testshire",""
            "EQ2 1AA","EQ2  1AA","EQ2 1AA","198001","","0","E00900099","E01900099","E02900099","E06000902","Elsewhere 001A","Elsewhere 001","Elsewhere",""
            "EQ8 1AA","EQ8  1AA","EQ8 1AA","198001","","0","E00900088","E01900088","E02900088","E06000901","Testshire 008A","Testshire 008","Testshire",""
            """);
        var index = Path.Combine(folder, "File_7_-_All_IoD2019_Scores__Ranks__Deciles_and_Population_Denominators_3.csv");
        await File.WriteAllTextAsync(index,
            """
            "LSOA code (2011)","LSOA name (2011)","Local Authority District code (2019)","Local Authority District name (2019)","Index of Multiple Deprivation (IMD) Score","Index of Multiple Deprivation (IMD) Rank (where 1 is most deprived)","Index of Multiple Deprivation (IMD) Decile (where 1 is most deprived 10% of LSOAs)","Income Score (rate)"
            E01900001,Testshire 001A,E06000901,Testshire,61.2,120,1,0.41
            E01900003,Testshire 001C,E06000901,Testshire,30.5,8000,3,0.2
            E01900007,Testshire 002A,E06000901,Testshire,11.3,21000,7,0.08
            E01900010,Testshire 003A,E06000901,Testshire,2.1,32500,10,0.01
            E01900099,Elsewhere 001A,E06000902,Elsewhere,20.0,15000,5,0.1
            """);
        var outcome = await app.Services.GetRequiredService<DeprivationLookup>().LoadAsync(postcodes, index, ["E06000901"]);
        Assert.Equal(DeprivationLoadOutcome.Loaded, outcome);
    }

    private static Task<long> AddPersonAsync(DbConnection connection, int n, DateOnly born, string sex, string ethnicity, string? postcode, DateTimeOffset now) =>
        connection.ExecuteScalarAsync<long>(
            """
            INSERT INTO person (nhs_number, given_name, family_name, date_of_birth, sex, postcode, locality, ethnicity, created_at, updated_at)
            VALUES (@nhs, 'Equity', @family, @born, @sex, @postcode, 'Testshire', @ethnicity, @now, @now) RETURNING id
            """, new { nhs = NhsNumberFor(n), family = $"Person {n}", born, sex, postcode, ethnicity, now });

    /// <summary>A 10-digit number whose check digit is wrong, so it can never be one the demo county made.</summary>
    private static string NhsNumberFor(int n)
    {
        var stem = "7" + Random.Shared.Next(10_000_000, 99_999_999).ToString(CultureInfo.InvariantCulture);
        var check = CareCoordination.Domain.NhsNumber.CheckDigit(stem);
        return stem + ((check + 1 + n % 2) % 10).ToString(CultureInfo.InvariantCulture);
    }

    private static Task<long> AddReferralAsync(DbConnection connection, long person, long trust, string status, DateTimeOffset sent) =>
        connection.ExecuteScalarAsync<long>(
            """
            INSERT INTO referral (person_id, organisation_id, status, source, pathway, urgency, consent_to_share, created_at, submitted_at, updated_at)
            VALUES (@person, @trust, @status, 'acute-hospital', '1', 'routine', TRUE, @sent, @sent, @sent) RETURNING id
            """, new { person, trust, status, sent });

    // Each write keeps the referral's first decision and start beside it, as the product's commands do (ReferralFirsts).
    private static async Task AddTaskAsync(DbConnection connection, long referral, string queue, string status, string? decision, DateTimeOffset? completedAt)
    {
        await connection.ExecuteAsync(
            """
            INSERT INTO triage_task (referral_id, queue, status, decision, version, created_at, updated_at, completed_at)
            VALUES (@referral, @queue, @status, @decision, 1, @at, @at, @completedAt)
            """, new { referral, queue, status, decision, at = completedAt ?? DateTimeOffset.UtcNow, completedAt });
        await ReferralFirsts.KeepAsync(connection, null, referral);
    }

    private static async Task AddPlacementAsync(DbConnection connection, long referral, long? service, long? bed, string status, DateTimeOffset created, DateTimeOffset? started)
    {
        await connection.ExecuteAsync(
            """
            INSERT INTO placement (referral_id, service_id, bed_id, status, start_on, started_at, ended_at, created_at)
            VALUES (@referral, @service, @bed, @status, @startOn, @started, @ended, @created)
            """, new { referral, service, bed, status, startOn = DateOnly.FromDateTime((started ?? created).UtcDateTime), started,
                ended = status == "ended" ? started?.AddDays(7) : null, created });
        await ReferralFirsts.KeepAsync(connection, null, referral);
    }
}

public sealed class EquityReportOnSqliteTests(AppFactory app) : EquityReportTests(app), IClassFixture<AppFactory>;

public sealed class EquityReportOnPostgresTests(PostgresAppFactory app) : EquityReportTests(app), IClassFixture<PostgresAppFactory>;
