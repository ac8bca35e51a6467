using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using CareCoordination.Bench.BareApp;

namespace CareCoordination.Bench.Load;

/// <summary>
/// Partner submissions over HTTP, 16 connections, durable (answered after commit), end to end: against the product (the
/// Release build, its own process, a new store with the demo seed, the demo partner client's token), the bare app (its own
/// process) and a bare in-process writer of the same five rows; on SQLite, and on PostgreSQL when a server is given. Also
/// reads while writing, store growth per referral, restart on an existing store and cold start, each against its reference.
/// </summary>
public static class LoadCommand
{
    public const int Connections = 16;
    private const string DemoPassword = "Bench-Demo-Password-1";
    private const string PartnerSecret = "Bench-Partner-Secret-1";
    private const string PartnerClient = "demo-acute-trust";

    /// <summary>
    /// The reads behind the two screens, as a partner asks them over FHIR: the coordination queue's waiting triage tasks (a page
    /// of 20, newest work included) and the capacity board's bed counts (MeasureReport uses the board's own counting).
    /// </summary>
    private static readonly (string Name, string Path)[] Reads =
    [
        ("queue: GET /fhir/Task?status=requested", "/fhir/Task?status=requested&_count=20"),
        ("capacity: GET /fhir/MeasureReport", "/fhir/MeasureReport"),
    ];

    private sealed record Plan(bool Short, TimeSpan Duration, int? Count, TimeSpan Warmup, int? WarmupCount, TimeSpan ReadsDuration, int? ReadsCount)
    {
        public static Plan From(Options options) => options.Short
            // Tiny counts: every figure is exercised and every guarantee checked, in seconds; the timings mean nothing.
            ? new(true, TimeSpan.FromSeconds(60), 32, TimeSpan.FromSeconds(30), 4, TimeSpan.FromSeconds(30), 8)
            : new(false, TimeSpan.FromSeconds(options.Int("seconds", 20)), null, TimeSpan.FromSeconds(3), null,
                TimeSpan.FromSeconds(options.Int("reads-seconds", 10)), null);
    }

