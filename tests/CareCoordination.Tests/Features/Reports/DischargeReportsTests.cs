using Dapper;
using CareCoordination.Domain;
using CareCoordination.Features.Reports;
using CareCoordination.Pipeline;
using CareCoordination.Tests.Support;

namespace CareCoordination.Tests.Features.Reports;

/// <summary>
/// The discharge sitrep and the discharge ready date delays, over a dataset built here whose every figure was counted
/// by hand (the counting is written beside each expected number). The period is the fortnight Monday 14 to Sunday
/// 27 September 2026, in British Summer Time, so a London day is not a UTC day: "d0" is 14 September, "d-3" three
/// days before it.
///
///  person  trust/ward   ready (DRD)  discharged            pathway  destination / care level     delay reason at the end
///  P1      A / Ward 1   d0           d0 10:00              0        home / restart
///  P2      A / Ward 1   d0           d1 00:30 (d0 UTC)     1        home / new
///  P3      A / Ward 2   d-3          d2 14:00              2        community hospital / new
///  P4      A / Ward 2   d-10         d5 11:00              3        care home / new
///  P5      B / Ward X   d-20         d12 16:00             1        home / return to same level
///  P6      B / Ward X   d2           d11 09:00             -        -
///  P7      A / Ward 1   d1           d4 23:30              1        home / new
///  P8      A / Ward 1   d-30         (still in hospital)                                          2023 list C1, open since d-25
///  P9      B / Ward X   d4           (still in hospital)                                          2024 list C1, open since d6
///  P10     A / Ward 2   d-2          d20 (after the period)                                       2024 list C2, d3 to d9: none at the end
///  P11     A / Ward 1   d0           cancelled, no discharge: left out
///  P12     A / Ward 1   d14          ready after the period: left out
///  P13     A / Ward 1   d6           d3: ready after discharge, a recording error
///  P14     A / Ward 2   none         d8: no ready date
///  P16     A / Ward 1   d-5          d-1 23:30: before the period
///  P17     A / Ward 1   d0           placed and completed, no discharge recorded: left out (when it left is unknown)
/// </summary>
public abstract class DischargeReportsTests(AppFactory app)
{
    private static readonly DateOnly D0 = new(2026, 9, 14);

    private static DateOnly D(int offset) => D0.AddDays(offset);

    private sealed record Dataset(DischargeFacts Facts, DischargeFacts.Trust A, DischargeFacts.Trust B);

    private async Task<Dataset> BuildAsync()
    {
        var facts = new DischargeFacts(app);
        await facts.CodeListsAsync();
        var a = await facts.TrustAsync("Trust A");
        var b = await facts.TrustAsync("Trust B");

        var p1 = await facts.ReferAsync(a, "Ward 1", D(0));
        await facts.DischargeAsync(p1, D(0), 10, 0, "0", "home", "restart");
        var p2 = await facts.ReferAsync(a, "Ward 1", D(0));
        await facts.DischargeAsync(p2, D(1), 0, 30, "1", "home", "new");
        var p3 = await facts.ReferAsync(a, "Ward 2", D(-3));
        await facts.DischargeAsync(p3, D(2), 14, 0, "2", "community-hospital", "new");
        var p4 = await facts.ReferAsync(a, "Ward 2", D(-10));
        await facts.DischargeAsync(p4, D(5), 11, 0, "3", "care-home", "new");
        var p5 = await facts.ReferAsync(b, "Ward X", D(-20));
        await facts.DischargeAsync(p5, D(12), 16, 0, "1", "home", "return-to-same-level");
        var p6 = await facts.ReferAsync(b, "Ward X", D(2));
        await facts.DischargeAsync(p6, D(11), 9, 0, null, null, null);
        var p7 = await facts.ReferAsync(a, "Ward 1", D(1));
        await facts.DischargeAsync(p7, D(4), 23, 30, "1", "home", "new");
        var p8 = await facts.ReferAsync(a, "Ward 1", D(-30));
        await facts.DelayAsync(p8, facts.ListVersion2023, "C1", D(-25), null);
        var p9 = await facts.ReferAsync(b, "Ward X", D(4));
        await facts.DelayAsync(p9, facts.ListVersion2024, "C1", D(6), null);
        var p10 = await facts.ReferAsync(a, "Ward 2", D(-2));
        await facts.DelayAsync(p10, facts.ListVersion2024, "C2", D(3), D(9));
        await facts.DischargeAsync(p10, D(20), 10, 0, "1", "home", "new");
        var p11 = await facts.ReferAsync(a, "Ward 1", D(0));
        await facts.SetStatusAsync(p11, "cancelled");
        await facts.ReferAsync(a, "Ward 1", D(14));
        var p13 = await facts.ReferAsync(a, "Ward 1", D(6));
        await facts.DischargeAsync(p13, D(3), 12, 0, "0", "home", "restart");
        var p14 = await facts.ReferAsync(a, "Ward 2", D(0));
        await facts.ForgetReadyDateAsync(p14);
        await facts.DischargeAsync(p14, D(8), 12, 0, "1", "home", "new");
        var p16 = await facts.ReferAsync(a, "Ward 1", D(-5));
        await facts.DischargeAsync(p16, D(-1), 23, 30, "0", "home", "restart");
        var p17 = await facts.ReferAsync(a, "Ward 1", D(0));
        await facts.SetStatusAsync(p17, "completed");
        return new Dataset(facts, a, b);
    }

