using System.Globalization;
using System.Net;
using CareCoordination.Features.Admin;
using CareCoordination.Features.Coordination;
using CareCoordination.Features.Referrals;
using CareCoordination.Features.Reports;
using CareCoordination.Pipeline;
using CareCoordination.Tests.Support;
using CsvHelper;
using Dapper;
using Microsoft.Extensions.DependencyInjection;

namespace CareCoordination.Tests.Features.Reports;

/// <summary>
/// The quarterly decision pack over a dataset laid out here in a locality of its own, for the quarter April to June
/// 2026 (London days), with every figure of panels 1, 2, 3 and 5 counted by hand (the counting is in the comments);
/// finance and the scorecard checked against the queries they come from for the same filter; the CSV parsed back.
/// </summary>
public abstract class DecisionPackTests(AppFactory app)
{
    private static readonly DateOnly First = new(2026, 4, 1);
    private static readonly DateOnly Last = new(2026, 6, 30);

    private static readonly SemaphoreSlim Once = new(1, 1);
    private static readonly Dictionary<AppFactory, Dataset> Seeded = [];

    private sealed record Dataset(long Trust, string Locality, long[] SaidIds);

    private static DateTimeOffset At(int year, int month, int day, int hour, int minute = 0) => DischargeFacts.London(new DateOnly(year, month, day), hour, minute);

