using System.Globalization;
using System.Text;
using CareCoordination.Pipeline;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Primitives;

namespace CareCoordination.Features.Fhir;

/// <summary>One bound of a date search: <c>_lastUpdated=gt2025-01-01T10:00:00Z</c> is (">", that instant).</summary>
public sealed record DateBound(string Operator, DateTimeOffset At);

/// <summary>
/// The search parameters of one request, read strictly: a parameter this server does not support, given
/// twice, or with a value it cannot read is refused with 400 rather than silently ignored, because a
/// partner that believes it filtered would otherwise act on the wrong records.
/// </summary>
public sealed class FhirSearch
{
    public const int DefaultCount = 20;
    public const int MaxCount = 100;
    public const string PageParameter = "_page";

    /// <summary>FHIR's _total: how far the client needs the number of matches.</summary>
    public const string TotalParameter = "_total";

    /// <summary>How a search's results come back, accepted beside any search's own parameters.</summary>
    private static readonly string[] Paging = ["_count", PageParameter, TotalParameter];

    private static readonly string[] TotalChoices = ["none", "estimate", "accurate"];

    /// <summary>Date parameters: each may be given twice, for the two ends of a range.</summary>
    private static readonly string[] Repeatable = ["_lastUpdated", "date"];

    private readonly IQueryCollection _query;

    public FhirSearch(IQueryCollection query, params string[] supported)
    {
        _query = query;
        foreach (var (name, values) in query)
        {
            if (!supported.Contains(name, StringComparer.Ordinal) && !Paging.Contains(name, StringComparer.Ordinal))
            {
                throw Invalid(name, $"This server does not support the search parameter '{name}' here. Supported: {string.Join(", ", supported.Concat(Paging))}.");
            }
            if (values.Count > 1 && !Repeatable.Contains(name, StringComparer.Ordinal))
            {
                throw Invalid(name, $"Give '{name}' once; to match any of several values, separate them with commas.");
            }
            // No store keeps U+0000 (PostgreSQL refuses it outright), so nothing stored can match it.
            if (values.Any(v => v?.Contains('\0', StringComparison.Ordinal) == true))
            {
                throw Invalid(name, $"The value of '{name}' holds the character U+0000 (%00), which is never a part of a value here.");
            }
        }
        Count = ReadCount();
        Offset = ReadOffset();
        WithTotal = ReadWithTotal();
    }

    public int Count { get; }

    public int Offset { get; }

    /// <summary>
    /// False for <c>_total=none</c>: the client will not use the number of matches, so it is not counted (a count reads every
    /// match; a page reads one more row than it shows, to know whether there is a next). <c>estimate</c> is answered with the
    /// exact number, which is at least as good; <c>accurate</c> and no <c>_total</c> alike.
    /// </summary>
    public bool WithTotal { get; }

    /// <summary>
    /// A token parameter (<c>system|code</c> or <c>code</c>) that must be in the given system. A value in
    /// another system matches nothing here, so it answers an empty page; "none" stands for that.
    /// </summary>
    public string? Token(string name, string system, Func<string, bool> wellFormed, string shape)
    {
        var value = Single(name);
        if (value is null)
        {
            return null;
        }
        var bar = value.IndexOf('|', StringComparison.Ordinal);
        var (givenSystem, code) = bar < 0 ? (null, value) : (value[..bar], value[(bar + 1)..]);
        if (!wellFormed(code))
        {
            throw Invalid(name, $"'{code}' is not {shape}.");
        }
        return givenSystem is null || givenSystem == system ? code : NoMatch;
    }

    /// <summary>A token parameter in any system (<c>system|code</c>, <c>|code</c> or <c>code</c>): the system is null when not given.</summary>
    public (string? System, string Code)? AnyToken(string name)
    {
        var value = Single(name);
        if (string.IsNullOrWhiteSpace(value))
        {
            return null;
        }
        var bar = value.IndexOf('|', StringComparison.Ordinal);
        var (system, code) = bar < 0 ? (null, value) : (value[..bar], value[(bar + 1)..]);
        return code.Length == 0 ? throw Invalid(name, $"Give {name} as system|value or value.") : (string.IsNullOrEmpty(system) ? null : system, code);
    }

