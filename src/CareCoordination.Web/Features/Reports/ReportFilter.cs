using System.Globalization;
using CareCoordination.Domain;
using FluentValidation;
using Microsoft.AspNetCore.WebUtilities;

namespace CareCoordination.Features.Reports;

/// <summary>
/// What every report is filtered by: a period of whole London days (From and To both included), the referring
/// organisation ("trust") and the locality; a report about beds rather than referrals (the Capacity Tracker) takes the
/// organisation that provides the beds instead of the referring one. It lives in the page's query string (from, to, trust,
/// locality, provider), so a report's address can be shared and its CSV link carries the same filter. A snapshot report (the
/// Capacity Tracker) takes one day instead of a period, AsAt (query key "at"): how things stood at the end of that day, or
/// now when it is unset or today.
/// </summary>
public sealed record ReportFilter(DateOnly From, DateOnly To, long? Trust = null, string? Locality = null, long? Provider = null, DateOnly? AsAt = null)
{
    /// <summary>The default period: last full week, Monday to Sunday, the week the weekly returns describe.</summary>
    public static ReportFilter LastFullWeek(DateOnly today)
    {
        var sinceMonday = ((int)today.DayOfWeek + 6) % 7;
        var thisMonday = today.AddDays(-sinceMonday);
        return new ReportFilter(thisMonday.AddDays(-7), thisMonday.AddDays(-1));
    }