    /// <summary>
    /// Trust T and trust T2 in locality L; every person lives in L except one. Referrals (T unless said; times London):
    ///   R1  pathway 1, sent 2 Apr 09:00, decided 3 Apr 09:00 (1 day), reablement made 3 Apr, started 5 Apr 09:00 (3 days);
    ///       passed to the bed bureau on 20 Apr, after its placement was made (so not a bed request for that placement)
    ///   R2  pathway 2, sent 10 Apr 09:00, decided 10 Apr 21:00 (0.5), home care made 10 Apr, started 12 Apr 09:00 (2)
    ///   R3  pathway 1, sent 1 May 09:00, decided 3 May 09:00 (2), to the bed bureau 3 May, reablement made 5 May, not started
    ///   R4  pathway 3, sent 10 May 09:00, decided 14 May 09:00 (4), to the bed bureau, bed made 15 May, admitted 16 May 09:00 (6);
    ///       ready 12 May, discharged 16 May (4 bed days lost)
    ///   R5  pathway 2, sent 1 Jun 09:00, decided 1 Jun 15:00 (0.25), care home service made 2 Jun, started 11 Jun 09:00 (10);
    ///       ready 1 Jun, discharged 11 Jun (10 bed days lost)
    ///   R6  pathway 1, sent 20 Jun 09:00, declined 23 Jun 09:00 (3), a reablement placement made 21 Jun and cancelled
    ///   R7  pathway 0, sent 25 Jun 09:00, undecided
    ///   R8  a draft, never sent
    ///   R10 pathway 1, sent 30 Mar 09:00 (before the quarter), decided 1 Apr 09:00 (2)
    ///   R12 pathway 2, sent 5 Apr 09:00 by person W (below), undecided
    ///   R9  from T2: pathway 1, sent 15 Apr, reablement made 16 Apr
    ///   R11 person outside L: pathway 1, sent 20 Apr, reablement made 21 Apr
    /// Reablement that ended (the 91-day follow-up window is 31 Dec 2025 to 31 Mar 2026):
    ///   X ended 10 Jan, nothing after: at home. Y ended 1 Feb, a bed made for them 15 Mar (42 days): not at home.
    ///   Z ended 1 Mar, pathway 3 referral 15 Jun (106 days): at home. W ended 20 Mar, R12 asks pathway 2 on 5 Apr (16 days): not at home.
    ///   Left out: reablement ended 30 Dec 2025 and 2 Apr 2026 (outside the window), home care ended 15 Jan, a reablement cancelled 20 Jan.
    /// Market in L: services reablement 10 slots (4 free), home care 40 hours (12 free), therapy 6 slots (6 free); an inactive
    ///   reablement and a care home service left out. Site S1: beds occupied 2, available 1, reserved 1, closed 1; an inactive site's bed
    ///   left out. Providers P1 good, P2 requires improvement amber, P3 inadequate red, P4 not recorded, P5 outstanding.
    ///   Caution approvals asked in the quarter: approved 4 Apr, refused 6 May, open 29 Jun; one approved 1 Mar is before it.
    /// You said, we did: two items for the quarter, a third retired, one for the quarter before.
    /// </summary>
    private async Task<Dataset> SeedAsync()
    {
        await Once.WaitAsync();
        try
        {
            if (Seeded.TryGetValue(app, out var seeded))
            {
                return seeded;
            }
            var tag = Guid.NewGuid().ToString("N")[..8];
            var locality = "Pack " + tag;
            var now = app.Clock.GetUtcNow();
            await using var connection = await app.OpenAsync();
            var coordinator = await connection.ExecuteScalarAsync<long>("SELECT id FROM staff_user WHERE username = 'coordinator'");
            var manager = await connection.ExecuteScalarAsync<long>("SELECT id FROM staff_user WHERE username = 'manager'");

            async Task<long> Organisation(string code, string kind, string? cqc = null, string caution = "none") =>
                await connection.ExecuteScalarAsync<long>(
                    """
                    INSERT INTO organisation (code, name, kind, locality, cqc_rating, caution, caution_note, created_at)
                    VALUES (@code, @name, @kind, @locality, @cqc, @caution, @note, @now) RETURNING id
                    """, new { code = code + tag, name = $"{code} {tag}", kind, locality, cqc, caution, note = caution == "none" ? null : "Test", now });
            var trust = await Organisation("T", "acute-trust");
            var trust2 = await Organisation("T2", "acute-trust");
            var p1 = await Organisation("P1", "provider", "good");
            await Organisation("P2", "provider", "requires-improvement", "amber");
            await Organisation("P3", "provider", "inadequate", "red");
            var p4 = await Organisation("P4", "provider");
            await Organisation("P5", "provider", "outstanding");

            async Task<long> Service(string name, string kind, string unit, int perDay, int free, bool active = true, string? where = null) =>
                await connection.ExecuteScalarAsync<long>(
                    """
                    INSERT INTO service (organisation_id, name, kind, locality, capacity_unit, capacity_per_day, available_today, confirmed_at, active)
                    VALUES (@p1, @name, @kind, @where, @unit, @perDay, @free, @now, @active) RETURNING id
                    """, new { p1, name = $"{name} {tag}", kind, where = where ?? locality, unit, perDay, free, now, active });
            var reablement = await Service("Reablement", "reablement", "slots", 10, 4);
            var homeCare = await Service("Home care", "home-care", "hours", 40, 12);
            await Service("Therapy", "therapy", "slots", 6, 6);
            await Service("Old reablement", "reablement", "slots", 9, 9, active: false);
            var careHome = await Service("Care home", "care-home", "slots", 5, 1);
            await Service("Elsewhere befriending", "voluntary-sector", "slots", 7, 7, where: "Elsewhere " + tag);

            async Task<long[]> Beds(string site, bool active, params string[] statuses)
            {
                var siteId = await connection.ExecuteScalarAsync<long>(
                    "INSERT INTO site (organisation_id, name, kind, locality, postcode, active) VALUES (@p4, @name, 'care-home', @locality, 'PK1 1AA', @active) RETURNING id",
                    new { p4, name = $"{site} {tag}", locality, active });
                var ward = await connection.ExecuteScalarAsync<long>("INSERT INTO ward (site_id, name) VALUES (@siteId, 'W') RETURNING id", new { siteId });
                var ids = new long[statuses.Length];
                for (var i = 0; i < statuses.Length; i++)
                {
                    ids[i] = await connection.ExecuteScalarAsync<long>(
                        """
                        INSERT INTO bed (ward_id, label, bed_type, allowed_sex, status, closed_reason, confirmed_at)
                        VALUES (@ward, @label, 'residential', 'any', @status, @reason, @now) RETURNING id
                        """, new { ward, label = $"B{i}", status = statuses[i], reason = statuses[i] == "closed" ? "staffing" : null, now });
                }
                return ids;
            }
            var beds = await Beds("S1", true, "occupied", "occupied", "available", "reserved", "closed");
            await Beds("S2", false, "available");

            async Task<long> Referral(string? pathway, DateTimeOffset? sent, long? organisation = null, string? personLocality = null, long? person = null,
                string status = "submitted", DateOnly? ready = null, DateTimeOffset? discharged = null)
            {
                person ??= await connection.ExecuteScalarAsync<long>(
                    """
                    INSERT INTO person (nhs_number, given_name, family_name, date_of_birth, sex, locality, created_at, updated_at)
                    VALUES (@nhs, 'Pack', 'Person', @born, 'female', @where, @now, @now) RETURNING id
                    """, new { nhs = await app.NewNhsNumberAsync(), born = new DateOnly(1940, 1, 1), where = personLocality ?? locality, now });
                return await connection.ExecuteScalarAsync<long>(
                    """
                    INSERT INTO referral (person_id, organisation_id, status, source, pathway, urgency, consent_to_share, medically_optimised_on, discharged_at,
                                          created_at, submitted_at, updated_at)
                    VALUES (@person, @organisation, @status, 'acute-hospital', @pathway, 'routine', TRUE, @ready, @discharged, @created, @sent, @created) RETURNING id
                    """, new { person, organisation = organisation ?? trust, status, pathway, ready, discharged, created = sent ?? now, sent });
            }
            async Task TriageTask(long referral, string queue, DateTimeOffset created, DateTimeOffset? completed, string status = "completed")
            {
                await connection.ExecuteAsync(
                    """
                    INSERT INTO triage_task (referral_id, queue, status, created_at, updated_at, completed_at)
                    VALUES (@referral, @queue, @status, @created, @created, @completed)
                    """, new { referral, queue, status, created, completed });
                // As every decision the product records keeps the referral's first decisions (triaged_at, ReferralFirsts) beside it.
                await TriageTasks.KeepTriagedAsync(connection, null, referral);
                await ReferralFirsts.KeepAsync(connection, null, referral);
            }
            async Task Placement(long referral, long? service, long? bed, string status, DateTimeOffset made, DateTimeOffset? started = null, DateTimeOffset? ended = null)
            {
                await connection.ExecuteAsync(
                    """
                    INSERT INTO placement (referral_id, service_id, bed_id, status, start_on, started_at, ended_at, created_at)
                    VALUES (@referral, @service, @bed, @status, @startOn, @started, @ended, @made)
                    """, new { referral, service, bed, status, startOn = DateOnly.FromDateTime(made.UtcDateTime), started, ended, made });
                await ReferralFirsts.KeepAsync(connection, null, referral);
            }
            long PersonOf(long referral) => connection.ExecuteScalar<long>("SELECT person_id FROM referral WHERE id = @referral", new { referral });

            var r1 = await Referral("1", At(2026, 4, 2, 9));
            await TriageTask(r1, "coordination", At(2026, 4, 2, 9), At(2026, 4, 3, 9));
            await Placement(r1, reablement, null, "active", At(2026, 4, 3, 9), At(2026, 4, 5, 9));
            await TriageTask(r1, "bed-bureau", At(2026, 4, 20, 9), At(2026, 4, 21, 9));
            var r2 = await Referral("2", At(2026, 4, 10, 9));
            await TriageTask(r2, "coordination", At(2026, 4, 10, 9), At(2026, 4, 10, 21));
            await Placement(r2, homeCare, null, "active", At(2026, 4, 10, 21), At(2026, 4, 12, 9));
            var r3 = await Referral("1", At(2026, 5, 1, 9));
            await TriageTask(r3, "coordination", At(2026, 5, 1, 9), At(2026, 5, 3, 9));
            await TriageTask(r3, "bed-bureau", At(2026, 5, 3, 9), At(2026, 5, 4, 9));
            await Placement(r3, reablement, null, "reserved", At(2026, 5, 5, 9));
            var r4 = await Referral("3", At(2026, 5, 10, 9), ready: new DateOnly(2026, 5, 12), discharged: At(2026, 5, 16, 10));
            await TriageTask(r4, "coordination", At(2026, 5, 10, 9), At(2026, 5, 14, 9));
            await TriageTask(r4, "bed-bureau", At(2026, 5, 14, 9), At(2026, 5, 15, 9));
            await Placement(r4, null, beds[0], "active", At(2026, 5, 15, 9), At(2026, 5, 16, 9));
            var r5 = await Referral("2", At(2026, 6, 1, 9), ready: new DateOnly(2026, 6, 1), discharged: At(2026, 6, 11, 10));
            await TriageTask(r5, "coordination", At(2026, 6, 1, 9), At(2026, 6, 1, 15));
            await Placement(r5, careHome, null, "active", At(2026, 6, 2, 9), At(2026, 6, 11, 9));
            var r6 = await Referral("1", At(2026, 6, 20, 9), status: "declined");
            await Placement(r6, reablement, null, "cancelled", At(2026, 6, 21, 9), ended: At(2026, 6, 22, 9));
            await TriageTask(r6, "coordination", At(2026, 6, 20, 9), At(2026, 6, 23, 9), "rejected");
            var r7 = await Referral("0", At(2026, 6, 25, 9));
            await TriageTask(r7, "coordination", At(2026, 6, 25, 9), null, "requested");
            await Referral("1", null, status: "draft");
            var r10 = await Referral("1", At(2026, 3, 30, 9));
            await TriageTask(r10, "coordination", At(2026, 3, 30, 9), At(2026, 4, 1, 9));
            var r9 = await Referral("1", At(2026, 4, 15, 9), organisation: trust2);
            await Placement(r9, reablement, null, "reserved", At(2026, 4, 16, 9));
            var r11 = await Referral("1", At(2026, 4, 20, 9), personLocality: "Elsewhere " + tag);
            await Placement(r11, reablement, null, "reserved", At(2026, 4, 21, 9));

            // The 91-day follow-up.
            var x = await Referral("1", At(2025, 11, 1, 9), status: "completed");
            await Placement(x, reablement, null, "ended", At(2025, 11, 2, 9), At(2025, 11, 3, 9), At(2026, 1, 10, 12));
            var y = await Referral("1", At(2025, 11, 1, 9), status: "completed");
            await Placement(y, reablement, null, "ended", At(2025, 11, 2, 9), At(2025, 11, 3, 9), At(2026, 2, 1, 12));
            var yBed = await Referral("3", At(2026, 3, 10, 9), person: PersonOf(y), status: "completed");
            await Placement(yBed, null, beds[1], "ended", At(2026, 3, 15, 9), At(2026, 3, 15, 12), At(2026, 3, 25, 12));
            var z = await Referral("1", At(2025, 11, 1, 9), status: "completed");
            await Placement(z, reablement, null, "ended", At(2025, 11, 2, 9), At(2025, 11, 3, 9), At(2026, 3, 1, 12));
            await Referral("3", At(2026, 6, 15, 9), person: PersonOf(z), organisation: trust2);
            var w = await Referral("1", At(2025, 11, 1, 9), status: "completed");
            await Placement(w, reablement, null, "ended", At(2025, 11, 2, 9), At(2025, 11, 3, 9), At(2026, 3, 20, 12));
            await Referral("2", At(2026, 4, 5, 9), person: PersonOf(w)); // R12
            foreach (var (kind, status, ended) in new[]
            {
                (reablement, "ended", At(2025, 12, 30, 12)), (reablement, "ended", At(2026, 4, 2, 12)),
                (homeCare, "ended", At(2026, 1, 15, 12)), (reablement, "cancelled", At(2026, 1, 20, 12)),
            })
            {
                var other = await Referral("1", At(2025, 10, 1, 9), status: "completed");
                await Placement(other, kind, null, status, At(2025, 10, 2, 9), status == "ended" ? At(2025, 10, 3, 9) : null, ended);
            }

            async Task Approval(long referral, string status, DateTimeOffset asked) =>
                await connection.ExecuteAsync(
                    """
                    INSERT INTO caution_approval (referral_id, provider_id, status, reason, requested_by_user_id, requested_by_name, requested_at,
                                                  decided_by_user_id, decided_by_name, decided_at)
                    VALUES (@referral, @p1, @status, 'Test', @coordinator, 'Coordinator', @asked, @decider, @deciderName, @decided)
                    """, new
                    {
                        referral, p1, status, coordinator, asked, decider = status == "requested" ? (long?)null : manager,
                        deciderName = status == "requested" ? null : "Manager", decided = status == "requested" ? (DateTimeOffset?)null : asked.AddHours(1),
                    });
            await Approval(r1, "approved", At(2026, 4, 4, 9));
            await Approval(r3, "refused", At(2026, 5, 6, 9));
            await Approval(r7, "requested", At(2026, 6, 29, 9));
            await Approval(r10, "approved", At(2026, 3, 1, 9));

            var admin = await app.StaffAsync("admin");
            async Task<long> Said(DateOnly quarter, string youSaid, string weDid, string? from = null) =>
                await app.SendAsync<long>(new SaveYouSaidWeDid.Command(null, 0, quarter, youSaid, weDid, from), admin);
            var said1 = await Said(First, "Nobody told us when the carers would come.", "Every person placed in home care now gets a start time by text.", "Carers' forum");
            var said2 = await Said(First, "We waited in hospital for a bed we did not need.", "Bed requests are looked at for home first before the bureau places.");
            var retired = await Said(First, "Retired item.", "Retired.");
            await app.SendAsync(new RetireYouSaidWeDid.Command(retired, 1), admin);
            await Said(First.AddMonths(-3), "Last quarter's item.", "Last quarter.");

            seeded = new Dataset(trust, locality, [said1, said2]);
            Seeded[app] = seeded;
            return seeded;
        }
        finally
        {
            Once.Release();
        }
    }

