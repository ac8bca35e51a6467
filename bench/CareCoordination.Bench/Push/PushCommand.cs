using System.Diagnostics;
using System.Globalization;

namespace CareCoordination.Bench.Push;

/// <summary>A server the push measurement runs against: CareCoordination, or the bare reference.</summary>
public interface IPushTarget : IAsyncDisposable
{
    string Name { get; }

    Server Server { get; }

    Uri Hub { get; }

    /// <summary>The server's SQLite store, whose change table the commit watch reads.</summary>
    string StoreFile { get; }

    string Token { get; }

    Task StartAsync();

    /// <summary>Sends one referral; returns once the server acknowledged it (after its commit).</summary>
    Task SubmitAsync();

    /// <summary>Where the measured window starts.</summary>
    void Mark();

    /// <summary>The capacity changes the server published after seq, by its own account.</summary>
    Task<IReadOnlyList<long>> PublishedAsync(IReadOnlyList<Board> boards, long after);
}

/// <summary>What one target's run measured.</summary>
public sealed record PushFigures(
    string Name, int Boards, int Changes, long Deliveries, long Missed, long OutOfOrder, double P50, double P99, double Max, double StampP50, double StampP99,
    double BytesPerBoard, double SubmitP50, double ServerCpuSeconds, double DriverCpuSeconds, double Seconds);

