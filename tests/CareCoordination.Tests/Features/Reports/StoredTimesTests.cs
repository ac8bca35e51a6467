using System.Globalization;
using CareCoordination.Domain;
using CareCoordination.Features.Reports;
using CareCoordination.Store;

namespace CareCoordination.Tests.Features.Reports;

/// <summary>
/// The reports' fast reading of stored times and London days (StoredTimes) must agree with the general ones everywhere:
/// the fixed text SQLite keeps, around both clock changes, at the edges of days and years, and any other shape of text.
/// </summary>
public sealed class StoredTimesTests
{
    [Fact]
    public void ReadsTheStoredTextAsTheGeneralParserDoes_AndDaysAreLondonDays_AcrossTheClockChanges()
    {
        var days = new StoredTimes();
        // Every 7 minutes and 13 ticks over 2024 and 2025 (both clock changes each year, every hour and day edge nearby).
        for (var at = new DateTimeOffset(2023, 12, 31, 22, 0, 0, TimeSpan.Zero); at < new DateTimeOffset(2026, 1, 1, 2, 0, 0, TimeSpan.Zero);
             at = at.AddMinutes(7).AddTicks(13))
        {
            var text = TypeHandlers.ToSqliteText(at);
            var read = StoredTimes.Read(text);
            Assert.Equal(DateTimeOffset.Parse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal), read);
            Assert.Equal(at, read);
            Assert.Equal(LondonTime.DateOf(at), days.DayOf(read));
        }
        // Either side of London midnight on the days the clocks go forward (01:00 UTC, 30 March 2025) and back (26 October).
        Assert.Equal(new DateOnly(2025, 3, 29), days.DayOf(StoredTimes.Read("2025-03-29T23:59:59.9999999Z")));
        Assert.Equal(new DateOnly(2025, 3, 30), days.DayOf(StoredTimes.Read("2025-03-30T00:00:00.0000000Z")));
        Assert.Equal(new DateOnly(2025, 3, 30), days.DayOf(StoredTimes.Read("2025-03-30T22:59:59.9999999Z")));
        Assert.Equal(new DateOnly(2025, 3, 31), days.DayOf(StoredTimes.Read("2025-03-30T23:00:00.0000000Z")));
        Assert.Equal(new DateOnly(2025, 10, 25), days.DayOf(StoredTimes.Read("2025-10-25T22:59:59.9999999Z")));
        Assert.Equal(new DateOnly(2025, 10, 26), days.DayOf(StoredTimes.Read("2025-10-25T23:00:00.0000000Z")));
    }

    [Fact]
    public void ReadsOtherShapesAndTheOtherStoresValuesAsTheTypeHandlerDoes()
    {
        var expected = new DateTimeOffset(2025, 6, 1, 12, 30, 0, TimeSpan.Zero);
        Assert.Equal(expected, StoredTimes.Read("2025-06-01T12:30:00Z"));
        Assert.Equal(expected, StoredTimes.Read("2025-06-01 13:30:00+01:00"));
        Assert.Equal(expected, StoredTimes.Read(new DateTime(2025, 6, 1, 12, 30, 0, DateTimeKind.Unspecified)));
        Assert.Equal(expected, StoredTimes.Read(new DateTimeOffset(2025, 6, 1, 13, 30, 0, TimeSpan.FromHours(1))));
        Assert.Null(StoredTimes.ReadOrNull(null));
        Assert.Null(StoredTimes.ReadOrNull(DBNull.Value));
        Assert.Throws<FormatException>(() => StoredTimes.Read("2025-13-01T12:30:00.0000000Z"));
    }

    [Fact]
    public void ReadsDatesAsEitherStoreHandsThemBack()
    {
        var expected = new DateOnly(1938, 2, 28);
        Assert.Equal(expected, StoredTimes.ReadDate("1938-02-28"));
        Assert.Equal(expected, StoredTimes.ReadDate("1938-02-28T00:00:00.0000000Z"));
        Assert.Equal(expected, StoredTimes.ReadDate(new DateTime(1938, 2, 28)));
        Assert.Equal(expected, StoredTimes.ReadDate(expected));
        Assert.Equal(expected, StoredTimes.ReadDateOrNull("1938-02-28"));
        Assert.Null(StoredTimes.ReadDateOrNull(DBNull.Value));
        Assert.Throws<FormatException>(() => StoredTimes.ReadDate("1938-02-30"));
        Assert.Throws<InvalidCastException>(() => StoredTimes.ReadDate(1938L));
    }
}