    /// <summary>Reads the filter from a query string; whatever is missing or unreadable falls back to the default.</summary>
    public static ReportFilter FromQuery(IEnumerable<KeyValuePair<string, Microsoft.Extensions.Primitives.StringValues>> query, DateOnly today)
    {
        var values = query.ToDictionary(p => p.Key, p => p.Value.ToString(), StringComparer.OrdinalIgnoreCase);
        var fallback = LastFullWeek(today);
        DateOnly Date(string key, DateOnly otherwise) =>
            values.TryGetValue(key, out var text) && DateOnly.TryParseExact(text, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var date)
                ? date : otherwise;
        long? Organisation(string key) =>
            values.TryGetValue(key, out var text) && long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var id) ? id : null;
        string? locality = values.TryGetValue("locality", out var l) && !string.IsNullOrWhiteSpace(l) ? l.Trim() : null;
        DateOnly? asAt = values.TryGetValue("at", out var a) && DateOnly.TryParseExact(a, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var day)
            ? day : null;
        return new ReportFilter(Date("from", fallback.From), Date("to", fallback.To), Organisation("trust"), locality, Organisation("provider"), asAt);
    }

    public static ReportFilter FromUri(string uri, DateOnly today) =>
        FromQuery(QueryHelpers.ParseQuery(new Uri(uri).Query), today);

    /// <summary>"from=…&amp;to=…[&amp;trust=…][&amp;locality=…][&amp;provider=…][&amp;at=…]", for links to a report or its CSV.</summary>
    public string ToQueryString()
    {
        var query = $"from={From:yyyy-MM-dd}&to={To:yyyy-MM-dd}";
        if (Trust is { } trust)
        {
            query += $"&trust={trust.ToString(CultureInfo.InvariantCulture)}";
        }
        if (Locality is { } locality)
        {
            query += $"&locality={Uri.EscapeDataString(locality)}";
        }
        if (Provider is { } provider)
        {
            query += $"&provider={provider.ToString(CultureInfo.InvariantCulture)}";
        }
        if (AsAt is { } asAt)
        {
            query += $"&at={asAt:yyyy-MM-dd}";
        }
        return query;
    }

    /// <summary>
    /// The trust and locality conditions for figures about referrals, over "referral r JOIN person pe ON pe.id = r.person_id",
    /// with the filter's Trust and Locality as parameters: the trust is the referring organisation, the locality the person's.
    /// </summary>
    public const string ReferralConditions = "(@Trust IS NULL OR r.organisation_id = @Trust) AND (@Locality IS NULL OR pe.locality = @Locality)";

    /// <summary>
    /// The trust and locality as extra conditions on "referral r", for a query that reaches its referrals by a time's index
    /// (a discharge in the period): the filter narrows what that index finds, and must not become the way in. On SQLite the
    /// organisation is written +r.organisation_id, so that the planner does not read every referral the trust ever sent
    /// instead (its statistics know only an average per organisation; PostgreSQL's know better and need no hint), and the
    /// locality is asked of each referral's person rather than by reading every person of the locality (issue 13, 1M referrals).
    /// </summary>
    public string Narrowing(Store.StoreProvider provider)
    {
        var narrowing = "";
        if (Trust is not null)
        {
            narrowing += provider == Store.StoreProvider.Sqlite ? " AND +r.organisation_id = @Trust" : " AND r.organisation_id = @Trust";
        }
        if (Locality is not null)
        {
            narrowing += " AND EXISTS (SELECT 1 FROM person p WHERE p.id = r.person_id AND p.locality = @Locality)";
        }
        return narrowing;
    }

    /// <summary>The first instant of From, London time, in UTC: the store keeps UTC.</summary>
    public DateTimeOffset StartUtc => LondonTime.StartOf(From);

    /// <summary>The first instant after To (exclusive bound): compare times with "&lt; EndUtc".</summary>
    public DateTimeOffset EndUtc => LondonTime.StartOf(To.AddDays(1));

    public int Days => To.DayNumber - From.DayNumber + 1;

    /// <summary>How many parts a long report reads at once: one a core, at most 4, so that one report does not take a big server's connections.</summary>
    public static int ReadParts { get; } = Math.Clamp(Environment.ProcessorCount, 1, 4);

    /// <summary>
    /// Reads each part on its own connection at the same time. Task.Run because Microsoft.Data.Sqlite's async calls run
    /// synchronously: awaited in turn, the parts were read one after the other (issue 13).
    /// </summary>
    public static Task<T[]> ReadAtOnceAsync<TPart, T>(IEnumerable<TPart> parts, Func<TPart, Task<T>> read, CancellationToken cancellationToken) =>
        Task.WhenAll(parts.Select(part => Task.Run(() => read(part), cancellationToken)));

    /// <summary>
    /// The period cut into consecutive runs of whole days, in order, that together cover it exactly once (fewer parts when
    /// it has fewer days), each with the same trust and locality: a report over a long period reads each part on its own
    /// connection at the same time (issue 13: a year of 1M referrals read on one core was over the 2 s a report has).
    /// </summary>
    public IReadOnlyList<ReportFilter> Parts(int parts)
    {
        var count = Math.Clamp(parts, 1, Days);
        return
        [
            .. Enumerable.Range(0, count).Select(i => this with
            {
                From = From.AddDays(Days * i / count),
                To = From.AddDays(Days * (i + 1) / count - 1),
            }),
        ];
    }

    /// <summary>The rules a report's validator applies to its filter: RuleFor(q => q.Filter).SetValidator(new ReportFilter.Rules()).</summary>
    public sealed class Rules : AbstractValidator<ReportFilter>
    {
        public Rules()
        {
            RuleFor(f => f.To).GreaterThanOrEqualTo(f => f.From).WithMessage("The period must end on or after the day it starts.");
            RuleFor(f => f.From).GreaterThanOrEqualTo(new DateOnly(2000, 1, 1)).WithMessage("The period must start in 2000 or later.");
            RuleFor(f => f.To).LessThanOrEqualTo(new DateOnly(2100, 12, 31)).WithMessage("The period must end by 2100.");
            RuleFor(f => f.Locality).MaximumLength(100);
            RuleFor(f => f.AsAt).GreaterThanOrEqualTo(new DateOnly(2000, 1, 1)).WithMessage("The day must be in 2000 or later.");
        }
    }
}

/// <summary>A figure a report shows and what exactly it counts: shown beside the figures, in the CSV's documentation and on paper.</summary>
public sealed record ReportDefinition(string Figure, string Meaning);