/// <summary>
/// `push`: N boards subscribed to capacity on each server's /hubs/live while referrals arrive at a steady rate;
/// per-change delivery latency to every board, misses, and memory per connected board, CareCoordination against
/// the bare app, back to back with the same client.
/// </summary>
public static class PushCommand
{
    public static async Task<int> RunAsync(Options args)
    {
        var options = PushOptions.From(args);
        Console.WriteLine($"push: {options.Boards} boards on capacity, {options.Rate} referrals/s for {options.Seconds} s; load {File.ReadAllText("/proc/loadavg").Trim()}");
        var results = new List<PushFigures>();
        // Back to back, alternating, so that both see the same machine; the ratio is taken per round.
        for (var round = 1; round <= options.Rounds; round++)
        {
            foreach (var name in options.Targets)
            {
                await using IPushTarget target = name switch
                {
                    "product" => new ProductTarget(),
                    "baseline" => new ProductTarget(options.Baseline, "baseline"),
                    "bare" => new BareTarget(),
                    _ => throw new ArgumentException($"No target {name} (bare, product)"),
                };
                var figures = await MeasureAsync(target, options);
                Print(figures);
                results.Add(figures);
            }
            if (results.LastOrDefault(r => r.Name == BareTarget.Label) is { } bare)
            {
                foreach (var product in results.TakeLast(options.Targets.Count).Where(r => r.Name != BareTarget.Label))
                {
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"round {round}: {product.Name}/bare p50 {product.P50 / bare.P50:0.00}x, p99 {product.P99 / bare.P99:0.00}x (goal <= 1.5x), memory per board {product.BytesPerBoard / 1024:0.0} KB (goal <= 40) vs bare {bare.BytesPerBoard / 1024:0.0} KB"));
                }
                Console.WriteLine($"load {File.ReadAllText("/proc/loadavg").Trim()}");
            }
        }
        if (options.Rounds > 1 && options.Targets.Contains("bare"))
        {
            static double Median(IEnumerable<double> xs) => xs.Order().ElementAt((xs.Count() - 1) / 2);
            var bares = results.Where(r => r.Name == BareTarget.Label).ToList();
            foreach (var name in results.Select(r => r.Name).Distinct().Where(n => n != BareTarget.Label))
            {
                var products = results.Where(r => r.Name == name).ToList();
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"median of {options.Rounds} rounds, {name}: p99 {Median(products.Select(p => p.P99)):0.0} ms against bare {Median(bares.Select(p => p.P99)):0.0} ms, ratio {Median(products.Zip(bares, (p, b) => p.P99 / b.P99)):0.00}x (goal <= 1.5x); p50 ratio {Median(products.Zip(bares, (p, b) => p.P50 / b.P50)):0.00}x; memory per board {Median(products.Select(p => p.BytesPerBoard)) / 1024:0.0} KB against bare {Median(bares.Select(p => p.BytesPerBoard)) / 1024:0.0} KB"));
            }
        }
        Console.WriteLine($"load after: {File.ReadAllText("/proc/loadavg").Trim()}");
        // The bare app broadcasts from each request as it commits, so two close together can cross: order is a product guarantee only.
        var missed = results.Sum(r => r.Missed + (r.Name == BareTarget.Label ? 0 : r.OutOfOrder));
        if (missed > 0)
        {
            Console.WriteLine($"FAILED: {missed} change(s) missed or out of order");
            return 1;
        }
        return 0;
    }

    private static async Task<PushFigures> MeasureAsync(IPushTarget target, PushOptions options)
    {
        await target.StartAsync();
        using var commits = new CommitWatch(target.StoreFile);
        // Warm-up: JIT and pools on both sides, with one board, then let the server settle before its memory is read.
        await using (var warm = await Board.ConnectAsync(target.Hub, target.Token, "capacity"))
        {
            await SubmitAtRateAsync(target, options.Rate, TimeSpan.FromSeconds(Math.Min(3, options.Seconds)));
        }
        await Task.Delay(TimeSpan.FromSeconds(2));
        var before = target.Server.ResidentBytes();

        var boards = new Board[options.Boards];
        using (var gate = new SemaphoreSlim(32))
        {
            await Task.WhenAll(Enumerable.Range(0, options.Boards).Select(async i =>
            {
                await gate.WaitAsync();
                try
                {
                    boards[i] = await Board.ConnectAsync(target.Hub, target.Token, "capacity");
                }
                finally
                {
                    gate.Release();
                }
            }));
        }
        await Task.Delay(TimeSpan.FromSeconds(3));
        var after = target.Server.ResidentBytes();
        try
        {
            // A second warm-up with every board on, not measured.
            await SubmitAtRateAsync(target, options.Rate, TimeSpan.FromSeconds(Math.Min(2, options.Seconds)));
            await Task.Delay(TimeSpan.FromSeconds(1));
            var from = boards.Max(b => b.Received().Select(r => r.Seq).DefaultIfEmpty(b.SubscribedAt).Max());
            foreach (var board in boards)
            {
                board.Forget();
            }

            target.Mark();
            var serverCpu = target.Server.CpuTime();
            var driverCpu = Process.GetCurrentProcess().TotalProcessorTime;
            var clock = Stopwatch.StartNew();
            var submitMillis = await SubmitAtRateAsync(target, options.Rate, TimeSpan.FromSeconds(options.Seconds));
            var published = (await target.PublishedAsync(boards, from)).ToHashSet();
            // Wait for the stragglers, a few seconds at most: what has not come by then is missed.
            var patience = Stopwatch.StartNew();
            while (patience.Elapsed < TimeSpan.FromSeconds(10) && boards.Any(b => b.Count < published.Count))
            {
                await Task.Delay(100);
            }
            var seconds = clock.Elapsed.TotalSeconds;
            serverCpu = target.Server.CpuTime() - serverCpu;
            driverCpu = Process.GetCurrentProcess().TotalProcessorTime - driverCpu;

            var latencies = new List<double>(boards.Length * published.Count);
            var stamped = new List<double>(boards.Length * published.Count);
            long missed = 0, outOfOrder = 0;
            foreach (var board in boards)
            {
                var received = board.Received().Where(r => r.Seq > from).ToArray();
                for (var i = 1; i < received.Length; i++)
                {
                    if (received[i].Seq <= received[i - 1].Seq)
                    {
                        outOfOrder++;
                    }
                }
                var seqs = received.Select(r => r.Seq).ToHashSet();
                missed += published.Count(s => !seqs.Contains(s));
                foreach (var (seq, at, stamp) in received)
                {
                    // A change the watch saw commit only after a board had it (within the watch's tick) counts as 0.
                    if (commits.TryGet(seq, out var committed))
                    {
                        latencies.Add(Math.Max(0, at - committed) / (double)TimeSpan.TicksPerMillisecond);
                    }
                    stamped.Add((at - stamp) / (double)TimeSpan.TicksPerMillisecond);
                }
            }
            if (latencies.Count < stamped.Count)
            {
                Console.WriteLine($"  ({stamped.Count - latencies.Count} deliveries of changes the commit watch never saw: left out of the commit latency)");
            }
            latencies.Sort();
            stamped.Sort();
            static double At(List<double> sorted, double q) => sorted.Count == 0 ? double.NaN : sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(q * sorted.Count) - 1)];
            submitMillis.Sort();
            return new PushFigures(target.Name, boards.Length, published.Count, stamped.Count, missed, outOfOrder,
                At(latencies, 0.50), At(latencies, 0.99), At(latencies, 1.0), At(stamped, 0.50), At(stamped, 0.99),
                (after - before) / (double)boards.Length, submitMillis.Count == 0 ? double.NaN : submitMillis[submitMillis.Count / 2],
                serverCpu.TotalSeconds, driverCpu.TotalSeconds, seconds);
        }
        finally
        {
            await Task.WhenAll(boards.Where(b => b is not null).Select(b => b.DisposeAsync().AsTask()));
        }
    }

    /// <summary>Open loop: one submission every 1/rate s whether or not the last has been answered. Returns each one's round trip.</summary>
    private static async Task<List<double>> SubmitAtRateAsync(IPushTarget target, int rate, TimeSpan duration)
    {
        var sent = new List<Task<double>>();
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1.0 / rate));
        var total = (int)(rate * duration.TotalSeconds);
        for (var i = 0; i < total; i++)
        {
            sent.Add(TimedAsync(target.SubmitAsync));
            await timer.WaitForNextTickAsync();
        }
        return [.. await Task.WhenAll(sent)];
    }

    private static async Task<double> TimedAsync(Func<Task> submit)
    {
        var clock = Stopwatch.StartNew();
        await submit();
        return clock.Elapsed.TotalMilliseconds;
    }

    private static void Print(PushFigures f) => Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"{f.Name,-16} boards {f.Boards}, changes {f.Changes}, delivered {f.Deliveries}, missed {f.Missed}, out of order {f.OutOfOrder}; " +
        $"commit->board p50 {f.P50:0.0} ms, p99 {f.P99:0.0} ms, max {f.Max:0.0} ms; from the change's own time p50 {f.StampP50:0.0}, p99 {f.StampP99:0.0} ms; memory per board {f.BytesPerBoard / 1024:0.0} KB; " +
        $"submit p50 {f.SubmitP50:0.0} ms; CPU server {f.ServerCpuSeconds / f.Seconds * 100:0}%, driver {f.DriverCpuSeconds / f.Seconds * 100:0}% of one core"));
}

public sealed record PushOptions(int Boards, int Rate, int Seconds, int Rounds, IReadOnlyList<string> Targets, string? Baseline)
{
    public static PushOptions From(Options options) => new(
        options.Int("boards", options.Short ? 5 : 1000),
        options.Int("rate", 20),
        options.Int("seconds", options.Short ? 3 : 30),
        options.Int("rounds", 1),
        options.Get("only") is { } only ? [only] : options.Get("baseline") is null ? ["bare", "product"] : ["bare", "baseline", "product"],
        // Another build of the product (e.g. of main) measured in the same rounds: a before and after on one machine state.
        options.Get("baseline"));
}
