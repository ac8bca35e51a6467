namespace CareCoordination.Bench.Micro;

/// <summary>BenchmarkDotNet for the product's in-process hot paths.</summary>
public static class MicroCommand
{
    public static int Run(Options options)
    {
        Console.WriteLine($"micro: not written yet (short={options.Short})");
        return 0;
    }
}