    private async Task<DischargeSitrep.Result> SitrepAsync(Dataset data, long? trust = null) =>
        await app.SendAsync<DischargeSitrep.Result>(new DischargeSitrep.Query(new ReportFilter(D(0), D(13), trust, data.Facts.Locality)), await app.StaffAsync("manager"));

    [Fact]
    public async Task Sitrep_EachDay_CountsWhoNoLongerMeetsTheCriteria_IsDischarged_AndRemains()
    {
        var data = await BuildAsync();
        var sitrep = await SitrepAsync(data);

        // (day, no longer meet the criteria, discharged, remaining, remaining 7+, 14+, 21+ days since their ready date), counted from the table:
        // d0: P1 P2 P3 P4 P5 P8 P10 = 7; P1 leaves; remaining P2(0) P3(3) P4(10) P5(20) P8(30) P10(2): 7+ P4 P5 P8, 14+ P5 P8, 21+ P8.
        // d1: P2 P3 P4 P5 P7 P8 P10 = 7; P2 leaves (00:30 London, 23:30 UTC the day before); remaining P3(4) P4(11) P5(21) P7(0) P8(31) P10(3).
        // d2: P3 P4 P5 P6 P7 P8 P10 = 7; P3 leaves; remaining P4(12) P5(22) P6(0) P7(1) P8(32) P10(4).
        // d3: P4 P5 P6 P7 P8 P10 = 6 (P13 was ready after it left: never counted); nobody leaves.
        // d4: P4 P5 P6 P7 P8 P9 P10 = 7; P7 leaves (23:30); remaining P4(14) P5(24) P6(2) P8(34) P9(0) P10(6): 14+ P4 P5 P8.
        // d5: P4 P5 P6 P8 P9 P10 = 6; P4 leaves; remaining P5(25) P6(3) P8(35) P9(1) P10(7).
        // d6..d8: P5 P6 P8 P9 P10 = 5, all remain; 7+ P5 P8 P10.  d9, d10: P6 reaches 7 and 8 days: 7+ = 4.
        // d11: 5; P6 leaves; remaining P5(31) P8(41) P9(7) P10(13): 7+ 4, 14+ P5 P8.
        // d12: P5 P8 P9 P10 = 4; P5 leaves; remaining P8(42) P9(8) P10(14): 14+ P8 P10, 21+ P8.
        // d13: P8 P9 P10 = 3; remaining P8(43) P9(9) P10(15).
        (int, int, int, int, int, int, int)[] expected =
        [
            (0, 7, 1, 6, 3, 2, 1), (1, 7, 1, 6, 3, 2, 2), (2, 7, 1, 6, 3, 2, 2), (3, 6, 0, 6, 3, 2, 2), (4, 7, 1, 6, 3, 3, 2),
            (5, 6, 1, 5, 3, 2, 2), (6, 5, 0, 5, 3, 2, 2), (7, 5, 0, 5, 3, 2, 2), (8, 5, 0, 5, 3, 2, 2), (9, 5, 0, 5, 4, 2, 2),
            (10, 5, 0, 5, 4, 2, 2), (11, 5, 1, 4, 4, 2, 2), (12, 4, 1, 3, 3, 2, 1), (13, 3, 0, 3, 3, 2, 1),
        ];
        Assert.Equal(expected, sitrep.Days.Select(d => (d.Date.DayNumber - D0.DayNumber, d.NoLongerMeetCriteria, d.Discharged, d.Remaining,
            d.Remaining7Plus, d.Remaining14Plus, d.Remaining21Plus)));

        // Discharges by pathway: d0 P1 on 0; d1 P2 on 1; d2 P3 on 2; d4 P7 on 1; d5 P4 on 3; d11 P6 not recorded; d12 P5 on 1.
        Assert.Equal(new DischargeSitrep.PathwayCounts(1, 0, 0, 0, 0), sitrep.Days[0].DischargedByPathway);
        Assert.Equal(new DischargeSitrep.PathwayCounts(0, 1, 0, 0, 0), sitrep.Days[1].DischargedByPathway);
        Assert.Equal(new DischargeSitrep.PathwayCounts(0, 0, 1, 0, 0), sitrep.Days[2].DischargedByPathway);
        Assert.Equal(new DischargeSitrep.PathwayCounts(0, 0, 0, 0, 0), sitrep.Days[3].DischargedByPathway);
        Assert.Equal(new DischargeSitrep.PathwayCounts(0, 0, 0, 0, 1), sitrep.Days[11].DischargedByPathway);
    }

