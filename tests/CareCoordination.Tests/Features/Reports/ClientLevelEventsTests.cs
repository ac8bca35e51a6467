using CareCoordination.Features.Reports;
using CareCoordination.Pipeline;
using CareCoordination.Tests.Support;
using Dapper;
using Microsoft.Extensions.DependencyInjection;

namespace CareCoordination.Tests.Features.Reports;

/// <summary>
/// Report 6, the CLD-shaped events, over ten referrals of one trust made and decided through the real commands on
/// known London days, with the events and their fields counted by hand below; the export names people, so each
/// download is audited, each person in it named against the audit row of the run that held them, and only managers and
/// admins may have it.
/// </summary>
public abstract class ClientLevelEventsTests(AppFactory app)
{
    /// <summary>A field of a row by its CLD name, as the CSV header carries it.</summary>
    private static string Column(ClientLevelEvents.Row row, string name) =>
        (string)typeof(ClientLevelEvents.Row).GetProperties()
            .Single(p => p.GetCustomAttributes(typeof(CsvHelper.CsvColumnAttribute), false).Cast<CsvHelper.CsvColumnAttribute>().Any(a => a.Name == name))
            .GetValue(row)!;

    private sealed record Built(ReportWorld World, Dictionary<string, long> Referrals, Dictionary<string, long> Placements);

    /// <summary>
    /// Day 0 to day 9 is the period. In time order:
    ///   R1 hospital, submitted d0, accepted into reablement d0, service started d1, still running.
    ///   R2 GP (step-up), submitted d0, accepted into home care 2 hours a day d0, started d2, ended d5.
    ///   R5 hospital, submitted d0, passed to the bed bureau d0 (not a decision), bed reserved and admitted d1, discharged from the bed d4.
    ///   R3 community step-up, submitted d1, declined d1 (the person declined).
    ///   R6 hospital, submitted d2, never decided. R7 hospital, submitted d2, cancelled d3 before any decision.
    ///   R4 hospital, submitted d3, declined d3 (not eligible).
    ///   R9 hospital, submitted d4, accepted into reablement d4, never started.
    ///   R10 from a demo trust, submitted and declined d8: another trust, not in this trust's export.
    ///   R8 hospital, submitted d8, declined d10: after the period.
    /// </summary>
    private async Task<Built> BuildAsync()
    {
        var w = await ReportWorld.CreateAsync(app);
        var r = new Dictionary<string, long>();
        var p = new Dictionary<string, long>();

        w.Now(0, 9);
        r["R1"] = await w.SubmitAsync();
        r["R2"] = await w.SubmitAsync(ReportWorld.FromGp);
        r["R5"] = await w.SubmitAsync(f => f.Pathway = "2");
        w.Now(0, 10);
        p["R1"] = await w.AcceptAsync(r["R1"], "Home First Reablement - North");
        p["R2"] = await w.AcceptAsync(r["R2"], "Carewell Home Care - North", hoursPerDay: 2);
        await w.RedirectAsync(r["R5"]);

        w.Now(1, 9);
        r["R3"] = await w.SubmitAsync(ReportWorld.StepUp);
        await w.DeclineAsync(r["R3"], "person-declined");
        w.Now(1, 10);
        await w.StartServiceAsync(p["R1"]);
        w.Now(1, 11);
        p["R5"] = await w.ReserveBedAsync(r["R5"], w.Beds[0]);
        w.Now(1, 12);
        await w.AdmitAsync(p["R5"]);

        w.Now(2, 9);
        r["R6"] = await w.SubmitAsync();
        r["R7"] = await w.SubmitAsync();
        w.Now(2, 10);
        await w.StartServiceAsync(p["R2"]);

        w.Now(3, 9);
        r["R4"] = await w.SubmitAsync();
        await w.DeclineAsync(r["R4"], "not-eligible");
        w.Now(3, 10);
        await w.CancelAsync(r["R7"]);

        w.Now(4, 9);
        r["R9"] = await w.SubmitAsync();
        await w.AcceptAsync(r["R9"], "Home First Reablement - North");
        w.Now(4, 12);
        await w.DischargeFromBedAsync(p["R5"]);

        w.Now(5, 12);
        await w.EndServiceAsync(p["R2"]);

        w.Now(8, 9);
        r["R8"] = await w.SubmitAsync();
        r["R10"] = await w.SubmitAsync(referrer: "referrer");
        await w.DeclineAsync(r["R10"], "needs-met");

        w.Now(10, 9);
        await w.DeclineAsync(r["R8"], "other");
        return new Built(w, r, p);
    }

