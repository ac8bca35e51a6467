using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using CareCoordination.Bench.Load;
using CareCoordination.Store;
using Dapper;
using Microsoft.Data.Sqlite;

namespace CareCoordination.Bench.History;

/// <summary>
/// history: the scale-of-history figures of issue 14. Builds a large store (1,000,000 referrals and 5,000 beds with their
/// changes by default; see <see cref="LargeStore"/>), restarts the product on it, and measures p95 of the screens and
/// searches that must not scan history, each against a bare reference in the same run on the same store: a FHIR read of
/// one referral by its primary key.
/// </summary>
public static class HistoryCommand
{
    private const string Password = "Bench-Password-1";
    private const string PartnerSecret = "Bench-Partner-Secret-1";

    public static async Task<int> RunAsync(Options options)
    {
        var referrals = options.Int("referrals", options.Short ? 2_000 : 1_000_000);
        var beds = options.Int("beds", options.Short ? 200 : 5_000);
        var open = Math.Min(referrals / 4, options.Int("open", 2_000));
        var calls = options.Int("calls", options.Short ? 5 : 200);
        var path = options.Get("store") ?? Path.Combine(Path.GetTempPath(), $"carecoordination-history-{referrals}.db");
        var settings = new Dictionary<string, string>
        {
            ["ConnectionStrings__CareCoordination"] = $"Data Source={path}",
            // The large store is built on the demo county (its organisations, wards, staff and postcodes): seeded by the
            // product's first start, which runs as deployed (Production), where the seed is off unless asked for.
            ["Demo__Seed"] = "true",
            ["Demo__Password"] = Password,
            ["Demo__PartnerSecret"] = PartnerSecret,
            ["Logging__LogLevel__Default"] = "Warning",
            // The reports run in this process against the same file: the server's timers, raising a re-contact for each
            // of the store's 2,000 long-waiting referrals back to back, held SQLite's write lock for 40 s, and this
            // process's audit writes, which only retry now and then, gave up ("database is locked"). One process alone
            // queues its writers fairly; two processes on one SQLite file do not, so the bench's server keeps still.
            ["Coordination__RecontactCheckSeconds"] = "0",
            ["BedBureau__ReservationCheckSeconds"] = "0",
        };

        LargeStore.Written written;
        if (options.Has("reuse") && File.Exists(path))
        {
            Console.WriteLine($"-- history: reusing {path}");
            written = await ReadBackAsync(path);
        }
        else
        {
            foreach (var file in new[] { path, path + "-wal", path + "-shm", path + ".node" })
            {
                File.Delete(file);
            }
            // The product migrates and seeds its demo world (organisations, sites, wards, staff, the partner client) itself.
            var first = await Server.StartProductAsync("product (cold)", settings);
            Console.WriteLine($"-- history: cold start with migrations and demo seed: {first.StartedIn.TotalMilliseconds:F0} ms");
            await first.StopAsync();
            await first.DisposeAsync();
            var partner = await PartnerOrganisationAsync(path);
            Console.WriteLine($"-- history: writing {referrals:N0} referrals ({open:N0} open) and {beds:N0} beds with their changes into {path}");
            written = await new LargeStore(path, referrals, beds, open).WriteAsync(partner);
            Console.WriteLine($"-- history: written in {written.Took.TotalSeconds:F0} s, store {new FileInfo(path).Length / 1024.0 / 1024:F0} MB");
        }

        // PostgreSQL's copy is made before either store is measured, so both hold the same history (measuring writes audit rows).
        StoreUnderTest? postgres = null;
        // PostgreSQL's copy of the history comes from the SQLite store, demo county and all: its own first start seeds nothing.
        var postgresSettings = new Dictionary<string, string>(settings) { ["Demo__Seed"] = "false" };
        if (options.Postgres is { } postgresServer)
        {
            await Bench.Postgres.WarnIfCrowdedAsync(postgresServer);
            postgres = StoreUnderTest.Postgres(postgresServer, $"carecoordination_history_{referrals}");
            foreach (var (key, value) in postgres.ProductSettings())
            {
                postgresSettings[key] = value;
            }
            await PreparePostgresAsync(postgres, postgresSettings, path, options.Has("reuse"));
        }
        var failures = 0;
        if (options.Has("postgres-only") && postgres is not null)
        {
            Console.WriteLine("-- history: SQLite skipped (--postgres-only)");
        }
        else
        {
            failures += await MeasureOnAsync(new StoreUnderTest("SQLite", path, null), settings, written, options, calls);
        }
        if (postgres is not null)
        {
            failures += await MeasureOnAsync(postgres, postgresSettings, written, options, calls);
            // Kept as the SQLite file is: asked for, or to be reused.
            if (!options.Has("keep") && !options.Has("keep-databases") && !options.Has("reuse"))
            {
                await postgres.DropAsync();
            }
        }
        Console.WriteLine($"-- history: load average {LoadAverage()} at the end");
        // A store in the temp folder is the bench's own (1.6 GB at full size): kept only when asked for, to --reuse it.
        if (options.Get("store") is null && !options.Has("keep") && !options.Has("reuse"))
        {
            SqliteConnection.ClearAllPools();
            foreach (var file in new[] { path, path + "-wal", path + "-shm", path + ".node" })
            {
                File.Delete(file);
            }
        }
        return failures == 0 ? 0 : 1;
    }