    [Fact]
    public async Task Sitrep_Weekly_AveragesPeoplePerDay_AndTotalsDischargesAndBedDays_MondayToSunday()
    {
        var data = await BuildAsync();
        var sitrep = await SitrepAsync(data);

        // Week of Monday 14 September (d0-d6): no longer meeting 7+7+7+6+7+6+5 = 45, 45/7 = 6.43 -> 6.4; discharged 5 (P1 P2 P3 P7 P4),
        // 5/7 = 0.71 -> 0.7; remaining 6+6+6+6+6+5+5 = 40 -> 5.7, which are 40 additional bed days; 7+ 3 a day = 21;
        // 14+ 2+2+2+2+3+2+2 = 15; 21+ 1+2+2+2+2+2+2 = 13; pathways 0: P1, 1: P2 P7, 2: P3, 3: P4.
        // Week of Monday 21 September (d7-d13): 5+5+5+5+5+4+3 = 32 -> 4.6; discharged 2 (P6 P5) -> 0.3; remaining 5+5+5+5+4+3+3 = 30 -> 4.3;
        // 7+ 3+3+4+4+4+3+3 = 24; 14+ 2 a day = 14; 21+ 2+2+2+2+2+1+1 = 12; pathways 1: P5, not recorded: P6.
        Assert.Equal(2, sitrep.Weeks.Count);
        var first = sitrep.Weeks[0];
        Assert.Equal((D(0), D(6), 7, 6.4, 0.7, 5.7, 5, 40, 21, 15, 13), (first.From, first.To, first.Days, first.AverageNoLongerMeetCriteria, first.AverageDischarged,
            first.AverageRemaining, first.Discharged, first.AdditionalBedDays, first.AdditionalBedDays7Plus, first.AdditionalBedDays14Plus, first.AdditionalBedDays21Plus));
        Assert.Equal(new DischargeSitrep.PathwayCounts(1, 2, 1, 1, 0), first.DischargedByPathway);
        var second = sitrep.Weeks[1];
        Assert.Equal((D(7), D(13), 7, 4.6, 0.3, 4.3, 2, 30, 24, 14, 12), (second.From, second.To, second.Days, second.AverageNoLongerMeetCriteria, second.AverageDischarged,
            second.AverageRemaining, second.Discharged, second.AdditionalBedDays, second.AdditionalBedDays7Plus, second.AdditionalBedDays14Plus, second.AdditionalBedDays21Plus));
        Assert.Equal(new DischargeSitrep.PathwayCounts(0, 1, 0, 0, 1), second.DischargedByPathway);
    }

    [Fact]
    public async Task Sitrep_DelayReasons_ReportUnderTheListVersionEachWasRecordedFrom()
    {
        var data = await BuildAsync();
        var sitrep = await SitrepAsync(data);

        // Remaining at the end of d13 for 7+ days: P8 (43 days, the 2023 list's C1), P9 (9 days, the 2024 list's C1),
        // P10 (15 days; its reason closed on d9, so none at the end). 14+: P8 and P10.
        Assert.Equal(
            [
                new DischargeSitrep.Reason(data.Facts.ListVersion2023, "social-care", "Awaiting social care (2023 list)", "C1",
                    "Awaiting a care package in own home (2023 wording)", 1, 1),
                new DischargeSitrep.Reason(data.Facts.ListVersion2024, "capacity", "Capacity (2024 list)", "C1", "Awaiting home care to start (2024 wording)", 1, 0),
                new DischargeSitrep.Reason("", "", "", "", "No reason recorded", 1, 1),
            ],
            sitrep.Reasons);
    }

