namespace CareCoordination.Features.Fhir;

/// <summary>
/// FHIR string search in SQL that both stores read alike: case-insensitive starts-with. SQLite's LIKE ignores
/// ASCII case and PostgreSQL's does not, so both sides are lowered, by the same engine's LOWER so that they agree
/// (SQLite's folds ASCII only: there a non-ASCII capital matches only as typed). LIKE's wildcards in what the
/// caller typed are escaped, so "50%" matches a percent sign rather than everything.
/// </summary>
public static class FhirText
{
    public static string StartsWith(string column, string parameter) => $"LOWER({column}) LIKE LOWER(@{parameter}) ESCAPE '\\'";

    /// <summary>Matches a word start anywhere in the column: "shah" finds "Priya Shah".</summary>
    public static string WordStartsWith(string column, string parameter) =>
        $"(LOWER({column}) LIKE LOWER(@{parameter}) ESCAPE '\\' OR LOWER({column}) LIKE LOWER('% ' || @{parameter}) ESCAPE '\\')";

    /// <summary>The LIKE pattern for what the caller typed: its wildcards escaped, then anything after.</summary>
    public static string? Prefix(string? text) => text is null
        ? null
        : text.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("%", "\\%", StringComparison.Ordinal).Replace("_", "\\_", StringComparison.Ordinal) + "%";
}
