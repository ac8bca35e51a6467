namespace CareCoordination.Bench;

/// <summary>Every figure in one run: what docs/performance.md records, and what test.sh runs with --short.</summary>
public static class All
{
    public static async Task<int> RunAsync(Options options)
    {
        // The micro benchmarks first, in a process that has not yet carried the load's heap and threads.
        var failed = Micro.MicroCommand.Run(options);
        failed |= await Load.LoadCommand.RunAsync(options);
        failed |= await Push.PushCommand.RunAsync(options);
        failed |= await History.HistoryCommand.RunAsync(options);
        return failed;
    }
}
