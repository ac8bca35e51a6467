namespace CareCoordination.Bench.Load;

/// <summary>Partner submissions over HTTP against the product and its bare references.</summary>
public static class LoadCommand
{
    public static Task<int> RunAsync(Options options)
    {
        Console.WriteLine($"load: not written yet (short={options.Short})");
        return Task.FromResult(0);
    }
}
