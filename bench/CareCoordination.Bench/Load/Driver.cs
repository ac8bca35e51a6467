using System.Diagnostics;

namespace CareCoordination.Bench.Load;

/// <summary>A figure: how many were done, over how long, and their latencies.</summary>
public sealed record Measured(string Name, int Done, int Failed, TimeSpan Elapsed, double[] LatenciesMs, string? FirstFailure)
{
    public double PerSecond => Done / Elapsed.TotalSeconds;

    public double Percentile(double p)
    {
        if (LatenciesMs.Length == 0)
        {
            return double.NaN;
        }
        var sorted = LatenciesMs.Order().ToArray();
        return sorted[Math.Clamp((int)Math.Ceiling(p / 100 * sorted.Length) - 1, 0, sorted.Length - 1)];
    }

    public double P50 => Percentile(50);

    public double P95 => Percentile(95);

    public double P99 => Percentile(99);

    /// <summary>CPU time the server process used while this ran (user and system), when it was read.</summary>
    public TimeSpan? ServerCpu { get; init; }

    /// <summary>The server's CPU per call, in ms: the figure least moved by what else the machine is doing.</summary>
    public double CpuPerCallMs => ServerCpu is { } cpu && Done > 0 ? cpu.TotalMilliseconds / Done : double.NaN;

    /// <summary>Rounds of one figure as one: their calls, their time and every latency.</summary>
    public static Measured Sum(IReadOnlyList<Measured> parts) => new(
        parts[0].Name, parts.Sum(p => p.Done), parts.Sum(p => p.Failed), TimeSpan.FromTicks(parts.Sum(p => p.Elapsed.Ticks)),
        [.. parts.SelectMany(p => p.LatenciesMs)], parts.Select(p => p.FirstFailure).FirstOrDefault(f => f is not null))
    {
        ServerCpu = parts.All(p => p.ServerCpu is not null) ? TimeSpan.FromTicks(parts.Sum(p => p.ServerCpu!.Value.Ticks)) : null,
    };
}

/// <summary>Runs an operation from N workers at once, each one at a time, for a duration or a count, and measures each call.</summary>
public static class Driver
{
    /// <summary>
    /// Runs <paramref name="operation"/> from <paramref name="workers"/> workers until <paramref name="duration"/> has passed
    /// (or <paramref name="count"/> calls have started, when given, or <paramref name="stop"/> is cancelled: no new call starts). The operation answers null when it succeeded, else why not.
    /// </summary>
    public static async Task<Measured> RunAsync(string name, int workers, TimeSpan duration, int? count, Func<CancellationToken, Task<string?>> operation,
        CancellationToken stop = default)
    {
        var started = 0;
        var failed = 0;
        string? firstFailure = null;
        var latencies = new List<double>[workers];
        var clock = Stopwatch.StartNew();
        var tasks = Enumerable.Range(0, workers).Select(w => Task.Run(async () =>
        {
            var mine = latencies[w] = new List<double>(1024);
            while (!stop.IsCancellationRequested && clock.Elapsed < duration && (count is null || Interlocked.Increment(ref started) <= count))
            {
                var begun = Stopwatch.GetTimestamp();
                string? failure;
                try
                {
                    // Not cancelled once started: a submission in flight when the run stops is finished and counted, never
                    // abandoned (the server would commit it unseen, and the stored count would not match what was acknowledged).
                    failure = await operation(CancellationToken.None);
                }
                catch (Exception e)
                {
                    failure = e.GetType().Name + ": " + e.Message;
                }
                if (failure is null)
                {
                    mine.Add(Stopwatch.GetElapsedTime(begun).TotalMilliseconds);
                }
                else
                {
                    Interlocked.Increment(ref failed);
                    Interlocked.CompareExchange(ref firstFailure, failure, null);
                }
            }
        })).ToArray();
        await Task.WhenAll(tasks);
        var elapsed = clock.Elapsed;
        var all = latencies.SelectMany(l => l ?? []).ToArray();
        return new Measured(name, all.Length, failed, elapsed, all, firstFailure);
    }
}