    private async Task<DecisionPack.Result> PackAsync(Dataset data, bool byTrust = true, string who = "manager") =>
        await app.SendAsync<DecisionPack.Result>(
            new DecisionPack.Query(new ReportFilter(First, Last, byTrust ? data.Trust : null, data.Locality)), await app.StaffAsync(who));

    private static string Value(DecisionPack.Result pack, string panel, string figure) =>
        pack.Figures.Single(f => f.Panel == panel && f.Name == figure).Value;

    /// <summary>
    /// The pack counts equity from the referrals it reads for the scorecard, not through the mediator (and so not past
    /// EquityWaitsForDeprivation): it too waits for start-up's deprivation lookup, which loads after the node's first /health.
    /// </summary>
    [Fact]
    public async Task Pack_AskedWhileStartUpsDeprivationLookupLoads_WaitsForIt()
    {
        var data = await SeedAsync();
        await PackAsync(data);
        var lookup = app.Services.GetRequiredService<DeprivationLookup>();
        var (postcodes, index) = DeprivationLookup.FilesFrom(new DeprivationSettings(), demoSeeded: true)!.Value;
        var loadMayBegin = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lookup.StartLoading(postcodes, index, [], CancellationToken.None, after: loadMayBegin.Task);

        var pack = PackAsync(data);
        // The same pack answered at once a moment ago.
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.True(lookup.State.Loading);
        Assert.False(pack.IsCompleted);
        loadMayBegin.SetResult();

        Assert.NotEmpty((await pack).Figures);
        Assert.Equal((false, null), lookup.State);
    }

