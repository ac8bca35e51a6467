using System.Diagnostics;
using System.Runtime.InteropServices;

namespace CareCoordination.Bench;

/// <summary>
/// The product the bench starts: as it is deployed (docs/deployment.md), published for this machine's runtime, which
/// compiles it and its packages ReadyToRun, so that a start does not JIT-compile them first. <c>--build</c> runs the plain
/// build the bench's project reference made instead (quicker to get, slower to start).
/// </summary>
public static class Product
{
    public static string Dll { get; private set; } = Repository.ProductDll;

    public static string Description { get; private set; } = "the build (--build)";

    public static async Task PublishAsync(Options options)
    {
        if (options.Has("build"))
        {
            return;
        }
        var folder = Path.Combine(Repository.Root, "bench", "CareCoordination.Bench", "bin", "product-" + Repository.Configuration);
        var project = Path.Combine(Repository.Root, "src", "CareCoordination.Web", "CareCoordination.Web.csproj");
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = Repository.Root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in new[]
        {
            "publish", project, "-c", Repository.Configuration, "-r", RuntimeInformation.RuntimeIdentifier, "--self-contained", "false",
            "-o", folder, "--nologo", "-v", "quiet",
        })
        {
            start.ArgumentList.Add(argument);
        }
        Console.WriteLine($"bench: publishing the product for {RuntimeInformation.RuntimeIdentifier} (ReadyToRun) into {folder}");
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start dotnet publish");
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"dotnet publish of the product failed ({process.ExitCode}):\n{await output}\n{await errors}");
        }
        Dll = Path.Combine(folder, "CareCoordination.Web.dll");
        Description = $"published ReadyToRun for {RuntimeInformation.RuntimeIdentifier}, as deployed";
        Console.WriteLine($"bench: published in {clock.Elapsed.TotalSeconds:0} s");
    }
}