    /// <summary>
    /// The large store in PostgreSQL: reused when asked and its copy of the SQLite store finished (its marker), else made
    /// afresh by the product's migrations and filled from the SQLite store; a copy that fails is dropped.
    /// </summary>
    private static async Task PreparePostgresAsync(StoreUnderTest postgres, Dictionary<string, string> settings, string sqlitePath, bool reuse)
    {
        var server = postgres.Server!;
        long sqliteReferrals;
        await using (var connection = new SqliteConnection($"Data Source={sqlitePath};Pooling=False"))
        {
            sqliteReferrals = await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM referral");
        }
        // Written as the copy's last step: a copy stopped half-way (killed, not failed) has none.
        var marker = $"copied from {sqlitePath}, {sqliteReferrals} referrals";
        if (reuse && await Bench.Postgres.CommentAsync(server, postgres.Path) == marker)
        {
            Console.WriteLine($"-- history: reusing PostgreSQL database {postgres.Path}");
            return;
        }
        await postgres.CreateAsync();
        try
        {
            // The product migrates its schema (and seeds, which the copy replaces with the SQLite store's own seed).
            var first = await Server.StartProductAsync("product on PostgreSQL (cold)", settings);
            Console.WriteLine($"-- history: PostgreSQL cold start with migrations and demo seed: {first.StartedIn.TotalMilliseconds:F0} ms");
            await first.StopAsync();
            await first.DisposeAsync();
            await PostgresCopy.CopyAsync(sqlitePath, Bench.Postgres.For(server, postgres.Path), marker);
        }
        catch
        {
            try
            {
                await postgres.DropAsync();
            }
            catch (Exception drop)
            {
                Console.Error.WriteLine($"-- history: the failed copy's database {postgres.Path} could not be dropped: {drop.Message}");
            }
            throw;
        }
    }

