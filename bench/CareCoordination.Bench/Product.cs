using System.Diagnostics;
using System.Runtime.InteropServices;

namespace CareCoordination.Bench;

/// <summary>
/// The product the bench starts: as it is deployed (docs/deployment.md), published for this machine's runtime, which
/// compiles it and its packages ReadyToRun, so that a start does not JIT-compile them first. Each run publishes into a
/// folder of its own, removed at the end; the project's intermediate folder is shared, so run one bench at a time in a
/// checkout. <c>--build</c> runs the plain build the bench's project reference made instead (quicker to get, slower to
/// start), and so does <c>--short</c>, whose timings mean nothing (test.sh: it would only add the publish to every CI run).
/// <c>--composite</c> publishes it the other way docs/deployment.md offers: self-contained, the runtime and the app compiled
/// ReadyToRun as one composite image (about 3.5 minutes), which JIT-compiles about a third as many methods at a start.
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
            if (options.Has("composite"))
            {
                Console.WriteLine("bench: --composite is ignored: " + Description + " runs the plain build, not a publish");
            }
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
        var composite = options.Has("composite");
        ForgetOtherKindOfReadyToRun(runtime, composite);
        string[] packaging = composite ? ["--self-contained", "true", "-p:PublishReadyToRunComposite=true"] : ["--self-contained", "false"];
        foreach (var argument in (string[])["publish", project, "-c", Repository.Configuration, "-r", runtime, .. packaging, "-o", folder, "--nologo", "-v", "quiet"])
        {
            start.ArgumentList.Add(argument);
        }
        var how = composite ? "self-contained, ReadyToRun composite with the runtime" : "ReadyToRun";
        Console.WriteLine($"bench: publishing the product for {runtime} ({how}) into {folder}");
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
        Description = $"published {how} for {runtime}, as deployed";
        Console.WriteLine($"bench: published in {clock.Elapsed.TotalSeconds:0} s");
    }

    /// <summary>
    /// The SDK keeps ReadyToRun output in one folder per runtime whichever way it publishes, and reuses what it finds there by
    /// file date. A composite publish leaves each assembly there as a stub pointing at its composite image, which a plain
    /// publish would then ship without the image (the product fails at start). So the folder goes when it holds the other
    /// kind (a composite publish after a plain one would compile everything again anyway); a composite image (*.r2r.dll) in
    /// it says which kind it holds.
    /// </summary>
    private static void ForgetOtherKindOfReadyToRun(string runtime, bool composite)
    {
        var folder = Path.Combine(Repository.Root, "src", "CareCoordination.Web", "obj", Repository.Configuration, "net10.0", runtime, "R2R");
        if (Directory.Exists(folder) && Directory.EnumerateFiles(folder, "*.r2r.dll").Any() != composite)
        {
            Directory.Delete(folder, recursive: true);
        }
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
