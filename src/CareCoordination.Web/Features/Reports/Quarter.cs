using System.Globalization;

namespace CareCoordination.Features.Reports;

/// <summary>
/// A calendar quarter of London days (January to March, April to June, July to September, October to December),
/// named by its months and by the NHS financial year's quarter number (April to June is Q1), so nobody has to
/// wonder which "Q2" is meant.
/// </summary>
public readonly record struct Quarter(DateOnly First)
{
    private static readonly CultureInfo English = CultureInfo.GetCultureInfo("en-GB");

    public DateOnly Last => First.AddMonths(3).AddDays(-1);

    public Quarter Previous => new(First.AddMonths(-3));

    public Quarter Next => new(First.AddMonths(3));

    public static bool IsFirstDay(DateOnly day) => day.Day == 1 && (day.Month - 1) % 3 == 0;

    public static Quarter Containing(DateOnly day) => new(new DateOnly(day.Year, (day.Month - 1) / 3 * 3 + 1, 1));

    /// <summary>The last quarter that has ended by today: what a decision pack normally describes.</summary>
    public static Quarter LastFull(DateOnly today) => Containing(today).Previous;

    /// <summary>The quarter of a report filter's first day, with the filter's trust and locality.</summary>
    public static ReportFilter Filter(ReportFilter filter)
    {
        var quarter = Containing(filter.From);
        return filter with { From = quarter.First, To = quarter.Last };
    }

    public bool Covers(ReportFilter filter) => filter.From == First && filter.To == Last;

    public string FinancialName
    {
        get
        {
            var startYear = First.Month >= 4 ? First.Year : First.Year - 1;
            var number = (First.Month + 8) / 3 % 4 + 1;
            return string.Create(CultureInfo.InvariantCulture, $"Q{number} {startYear}/{(startYear + 1) % 100:00}");
        }
    }

    public string Name => $"{First.ToString("MMM", English)} to {Last.ToString("MMM yyyy", English)} ({FinancialName})";

    public override string ToString() => Name;
}
