namespace CareCoordination.Bench;

/// <summary>The command line after the subcommand: <c>--name value</c> pairs and bare <c>--flag</c>s.</summary>
public sealed class Options
{
    private readonly Dictionary<string, string?> _values = new(StringComparer.OrdinalIgnoreCase);

    public Options(IEnumerable<string> args)
    {
        var list = args.ToList();
        for (var i = 0; i < list.Count; i++)
        {
            if (!list[i].StartsWith("--", StringComparison.Ordinal))
            {
                throw new ArgumentException($"unexpected argument '{list[i]}' (options are --name value)");
            }
            var name = list[i][2..];
            string? value = null;
            if (name.Contains('=', StringComparison.Ordinal))
            {
                (name, value) = (name[..name.IndexOf('=', StringComparison.Ordinal)], name[(name.IndexOf('=', StringComparison.Ordinal) + 1)..]);
            }
            else if (i + 1 < list.Count && !list[i + 1].StartsWith("--", StringComparison.Ordinal))
            {
                value = list[++i];
            }
            _values[name] = value;
        }
    }

    /// <summary>Seconds, tiny counts, correctness only: what test.sh runs so that the bench cannot rot.</summary>
    public bool Short => Has("short");

    public bool Has(string name) => _values.ContainsKey(name);

    public string? Get(string name) => _values.TryGetValue(name, out var value) ? value : null;

    public string Get(string name, string fallback) => Get(name) ?? fallback;

    public int Int(string name, int fallback) => Get(name) is { } value ? int.Parse(value, System.Globalization.CultureInfo.InvariantCulture) : fallback;

    /// <summary>The PostgreSQL server to measure on too (a database of its own is made there), or null for SQLite only.</summary>
    public string? Postgres =>
        Get("postgres") ?? (Environment.GetEnvironmentVariable("CARECOORDINATION_BENCH_POSTGRES") is { Length: > 0 } env ? env : null);
}