    public static async Task<int> RunAsync(Options options)
    {
        var plan = Plan.From(options);
        var submissions = new Submissions();
        var folder = Directory.CreateTempSubdirectory("cc-bench-").FullName;
        Console.WriteLine($"load: {Connections} connections, one submission {submissions.Bytes:N0} bytes (Patient + ServiceRequest transaction), "
            + (plan.Short ? "short mode (tiny counts, correctness only)" : $"{plan.Duration.TotalSeconds:0} s per target after {plan.Warmup.TotalSeconds:0} s warm-up"));
        Console.WriteLine($"      product: {Repository.ProductDll}");
        try
        {
            await MeasureStoreAsync("SQLite", plan, submissions,
                StoreUnderTest.Sqlite(folder, "product"), StoreUnderTest.Sqlite(folder, "bare-app"), StoreUnderTest.Sqlite(folder, "bare-writer"), folder);
            if (options.Postgres is { } server)
            {
                var run = Environment.ProcessId;
                await MeasureStoreAsync("PostgreSQL", plan, submissions, StoreUnderTest.Postgres(server, $"cc_bench_{run}_product"),
                    StoreUnderTest.Postgres(server, $"cc_bench_{run}_bare_app"), StoreUnderTest.Postgres(server, $"cc_bench_{run}_bare_writer"), folder);
            }
            else
            {
                Console.WriteLine("load: PostgreSQL skipped (no --postgres and no CARECOORDINATION_BENCH_POSTGRES)");
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
        return Report.Current.Failures.Count == 0 ? 0 : 1;
    }

    private static async Task MeasureStoreAsync(string section, Plan plan, Submissions submissions,
        StoreUnderTest productStore, StoreUnderTest bareAppStore, StoreUnderTest bareWriterStore, string folder)
    {
        Console.WriteLine($"\n== {section} ==");
        var report = Report.Current;
        try
        {
            var product = await MeasureServerAsync("product", plan, submissions, productStore,
                () => Server.StartProductAsync("product", ProductSettings(productStore, folder)), measureReads: true);
            var bare = await MeasureServerAsync("bare app", plan, submissions, bareAppStore,
                () => Server.StartBareAppAsync("bare app", bareAppStore.BareAppArguments(existing: false)), measureReads: false,
                restart: () => Server.StartBareAppAsync("bare app", bareAppStore.BareAppArguments(existing: true)));
            var writer = await MeasureBareWriterAsync(plan, submissions, bareWriterStore);

            Console.WriteLine($"-- {section}: figures against their references");
            var writerName = $"bare {section} writer, {Connections} writers";
            report.Add(section, "submissions, product", product.Load.PerSecond, "req/s", "bare app", bare.Load.PerSecond);
            report.Add(section, "submissions, product", product.Load.PerSecond, "req/s", writerName, writer.PerSecond);
            report.Add(section, "submissions, bare app", bare.Load.PerSecond, "req/s", writerName, writer.PerSecond);
            report.Add(section, "submission p50, product", product.Load.P50, "ms", "bare app", bare.Load.P50);
            report.Add(section, "submission p99, product", product.Load.P99, "ms", "bare app", bare.Load.P99);
            report.Add(section, "one submission at a time (1 connection) p50, product", product.Single.P50, "ms", "bare app", bare.Single.P50);
            report.Add(section, "write p50, bare writer", writer.P50, "ms");
            report.Add(section, "write p99, bare writer", writer.P99, "ms");
            foreach (var (name, whileWriting, idle) in product.Reads!)
            {
                report.Add(section, $"{name} p95 while writing", whileWriting.P95, "ms", "same read, idle", idle.P95);
            }
            report.Add(section, "submissions while those reads ran, product", product.WritesDuringReads!.PerSecond, "req/s");
            report.Add(section, "store growth per referral, product", product.BytesPerReferral / 1024, "KB", "bare app", bare.BytesPerReferral / 1024);
            report.Add(section, $"restart to healthy /health on its store ({product.Referrals:N0} referrals, {product.StoreBytes / 1048576.0:0.0} MB), product",
                product.Restart.TotalSeconds, "s", $"bare app ({bare.Referrals:N0} referrals)", bare.Restart.TotalSeconds);
            report.Add(section, "cold start with migration and demo seed, product", product.ColdStart.TotalSeconds, "s", "bare app (schema only)", bare.ColdStart.TotalSeconds);
        }
        finally
        {
            await productStore.DropAsync();
            await bareAppStore.DropAsync();
            await bareWriterStore.DropAsync();
        }
    }

    private sealed record ServerFigures(Measured Load, Measured Single, TimeSpan ColdStart, TimeSpan Restart, double BytesPerReferral, long Referrals, long StoreBytes,
        List<(string Name, Measured WhileWriting, Measured Idle)>? Reads, Measured? WritesDuringReads);

    /// <summary>
    /// One server end to end: cold start on a new store; stopped and its store measured; started again, warmed up and loaded;
    /// reads while writing and idle (product); one live capacity board hears of every new triage task; stopped, the store measured and counted (every acknowledged referral stored);
    /// then restarted on that store.
    /// </summary>
    private static async Task<ServerFigures> MeasureServerAsync(string name, Plan plan, Submissions submissions, StoreUnderTest store,
        Func<Task<Server>> start, bool measureReads, Func<Task<Server>>? restart = null)
    {
        var report = Report.Current;
        await store.CreateAsync();
        Console.WriteLine($"-- {name}: cold start");
        var server = await start();
        var coldStart = server.StartedIn;
        await server.StopAsync();
        var bytesBefore = await store.SizeAsync();
        var referralsBefore = await store.CountAsync("referral");

        server = await (restart ?? start)();
        long acknowledged = 0;
        Measured load, single;
        List<(string, Measured, Measured)>? reads = null;
        Measured? writesDuringReads = null;
        try
        {
            var (http, token) = await ClientAsync(server, partner: measureReads);
            using var _ = http;
            await using var board = await LiveBoard.ConnectAsync(server.BaseAddress, token);
            var submit = Submit(http, submissions, () => Interlocked.Increment(ref acknowledged));
            var warm = await Driver.RunAsync("warm-up", Connections, plan.Warmup, plan.WarmupCount, submit);
            report.Check(warm.Failed == 0, $"{store.Kind} {name}: {warm.Failed} warm-up submissions not acknowledged 2xx (first: {warm.FirstFailure})");
            Console.WriteLine($"-- {name}: one connection submitting");
            single = await Driver.RunAsync("one at a time", 1, plan.Short ? plan.Duration : TimeSpan.FromSeconds(5), plan.Short ? 4 : null, submit);
            Console.WriteLine($"   {single.Done:N0} acknowledged: p50 {single.P50:0.0} ms");
            report.Check(single.Failed == 0, $"{store.Kind} {name}: {single.Failed} submissions one at a time not acknowledged 2xx (first: {single.FirstFailure})");
            Console.WriteLine($"-- {name}: {Connections} connections submitting");
            load = await Driver.RunAsync("submissions", Connections, plan.Duration, plan.Count, submit);
            Console.WriteLine($"   {load.Done:N0} acknowledged in {load.Elapsed.TotalSeconds:0.0} s: {load.PerSecond:N0} req/s, p50 {load.P50:0.0} ms, p99 {load.P99:0.0} ms");
            report.Check(load.Failed == 0, $"{store.Kind} {name}: {load.Failed} submissions not acknowledged 2xx (first: {load.FirstFailure})");
            if (measureReads)
            {
                Console.WriteLine($"-- {name}: reads while {Connections} connections submit, then the same reads idle");
                using var stopWriting = new CancellationTokenSource();
                var writing = Driver.RunAsync("writes during reads", Connections, plan.ReadsDuration + TimeSpan.FromSeconds(plan.Short ? 30 : 1), null, submit, stopWriting.Token);
                var whileWriting = await Task.WhenAll(Reads.Select(r => Driver.RunAsync(r.Name, 1, plan.ReadsDuration, plan.ReadsCount, Read(http, r.Path))));
                await stopWriting.CancelAsync();
                writesDuringReads = await writing;
                report.Check(writesDuringReads.Failed == 0, $"{store.Kind} {name}: {writesDuringReads.Failed} submissions during reads not acknowledged 2xx (first: {writesDuringReads.FirstFailure})");
                var idle = await Task.WhenAll(Reads.Select(r => Driver.RunAsync(r.Name, 1, plan.Short ? plan.ReadsDuration : TimeSpan.FromSeconds(5), plan.ReadsCount, Read(http, r.Path))));
                reads = [];
                for (var i = 0; i < Reads.Length; i++)
                {
                    report.Check(whileWriting[i].Failed == 0 && idle[i].Failed == 0 && whileWriting[i].Done > 0,
                        $"{store.Kind} {name}: {Reads[i].Name} failed (first: {whileWriting[i].FirstFailure ?? idle[i].FirstFailure})");
                    reads.Add((Reads[i].Name, whileWriting[i], idle[i]));
                }
            }
            var heard = await board.AwaitAsync(Interlocked.Read(ref acknowledged));
            Console.WriteLine($"   live push: a capacity board heard of {heard:N0} of the {acknowledged:N0} new triage tasks");
            report.Check(heard == acknowledged, $"{store.Kind} {name}: a capacity board on /hubs/live heard of {heard} of {acknowledged} new triage tasks");
        }
        finally
        {
            await server.StopAsync();
        }
        var bytesAfter = await store.SizeAsync();
        var referralsAfter = await store.CountAsync("referral");
        report.Check(referralsAfter - referralsBefore == acknowledged,
            $"{store.Kind} {name}: {acknowledged} submissions acknowledged but {referralsAfter - referralsBefore} referrals stored");

        Console.WriteLine($"-- {name}: restart on the store it left ({referralsAfter:N0} referrals)");
        server = await (restart ?? start)();
        var restartedIn = server.StartedIn;
        await server.StopAsync();
        return new ServerFigures(load, single, coldStart, restartedIn, (bytesAfter - bytesBefore) / (double)Math.Max(1, referralsAfter - referralsBefore),
            referralsAfter, bytesAfter, reads, writesDuringReads);
    }

    /// <summary>The store's own limit: the same five rows from 16 writers in this process, no HTTP, no parsing.</summary>
    private static async Task<Measured> MeasureBareWriterAsync(Plan plan, Submissions submissions, StoreUnderTest store)
    {
        Console.WriteLine($"-- bare {store.Kind} writer: {Connections} writers in process");
        await using var bare = store.IsPostgres
            ? await BareStore.OpenPostgresAsync(store.Server!, store.Path, Connections)
            : await BareStore.OpenSqliteAsync(store.Path, Connections);
        var template = BareReferral.Parse(Encoding.UTF8.GetBytes(submissions.Next().Json));
        Task<string?> Write(CancellationToken cancellation)
        {
            var (_, nhsNumber, identifier) = submissions.Next();
            return bare.WriteAsync(template with { NhsNumber = nhsNumber, SenderValue = identifier }, DateTimeOffset.UtcNow, cancellation)
                .ContinueWith(t => t.IsCompletedSuccessfully ? null : t.Exception?.GetBaseException().Message ?? "cancelled", TaskScheduler.Default);
        }
        await Driver.RunAsync("warm-up", Connections, plan.Warmup, plan.WarmupCount, Write);
        var measured = await Driver.RunAsync("bare writer", Connections, plan.Duration, plan.Count, Write);
        Console.WriteLine($"   {measured.Done:N0} committed in {measured.Elapsed.TotalSeconds:0.0} s: {measured.PerSecond:N0} /s, p50 {measured.P50:0.0} ms, p99 {measured.P99:0.0} ms");
        Report.Current.Check(measured.Failed == 0, $"bare {store.Kind} writer: {measured.Failed} writes failed (first: {measured.FirstFailure})");
        return measured;
    }

    private static Dictionary<string, string> ProductSettings(StoreUnderTest store, string folder)
    {
        var settings = store.ProductSettings();
        settings["Demo__Seed"] = "true";
        settings["Demo__Password"] = DemoPassword;
        settings["Demo__PartnerSecret"] = PartnerSecret;
        settings["DataProtection__KeysPath"] = Path.Combine(folder, "keys-" + store.Kind);
        settings["Logging__LogLevel__Default"] = "Warning";
        return settings;
    }

    /// <summary>An HTTP client for the server with room for 16 submitting connections and the readers; for the product, with the partner's token.</summary>
    private static async Task<(HttpClient Http, string? Token)> ClientAsync(Server server, bool partner)
    {
        var handler = new SocketsHttpHandler { MaxConnectionsPerServer = Connections + Reads.Length, PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5) };
        var http = new HttpClient(handler) { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromSeconds(100) };
        string? token = null;
        if (partner)
        {
            var response = await http.PostAsync("/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "client_credentials", ["client_id"] = PartnerClient, ["client_secret"] = PartnerSecret,
            }));
            if (!response.IsSuccessStatusCode)
            {
                throw new InvalidOperationException($"the product refused the demo partner's token request: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            }
            token = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("access_token").GetString();
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        return (http, token);
    }

    private static Func<CancellationToken, Task<string?>> Submit(HttpClient http, Submissions submissions, Action acknowledged) => async cancellation =>
    {
        using var content = new StringContent(submissions.Next().Json, Encoding.UTF8, "application/fhir+json");
        using var response = await http.PostAsync("/fhir", content, cancellation);
        if (!response.IsSuccessStatusCode)
        {
            var body = await response.Content.ReadAsStringAsync(cancellation);
            return $"{(int)response.StatusCode} {body[..Math.Min(body.Length, 300)]}";
        }
        acknowledged();
        return null;
    };

    private static Func<CancellationToken, Task<string?>> Read(HttpClient http, string path) => async cancellation =>
    {
        using var response = await http.GetAsync(path, HttpCompletionOption.ResponseContentRead, cancellation);
        return response.IsSuccessStatusCode ? null : $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync(cancellation)}";
    };
}