    [Fact]
    public async Task Outcomes_HomeFirst_CountedByHand()
    {
        var pack = await PackAsync(await SeedAsync());
        const string panel = DecisionPack.Panels.Outcomes;

        // Home-based: R1, R2, R3 (R6's was cancelled; R9 is T2's; R11's person lives elsewhere). Beds: R4 (a bed), R5 (care home service).
        Assert.Equal("3", Value(pack, panel, "Accepted to home-based services"));
        Assert.Equal("2", Value(pack, panel, "Placed in beds"));
        Assert.Equal("60", Value(pack, panel, "Home first (%)"));
        // Asked for a bed: R2 (pathway 2), R3 (to the bureau before its placement), R4 (pathway 3), R5 (pathway 2). At home: R2, R3.
        Assert.Equal("4", Value(pack, panel, "Bed requests placed"));
        Assert.Equal("2", Value(pack, panel, "Supported at home despite a bed request"));
        Assert.Equal("50", Value(pack, panel, "Supported at home despite a bed request (%)"));
        // Followed up: X, Y, Z, W. At home at 91 days: X and Z (Z's bed referral came on day 106).
        Assert.Equal("4", Value(pack, panel, "Reablement ended, followed up 91 days"));
        Assert.Equal("2", Value(pack, panel, "Still at home 91 days after reablement (where known)"));
        Assert.Equal("50", Value(pack, panel, "Still at home 91 days after reablement (%)"));
    }

