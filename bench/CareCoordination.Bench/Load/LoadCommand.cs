using System.Text;
using CareCoordination.Bench.BareApp;

namespace CareCoordination.Bench.Load;

/// <summary>
/// Partner submissions over HTTP, 16 connections, durable (answered after commit), end to end: against the product (the
/// Release build, its own process, a new store with the demo seed, the demo partner client's token), the bare app (its own
/// process) and a bare in-process writer of the same five rows; on SQLite, and on PostgreSQL when a server is given. Also
/// reads while writing, store growth per referral, restart on an existing store and cold start, each against its reference.
/// </summary>
/// <remarks>
/// The machine is shared, and how busy it is changes from one minute to the next. So the three targets are measured in
/// alternating rounds (product, bare app, bare writer, then again in another order) and each figure sums its rounds: what
/// the other users of the machine take falls on all three alike, and the ratios hold better than one long run each.
/// </remarks>
public static class LoadCommand
{
    public const int Connections = 16;

    private const string MinimalName = "product, Prefer: return=minimal";
    private const string DemoPassword = "Bench-Demo-Password-1";
    private const string PartnerSecret = "Bench-Partner-Secret-1";

    /// <summary>
    /// The reads behind the two screens, as a partner asks them over FHIR: the coordination queue's waiting triage tasks (a page
    /// of 20, newest work included) and the capacity board's bed counts (MeasureReport uses the board's own counting).
    /// </summary>
    private static readonly (string Name, string Path)[] Reads =
    [
        ("queue: GET /fhir/Task?status=requested", "/fhir/Task?status=requested&_count=20"),
        ("capacity: GET /fhir/MeasureReport", "/fhir/MeasureReport"),
    ];

    private sealed record Plan(bool Short, int Rounds, TimeSpan Duration, int? Count, TimeSpan Single, int? SingleCount, TimeSpan Warmup, int? WarmupCount,
        TimeSpan ReadsDuration, int? ReadsCount)
    {
        /// <summary>PostgreSQL: leave the three databases on the server, to look at what was written.</summary>
        public bool KeepDatabases { get; init; }

        /// <summary>Restarts of each server on the store it left; the figure is their median.</summary>
        public int Restarts => Short ? 1 : 3;

        /// <summary>
        /// The product's own warm-up before anything of it is measured (its first target's; its minimal answer shares the process). The
        /// runtime re-compiles a method once it is hot (tiered compilation), and the product has thousands: under 16 connections
        /// the JIT took 60% of the product's CPU in its first seconds and ~10% of its first measured seconds after a 3 s
        /// warm-up, then under 1% from about 15 s of load on (perf, 5 December 2026). The bare references settle within their 3 s.
        /// </summary>
        public TimeSpan ProductWarmup { get; init; }

        public static Plan From(Options options) => (options.Short
            // Tiny counts: every figure is exercised and every guarantee checked, in seconds; the timings mean nothing.
            ? new Plan(true, 1, TimeSpan.FromSeconds(60), 32, TimeSpan.FromSeconds(30), 4, TimeSpan.FromSeconds(30), 4, TimeSpan.FromSeconds(30), 8)
            : new Plan(false, options.Int("rounds", 4), TimeSpan.FromSeconds(options.Int("seconds", 20)), null, TimeSpan.FromSeconds(4), null,
                TimeSpan.FromSeconds(3), null, TimeSpan.FromSeconds(options.Int("reads-seconds", 10)), null))
            with
            {
                KeepDatabases = options.Has("keep-databases"),
                // The short mode warms each target by a count, as it measures: the duration is only its ceiling.
                ProductWarmup = options.Short ? TimeSpan.FromSeconds(30) : TimeSpan.FromSeconds(Math.Max(0, options.Int("warmup-seconds", 15))),
            };
    }

