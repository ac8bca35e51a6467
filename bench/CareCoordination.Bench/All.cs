namespace CareCoordination.Bench;

/// <summary>Every figure in one run: what docs/performance.md records, and what test.sh runs with --short.</summary>
public static class All
{
    public static async Task<int> RunAsync(Options options)
    {
        var failed = await Load.LoadCommand.RunAsync(options);
        failed |= Micro.MicroCommand.Run(options);
        // push and history are added here by their own commands (bench/CareCoordination.Bench/Push, History).
        return failed;
    }
}