    [Fact]
    public async Task Outcomes_WithoutTheTrustFilter_CountTheOtherTrustsReferralToo()
    {
        var pack = await PackAsync(await SeedAsync(), byTrust: false);

        // R9 (T2, reablement) joins R1, R2, R3; Z's pathway 3 referral from T2 is outside the 91 days whoever sent it.
        Assert.Equal("4", Value(pack, DecisionPack.Panels.Outcomes, "Accepted to home-based services"));
        Assert.Equal("2", Value(pack, DecisionPack.Panels.Outcomes, "Still at home 91 days after reablement (where known)"));
        // Received: the eight of T below, R9, and Z's referral of 15 June.
        Assert.Equal("10", Value(pack, DecisionPack.Panels.Flow, "Referrals received"));
    }

    [Fact]
    public async Task Flow_CountedByHand()
    {
        var pack = await PackAsync(await SeedAsync());
        const string panel = DecisionPack.Panels.Flow;

        // Sent in the quarter: R1, R2, R3, R4, R5, R6, R7, R12 (R8 is a draft, R10 was sent in March).
        Assert.Equal("8", Value(pack, panel, "Referrals received"));
        // First decisions in the quarter, days: R5 0.25, R2 0.5, R1 1, R3 2, R10 2, R6 3, R4 4: the 4th of 7 is 2.
        Assert.Equal("7", Value(pack, panel, "Decisions made"));
        Assert.Equal("2", Value(pack, panel, "Median days from referral to decision"));
        // Started, days from sending: R2 2, R1 3, R4 6, R5 10: the 2nd of 4 (nearest rank) is 3.
        Assert.Equal("4", Value(pack, panel, "Services and beds started"));
        Assert.Equal("3", Value(pack, panel, "Median days from referral to service start"));
    }