    public static async Task<int> RunAsync(Options options)
    {
        var plan = Plan.From(options);
        var submissions = new Submissions();
        var folder = Directory.CreateTempSubdirectory("cc-bench-").FullName;
        Console.WriteLine($"\nload: {Connections} connections, one submission {submissions.Bytes:N0} bytes (Patient + ServiceRequest transaction), "
            + (plan.Short ? "short mode (tiny counts, correctness only)"
                : $"{plan.Duration.TotalSeconds:0} s per target in {plan.Rounds} alternating rounds, after {plan.ProductWarmup.TotalSeconds:0} s warm-up of the product and {plan.Warmup.TotalSeconds:0} s of each reference"));
        Console.WriteLine($"      product: {Product.Dll} ({Product.Description})");
        try
        {
            if (options.Has("postgres-only") && options.Postgres is not null)
            {
                Console.WriteLine("load: SQLite skipped (--postgres-only)");
            }
            else
            {
                await MeasureStoreAsync("SQLite", plan, submissions,
                    StoreUnderTest.Sqlite(folder, "product"), StoreUnderTest.Sqlite(folder, "bare-app"), StoreUnderTest.Sqlite(folder, "bare-writer"), folder);
            }
            if (options.Postgres is { } server)
            {
                await Bench.Postgres.WarnIfCrowdedAsync(server);
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
        Session? product = null, bare = null;
        try
        {
            product = await Session.OpenAsync("product", productStore,
                _ => Server.StartProductAsync("product", ProductSettings(productStore, folder)), PartnerSecret, Connections);
            bare = await Session.OpenAsync("bare app", bareAppStore,
                existing => Server.StartBareAppAsync("bare app", bareAppStore.BareAppArguments(existing)), null, Connections);
            await using var writer = bareWriterStore.IsPostgres
                ? await BareStore.OpenPostgresAsync(bareWriterStore.Server!, bareWriterStore.Path, Connections)
                : await BareStore.OpenSqliteAsync(bareWriterStore.Path, Connections);
            var writerName = $"bare {section} writer, {Connections} writers";
            // The product twice: answering with the resources it made (FHIR's default), and with Prefer: return=minimal, each
            // entry's status and location only, which is what the bare app answers.
            var targets = new (string Name, Func<CancellationToken, Task<string?>> Operation, Func<TimeSpan>? Cpu)[]
            {
                ("product", product.Submit(submissions), product.ServerCpu), ("bare app", bare.Submit(submissions), bare.ServerCpu),
                (writerName, Write(writer, submissions), null), (MinimalName, product.Submit(submissions, minimal: true), product.ServerCpu),
            };

            Console.WriteLine("-- warm-up");
            var warmedUp = new List<Measured>();
            for (var i = 0; i < targets.Length; i++)
            {
                var (name, operation, _) = targets[i];
                var warm = await Driver.RunAsync(name, Connections, i == 0 ? plan.ProductWarmup : plan.Warmup, plan.WarmupCount, operation);
                report.Check(warm.Failed == 0, $"{section} {name}: {warm.Failed} warm-up submissions failed (first: {warm.FirstFailure})");
                warmedUp.Add(warm);
            }
            Console.WriteLine("-- one connection submitting, product and bare app in turn");
            var single = await InRoundsAsync(targets[..2], 1, plan.Single, plan.SingleCount, Math.Min(plan.Rounds, 2));
            Console.WriteLine($"-- {Connections} connections submitting, in {plan.Rounds} rounds");
            var load = await InRoundsAsync(targets, Connections, plan.Duration, plan.Count, plan.Rounds);
            foreach (var measured in single.Concat(load))
            {
                report.Check(measured.Failed == 0, $"{section} {measured.Name}: {measured.Failed} submissions failed (first: {measured.FirstFailure})");
            }

            Console.WriteLine($"-- product: reads while {Connections} connections submit, then the same reads idle");
            using var stopWriting = new CancellationTokenSource();
            var writing = Driver.RunAsync("writes during reads", Connections, plan.ReadsDuration + TimeSpan.FromSeconds(30), null, targets[0].Operation, stopWriting.Token);
            var whileWriting = await Task.WhenAll(Reads.Select(r => Driver.RunAsync(r.Name, 1, plan.ReadsDuration, plan.ReadsCount, product.Read(r.Path))));
            await stopWriting.CancelAsync();
            var writesDuringReads = await writing;
            report.Check(writesDuringReads.Failed == 0, $"{section} product: {writesDuringReads.Failed} submissions during reads failed (first: {writesDuringReads.FirstFailure})");
            var idle = await Task.WhenAll(Reads.Select(r => Driver.RunAsync(r.Name, 1, plan.Short ? plan.ReadsDuration : TimeSpan.FromSeconds(5), plan.ReadsCount, product.Read(r.Path))));
            for (var i = 0; i < Reads.Length; i++)
            {
                report.Check(whileWriting[i].Failed == 0 && idle[i].Failed == 0 && whileWriting[i].Done > 0,
                    $"{section} product: {Reads[i].Name} failed (first: {whileWriting[i].FirstFailure ?? idle[i].FirstFailure})");
            }

            await product.CloseAsync();
            await bare.CloseAsync();
            // A start is over in about a second, and whatever else the machine does then falls on it: the figure is the median
            // of three, the product's and the bare app's taken in turn.
            for (var i = 1; i < plan.Restarts; i++)
            {
                await product.RestartAsync();
                await bare.RestartAsync();
            }
            var written = await writer.CountAsync("referral");
            var committed = warmedUp[2].Done + load[2].Done;
            report.Check(written == committed, $"bare {section} writer: {committed} writes committed but {written} referrals stored");

            Console.WriteLine($"-- {section}: figures against their references");
            report.Add(section, "submissions, product", load[0].PerSecond, "req/s", "bare app", load[1].PerSecond);
            report.Add(section, $"submissions, {MinimalName} (answered as the bare app answers)", load[3].PerSecond, "req/s", "bare app", load[1].PerSecond);
            report.Add(section, "submissions, product", load[0].PerSecond, "req/s", writerName, load[2].PerSecond);
            report.Add(section, "submissions, bare app", load[1].PerSecond, "req/s", writerName, load[2].PerSecond);
            report.Add(section, "submission p50, product", load[0].P50, "ms", "bare app", load[1].P50);
            report.Add(section, "submission p99, product", load[0].P99, "ms", "bare app", load[1].P99);
            report.Add(section, "one submission at a time (1 connection) p50, product", single[0].P50, "ms", "bare app", single[1].P50);
            report.Add(section, $"server CPU per submission ({Connections} connections), product", load[0].CpuPerCallMs, "ms", "bare app", load[1].CpuPerCallMs);
            report.Add(section, $"server CPU per submission ({Connections} connections), {MinimalName}", load[3].CpuPerCallMs, "ms", "bare app", load[1].CpuPerCallMs);
            report.Add(section, "write p50, bare writer", load[2].P50, "ms");
            report.Add(section, "write p99, bare writer", load[2].P99, "ms");
            for (var i = 0; i < Reads.Length; i++)
            {
                report.Add(section, $"{Reads[i].Name} p95 while writing", whileWriting[i].P95, "ms", "same read, idle", idle[i].P95);
            }
            report.Add(section, "submissions while those reads ran, product", writesDuringReads.PerSecond, "req/s");
            report.Add(section, "store growth per referral, product", product.BytesPerReferral / 1024, "KB", "bare app", bare.BytesPerReferral / 1024);
            report.Add(section, $"restart to healthy /health on its store ({product.Referrals:N0} referrals, {product.StoreBytes / 1048576.0:0.0} MB), median of {plan.Restarts}, product",
                product.Restart.TotalSeconds, "s", $"bare app ({bare.Referrals:N0} referrals)", bare.Restart.TotalSeconds);
            report.Add(section, "cold start with migration and demo seed, product", product.ColdStart.TotalSeconds, "s", "bare app (schema only)", bare.ColdStart.TotalSeconds);
        }
        finally
        {
            if (product is not null)
            {
                await product.StopAsync();
            }
            if (bare is not null)
            {
                await bare.StopAsync();
            }
            if (plan.KeepDatabases && productStore.IsPostgres)
            {
                Console.WriteLine($"-- kept (--keep-databases): {productStore.Path}, {bareAppStore.Path}, {bareWriterStore.Path}");
            }
            else
            {
                await productStore.DropAsync();
                await bareAppStore.DropAsync();
                await bareWriterStore.DropAsync();
            }
        }
    }

    /// <summary>
    /// Each target for <paramref name="duration"/> (or <paramref name="count"/> calls) in all, split into rounds that take turns,
    /// each round starting with the next target, so that what the machine's other users take falls on every target alike.
    /// </summary>
    private static async Task<Measured[]> InRoundsAsync((string Name, Func<CancellationToken, Task<string?>> Operation, Func<TimeSpan>? Cpu)[] targets, int workers,
        TimeSpan duration, int? count, int rounds)
    {
        var parts = targets.Select(_ => new List<Measured>()).ToArray();
        for (var round = 0; round < rounds; round++)
        {
            for (var k = 0; k < targets.Length; k++)
            {
                var i = (round + k) % targets.Length;
                var cpuBefore = targets[i].Cpu?.Invoke();
                var part = await Driver.RunAsync(targets[i].Name, workers, duration / rounds, count / rounds, targets[i].Operation);
                parts[i].Add(cpuBefore is { } before ? part with { ServerCpu = targets[i].Cpu!() - before } : part);
            }
        }
        var measured = parts.Select(Measured.Sum).ToArray();
        foreach (var m in measured)
        {
            Console.WriteLine($"   {m.Name}: {m.Done:N0} in {m.Elapsed.TotalSeconds:0.0} s: {m.PerSecond:N0} /s, p50 {m.P50:0.0} ms, p99 {m.P99:0.0} ms"
                + (m.ServerCpu is null ? "" : $", server CPU {m.CpuPerCallMs:0.00} ms a call"));
        }
        return measured;
    }

    /// <summary>The store's own limit: the same five rows written in this process, no HTTP, no parsing.</summary>
    private static Func<CancellationToken, Task<string?>> Write(BareStore writer, Submissions submissions)
    {
        var template = BareReferral.Parse(Encoding.UTF8.GetBytes(submissions.Next().Json));
        return async cancellation =>
        {
            var (_, nhsNumber, identifier) = submissions.Next();
            await writer.WriteAsync(template with { NhsNumber = nhsNumber, SenderValue = identifier }, DateTimeOffset.UtcNow, cancellation);
            return null;
        };
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
}
