using System.Globalization;

namespace CareCoordination.Bench;

/// <summary>
/// The figures of a run, each beside its reference measured in the same run and their ratio (figure ÷ reference), printed as
/// a Markdown table (what docs/performance.md records), and the correctness failures that make the run fail.
/// </summary>
public sealed class Report
{
    private readonly List<(string Section, string Figure, string Value, string Reference, string ReferenceValue, string Ratio)> _rows = [];
    private readonly List<string> _failures = [];

    public static Report Current { get; } = new();

    public IReadOnlyList<string> Failures => _failures;

    /// <summary>A figure and its reference; the ratio is value ÷ reference (for req/s higher is better, for the rest lower).</summary>
    public void Add(string section, string figure, double value, string unit, string reference, double referenceValue)
    {
        var ratio = referenceValue > 0 && !double.IsNaN(value) ? (value / referenceValue).ToString("0.00", CultureInfo.InvariantCulture) + "x" : "";
        _rows.Add((section, figure, Format(value, unit), reference, Format(referenceValue, unit), ratio));
        Console.WriteLine($"  {figure}: {Format(value, unit)}   [{reference}: {Format(referenceValue, unit)}]   {ratio}");
    }

    /// <summary>A figure with no reference of its own.</summary>
    public void Add(string section, string figure, double value, string unit)
    {
        _rows.Add((section, figure, Format(value, unit), "", "", ""));
        Console.WriteLine($"  {figure}: {Format(value, unit)}");
    }

    /// <summary>A broken guarantee (a submission not acknowledged, a count that does not add up, a push missed): the run fails.</summary>
    public void Fail(string what)
    {
        _failures.Add(what);
        Console.WriteLine("  FAILED: " + what);
    }

    public void Check(bool holds, string what)
    {
        if (!holds)
        {
            Fail(what);
        }
    }

    public void Print(TextWriter output)
    {
        output.WriteLine();
        output.WriteLine("| | figure | value | reference (same run) | reference value | ratio |");
        output.WriteLine("|---|---|---|---|---|---|");
        foreach (var row in _rows)
        {
            output.WriteLine($"| {row.Section} | {row.Figure} | {row.Value} | {row.Reference} | {row.ReferenceValue} | {row.Ratio} |");
        }
        output.WriteLine();
        output.WriteLine(_failures.Count == 0 ? "correctness: every check held" : $"correctness: {_failures.Count} FAILED: " + string.Join("; ", _failures));
    }

    private static string Format(double value, string unit) => double.IsNaN(value) ? "-" : unit switch
    {
        "req/s" => value.ToString("#,0", CultureInfo.InvariantCulture) + " req/s",
        "ms" => value.ToString(value < 1 ? "0.00" : value < 10 ? "0.0" : "#,0", CultureInfo.InvariantCulture) + " ms",
        "s" => value.ToString("0.00", CultureInfo.InvariantCulture) + " s",
        "KB" => value.ToString("0.0", CultureInfo.InvariantCulture) + " KB",
        "MB" => value.ToString("#,0.0", CultureInfo.InvariantCulture) + " MB",
        _ => value.ToString("#,0.##", CultureInfo.InvariantCulture) + " " + unit,
    };
}