    /// <summary>
    /// People waiting for the same reason are one row, counted together. Over d0 to d3: R1 (ready d-20) and R2 (ready d-10)
    /// both held by the 2024 list's C1 from d-5, R3 (ready d-8) by the 2023 list's C1 from d-8; all still in at the end.
    /// </summary>
    [Fact]
    public async Task Sitrep_DelayReasons_PeopleWaitingForTheSameReason_AreOneRowCountedTogether()
    {
        var facts = new DischargeFacts(app);
        await facts.CodeListsAsync();
        var trust = await facts.TrustAsync("Trust R");
        var r1 = await facts.ReferAsync(trust, "Ward R", D(-20));
        var r2 = await facts.ReferAsync(trust, "Ward R", D(-10));
        var r3 = await facts.ReferAsync(trust, "Ward R", D(-8));
        await facts.DelayAsync(r1, facts.ListVersion2024, "C1", D(-5), null);
        await facts.DelayAsync(r2, facts.ListVersion2024, "C1", D(-5), null);
        await facts.DelayAsync(r3, facts.ListVersion2023, "C1", D(-8), null);

        var sitrep = await app.SendAsync<DischargeSitrep.Result>(
            new DischargeSitrep.Query(new ReportFilter(D(0), D(3), null, facts.Locality)), await app.StaffAsync("manager"));

        // Stays at the end of d3 (from the ready date, no admission given): R1 23 days, R2 13, R3 11: all 7+, R1 alone 14+.
        Assert.Equal(
            [
                new DischargeSitrep.Reason(facts.ListVersion2023, "social-care", "Awaiting social care (2023 list)", "C1",
                    "Awaiting a care package in own home (2023 wording)", 1, 0),
                new DischargeSitrep.Reason(facts.ListVersion2024, "capacity", "Capacity (2024 list)", "C1", "Awaiting home care to start (2024 wording)", 2, 1),
            ],
            sitrep.Reasons);
    }

    /// <summary>
    /// The sitrep's length of stay counts from the admission the referral gave, and from the discharge ready date where it
    /// gave none (the least the stay can have been). Over d0 to d3:
    ///   Q1 admitted d-20, ready d-2, still in.   Q2 admitted d-6, ready d0, discharged d3.
    ///   Q3 no admission given, ready d-8, still in.   Q4 admitted d-30, ready d2, still in.
    /// </summary>
    [Fact]
    public async Task Sitrep_LengthOfStay_CountsFromTheAdmission_OrFromTheReadyDateWhereNoneWasGiven()
    {
        var facts = new DischargeFacts(app);
        var trust = await facts.TrustAsync("Trust L");
        await facts.ReferAsync(trust, "Ward L", D(-2), admitted: D(-20));
        var q2 = await facts.ReferAsync(trust, "Ward L", D(0), admitted: D(-6));
        await facts.DischargeAsync(q2, D(3), 12, 0, "1", "home", "new");
        await facts.ReferAsync(trust, "Ward L", D(-8));
        await facts.ReferAsync(trust, "Ward L", D(2), admitted: D(-30));

        var sitrep = await app.SendAsync<DischargeSitrep.Result>(
            new DischargeSitrep.Query(new ReportFilter(D(0), D(3), null, facts.Locality)), await app.StaffAsync("manager"));

        // (day, no longer meeting, discharged, remaining, remaining with a stay of 7+, 14+, 21+ days):
        // d0: Q1 Q2 Q3; stays Q1 20, Q2 6, Q3 8 (from its ready date) -> 7+ Q1 Q3, 14+ Q1.  (Days since ready: 7+ would be Q3 alone.)
        // d1: stays Q1 21, Q2 7, Q3 9 -> 7+ all three, 14+ Q1, 21+ Q1.
        // d2: Q4 is ready, a stay of 32 -> 4 remaining; 7+ 4, 14+ Q1 Q4, 21+ Q1 Q4.
        // d3: Q2 leaves; Q1 23, Q3 11, Q4 33 remain -> 7+ 3, 14+ 2, 21+ 2.
        Assert.Equal(
            [(0, 3, 0, 3, 2, 1, 0), (1, 3, 0, 3, 3, 1, 1), (2, 4, 0, 4, 4, 2, 2), (3, 4, 1, 3, 3, 2, 2)],
            sitrep.Days.Select(d => (d.Date.DayNumber - D0.DayNumber, d.NoLongerMeetCriteria, d.Discharged, d.Remaining,
                d.Remaining7Plus, d.Remaining14Plus, d.Remaining21Plus)));
        // The week (d0-d3): bed days 3+3+4+3 = 13; 7+ 2+3+4+3 = 12; 14+ 1+1+2+2 = 6; 21+ 0+1+2+2 = 5.
        var week = Assert.Single(sitrep.Weeks);
        Assert.Equal((13, 12, 6, 5), (week.AdditionalBedDays, week.AdditionalBedDays7Plus, week.AdditionalBedDays14Plus, week.AdditionalBedDays21Plus));
        // At the end of d3, 7+: Q1 Q3 Q4 and 14+: Q1 Q4, with no reason recorded.
        Assert.Equal([new DischargeSitrep.Reason("", "", "", "", "No reason recorded", 3, 2)], sitrep.Reasons);
        // The ward: 4 no longer met the criteria, Q2 discharged, 3 remain (7+ 3, 14+ 2, 21+ 2); bed days Q1 4 + Q2 3 + Q3 4 + Q4 2 = 13.
        Assert.Equal([(trust.Name, "Ward L", 4, 1, 3, 3, 2, 2, 13)],
            sitrep.Places.Select(p => (p.Trust, p.Ward, p.NoLongerMeetCriteria, p.Discharged, p.RemainingAtEnd, p.RemainingAtEnd7Plus, p.RemainingAtEnd14Plus,
                p.RemainingAtEnd21Plus, p.AdditionalBedDays)));
    }