    /// <summary>Stands for a token in a system we do not hold: it matches no row.</summary>
    public const string NoMatch = "";

    /// <summary>Codes separated by commas; with <paramref name="system"/>, each may also be given as <c>system|code</c>.</summary>
    public IReadOnlyList<string> Codes(string name, IReadOnlyList<string> allowed, string? system = null)
    {
        var value = Single(name);
        if (value is null)
        {
            return [];
        }
        var codes = value.Split(',', StringSplitOptions.TrimEntries)
            .Select(c => system is not null && c.StartsWith(system + "|", StringComparison.Ordinal) ? c[(system.Length + 1)..] : c)
            .ToList();
        var unknown = codes.Where(c => !allowed.Contains(c, StringComparer.Ordinal)).ToList();
        if (unknown.Count > 0)
        {
            throw Invalid(name, $"'{string.Join(",", unknown)}' is not one of: {string.Join(", ", allowed)}.");
        }
        return codes;
    }

    /// <summary>A reference parameter to one resource type: <c>ServiceRequest/12</c> (or a full URL ending so, or the bare id).</summary>
    public long? Reference(string name, string resourceType) =>
        ReferenceId(name, resourceType, id => long.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out _), "{id}") is { } id
            ? long.Parse(id, NumberStyles.None, CultureInfo.InvariantCulture)
            : null;

    /// <summary>
    /// A reference parameter to a Patient, by the caller's own id for them (PatientIds): the person, or PatientIdSpace.Nobody
    /// for an id this organisation was not given, which matches nothing, as an unknown id does.
    /// </summary>
    public long? PatientReference(string name, PatientIdSpace patients) =>
        ReferenceId(name, "Patient", id => id.Length > 0 && !id.Contains('/'), "{id}") is { } id ? patients.PersonIdOrNobody(id) : null;

    /// <summary>A reference parameter whose ids are not plain numbers (Location/site-3): the id as given, once it is well formed.</summary>
    public string? ReferenceId(string name, string resourceType, Func<string, bool> wellFormed, string shape)
    {
        var value = Single(name);
        if (value is null)
        {
            return null;
        }
        var marker = resourceType + "/";
        var at = value.LastIndexOf(marker, StringComparison.Ordinal);
        var id = at >= 0 ? value[(at + marker.Length)..] : value;
        if (!wellFormed(id))
        {
            throw Invalid(name, $"'{value}' is not a reference to a {resourceType}: give {resourceType}/{shape}.");
        }
        return id;
    }

    /// <summary>The SQL for date bounds on one column, each bound's instant added as its own parameter.</summary>
    public static string DateWhere(string column, IReadOnlyList<DateBound> bounds, Dapper.DynamicParameters parameters)
    {
        var where = "";
        for (var i = 0; i < bounds.Count; i++)
        {
            var name = $"{column.Replace('.', '_')}{i}";
            where += $" AND {column} {bounds[i].Operator} @{name}";
            parameters.Add(name, bounds[i].At);
        }
        return where;
    }

    /// <summary>A date parameter with prefixes gt, ge, lt or le; may be given twice for a range.</summary>
    public IReadOnlyList<DateBound> Dates(string name)
    {
        var bounds = new List<DateBound>();
        foreach (var value in _query[name])
        {
            if (value is null || value.Length < 3)
            {
                throw Invalid(name, $"Give {name} as a prefix (gt, ge, lt or le) and an instant, e.g. gt2025-01-31T09:00:00Z.");
            }
            var op = value[..2] switch
            {
                "gt" => ">",
                "ge" => ">=",
                "lt" => "<",
                "le" => "<=",
                _ => throw Invalid(name, $"'{value}' has no prefix this server supports: use gt, ge, lt or le."),
            };
            if (!DateTimeOffset.TryParse(value[2..], CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var at))
            {
                throw Invalid(name, $"'{value[2..]}' is not a FHIR instant or date.");
            }
            bounds.Add(new DateBound(op, at));
        }
        return bounds;
    }

    /// <summary>A string parameter (FHIR's default: starts with, case-insensitive, left to the query); empty is refused.</summary>
    public string? Text(string name)
    {
        var value = Single(name);
        if (value is null)
        {
            return null;
        }
        return string.IsNullOrWhiteSpace(value) ? throw Invalid(name, $"Give {name} a value to match, or leave it out.") : value.Trim();
    }

    /// <summary>A boolean token parameter: true or false, nothing else.</summary>
    public bool? Boolean(string name) => Single(name) switch
    {
        null => null,
        "true" => true,
        "false" => false,
        var other => throw Invalid(name, $"'{other}' is not true or false."),
    };

    /// <summary>
    /// A reference parameter that may name one of several resource types (<c>entity=ServiceRequest/12</c>, or a
    /// full URL ending so): the type and the id. A bare id is refused, as it does not say which type.
    /// </summary>
    public (string Type, long Id)? TypedReference(string name, IReadOnlyCollection<string> resourceTypes, PatientIdSpace patients)
    {
        var value = Single(name);
        if (value is null)
        {
            return null;
        }
        var parts = value.Split('/');
        if (parts.Length >= 2 && parts[^2] == "Patient" && resourceTypes.Contains("Patient") && parts[^1].Length > 0)
        {
            return ("Patient", patients.PersonIdOrNobody(parts[^1]));
        }
        if (parts.Length >= 2 && resourceTypes.Contains(parts[^2], StringComparer.Ordinal)
            && long.TryParse(parts[^1], NumberStyles.None, CultureInfo.InvariantCulture, out var id))
        {
            return (parts[^2], id);
        }
        throw Invalid(name, $"'{value}' is not a reference this server can search by: give {{type}}/{{id}} with type one of {string.Join(", ", resourceTypes)}.");
    }

    /// <summary>This request's URL with the page moved on, or null when this page was the last.</summary>
    public string? NextUrl<T>(HttpRequest request, Page<T> page)
    {
        var next = Offset + Count;
        if (Count == 0 || !(page.Total is { } total ? next < total : page.More))
        {
            return null;
        }
        var kept = _query.Where(q => q.Key != PageParameter)
            .SelectMany(q => q.Value.Select(v => new KeyValuePair<string, string?>(q.Key, v)))
            .Append(new KeyValuePair<string, string?>(PageParameter, PageToken(next)));
        return QueryHelpers.AddQueryString(FhirEndpoints.BaseUrl(request) + request.Path.Value!["/fhir".Length..], kept);
    }

    /// <summary>Opaque to the client: it follows the next link and never builds one.</summary>
    private static string PageToken(int offset) =>
        WebEncoders.Base64UrlEncode(Encoding.UTF8.GetBytes("offset:" + offset.ToString(CultureInfo.InvariantCulture)));

    private int ReadOffset()
    {
        var token = Single(PageParameter);
        if (token is null)
        {
            return 0;
        }
        try
        {
            var text = Encoding.UTF8.GetString(WebEncoders.Base64UrlDecode(token));
            if (text.StartsWith("offset:", StringComparison.Ordinal)
                && int.TryParse(text["offset:".Length..], NumberStyles.None, CultureInfo.InvariantCulture, out var offset))
            {
                return offset;
            }
        }
        catch (FormatException)
        {
        }
        throw Invalid(PageParameter, "This page link is not one this server gave out. Follow the next link of a search as it came.");
    }

    private bool ReadWithTotal()
    {
        var value = Single(TotalParameter);
        if (value is null)
        {
            return true;
        }
        return TotalChoices.Contains(value, StringComparer.Ordinal)
            ? value != "none"
            : throw Invalid(TotalParameter, $"{TotalParameter} is one of {string.Join(", ", TotalChoices)}, not '{value}'.");
    }

    private int ReadCount()
    {
        var value = Single("_count");
        if (value is null)
        {
            return DefaultCount;
        }
        if (!int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var count))
        {
            throw Invalid("_count", $"'{value}' is not a whole number of results per page.");
        }
        return Math.Min(count, MaxCount);
    }

    private string? Single(string name) => _query.TryGetValue(name, out StringValues values) ? values.ToString() : null;

    /// <summary>A refusal of the search as asked (400), against the parameter it names.</summary>
    internal static ValidationFailed Invalid(string name, string message) => new(new Dictionary<string, string[]> { [name] = [message] });
}