    [Fact]
    public async Task Experience_ShowsTheQuartersItems_NotTheRetiredNorAnotherQuarters()
    {
        var data = await SeedAsync();
        var pack = await PackAsync(data);

        Assert.Equal(data.SaidIds, pack.YouSaidWeDid.Select(i => i.Id));
        Assert.Equal("2", Value(pack, DecisionPack.Panels.Experience, "Items this quarter"));
        Assert.Equal("Nobody told us when the carers would come.", Value(pack, DecisionPack.Panels.Experience, "You said (1)"));
        Assert.Equal("We did: Every person placed in home care now gets a start time by text. (heard from: Carers' forum)",
            pack.Figures.Single(f => f.Name == "You said (1)").Definition);
    }

    [Fact]
    public async Task Market_CountedByHand()
    {
        var pack = await PackAsync(await SeedAsync());
        const string panel = DecisionPack.Panels.Market;

        // Reablement, home care, therapy (the inactive reablement and the care home service are not home-based services open).
        Assert.Equal("3", Value(pack, panel, "Home-based services open"));
        Assert.Equal("16", Value(pack, panel, "Places a day (services counted in slots)")); // 10 + 6
        Assert.Equal("10", Value(pack, panel, "Places free today")); // 4 + 6
        Assert.Equal("40", Value(pack, panel, "Care hours a day (services counted in hours)"));
        Assert.Equal("12", Value(pack, panel, "Care hours free today"));
        // S1: five beds (S2 is inactive).
        Assert.Equal("5", Value(pack, panel, "Beds (maximum capacity)"));
        Assert.Equal("2", Value(pack, panel, "Beds occupied"));
        Assert.Equal("1", Value(pack, panel, "Bed vacancies accepting admissions"));
        Assert.Equal("1", Value(pack, panel, "Bed vacancies reserved"));
        Assert.Equal("1", Value(pack, panel, "Beds vacant not accepting admissions"));
        // P1..P5 (the trusts run nothing).
        Assert.Equal("5", Value(pack, panel, "Providers"));
        Assert.Equal(["1", "1", "1", "1", "0", "1"],
            new[] { "Outstanding", "Good", "Requires improvement", "Inadequate", "Not yet rated", "not recorded" }.Select(r => Value(pack, panel, $"CQC rating: {r}")));
        Assert.Equal("1", Value(pack, panel, "Providers under amber caution"));
        Assert.Equal("1", Value(pack, panel, "Providers under red caution"));
        // Asked 4 Apr (approved), 6 May (refused), 29 Jun (open); 1 Mar is before the quarter.
        Assert.Equal("3", Value(pack, panel, "Caution approvals asked"));
        Assert.Equal("1", Value(pack, panel, "Caution approvals given"));
        Assert.Equal("1", Value(pack, panel, "Caution approvals refused"));
    }