    /// <summary>
    /// The person's fields as the referral recorded them, and nothing where it recorded none: each row is read back from the
    /// store as one packed text (ClientLevelEvents.Packed), so an empty field and a missing one must still come out right.
    /// </summary>
    [Fact]
    public async Task Export_WritesEachPersonAsRecorded_AndNothingForWhatWasNotRecorded()
    {
        var w = await ReportWorld.CreateAsync(app);
        string recordedNhs = "", unrecordedNhs = "";
        w.Now(0, 9);
        var recorded = await w.SubmitAsync(f => (recordedNhs, f.Sex, f.DateOfBirth, f.Postcode) = (f.NhsNumber!, "male", new DateOnly(1941, 12, 30), "tr1  1aa"));
        var unrecorded = await w.SubmitAsync(f => (unrecordedNhs, f.Sex) = (f.NhsNumber!, "unknown"));
        // The form asks for both; a partner's Patient with no address and no ethnicity leaves them unrecorded.
        await using (var connection = await app.OpenAsync())
        {
            await connection.ExecuteAsync("UPDATE person SET ethnicity = NULL, postcode = NULL WHERE id = (SELECT person_id FROM referral WHERE id = @unrecorded)", new { unrecorded });
        }
        w.Now(0, 10);
        await w.DeclineAsync(recorded, "needs-met");
        await w.DeclineAsync(unrecorded, "other");

        var rows = (await app.SendAsync<IReadOnlyList<ClientLevelEvents.Row>>(
            new ClientLevelEvents.Export(new ReportFilter(w.Day(0), w.Day(0), w.TrustId)), await app.StaffAsync("manager"))).ToDictionary(e => e.EventReference);

        var person = rows[$"request-{recorded}"];
        Assert.Equal((recordedNhs.Replace(" ", "", StringComparison.Ordinal), "30/12/1941", "Male", "White: British", "TR1 1AA", "NFA - Information and advice/Signposting only"),
            (person.NhsNumber, person.DateOfBirth, person.Gender, person.Ethnicity, person.Postcode, person.EventOutcome));
        var unknown = rows[$"request-{unrecorded}"];
        Assert.Equal((unrecordedNhs.Replace(" ", "", StringComparison.Ordinal), "02/05/1938", "Unknown", "", "", "NFA - Other"),
            (unknown.NhsNumber, unknown.DateOfBirth, unknown.Gender, unknown.Ethnicity, unknown.Postcode, unknown.EventOutcome));
        Assert.Equal(2, rows.Count);
    }

    [Fact]
    public async Task Summary_CountsTheRequestsDecidedAndTheServicesRunningInThePeriod_ByTypeRouteAndServiceType()
    {
        var (w, _, _) = await BuildAsync();

        var counts = await app.SendAsync<ClientLevelEvents.Counts>(
            new ClientLevelEvents.Summary(new ReportFilter(w.Day(0), w.Day(9), w.TrustId)), await app.StaffAsync("manager"));

        // Requests decided d0..d9 in this trust: R1, R2, R3, R4, R5 (its bed, d1), R9 = 6. Not R6 (undecided), R7 (cancelled),
        // R8 (decided d10), R10 (another trust). Services that ran: R1, R2, R5 = 3 (R9's reablement never started).
        Assert.Equal([new("Request", 6), new("Service", 3)], counts.ByEventType);
        // Routes: hospital R1, R4, R5, R9 = 4 discharges; R3 step-up = 1 diversion; R2 GP = 1 community.
        Assert.Equal([new("Discharge from Hospital", 4), new("Community / Other route", 1), new("Diversion from Hospital Services", 1)],
            counts.ByRouteOfAccess);
        // Services: R1 reablement and R5 rehabilitation bed = 2 short-term; R2 home care = 1 long-term community.
        Assert.Equal([new("Short Term Support: ST-Max", 2), new("Long Term Support: Community", 1)], counts.ByServiceType);
        Assert.Equal(9, counts.Total);

                var early = await app.SendAsync<ClientLevelEvents.Counts>(
            new ClientLevelEvents.Summary(new ReportFilter(w.Day(0), w.Day(1), w.TrustId)), await app.StaffAsync("manager"));
        // d0..d1: requests R1, R2 (d0), R3 (d1), R5 (bed reserved d1) = 4; services started by d1: R1 and R5 = 2 (R2 starts d2).
        Assert.Equal([new("Request", 4), new("Service", 2)], early.ByEventType);
    }

