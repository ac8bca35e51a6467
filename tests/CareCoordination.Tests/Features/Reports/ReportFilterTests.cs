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
        var filter = new ReportFilter(new DateOnly(2026, 3, 1), new DateOnly(2026, 3, 31), 42, "North & East", 7, new DateOnly(2026, 2, 27));
        var back = ReportFilter.FromQuery(QueryHelpers.ParseQuery("?" + filter.ToQueryString()), new DateOnly(2026, 12, 3));
        Assert.Equal(filter, back);
    }

    [Fact]
    public void Filter_WhatIsMissingOrUnreadable_FallsBackToLastFullWeek()
    {
        var filter = ReportFilter.FromUri("https://x/reports/a?from=yesterday&trust=abc&locality=%20&provider=-1&at=2026-02-30", new DateOnly(2026, 12, 3));
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

    [Theory]
    [InlineData("2025-12-01", "2026-11-30", 2)]
    [InlineData("2026-07-01", "2026-09-30", 3)]
    [InlineData("2026-03-29", "2026-03-29", 2)] // one day: one part
    [InlineData("2026-03-01", "2026-03-02", 4)] // two days: two parts
    public void Parts_CoverThePeriodExactlyOnce_InOrder_WithTheSameTrustAndLocality(string from, string to, int parts)
    {
        var filter = new ReportFilter(DateOnly.Parse(from), DateOnly.Parse(to), 7, "Ashbury");

        var cut = filter.Parts(parts);

        Assert.Equal(Math.Min(parts, filter.Days), cut.Count);
        Assert.Equal(filter.From, cut[0].From);
        Assert.Equal(filter.To, cut[^1].To);
        Assert.All(cut, part => Assert.True(part.To >= part.From));
        Assert.All(cut, part => Assert.Equal((7L, "Ashbury"), (part.Trust!.Value, part.Locality!)));
        for (var i = 1; i < cut.Count; i++)
        {
            // Each part starts the day after the one before ends: in UTC, the first instant of one is the end of the other.
            Assert.Equal(cut[i - 1].To.AddDays(1), cut[i].From);
            Assert.Equal(cut[i - 1].EndUtc, cut[i].StartUtc);
        }
        Assert.Equal(filter.Days, cut.Sum(part => part.Days));
    }
}