    /// <summary>
    /// The sitrep by referring trust, hospital site and ward. Trust M has two sites, so its referrers say which (or nothing:
    /// "not recorded"); trust O has one, which a referral that names none is taken to be on. Over d0 to d3, all still in:
    ///   M North / Ward 1: ready d-1 and d0.   M South / Ward 1: ready d-9.   M, no site / Ward 2: ready d1.   O Only / Ward 3: ready d2.
    /// </summary>
    [Fact]
    public async Task Sitrep_ByTrustSiteAndWard_ASiteNamedOrTheTrustsOnlyOne()
    {
        var facts = new DischargeFacts(app);
        var m = await facts.TrustAsync("Trust M");
        var north = await facts.SiteAsync(m, "North Hospital");
        var south = await facts.SiteAsync(m, "South Hospital");
        var o = await facts.TrustAsync("Trust O");
        await facts.SiteAsync(o, "Only Hospital");
        await facts.ReferAsync(m, "Ward 1", D(-1), site: north);
        await facts.ReferAsync(m, "Ward 1", D(0), site: north.ToLowerInvariant()); // as a partner might write it
        await facts.ReferAsync(m, "Ward 1", D(-9), site: south);
        await facts.ReferAsync(m, "Ward 2", D(1));
        await facts.ReferAsync(o, "Ward 3", D(2));

        var sitrep = await app.SendAsync<DischargeSitrep.Result>(
            new DischargeSitrep.Query(new ReportFilter(D(0), D(3), null, facts.Locality)), await app.StaffAsync("manager"));

        // Remaining at the end of d3 (stays from the ready date): North 4 and 3 days; South 12 (7+); M's Ward 2 2; Only 1.
        // Bed days d0-d3: North 4 + 4; South 4; Ward 2 d1-d3 3; Only d2-d3 2.
        var suffix = m.Name[(m.Name.LastIndexOf(' ') + 1)..];
        Assert.Equal(
            [
                (m.Name, "", "Ward 2", 1, 1, 0, 3),
                (m.Name, $"North Hospital {suffix}", "Ward 1", 2, 2, 0, 8),
                (m.Name, $"South Hospital {suffix}", "Ward 1", 1, 1, 1, 4),
                (o.Name, $"Only Hospital {suffix}", "Ward 3", 1, 1, 0, 2),
            ],
            sitrep.Places.Select(p => (p.Trust, p.Site, p.Ward, p.NoLongerMeetCriteria, p.RemainingAtEnd, p.RemainingAtEnd7Plus, p.AdditionalBedDays)));

        // The CSV carries the site beside the trust and the ward.
        var rows = DischargeSitrep.CsvRows(sitrep).Where(r => r.Section == DischargeSitrep.BySiteSection && r.Figure == DischargeSitrep.Figure.BedDays);
        Assert.Equal([("", 3m), ($"North Hospital {suffix}", 8m), ($"South Hospital {suffix}", 4m), ($"Only Hospital {suffix}", 2m)], rows.Select(r => (r.Site, r.Value)));
    }