    /// <summary>
    /// The page's counts come from the store (grouped there) and the file's events one by one: the same events, whichever
    /// filter. By locality: this world's people are moved to a locality of their own, so its counts are the trust's hand
    /// count; with no trust or locality (every test's referrals in the period) the counts are the file's, event for event.
    /// </summary>
    [Fact]
    public async Task Summary_CountsTheExportsEvents_ByLocalityAndForAllTrusts()
    {
        var (w, _, _) = await BuildAsync();
        var manager = await app.StaffAsync("manager");
        var locality = $"CLD {w.TrustId}";
        await using (var connection = await app.OpenAsync())
        {
            await connection.ExecuteAsync("UPDATE person SET locality = @locality WHERE id IN (SELECT person_id FROM referral WHERE organisation_id = @TrustId)",
                new { locality, w.TrustId });
        }

        var byLocality = await app.SendAsync<ClientLevelEvents.Counts>(
            new ClientLevelEvents.Summary(new ReportFilter(w.Day(0), w.Day(9), Locality: locality)), manager);
        Assert.Equal([new("Request", 6), new("Service", 3)], byLocality.ByEventType);
        Assert.Equal([new("Short Term Support: ST-Max", 2), new("Long Term Support: Community", 1)], byLocality.ByServiceType);
        var both = await app.SendAsync<ClientLevelEvents.Counts>(
            new ClientLevelEvents.Summary(new ReportFilter(w.Day(0), w.Day(9), w.TrustId, locality)), manager);
        Assert.Equal(byLocality, both, CountsComparer);

        var all = new ReportFilter(w.Day(0), w.Day(9));
        var counts = await app.SendAsync<ClientLevelEvents.Counts>(new ClientLevelEvents.Summary(all), manager);
        var rows = await app.SendAsync<IReadOnlyList<ClientLevelEvents.Row>>(new ClientLevelEvents.Export(all), manager);
        Assert.True(counts.Total >= 9);
        Assert.Equal(counts.ByEventType, new[] { "Request", "Service" }.Select(t => new ClientLevelEvents.Count(t, rows.Count(r => r.EventType == t))));
        Assert.Equal(counts.ByRouteOfAccess, Tally(rows.Select(r => r.RouteOfAccess)));
        Assert.Equal(counts.ByServiceType, Tally(rows.Select(r => r.ServiceType)));
    }

    private static readonly IEqualityComparer<ClientLevelEvents.Counts> CountsComparer = EqualityComparer<ClientLevelEvents.Counts>.Create(
        (a, b) => a is not null && b is not null && a.ByEventType.SequenceEqual(b.ByEventType) && a.ByRouteOfAccess.SequenceEqual(b.ByRouteOfAccess)
            && a.ByServiceType.SequenceEqual(b.ByServiceType),
        c => c.Total);

    /// <summary>Labels counted, most first, then by name: the page's order.</summary>
    private static List<ClientLevelEvents.Count> Tally(IEnumerable<string> labels) =>
        [.. labels.Where(l => l.Length > 0).GroupBy(l => l).Select(g => new ClientLevelEvents.Count(g.Key, g.Count()))
            .OrderByDescending(c => c.Events).ThenBy(c => c.Label, StringComparer.Ordinal)];

