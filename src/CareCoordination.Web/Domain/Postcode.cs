using System.Text.RegularExpressions;

namespace CareCoordination.Domain;

/// <summary>UK postcodes: an outward code (area and district) and an inward code (sector and unit).</summary>
public static partial class Postcode
{
    /// <summary>Upper case with one space before the inward code, or null when it is not a UK postcode.</summary>
    public static string? Normalise(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
        {
            return null;
        }
        var compact = string.Concat(text.Where(c => !char.IsWhiteSpace(c))).ToUpperInvariant();
        return Shape().IsMatch(compact) ? $"{compact[..^3]} {compact[^3..]}" : null;
    }

    public static bool IsValid(string? text) => Normalise(text) is not null;

    /// <summary>The outward code ("WM1" of "WM1 4QT"), which decides the locality.</summary>
    public static string? District(string? text) => Normalise(text)?.Split(' ')[0];

    // Area (1-2 letters), district (digit, then an optional digit or letter), sector digit, two unit letters.
    [GeneratedRegex("^(GIR0AA|[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2})$", RegexOptions.CultureInvariant)]
    private static partial Regex Shape();
}