    [Fact]
    public async Task FinanceScorecardAndEquity_AreTheFiguresTheirOwnReportsGive_ForTheSameFilter()
    {
        var data = await SeedAsync();
        var pack = await PackAsync(data);
        var manager = await app.StaffAsync("manager");
        var delays = await app.SendAsync<DischargeDelays.Result>(new DischargeDelays.Query(new ReportFilter(First, Last, data.Trust, data.Locality)), manager);
        var scorecard = await app.SendAsync<IReadOnlyList<DataQuality.Measure>>(new DataQuality.Scorecard(new ReportFilter(First, Last, data.Trust, data.Locality)), manager);

        // R4 4 days and R5 10 days: 14 bed days lost.
        Assert.Equal(14, delays.All.BedDaysLost);
        Assert.Equal("14", Value(pack, DecisionPack.Panels.Finance, "Bed days lost"));
        Assert.Equal(delays.All.Discharges.ToString(CultureInfo.InvariantCulture), Value(pack, DecisionPack.Panels.Finance, "Discharges with a discharge ready date"));
        Assert.Equal(delays.All.Cost, decimal.Parse(Value(pack, DecisionPack.Panels.Finance, "Cost of bed days lost (£)"), CultureInfo.InvariantCulture));
        Assert.Equal(delays.CostPerBedDay, decimal.Parse(Value(pack, DecisionPack.Panels.Finance, "Price of a bed day (£)"), CultureInfo.InvariantCulture));
        Assert.Equal(delays.All.AverageDays, double.Parse(Value(pack, DecisionPack.Panels.Finance, "Average days from ready to discharge"), CultureInfo.InvariantCulture));

        var equity = await app.SendAsync<EquityReport.Result>(new EquityReport.Query(new ReportFilter(First, Last, data.Trust, data.Locality)), manager);
        static string Ratio(double? ratio) => ratio?.ToString("0.##", CultureInfo.InvariantCulture) ?? "";
        Assert.Equal(equity.Everyone.Referrals.Text, Value(pack, DecisionPack.Panels.Equity, "Referrals (everyone)"));
        var groups = equity.Dimensions.SelectMany(d => d.Groups).ToList();
        Assert.NotEmpty(groups);
        foreach (var g in groups)
        {
            var name = $"{g.Dimension}: {g.Name}";
            Assert.Equal(g.Referrals.Text, Value(pack, DecisionPack.Panels.Equity, $"{name}: referrals"));
            Assert.Equal(
                [Ratio(g.HomeBased.Ratio), Ratio(g.Bed.Ratio), Ratio(g.Declined.Ratio), Ratio(g.ToDecision.Ratio), Ratio(g.ToServiceStart.Ratio)],
                new[] { "home-based", "bed", "declined", "wait to decision", "wait to service start" }.Select(m => Value(pack, DecisionPack.Panels.Equity, $"{name}: {m} ratio")));
        }
        // Eight referrals of T sent in the quarter (see the dataset) are everyone the equity report compares with.
        Assert.Equal("8", equity.Everyone.Referrals.Text);

        Assert.Equal(scorecard, pack.DataQuality);
        Assert.NotEmpty(scorecard);
        foreach (var measure in scorecard)
        {
            Assert.Equal(measure.Applies.ToString(CultureInfo.InvariantCulture), Value(pack, DecisionPack.Panels.DataQuality, $"{measure.Title}: referrals checked"));
            Assert.Equal(measure.Failing.ToString(CultureInfo.InvariantCulture), Value(pack, DecisionPack.Panels.DataQuality, $"{measure.Title}: referrals failing"));
            Assert.Equal(measure.Percent?.ToString("0.#", CultureInfo.InvariantCulture) ?? "", Value(pack, DecisionPack.Panels.DataQuality, $"{measure.Title}: % passing"));
        }
    }