    [Fact]
    public async Task Export_HasEachEventsFieldsAsCldNamesThem_AndAuditsEveryPersonInIt()
    {
        var (w, r, p) = await BuildAsync();
        var manager = await app.StaffAsync("manager");

        var exported = await app.SendAsync<IReadOnlyList<ClientLevelEvents.Row>>(new ClientLevelEvents.Export(new ReportFilter(w.Day(0), w.Day(9), w.TrustId)), manager);

        var rows = exported.ToDictionary(e => e.EventReference);
        string Cell(string reference, string column) => Column(rows[reference], column);
        string D(int day) => w.Day(day).ToString("dd/MM/yyyy", System.Globalization.CultureInfo.InvariantCulture);

        Assert.Equal(
            new[] { "R1", "R2", "R3", "R4", "R5", "R9" }.Select(k => $"request-{r[k]}").Concat(new[] { "R1", "R2", "R5" }.Select(k => $"service-{p[k]}")).Order(),
            rows.Keys.Order());
        // R5: submitted d0, decided d1 when the bed was reserved (the redirect on d0 was not the decision).
        Assert.Equal(("Request", D(0), D(1), "Progress to Support Planning / Services", "Discharge from Hospital"),
            (Cell($"request-{r["R5"]}", "Event Type"), Cell($"request-{r["R5"]}", "Event Start Date"), Cell($"request-{r["R5"]}", "Event End Date"),
             Cell($"request-{r["R5"]}", "Event Outcome"), Cell($"request-{r["R5"]}", "Request: Route of Access")));
        Assert.Equal("Progress to Reablement/ST-Max", Cell($"request-{r["R1"]}", "Event Outcome"));
        Assert.Equal(("NFA - Support declined", "Diversion from Hospital Services"),
            (Cell($"request-{r["R3"]}", "Event Outcome"), Cell($"request-{r["R3"]}", "Request: Route of Access")));
        Assert.Equal("NFA - No services offered: Other reason", Cell($"request-{r["R4"]}", "Event Outcome"));
        // R2's home care: started d2, ended d5, 2 hours a day = 14.00 planned hours a week.
        Assert.Equal(("Service", D(2), D(5), "Services ended as planned", "Long Term Support: Community", "Home Support", "14.00"),
            (Cell($"service-{p["R2"]}", "Event Type"), Cell($"service-{p["R2"]}", "Event Start Date"), Cell($"service-{p["R2"]}", "Event End Date"),
             Cell($"service-{p["R2"]}", "Event Outcome"), Cell($"service-{p["R2"]}", "Service Type"), Cell($"service-{p["R2"]}", "Service Component"),
             Cell($"service-{p["R2"]}", "Planned units per week")));
        // R1's reablement: started d1, still running at the end of the period, no hours held for a slots service.
        Assert.Equal((D(1), "", "Provision of service", "Short Term Support: ST-Max", "Reablement", ""),
            (Cell($"service-{p["R1"]}", "Event Start Date"), Cell($"service-{p["R1"]}", "Event End Date"), Cell($"service-{p["R1"]}", "Event Outcome"),
             Cell($"service-{p["R1"]}", "Service Type"), Cell($"service-{p["R1"]}", "Service Component"), Cell($"service-{p["R1"]}", "Planned units per week")));
        // R5's bed: admitted d1, discharged from the bed d4.
        Assert.Equal((D(1), D(4), "Short Term Support: ST-Max"),
            (Cell($"service-{p["R5"]}", "Event Start Date"), Cell($"service-{p["R5"]}", "Event End Date"), Cell($"service-{p["R5"]}", "Service Type")));
        Assert.All(rows.Values, row => Assert.Equal((D(0), D(9), "Service User", w.TrustName),
            (row.ReportingPeriodStartDate, row.ReportingPeriodEndDate, row.ClientType, row.LocalReferringOrganisation)));

        // One audit row for the download under the manager's name, the detail saying which period and filter and how many
        // events, and each person whose record left in the file (R1, R2, R3, R4, R5, R9: 9 events of 6 people) named once
        // against it: "who has seen this person's record" by person id finds the download.
        await using var connection = await app.OpenAsync();
        var download = (await connection.QueryAsync<(long Id, string? EntityType, long? PersonId)>(
            """
            SELECT id, entity_type, person_id FROM audit_event
            WHERE action = 'ClientLevelEvents' AND outcome = 'success' AND actor_name = 'David Trelawney' AND detail = @detail
            """, new { detail = $"CLD export {w.Ymd(0)} to {w.Ymd(9)}, referring organisation {w.TrustId}: 9 events" })).Single();
        Assert.Equal((null, null), (download.EntityType, download.PersonId));
        var personOf = (await connection.QueryAsync<(long Id, long PersonId)>(
            "SELECT id, person_id FROM referral WHERE organisation_id = @TrustId", new { w.TrustId })).ToDictionary(x => x.Id, x => x.PersonId);
        var persons = new[] { "R1", "R2", "R3", "R4", "R5", "R9" }.Select(k => personOf[r[k]]).ToHashSet();
        Assert.Equal(6, persons.Count);
        Assert.Equal(persons.Order(), (await connection.QueryAsync<long>(
            "SELECT person_id FROM audit_person WHERE audit_id = @Id", new { download.Id })).Order());
        foreach (var person in persons)
        {
            var seenBy = await connection.QueryAsync<long>(
                """
                SELECT a.id FROM audit_event a WHERE a.person_id = @person
                UNION SELECT a.id FROM audit_person ap JOIN audit_event a ON a.id = ap.audit_id WHERE ap.person_id = @person
                """, new { person });
            Assert.Contains(download.Id, seenBy);
        }
    }

    /// <summary>
    /// A request is the referral's first decision, kept on the referral (0028): R5 was passed to the bed bureau on d0 (not a
    /// decision) and its bed reserved on d1, so it is a request of d1 only, once, with the bed's outcome; a day's export and
    /// the page's counts agree.
    /// </summary>
    [Fact]
    public async Task Export_ReportsARedirectedReferral_OnceOnTheDayOfItsRealDecision_NotOnItsRedirect()
    {
        var (w, r, _) = await BuildAsync();
        var manager = await app.StaffAsync("manager");
        async Task<List<ClientLevelEvents.Row>> RequestsOn(int day) =>
            [.. (await app.SendAsync<IReadOnlyList<ClientLevelEvents.Row>>(new ClientLevelEvents.Export(new ReportFilter(w.Day(day), w.Day(day), w.TrustId)), manager))
                .Where(row => row.EventType == "Request")];

        var dayZero = await RequestsOn(0);
        Assert.Equal(new[] { "R1", "R2" }.Select(k => $"request-{r[k]}").Order(StringComparer.Ordinal), dayZero.Select(e => e.EventReference).Order(StringComparer.Ordinal));
        var dayOne = await RequestsOn(1);
        Assert.Equal(new[] { "R3", "R5" }.Select(k => $"request-{r[k]}").Order(StringComparer.Ordinal), dayOne.Select(e => e.EventReference).Order(StringComparer.Ordinal));
        Assert.Equal("Progress to Support Planning / Services", dayOne.Single(e => e.EventReference == $"request-{r["R5"]}").EventOutcome);
        var counts = await app.SendAsync<ClientLevelEvents.Counts>(new ClientLevelEvents.Summary(new ReportFilter(w.Day(1), w.Day(1), w.TrustId)), manager);
        Assert.Equal(2, counts.ByEventType.Single(c => c.Label == "Request").Events);
    }

