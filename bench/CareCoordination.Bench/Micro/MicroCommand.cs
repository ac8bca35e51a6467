using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace CareCoordination.Bench.Micro;

/// <summary>
/// BenchmarkDotNet for the product's in-process hot paths (ReferralHotPaths), in process (no child project to build) with
/// BenchmarkDotNet's short job. In --short mode BenchmarkDotNet is skipped: each path is called once, directly, and checked
/// (the Bundle parses to its two resources, the map keeps the NHS number, the example meets the profiles).
/// </summary>
public static class MicroCommand
{
    public static int Run(Options options)
    {
        Console.WriteLine("\n== micro: in-process hot paths of one partner referral ==");
        var report = Report.Current;
        var paths = new ReferralHotPaths();
        paths.Setup();
        var bundle = paths.FhirParse();
        var form = paths.MapToForm();
        var bare = paths.BareParse();
        report.Check(bundle.Entry.Count == 2, $"micro: the Bundle parsed to {bundle.Entry.Count} entries, not 2");
        report.Check(form.NhsNumber == bare.NhsNumber && form.NhsNumber is { Length: 10 }, $"micro: the map lost the NHS number ({form.NhsNumber} against {bare.NhsNumber})");
        var issues = paths.ProfileCheck();
        report.Check(issues == 0, $"micro: the published examples break the profiles ({issues} issues)");
        _ = paths.Validate();
        var issuesAsReceived = paths.ProfileCheckAsReceived();
        report.Check(issuesAsReceived == 0, $"micro: checked from the body as received, the published examples break the profiles ({issuesAsReceived} issues)");
        if (options.Short)
        {
            Console.WriteLine("   short mode: BenchmarkDotNet skipped; each path ran once and its result was checked");
            return report.Failures.Count == 0 ? 0 : 1;
        }

        var config = ManualConfig.Create(DefaultConfig.Instance)
            .AddJob(Job.ShortRun.WithToolchain(InProcessEmitToolchain.Instance))
            .WithArtifactsPath(Path.Combine(Path.GetTempPath(), "cc-bench-artifacts"))
            .WithOptions(ConfigOptions.JoinSummary);
        var summary = BenchmarkRunner.Run<ReferralHotPaths>(config);
        var means = summary.Reports.Where(r => r.ResultStatistics is not null)
            .ToDictionary(r => r.BenchmarkCase.Descriptor.WorkloadMethod.Name, r => r.ResultStatistics!.Mean / 1000.0);
        if (!means.TryGetValue(nameof(ReferralHotPaths.BareParse), out var baseline))
        {
            report.Fail("micro: BenchmarkDotNet measured nothing");
            return 1;
        }
        foreach (var (method, name) in new[]
        {
            (nameof(ReferralHotPaths.FhirParse), "FHIR parse of the Bundle"), (nameof(ReferralHotPaths.MapToForm), "map to the referral form"),
            (nameof(ReferralHotPaths.Validate), "validation (form rules)"), (nameof(ReferralHotPaths.ProfileCheckAsReceived), "profile check from the body as received"),
            (nameof(ReferralHotPaths.ProfileCheck), "profile check, each resource written out"),
        })
        {
            if (means.TryGetValue(method, out var mean))
            {
                report.Add("micro", name + ", mean", mean, "µs", "bare app's whole parse", baseline);
            }
        }
        // A submission checks its resources from the body as received: the written-out check is not a step of its own.
        var total = means.Where(m => m.Key is not (nameof(ReferralHotPaths.BareParse) or nameof(ReferralHotPaths.ProfileCheck))).Sum(m => m.Value);
        report.Add("micro", "all four, per referral", total, "µs", "bare app's whole parse", baseline);
        return report.Failures.Count == 0 ? 0 : 1;
    }
}