    [Fact]
    public async Task DecisionPackCsv_ParsesBackToThePagesFigures()
    {
        var data = await SeedAsync();
        var pack = await PackAsync(data);
        using var client = app.CreateBrowserlessClient();
        (await app.SignInAsync(client, "manager", AppFactory.Password)).Dispose();

        // A day inside the quarter stands for the quarter, as on the page.
        using var response = await client.GetAsync($"/reports/decision-pack.csv?from=2026-05-20&to=2026-05-20&trust={data.Trust}&locality={Uri.EscapeDataString(data.Locality)}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/csv", response.Content.Headers.ContentType?.MediaType);

        using var reader = CsvReader.Create(await response.Content.ReadAsByteArrayAsync());
        Assert.True(reader.Read());
        Assert.Equal(["Panel", "Figure", "Value", "Definition"], reader.Headers.ToArray());
        var parsed = new List<DecisionPack.Figure>();
        do
        {
            parsed.Add(new(reader.GetString("Panel"), reader.GetString("Figure"), reader.GetString("Value"), reader.GetString("Definition")));
        }
        while (reader.Read());
        Assert.Equal(pack.Figures, parsed);
        Assert.Equal(DecisionPack.Panels.All, parsed.Select(f => f.Panel).Distinct());
    }

    [Fact]
    public async Task DecisionPack_IsRefusedToACoordinator_AndAskedForLessThanAQuarter_IsInvalid()
    {
        var data = await SeedAsync();
        Assert.IsType<AccessDenied>(await Record.ExceptionAsync(() => PackAsync(data, who: "coordinator")));
        var month = await Record.ExceptionAsync(async () => await app.SendAsync<DecisionPack.Result>(
            new DecisionPack.Query(new ReportFilter(First, First.AddMonths(1).AddDays(-1))), await app.StaffAsync("manager")));
        Assert.IsType<ValidationFailed>(month);

        using var client = app.CreateBrowserlessClient();
        (await app.SignInAsync(client, "coordinator", AppFactory.Password)).Dispose();
        using var response = await client.GetAsync("/reports/decision-pack.csv");
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
    }

    [Fact]
    public async Task YouSaidWeDid_IsKeptByAdministrators_EveryChangeAudited_AndAStaleEditRefused()
    {
        var admin = await app.StaffAsync("admin");
        var quarter = new DateOnly(2025, 7, 1);
        var id = await app.SendAsync<long>(new SaveYouSaidWeDid.Command(null, 0, quarter, "Said.", "Did.", null), admin);
        await app.SendAsync<long>(new SaveYouSaidWeDid.Command(id, 1, quarter, "Said, changed.", "Did.", "Survey"), admin);
        var stale = await Record.ExceptionAsync(() => app.SendAsync<long>(new SaveYouSaidWeDid.Command(id, 1, quarter, "Overwrite.", "Did.", null), admin));
        Assert.IsType<Conflict>(stale);
        await app.SendAsync(new RetireYouSaidWeDid.Command(id, 2), admin);

        var all = await app.SendAsync<IReadOnlyList<YouSaidWeDidItems.Item>>(new YouSaidWeDidItems.Query(quarter, IncludeRetired: true), admin);
        var item = Assert.Single(all);
        Assert.Equal(("Said, changed.", "Survey", true, 3), (item.YouSaid, item.HeardFrom, item.Retired, item.Version));
        Assert.Empty(await app.SendAsync<IReadOnlyList<YouSaidWeDidItems.Item>>(new YouSaidWeDidItems.Query(quarter), admin));

        var manager = await app.StaffAsync("manager");
        Assert.IsType<AccessDenied>(await Record.ExceptionAsync(() => app.SendAsync<long>(new SaveYouSaidWeDid.Command(null, 0, quarter, "A manager.", "Did.", null), manager)));
        Assert.IsType<ValidationFailed>(await Record.ExceptionAsync(() => app.SendAsync<long>(new SaveYouSaidWeDid.Command(null, 0, new DateOnly(2025, 8, 1), "Said.", "Did.", null), admin)));

        await using var connection = await app.OpenAsync();
        var audited = (await connection.QueryAsync<(string Action, string Outcome)>(
            "SELECT action, outcome FROM audit_event WHERE entity_type = 'you_said_we_did' AND entity_id = @id ORDER BY id", new { id })).ToList();
        Assert.Equal(3, audited.Count(a => a.Outcome == "success"));
    }
}

public sealed class DecisionPackOnSqliteTests(AppFactory app) : DecisionPackTests(app), IClassFixture<AppFactory>;

public sealed class DecisionPackOnPostgresTests(PostgresAppFactory app) : DecisionPackTests(app), IClassFixture<PostgresAppFactory>;