    /// <summary>
    /// Every decline is a request (the definition): the demo county keeps its declines as "declined" with the reason apart,
    /// no code after it, and such a decline is the catch-all outcome rather than a failed export.
    /// </summary>
    [Fact]
    public void RequestOutcome_OfADeclineWithNoReasonCode_IsTheCatchAll()
    {
        Assert.Equal("NFA - No services offered: Other reason", ClientLevelEvents.RequestOutcome("declined"));
        Assert.Equal("NFA - Support declined", ClientLevelEvents.RequestOutcome("declined: person-declined"));
        Assert.Equal("Progress to Reablement/ST-Max", ClientLevelEvents.RequestOutcome("accepted: reablement"));
    }

    /// <summary>
    /// A download reads its file in runs of start days (FileRuns: the events that started before the period, then the
    /// period's days), each run by its own index: each event must come once, by one run, however the days are cut, and the
    /// runs one after the other must be the file's order. Over the whole period; over its first five days, in which R2's home
    /// care (ended d5) is still running at the end; and from d2, before which R1's reablement and R5's bed had started.
    /// </summary>
    [Fact]
    public async Task Export_ReadsEachEventOnce_InTheFilesOrder_HoweverItsStartDaysAreCutIntoRuns()
    {
        var (w, r, p) = await BuildAsync();
        var database = app.Services.GetRequiredService<CareCoordination.Store.Database>();
        var wholePeriod = new[] { "R1", "R2", "R3", "R4", "R5", "R9" }.Select(k => $"request-{r[k]}")
            .Concat(new[] { "R1", "R2", "R5" }.Select(k => $"service-{p[k]}")).Order(StringComparer.Ordinal).ToList();
        // From d2: requests decided d2..d9 are R4 (sent d3) and R9 (sent d4); services that ran: R1 and R5 (both started d1,
        // before the period), R2 (started d2). In the file's order: d1's two services, by number, then d2's, then d3, d4.
        var fromDayTwo = new[] { $"service-{p["R1"]}", $"service-{p["R5"]}", $"service-{p["R2"]}", $"request-{r["R4"]}", $"request-{r["R9"]}" };
        foreach (var (first, last) in new[] { (0, 9), (0, 4), (2, 9) })
        {
            var filter = new ReportFilter(w.Day(first), w.Day(last), w.TrustId);
            var days = Enumerable.Range(first, last - first + 1).Select(d => new ClientLevelEvents.StartDays(w.Day(d), w.Day(d)));
            IReadOnlyList<ClientLevelEvents.StartDays>[] cuts =
            [
                ClientLevelEvents.FileRuns(filter),
                [ClientLevelEvents.StartDays.Any],
                [new(null, w.Day(first - 1)), .. days],
                [new(null, w.Day(first)), new(w.Day(first + 1), null)],
                // A run from before the period into it, found by the period's decisions and ends, then one found by its starts.
                [new(w.Day(first - 3), w.Day(first + 1)), new(w.Day(first + 2), null)],
            ];
            foreach (var runs in cuts)
            {
                var events = new List<ClientLevelEvents.Event>();
                foreach (var run in runs)
                {
                    events.AddRange(await ClientLevelEvents.LoadAsync(database, filter, run, CancellationToken.None));
                }
                var references = events.Select(e => e.EventReference).ToList();
                if (first == 2)
                {
                    Assert.Equal(fromDayTwo, references);
                }
                else
                {
                    Assert.Equal(wholePeriod, references.Order(StringComparer.Ordinal));
                }
                // The file's order: start day, then requests before services, then the referral's or placement's number.
                Assert.Equal(events.OrderBy(e => e.EventStart).ThenBy(e => e.EventType, StringComparer.Ordinal)
                    .ThenBy(e => long.Parse(e.EventReference[(e.EventReference.IndexOf('-') + 1)..], System.Globalization.CultureInfo.InvariantCulture))
                    .Select(e => e.EventReference), references);
                var homeCare = events.Single(e => e.EventReference == $"service-{p["R2"]}");
                Assert.Equal((last == 9 ? w.Day(5) : (DateOnly?)null, last == 9 ? "Services ended as planned" : "Provision of service"),
                    (homeCare.EventEnd, homeCare.EventOutcome));
            }
        }
    }