    /// <summary>
    /// The figures on one store holding the large history: the product restarted on it, the screens' queries by the
    /// product's handlers in this process, the FHIR searches over HTTP, then the managers' reports.
    /// </summary>
    private static async Task<int> MeasureOnAsync(StoreUnderTest store, Dictionary<string, string> settings, LargeStore.Written written, Options options, int calls)
    {
        Console.WriteLine($"-- history: on {store.Kind}");
        await using var server = await Server.StartProductAsync($"product (restart on the large store, {store.Kind})", settings);
        Console.WriteLine($"-- history: restart to a healthy /health on the large store: {server.StartedIn.TotalMilliseconds:F0} ms");
        using var partnerClient = new HttpClient { BaseAddress = server.BaseAddress };
        if (!store.IsPostgres)
        {
            // The first integrity check reads the whole file in the background: measure after it, not beside it.
            var waited = Stopwatch.StartNew();
            while ((await partnerClient.GetStringAsync("/health")).Contains("is running", StringComparison.Ordinal))
            {
                await Task.Delay(200);
            }
            Console.WriteLine($"-- history: the first integrity check (PRAGMA quick_check) ended {waited.Elapsed.TotalSeconds:F1} s after /health was healthy");
        }
        partnerClient.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", await TokenAsync(partnerClient));

        var random = new Random(14);
        string AnyReferral() => written.PartnerReferralIds[random.Next(written.PartnerReferralIds.Count)].ToString(System.Globalization.CultureInfo.InvariantCulture);
        string AnyNhsNumber() => written.PartnerNhsNumbers[random.Next(written.PartnerNhsNumbers.Count)];
        // Over HTTP, as a partner asks: each against a read by primary key through the same stack.
        var http = new (string Name, HttpClient Client, Func<string> Path)[]
        {
            ("bare: GET /fhir/ServiceRequest/{id} (primary key)", partnerClient, () => $"/fhir/ServiceRequest/{AnyReferral()}"),
            ("GET /fhir/MeasureReport (capacity)", partnerClient, () => "/fhir/MeasureReport"),
            ("GET /fhir/ServiceRequest?patient.identifier=", partnerClient, () => $"/fhir/ServiceRequest?patient.identifier=https://fhir.nhs.uk/Id/nhs-number|{AnyNhsNumber()}"),
            ("GET /fhir/ServiceRequest?status=active", partnerClient, () => "/fhir/ServiceRequest?status=active&_count=20"),
            ("GET /fhir/ServiceRequest?identifier=", partnerClient, () => $"/fhir/ServiceRequest?identifier=https://fhir.westmoor-general.nhs.uk/Id/referral|H-{AnyReferral()}"),
            // The person as the partner said it, with its version as the partner reads it (PersonRecord.VersionAsSaid): on SQLite,
            // counted over the partner's whole history for a day, unseen because nothing here read a Patient (issue 14).
            ("GET /fhir/Patient?identifier=", partnerClient, () => $"/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|{AnyNhsNumber()}"),
            ("GET /fhir/Task?status=requested", partnerClient, () => "/fhir/Task?status=requested&_count=20"),
            // The same page without its total (FHIR's _total=none): what a partner that does not show the count saves.
            ("GET /fhir/Task?status=requested&_total=none", partnerClient, () => "/fhir/Task?status=requested&_count=20&_total=none"),
            ("GET /fhir/Task?owner=", partnerClient, () => $"/fhir/Task?owner=Organization/{written.PartnerOrganisationId}&_count=20"),
        };
        Func<Task<string?>> Get(HttpClient client, Func<string> path) => async () =>
        {
            var url = path();
            using var response = await client.GetAsync(url);
            var body = await response.Content.ReadAsStringAsync();
            return response.StatusCode == HttpStatusCode.OK ? null : $"{url} answered {(int)response.StatusCode} {body[..Math.Min(200, body.Length)]}";
        };
        var failures = 0;
        long AnyPartnerReferral() => written.PartnerReferralIds[random.Next(written.PartnerReferralIds.Count)];
        if (!options.Has("reports-only"))
        {
            // The screens' own queries, by the product's handlers in this process, against the same store's primary-key read.
            await using var database = store.IsPostgres
                ? new Database(StoreProvider.PostgreSQL, Bench.Postgres.For(store.Server!, store.Path))
                : new Database(StoreProvider.Sqlite, $"Data Source={store.Path}");
            var screens = new ScreenQueries(database, written.PartnerOrganisationId).Targets(AnyPartnerReferral);
            Console.WriteLine($"-- history: {calls} calls each, one at a time, after 3 to warm up (load average {LoadAverage()})");
            failures += await MeasureAsync(store.Kind, [.. screens.Select(t => (t.Name, (Func<Task<string?>>)(async () => { await t.Run(); return null; })))], calls)
                + await MeasureAsync(store.Kind, [.. http.Select(t => (t.Name, Get(t.Client, t.Path)))], calls);
        }

        // The managers' reports (issue 13): each must answer within 2 s at 1M referrals; fewer calls and one warm-up (each call reads
        // more than a screen's), so that the whole set stays within minutes.
        var reportCalls = options.Int("report-calls", options.Short ? 2 : 10);
        await using (var reports = await ReportQueries.StartAsync(store.ProductSettings()))
        {
            var targets = await reports.TargetsAsync(written.PartnerOrganisationId, AnyPartnerReferral);
            foreach (var slug in options.Get("report") is null ? ReportQueries.Unmeasured(targets) : [])
            {
                failures++;
                Report.Current.Fail($"history on {store.Kind}: report {slug} is in ReportCatalogue.All but not measured (ReportQueries.TargetsAsync)");
            }
            Console.WriteLine($"-- history: the reports, {reportCalls} calls each, one at a time, after one to warm up (load average {LoadAverage()})");
            // --report WORDS: only the targets whose name contains them (and the bare reference), to look at one report.
            var only = options.Get("report");
            failures += await MeasureAsync(store.Kind, [.. targets.Where((t, i) => i == 0 || only is null || t.Name.Contains(only, StringComparison.OrdinalIgnoreCase))
                .Select(t => (t.Name, t.Run))], reportCalls, warmUps: 1);
            foreach (var (name, times) in reports.FirstRows.Where(f => f.Value.Count > 1))
            {
                var measured = times.Skip(1).Order().ToList();
                Console.WriteLine($"   {name}: first row p50 {P50(measured):F1} ms, p95 {P95(measured):F1} ms (the download starts)");
            }
        }
        await server.StopAsync();
        return failures;
    }

