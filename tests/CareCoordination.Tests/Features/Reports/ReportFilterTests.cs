using CareCoordination.Features.Reports;
using Microsoft.AspNetCore.WebUtilities;

namespace CareCoordination.Tests.Features.Reports;

/// <summary>The report filter: its default week, its round trip through the address, and London days in UTC.</summary>
public sealed class ReportFilterTests
{
    [Theory]
    // Thursday 3 December 2026: last full week is Monday 23 to Sunday 29 November.
    [InlineData("2026-12-03", "2026-11-23", "2026-11-29")]
    // On a Monday the week just ended is the one before it.
    [InlineData("2026-11-30", "2026-11-23", "2026-11-29")]
    // On a Sunday the week is not yet over: the one before.
    [InlineData("2026-11-29", "2026-11-16", "2026-11-22")]
    public void LastFullWeek_IsMondayToSundayBeforeThisWeek(string today, string from, string to)
    {
        var week = ReportFilter.LastFullWeek(DateOnly.Parse(today));
        Assert.Equal((DateOnly.Parse(from), DateOnly.Parse(to)), (week.From, week.To));
    }

    [Fact]
    public void Filter_RoundTripsThroughTheQueryString()
    {
        var filter = new ReportFilter(new DateOnly(2026, 3, 1), new DateOnly(2026, 3, 31), 42, "North & East");
        var back = ReportFilter.FromQuery(QueryHelpers.ParseQuery("?" + filter.ToQueryString()), new DateOnly(2026, 12, 3));
        Assert.Equal(filter, back);
    }

    [Fact]
    public void Filter_WhatIsMissingOrUnreadable_FallsBackToLastFullWeek()
    {
        var filter = ReportFilter.FromUri("https://x/reports/a?from=yesterday&trust=abc&locality=%20", new DateOnly(2026, 12, 3));
        Assert.Equal(new ReportFilter(new DateOnly(2026, 11, 23), new DateOnly(2026, 11, 29)), filter);
    }

    [Fact]
    public void Period_IsWholeLondonDays_InUtc()
    {
        // 29 March 2026 is the day the clocks go forward: it starts at 00:00 GMT; 1 April starts at 23:00 UTC on 31 March.
        var filter = new ReportFilter(new DateOnly(2026, 3, 29), new DateOnly(2026, 3, 31));
        Assert.Equal(new DateTimeOffset(2026, 3, 29, 0, 0, 0, TimeSpan.Zero), filter.StartUtc);
        Assert.Equal(new DateTimeOffset(2026, 3, 31, 23, 0, 0, TimeSpan.Zero), filter.EndUtc);
        Assert.Equal(3, filter.Days);
    }

    [Fact]
    public void Rules_RefuseAPeriodThatEndsBeforeItStarts()
    {
        var result = new ReportFilter.Rules().Validate(new ReportFilter(new DateOnly(2026, 3, 2), new DateOnly(2026, 3, 1)));
        Assert.Contains(result.Errors, e => e.PropertyName == nameof(ReportFilter.To));
    }
}