    /// <summary>The file's runs: the days before the period, then the period in runs of at most 31 days that cover it once.</summary>
    [Fact]
    public void FileRuns_AreTheDaysBeforeThePeriod_ThenItsDaysInRunsOfAtMost31()
    {
        var day = new DateOnly(2025, 12, 1);
        Assert.Equal([new(null, day.AddDays(-1)), new(day, day)], ClientLevelEvents.FileRuns(new ReportFilter(day, day)));
        Assert.Equal([new(null, day.AddDays(-1)), new(day, day.AddDays(30))], ClientLevelEvents.FileRuns(new ReportFilter(day, day.AddDays(30))));
        Assert.Equal([new(null, day.AddDays(-1)), new(day, day.AddDays(15)), new(day.AddDays(16), day.AddDays(31))],
            ClientLevelEvents.FileRuns(new ReportFilter(day, day.AddDays(31))));
        var year = ClientLevelEvents.FileRuns(new ReportFilter(day, new DateOnly(2026, 11, 30)));
        Assert.Equal(13, year.Count);
        Assert.All(year.Skip(1), run => Assert.InRange(run.Last!.Value.DayNumber - run.First!.Value.DayNumber + 1, 1, ClientLevelEvents.RunDays));
        Assert.All(year.Skip(2).Zip(year.Skip(1)), pair => Assert.Equal(pair.Second.Last!.Value.AddDays(1), pair.First.First));
        Assert.Equal((day, new DateOnly(2026, 11, 30)), (year[1].First!.Value, year[^1].Last!.Value));
    }

    [Fact]
    public async Task Export_IsForManagersAndAdmins_AndARefusalIsAudited()
    {
        var today = CareCoordination.Domain.LondonTime.Today(app.Clock);
        const string Denied = "SELECT COUNT(*) FROM audit_event WHERE action = 'ClientLevelEvents' AND outcome = 'denied'";
        await using var connection = await app.OpenAsync();
        var deniedBefore = await connection.ExecuteScalarAsync<long>(Denied);
        foreach (var role in new[] { "coordinator", "bedbureau", "referrer" })
        {
            var caller = await app.StaffAsync(role);
            await Assert.ThrowsAsync<AccessDenied>(() => app.SendAsync(new ClientLevelEvents.Export(new ReportFilter(today, today)), caller));
            await Assert.ThrowsAsync<AccessDenied>(() => app.SendAsync(new ClientLevelEvents.Summary(new ReportFilter(today, today)), caller));
        }
        await app.SendAsync(new ClientLevelEvents.Export(new ReportFilter(today, today)), await app.StaffAsync("admin"));
        var manager = await app.StaffAsync("manager");
        await Assert.ThrowsAsync<ValidationFailed>(() => app.SendAsync(new ClientLevelEvents.Export(new ReportFilter(today, today.AddDays(-1))), manager));

        // Every refusal is on the trail: 3 roles, each refused the export and the summary.
        Assert.Equal(deniedBefore + 6, await connection.ExecuteScalarAsync<long>(Denied));
    }