    /// <summary>
    /// p50 and p95 of each target, the first being the bare reference the others are a ratio of; and the p50 of the bench
    /// process's CPU time and GC pause per call (the targets run in this process): on a machine others are using, the wall
    /// time moves with their load, the CPU a call took much less.
    /// </summary>
    private static async Task<int> MeasureAsync(string store, IReadOnlyList<(string Name, Func<Task<string?>> Call)> targets, int calls, int warmUps = 3)
    {
        Console.WriteLine($"   {"target",-55} {"p50 ms",8} {"p95 ms",8} {"x bare p95",10} {"CPU ms",8} {"GC ms",8}");
        using var process = Process.GetCurrentProcess();
        var failures = 0;
        double? bare = null;
        foreach (var (name, call) in targets)
        {
            var times = new List<double>();
            var (cpu, gc) = (new List<double>(), new List<double>());
            for (var i = -warmUps; i < calls; i++)
            {
                process.Refresh();
                var (cpuBefore, gcBefore) = (process.TotalProcessorTime, GC.GetTotalPauseDuration());
                var clock = Stopwatch.StartNew();
                var failure = await call();
                clock.Stop();
                process.Refresh();
                if (failure is not null)
                {
                    failures++;
                    Report.Current.Fail($"history on {store}: {name}: {failure}");
                    break;
                }
                if (i >= 0)
                {
                    times.Add(clock.Elapsed.TotalMilliseconds);
                    cpu.Add((process.TotalProcessorTime - cpuBefore).TotalMilliseconds);
                    gc.Add((GC.GetTotalPauseDuration() - gcBefore).TotalMilliseconds);
                }
            }
            if (times.Count == 0)
            {
                continue;
            }
            times.Sort();
            cpu.Sort();
            gc.Sort();
            var (p50, p95) = (P50(times), P95(times));
            bare ??= p95;
            Console.WriteLine($"   {name,-55} {p50,8:F1} {p95,8:F1} {p95 / bare.Value,10:F1} {cpu[cpu.Count / 2],8:F0} {gc[gc.Count / 2],8:F0}");
        }
        return failures;
    }

    /// <summary>Of sorted times.</summary>
    private static double P50(List<double> sorted) => sorted[sorted.Count / 2];

    private static double P95(List<double> sorted) => sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(sorted.Count * 0.95) - 1)];

    private static async Task<long> PartnerOrganisationAsync(string path)
    {
        await using var connection = new SqliteConnection($"Data Source={path};Pooling=False");
        return await connection.ExecuteScalarAsync<long>("SELECT organisation_id FROM partner_client WHERE client_id = 'demo-acute-trust'");
    }

    /// <summary>A store written before (--reuse): its partner referrals and persons, read back.</summary>
    private static async Task<LargeStore.Written> ReadBackAsync(string path)
    {
        var partner = await PartnerOrganisationAsync(path);
        await using var connection = new SqliteConnection($"Data Source={path};Pooling=False");
        var rows = (await connection.QueryAsync<(long Id, string Nhs)>(
            "SELECT r.id, p.nhs_number FROM referral r JOIN person p ON p.id = r.person_id WHERE r.organisation_id = @partner AND r.sender_value IS NOT NULL LIMIT 100000",
            new { partner })).ToList();
        return new LargeStore.Written(partner, [.. rows.Select(r => r.Id)], [.. rows.Select(r => r.Nhs)], TimeSpan.Zero);
    }

    private static async Task<string> TokenAsync(HttpClient client)
    {
        using var response = await client.PostAsync("/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials", ["client_id"] = "demo-acute-trust", ["client_secret"] = PartnerSecret,
        }));
        response.EnsureSuccessStatusCode();
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("access_token").GetString()!;
    }

    private static string LoadAverage() => File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "?";
}