    [Fact]
    public async Task AReferral_NamingASiteNotOfItsTrust_IsRefusedOnThatField_AndNothingIsStored()
    {
        var facts = new DischargeFacts(app);
        var m = await facts.TrustAsync("Trust M");
        var o = await facts.TrustAsync("Trust O");
        var othersSite = await facts.SiteAsync(o, "Other Hospital");

        var refused = await Assert.ThrowsAsync<CareCoordination.Pipeline.ValidationFailed>(() => facts.ReferAsync(m, "Ward 1", D(0), site: othersSite));

        Assert.Equal(["Form.HospitalSite"], refused.Errors.Keys);
        Assert.Contains("a hospital site of another organisation", refused.Errors.Values.Single().Single(), StringComparison.Ordinal);
        await using var connection = await app.OpenAsync();
        Assert.Equal(0, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM referral WHERE organisation_id = @Id", new { m.Id }));
    }

    [Fact]
    public async Task Sitrep_DischargesByDestination_AndByTrustAndWard()
    {
        var data = await BuildAsync();
        var sitrep = await SitrepAsync(data);

        // Discharged in the period (P13 was ready after it left and P14 had no ready date: neither no longer met the criteria):
        // home/new P2 P7; home/restart P1; home/return P5; care home/new P4; community hospital/new P3; nothing recorded P6.
        Assert.Equal(
            [("home", "new", 2), ("home", "restart", 1), ("home", "return-to-same-level", 1), ("care-home", "new", 1), ("community-hospital", "new", 1), ("", "", 1)],
            sitrep.Destinations.Select(d => (d.Code, d.CareLevel, d.Discharged)));
        Assert.Equal("Not recorded", sitrep.Destinations[^1].Label);

        // A / Ward 1: P1 P2 P7 P8 no longer met the criteria (P11 cancelled, P12 ready later, P13 never, P16 gone before, P17 completed); P1 P2 P7
        // discharged; P8 remains (43 days: 7+, 14+, 21+); bed days P2 1 + P7 3 (d1-d3) + P8 14 = 18.
        // A / Ward 2: P3 P4 P10; P3 P4 discharged; P10 remains (15 days: 7+, 14+); bed days P3 2 + P4 5 + P10 14 = 21.
        // B / Ward X: P5 P6 P9; P5 P6 discharged; P9 remains (9 days: 7+); bed days P5 12 (d0-d11) + P6 9 (d2-d10) + P9 10 (d4-d13) = 31.
        // 18 + 21 + 31 = 70, the two weeks' 40 + 30.
        Assert.Equal(
            [(data.A.Name, "Ward 1", 4, 3, 1, 1, 1, 1, 18), (data.A.Name, "Ward 2", 3, 2, 1, 1, 1, 0, 21), (data.B.Name, "Ward X", 3, 2, 1, 1, 0, 0, 31)],
            sitrep.Places.Select(p => (p.Trust, p.Ward, p.NoLongerMeetCriteria, p.Discharged, p.RemainingAtEnd, p.RemainingAtEnd7Plus, p.RemainingAtEnd14Plus,
                p.RemainingAtEnd21Plus, p.AdditionalBedDays)));

        // One trust alone: trust B's days are P5, P6 and P9 only. d0: P5 = 1 remaining; d4: P5 P6 P9 = 3.
        var b = await SitrepAsync(data, data.B.Id);
        Assert.Equal([data.B.Name], b.Places.Select(p => p.Trust));
        Assert.Equal((1, 0, 1), (b.Days[0].NoLongerMeetCriteria, b.Days[0].Discharged, b.Days[0].Remaining));
        Assert.Equal((3, 0, 3), (b.Days[4].NoLongerMeetCriteria, b.Days[4].Discharged, b.Days[4].Remaining));
    }

    [Fact]
    public async Task Delays_SevenDischarges_FallInTheNationalBands_WithAveragesBedDaysAndCost()
    {
        var data = await BuildAsync();
        var delays = await app.SendAsync<DischargeDelays.Result>(new DischargeDelays.Query(new ReportFilter(D(0), D(13), null, data.Facts.Locality)), await app.StaffAsync("manager"));

        // Discharged in the period with a ready date on or before the discharge, days from ready date to discharge (London dates):
        // P1 0, P2 1 (left at 00:30 London on d1, which is d0 in UTC), P7 3, P3 5, P6 9, P4 15, P5 32: one in each band.
        // Sum 65 bed days lost; average 65/7 = 9.29 -> 9.3; without the 0-day discharge 65/6 = 10.83 -> 10.8; cost 65 x £300 = £19,500.
        // P13 (ready d6, left d3) is a recording error; P14 has no ready date; P16 left before the period and P10 after it.
        Assert.Equal(300m, delays.CostPerBedDay);
        Assert.Equal(new DischargeDelays.Figures(7, [1, 1, 1, 1, 1, 1, 1], 9.3, 10.8, 65, 19_500m, 1, 1), delays.All, FiguresComparer.Instance);
        // Trust A: P1 0, P2 1, P7 3, P3 5, P4 15 = 24 over 5 -> 4.8, 24 over 4 -> 6.0, £7,200; P14 and P13 are trust A's.
        // Trust B: P6 9, P5 32 = 41 over 2 -> 20.5, £12,300.
        Assert.Equal([data.A.Name, data.B.Name], delays.ByTrust.Select(t => t.Trust));
        Assert.Equal(new DischargeDelays.Figures(5, [1, 1, 1, 1, 0, 1, 0], 4.8, 6.0, 24, 7_200m, 1, 1), delays.ByTrust[0].Figures, FiguresComparer.Instance);
        Assert.Equal(new DischargeDelays.Figures(2, [0, 0, 0, 0, 1, 0, 1], 20.5, 20.5, 41, 12_300m, 0, 0), delays.ByTrust[1].Figures, FiguresComparer.Instance);
    }

    [Fact]
    public async Task Delays_BandEdges_AreCountedInTheRightBand()
    {
        var facts = new DischargeFacts(app);
        var trust = await facts.TrustAsync("Edge Trust");
        // Ready d0 for everyone, discharged at noon on these days: bands 0: 0 0; 1: 1; 2-3: 2 3; 4-6: 4 6; 7-13: 7 13; 14-20: 14 20;
        // 21+: 21 30. Sum 121 over 13 -> 9.3; over the 11 delayed -> 11.0; £36,300.
        int[] delaysInDays = [0, 0, 1, 2, 3, 4, 6, 7, 13, 14, 20, 21, 30];
        foreach (var days in delaysInDays)
        {
            var referral = await facts.ReferAsync(trust, "Ward E", D(0));
            await facts.DischargeAsync(referral, D(days), 12, 0, "1", "home", "new");
        }
        var delays = await app.SendAsync<DischargeDelays.Result>(new DischargeDelays.Query(new ReportFilter(D(0), D(30), null, facts.Locality)), await app.StaffAsync("manager"));
        Assert.Equal(new DischargeDelays.Figures(13, [2, 1, 2, 2, 2, 2, 2], 9.3, 11.0, 121, 36_300m, 0, 0), delays.All, FiguresComparer.Instance);
    }

    [Fact]
    public async Task Reports_AreForManagersAndAdminsOnly()
    {
        var query = new DischargeSitrep.Query(new ReportFilter(D(0), D(13)));
        var coordinator = await app.StaffAsync("coordinator");
        var referrer = await app.StaffAsync("referrer");
        await Assert.ThrowsAsync<AccessDenied>(() => app.SendAsync<DischargeSitrep.Result>(query, coordinator));
        await Assert.ThrowsAsync<AccessDenied>(() => app.SendAsync<DischargeDelays.Result>(new DischargeDelays.Query(new ReportFilter(D(0), D(13))), referrer));
        Assert.NotNull(await app.SendAsync<DischargeSitrep.Result>(query, await app.StaffAsync("admin")));
    }

    [Fact]
    public async Task SitrepCsv_ParsedBack_EqualsThePagesFigures()
    {
        var data = await BuildAsync();
        var filter = new ReportFilter(D(0), D(13), null, data.Facts.Locality);
        var (response, body) = await app.ReportCsvAsync("manager", "discharge-sitrep", filter.ToQueryString());
        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        using var reader = CsvHelper.CsvReader.Create(body);
        var rows = reader.GetRecords<DischargeSitrep.CsvRow>().ToList();

        // The page's figures are the query's result; the CSV carries every one of them, and no other.
        var page = await SitrepAsync(data);
        Assert.Equal(DischargeSitrep.CsvRows(page), rows);
        // And, read straight from the file, some of the hand counts above.
        decimal Value(string section, DateOnly from, string figure, string trust = "") =>
            rows.Single(r => r.Section == section && r.From == from && r.Figure == figure && r.Trust == trust).Value;
        Assert.Equal(7m, Value("Daily", D(0), DischargeSitrep.Figure.NoLongerMeet));
        Assert.Equal(3m, Value("Daily", D(12), DischargeSitrep.Figure.Remaining));
        Assert.Equal(6.4m, Value("Weekly", D(0), DischargeSitrep.Figure.AverageNoLongerMeet));
        Assert.Equal(30m, Value("Weekly", D(7), DischargeSitrep.Figure.BedDays));
        Assert.Equal(31m, Value(DischargeSitrep.BySiteSection, D(0), DischargeSitrep.Figure.BedDays, data.B.Name));
        Assert.Equal(1m, rows.Single(r => r.Section == "Delay reasons" && r.Item == "C1 Awaiting a care package in own home (2023 wording)"
            && r.Figure == DischargeSitrep.Figure.Waiting14).Value);
    }

    [Fact]
    public async Task DelaysCsv_ParsedBack_EqualsThePagesFigures()
    {
        var data = await BuildAsync();
        var filter = new ReportFilter(D(0), D(13), null, data.Facts.Locality);
        var (response, body) = await app.ReportCsvAsync("admin", "discharge-delays", filter.ToQueryString());
        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        using var reader = CsvHelper.CsvReader.Create(body);
        var rows = reader.GetRecords<DischargeDelays.CsvRow>().ToList();

        var page = await app.SendAsync<DischargeDelays.Result>(new DischargeDelays.Query(filter), await app.StaffAsync("manager"));
        Assert.Equal(DischargeDelays.CsvRows(page), rows);
        // All, then trust A and trust B, as counted in the seven-discharge test.
        Assert.Equal(
            [
                new DischargeDelays.CsvRow(D(0), D(13), "All", 7, 1, 1, 1, 1, 1, 1, 1, 9.3, 10.8, 65, 19_500m, 1, 1),
                new DischargeDelays.CsvRow(D(0), D(13), data.A.Name, 5, 1, 1, 1, 1, 0, 1, 0, 4.8, 6.0, 24, 7_200m, 1, 1),
                new DischargeDelays.CsvRow(D(0), D(13), data.B.Name, 2, 0, 0, 0, 0, 1, 0, 1, 20.5, 20.5, 41, 12_300m, 0, 0),
            ],
            rows);
    }

    /// <summary>The cells of each row of the table with this data-testid, as the page first renders it.</summary>
    private async Task<List<string[]>> TableAsync(string path, string testId)
    {
        var client = app.CreateBrowserlessClient();
        await app.SignInAsync(client, "manager", AppFactory.Password);
        var html = await client.GetStringAsync(path);
        var table = System.Text.RegularExpressions.Regex.Match(html, $"<table data-testid=\"{testId}\".*?</table>", System.Text.RegularExpressions.RegexOptions.Singleline);
        Assert.True(table.Success, $"{path} has no {testId} table:\n{html}");
        return System.Text.RegularExpressions.Regex.Matches(table.Value, "<tr.*?</tr>", System.Text.RegularExpressions.RegexOptions.Singleline)
            .Select(row => System.Text.RegularExpressions.Regex.Matches(row.Value, "<t[hd][^>]*>(.*?)</t[hd]>", System.Text.RegularExpressions.RegexOptions.Singleline)
                .Select(cell => System.Net.WebUtility.HtmlDecode(System.Text.RegularExpressions.Regex.Replace(cell.Groups[1].Value, "<[^>]*>", "")).Trim()).ToArray())
            .Where(cells => cells.Length > 0).ToList();
    }

    [Fact]
    public async Task Pages_ShowTheHandCountedFigures()
    {
        var data = await BuildAsync();
        var filter = new ReportFilter(D(0), D(13), null, data.Facts.Locality).ToQueryString();

        var delays = await TableAsync($"/reports/discharge-delays?{filter}", "delays-table");
        Assert.Equal(["All", "7", "1", "1", "1", "1", "1", "1", "1", "9.3", "10.8", "65", "£19,500", "1", "1"], delays[1]);
        Assert.Equal([data.B.Name, "2", "0", "0", "0", "0", "1", "0", "1", "20.5", "20.5", "41", "£12,300", "0", "0"], delays[3]);

        var daily = await TableAsync($"/reports/discharge-sitrep?{filter}", "sitrep-daily");
        // Header, then d0: 7 no longer meeting, 1 discharged (P1, pathway 0), 6 remaining, 3 / 2 / 1 at 7+ / 14+ / 21+.
        Assert.Equal(["Mon 14 Sept", "7", "1", "6", "3", "2", "1", "1", "0", "0", "0", "0"], daily[1]);
        var weekly = await TableAsync($"/reports/discharge-sitrep?{filter}", "sitrep-weekly");
        Assert.Equal(["Mon 21 Sept to Sun 27 Sept", "7", "4.6", "0.3", "4.3", "2", "30", "24", "14", "12", "0", "1", "0", "0", "1"], weekly[2]);
    }

    [Fact]
    public async Task Csv_IsRefused_ToAnyoneButManagersAndAdmins()
    {
        var filter = new ReportFilter(D(0), D(13)).ToQueryString();
        foreach (var (username, slug) in new[] { ("coordinator", "discharge-sitrep"), ("referrer", "discharge-delays"), ("bedbureau", "discharge-sitrep") })
        {
            var (response, body) = await app.ReportCsvAsync(username, slug, filter);
            Assert.False(response.IsSuccessStatusCode, $"{username} was given {slug}.csv");
            Assert.DoesNotContain("Section,From,To", System.Text.Encoding.UTF8.GetString(body), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task APeriodEndingAfterToday_IsRefused()
    {
        var today = LondonTime.Today(app.Clock);
        await Assert.ThrowsAsync<ValidationFailed>(async () => await app.SendAsync<DischargeSitrep.Result>(
            new DischargeSitrep.Query(new ReportFilter(today, today.AddDays(1))), await app.StaffAsync("manager")));
    }

    /// <summary>Figures hold a list, which a record compares by reference: compare its items.</summary>
    private sealed class FiguresComparer : IEqualityComparer<DischargeDelays.Figures>
    {
        public static readonly FiguresComparer Instance = new();

        public bool Equals(DischargeDelays.Figures? x, DischargeDelays.Figures? y) =>
            x is not null && y is not null && x.ByBand.SequenceEqual(y.ByBand)
            && (x.Discharges, x.AverageDays, x.AverageDaysExcludingZero, x.BedDaysLost, x.Cost, x.WithoutReadyDate, x.ReadyAfterDischarge)
                == (y.Discharges, y.AverageDays, y.AverageDaysExcludingZero, y.BedDaysLost, y.Cost, y.WithoutReadyDate, y.ReadyAfterDischarge);

        public int GetHashCode(DischargeDelays.Figures obj) => obj.Discharges;
    }
}

public sealed class DischargeReportsOnSqliteTests(AppFactory app) : DischargeReportsTests(app), IClassFixture<AppFactory>;

public sealed class DischargeReportsOnPostgresTests(PostgresAppFactory app) : DischargeReportsTests(app), IClassFixture<PostgresAppFactory>;