    [Fact]
    public async Task Csv_IsTheCldFile_WhoseEventsParseBackToThePagesCounts_AndEachDownloadIsAudited()
    {
        var (w, _, _) = await BuildAsync();
        var filter = new ReportFilter(w.Day(0), w.Day(9), w.TrustId);
        var counts = await app.SendAsync<ClientLevelEvents.Counts>(new ClientLevelEvents.Summary(filter), await app.StaffAsync("manager"));
        using var client = app.CreateBrowserlessClient();
        (await app.SignInAsync(client, "manager", AppFactory.Password)).Dispose();

        using var response = await client.GetAsync($"/reports/client-level-events.csv?{filter.ToQueryString()}");

        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        Assert.Equal($"client-level-events-{w.Ymd(0)}-to-{w.Ymd(9)}.csv", response.Content.Headers.ContentDisposition?.FileName?.Trim('"'));
        using var reader = CsvHelper.CsvReader.Create(await response.Content.ReadAsByteArrayAsync());
        var rows = reader.GetRecords<ClientLevelEvents.Row>().ToList();
        Assert.Equal(counts.ByEventType, new[] { "Request", "Service" }.Select(t => new ClientLevelEvents.Count(t, rows.Count(r => r.EventType == t))));
        Assert.Equal(counts.ByRouteOfAccess.OrderBy(c => c.Label, StringComparer.Ordinal),
            rows.Where(r => r.RouteOfAccess.Length > 0).GroupBy(r => r.RouteOfAccess).Select(g => new ClientLevelEvents.Count(g.Key, g.Count())).OrderBy(c => c.Label, StringComparer.Ordinal));
        Assert.Equal(counts.ByServiceType.OrderBy(c => c.Label, StringComparer.Ordinal),
            rows.Where(r => r.ServiceType.Length > 0).GroupBy(r => r.ServiceType).Select(g => new ClientLevelEvents.Count(g.Key, g.Count())).OrderBy(c => c.Label, StringComparer.Ordinal));
        Assert.All(rows, r => Assert.Matches("^[0-9]{10}$", r.NhsNumber));

        // The download went through the audited export, a row for each of its runs under the manager's name: the days before
        // the period (no events) and the period's ten days, each person in it (9 events of 6 people) named against the latter.
        await using var connection = await app.OpenAsync();
        var prefix = $"CLD export {w.Ymd(0)} to {w.Ymd(9)}, referring organisation {w.TrustId}";
        Assert.Equal(
            new[] { ($"{prefix}, events started before the period: 0 events", 0L), ($"{prefix}, events started {w.Ymd(0)} to {w.Ymd(9)}: 9 events", 6L) }
                .OrderBy(run => run.Item1, StringComparer.Ordinal),
            (await connection.QueryAsync<(string Detail, long People)>(
                """
                SELECT a.detail, (SELECT COUNT(*) FROM audit_person ap WHERE ap.audit_id = a.id) FROM audit_event a
                WHERE a.action = 'ClientLevelEvents' AND a.outcome = 'success' AND a.actor_name = 'David Trelawney' AND a.detail LIKE @prefix
                """, new { prefix = prefix + ",%" })).OrderBy(run => run.Detail, StringComparer.Ordinal).ToList());

        // Nobody else gets the file.
        using var other = app.CreateBrowserlessClient();
        (await app.SignInAsync(other, "coordinator", AppFactory.Password)).Dispose();
        using var refused = await other.GetAsync($"/reports/client-level-events.csv?{filter.ToQueryString()}");
        Assert.Equal(System.Net.HttpStatusCode.Forbidden, refused.StatusCode);
    }

    /// <summary>
    /// A period longer than a run is downloaded run by run, each run audited before its rows are written, under its own row
    /// naming only its own people. d1 to d40 is two runs after the days before it. Before d1: R5's request (sent d0, decided
    /// d1). d1..d20: R3's request (d1), R1's and R5's services (d1), R2's (d2), R4's request (d3), R9's (d4), R8's (sent d8,
    /// decided d10). d21..d40: nothing. R5's person is in two runs, so named by both.
    /// </summary>
    [Fact]
    public async Task Csv_OfAPeriodOfSeveralRuns_IsWrittenRunByRun_InTheFilesOrder_EachRunAuditedForItsOwnPeople()
    {
        var (w, r, p) = await BuildAsync();
        var filter = new ReportFilter(w.Day(1), w.Day(40), w.TrustId);
        Assert.Equal(3, ClientLevelEvents.FileRuns(filter).Count);
        using var client = app.CreateBrowserlessClient();
        (await app.SignInAsync(client, "manager", AppFactory.Password)).Dispose();

        using var response = await client.GetAsync($"/reports/client-level-events.csv?{filter.ToQueryString()}");

        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        using var reader = CsvHelper.CsvReader.Create(await response.Content.ReadAsByteArrayAsync());
        Assert.Equal(
            [$"request-{r["R5"]}", $"request-{r["R3"]}", $"service-{p["R1"]}", $"service-{p["R5"]}", $"service-{p["R2"]}",
             $"request-{r["R4"]}", $"request-{r["R9"]}", $"request-{r["R8"]}"],
            reader.GetRecords<ClientLevelEvents.Row>().Select(row => row.EventReference).ToList());

        await using var connection = await app.OpenAsync();
        var personOf = (await connection.QueryAsync<(long Id, long PersonId)>(
            "SELECT id, person_id FROM referral WHERE organisation_id = @TrustId", new { w.TrustId })).ToDictionary(x => x.Id, x => x.PersonId);
        var prefix = $"CLD export {w.Ymd(1)} to {w.Ymd(40)}, referring organisation {w.TrustId}";
        var runs = (await connection.QueryAsync<(long Id, string Detail)>(
            """
            SELECT id, detail FROM audit_event
            WHERE action = 'ClientLevelEvents' AND outcome = 'success' AND actor_name = 'David Trelawney' AND detail LIKE @prefix
            """, new { prefix = prefix + ",%" })).OrderBy(run => run.Detail, StringComparer.Ordinal).ToList();
        // (By detail, not id: the runs after the first are read side by side, so their rows are written in either order.)
        Assert.Equal(
            [$"{prefix}, events started {w.Ymd(1)} to {w.Ymd(20)}: 7 events", $"{prefix}, events started {w.Ymd(21)} to {w.Ymd(40)}: 0 events",
             $"{prefix}, events started before the period: 1 events"],
            runs.Select(run => run.Detail).ToList());
        async Task<List<long>> PeopleOf(long auditId) =>
            [.. (await connection.QueryAsync<long>("SELECT person_id FROM audit_person WHERE audit_id = @auditId", new { auditId })).Order()];
        Assert.Equal(new[] { "R3", "R1", "R5", "R2", "R4", "R9", "R8" }.Select(k => personOf[r[k]]).Order(), await PeopleOf(runs[0].Id));
        Assert.Empty(await PeopleOf(runs[1].Id));
        Assert.Equal([personOf[r["R5"]]], await PeopleOf(runs[2].Id));
    }

