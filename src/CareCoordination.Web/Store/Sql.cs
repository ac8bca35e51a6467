using System.Text.RegularExpressions;

namespace CareCoordination.Store;

public static partial class Sql
{
    /// <summary>
    /// A list of the code's own status constants for an IN clause. Dapper expands a list parameter on SQLite but
    /// passes an array on PostgreSQL, so a parameterised IN is not portable; these values never come from input.
    /// </summary>
    public static string Literals(IEnumerable<string> codes) => string.Join(", ", codes.Select(code =>
        CodeShape().IsMatch(code) ? $"'{code}'" : throw new ArgumentException($"'{code}' is not a status code.", nameof(codes))));

    [GeneratedRegex("^[a-z0-9-]+$")]
    private static partial Regex CodeShape();
}
