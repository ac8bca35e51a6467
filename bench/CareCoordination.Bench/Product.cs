using System.Diagnostics;
using System.Runtime.InteropServices;

namespace CareCoordination.Bench;

/// <summary>
/// The product the bench starts: as it is deployed (docs/deployment.md), published for this machine's runtime, which
/// compiles it and its packages ReadyToRun, so that a start does not JIT-compile them first. Each run publishes into a
/// folder of its own, removed at the end; the project's intermediate folder is shared, so run one bench at a time in a
/// checkout. <c>--build</c> runs the plain build the bench's project reference made instead (quicker to get, slower to
/// start), and so does <c>--short</c>, whose timings mean nothing (test.sh: it would only add the publish to every CI run).
/// </summary>
public static class Product
{
    public static string Dll { get; private set; } = Repository.ProductDll;

    public static string Description { get; private set; } = "the build";

    private static string? _folder;

    public static async Task PublishAsync(Options options)
    {
        if (options.Has("build") || options.Short)
        {
            Description = options.Short ? "the build (--short)" : "the build (--build)";
            return;
        }
        var runtime = PortableRuntime();
        var folder = _folder = Path.Combine(Path.GetTempPath(), $"cc-bench-product-{Environment.ProcessId}");
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
            "publish", project, "-c", Repository.Configuration, "-r", runtime, "--self-contained", "false",
            "-o", folder, "--nologo", "-v", "quiet",
        })
        {
            start.ArgumentList.Add(argument);
        }
        Console.WriteLine($"bench: publishing the product for {runtime} (ReadyToRun) into {folder}");
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start dotnet publish");
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"dotnet publish of the product for {runtime} failed ({process.ExitCode}); --build runs the plain build instead:\n{await output}\n{await errors}");
        }
        Dll = Path.Combine(folder, "CareCoordination.Web.dll");
        Description = $"published ReadyToRun for {runtime}, as deployed";
        Console.WriteLine($"bench: published in {clock.Elapsed.TotalSeconds:0} s");
    }

    /// <summary>Removes this run's published folder.</summary>
    public static void Remove()
    {
        if (_folder is not null && Directory.Exists(_folder))
        {
            Directory.Delete(_folder, recursive: true);
        }
    }

    /// <summary>
    /// The portable runtime identifier (linux-x64), which the SDK has packs for; a distribution's own build of .NET may name
    /// its runtime after itself (ubuntu.24.04-x64).
    /// </summary>
    private static string PortableRuntime()
    {
        var system = OperatingSystem.IsLinux()
            ? (RuntimeInformation.RuntimeIdentifier.Contains("musl", StringComparison.Ordinal) ? "linux-musl" : "linux")
            : OperatingSystem.IsMacOS() ? "osx" : "win";
        return $"{system}-{RuntimeInformation.OSArchitecture.ToString().ToLowerInvariant()}";
    }
}