    /// <summary>
    /// A download refused, or asked with a bad period, is an ordinary problem response before any of the file is written,
    /// and is refused once: no run is read ahead of the first.
    /// </summary>
    [Fact]
    public async Task Csv_Refused_IsAProblemResponse_AuditedOnce()
    {
        const string Denied = "SELECT COUNT(*) FROM audit_event WHERE action = 'ClientLevelEvents' AND outcome = 'denied'";
        await using var connection = await app.OpenAsync();
        var deniedBefore = await connection.ExecuteScalarAsync<long>(Denied);
        var today = CareCoordination.Domain.LondonTime.Today(app.Clock);
        using var coordinator = app.CreateBrowserlessClient();
        (await app.SignInAsync(coordinator, "coordinator", AppFactory.Password)).Dispose();

        // A year: thirteen runs, none of which may be read for a caller refused the first.
        using var refused = await coordinator.GetAsync($"/reports/client-level-events.csv?{new ReportFilter(today.AddDays(-364), today).ToQueryString()}");

        Assert.Equal(System.Net.HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Equal(deniedBefore + 1, await connection.ExecuteScalarAsync<long>(Denied));
        const string Invalid = "SELECT COUNT(*) FROM audit_event WHERE action = 'ClientLevelEvents' AND outcome = 'invalid'";
        var invalidBefore = await connection.ExecuteScalarAsync<long>(Invalid);
        using var manager = app.CreateBrowserlessClient();
        (await app.SignInAsync(manager, "manager", AppFactory.Password)).Dispose();
        // A period that ends before it starts, and one from the first day there is (the days before it cannot be counted).
        foreach (var period in new[] { $"from={today:yyyy-MM-dd}&to={today.AddDays(-1):yyyy-MM-dd}", $"from=0001-01-01&to={today:yyyy-MM-dd}" })
        {
            using var invalid = await manager.GetAsync($"/reports/client-level-events.csv?{period}");
            Assert.Equal(System.Net.HttpStatusCode.BadRequest, invalid.StatusCode);
            Assert.StartsWith("application/problem+json", invalid.Content.Headers.ContentType?.ToString());
        }
        Assert.Equal(invalidBefore + 2, await connection.ExecuteScalarAsync<long>(Invalid));
    }
}

public sealed class ClientLevelEventsOnSqliteTests(AppFactory app) : ClientLevelEventsTests(app), IClassFixture<AppFactory>;

/// <summary>The export's order, which needs no events stored.</summary>
public sealed class ClientLevelEventsOrderTests
{
    /// <summary>
    /// Start day first; on a day, requests before services; then the number in the reference as a number: request-9 before
    /// request-10 (by the reference's text, "request-10" came first).
    /// </summary>
    [Fact]
    public void TheFileOrder_IsStartDay_ThenRequestsBeforeServices_ThenTheReferencesNumber()
    {
        var day = new DateOnly(2026, 3, 1);
        var shuffled = new (string Reference, ClientLevelEvents.FileOrder Order)[]
        {
            ("service-2", ClientLevelEvents.FileOrder.Of(day, true, 2)),
            ("request-10", ClientLevelEvents.FileOrder.Of(day, false, 10)),
            ("request-1", ClientLevelEvents.FileOrder.Of(day.AddDays(1), false, 1)),
            ("service-100", ClientLevelEvents.FileOrder.Of(day.AddDays(-1), true, 100)),
            ("request-9", ClientLevelEvents.FileOrder.Of(day, false, 9)),
        };
        var keys = shuffled.Select(e => e.Order).ToArray();
        var references = shuffled.Select(e => e.Reference).ToArray();

        Array.Sort(keys, references);

        Assert.Equal(["service-100", "request-9", "request-10", "service-2", "request-1"], references);
    }
}

public sealed class ClientLevelEventsOnPostgresTests(PostgresAppFactory app) : ClientLevelEventsTests(app), IClassFixture<PostgresAppFactory>;
