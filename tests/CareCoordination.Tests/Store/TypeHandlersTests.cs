using System.Globalization;
using CareCoordination.Store;

namespace CareCoordination.Tests.Store;

/// <summary>
/// SQLite's times and dates read by hand (the store's one fixed shape, digit by digit) give exactly what the general parse
/// gives; any other shape still reads through the general parse.
/// </summary>
public sealed class TypeHandlersTests
{
    private static DateTimeOffset General(string text) =>
        DateTimeOffset.Parse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);

    [Theory]
    [InlineData("2026-03-29T00:59:59.9999999Z")]
    [InlineData("2024-02-29T23:00:00.0000001Z")]
    [InlineData("0001-01-01T00:00:00.0000000Z")]
    [InlineData("9999-12-31T23:59:59.9999999Z")]
    // Other shapes: a row written by hand, a time with its offset, SQLite's own datetime().
    [InlineData("2026-03-29T01:30:00+01:00")]
    [InlineData("2026-03-29 01:30:00")]
    [InlineData("2026-03-29T01:30:00.1234567+00:00")]
    public void ATime_ReadsAsTheGeneralParseReadsIt(string text)
    {
        var read = TypeHandlers.ReadSqliteTime(text);

        Assert.Equal(General(text), read);
        Assert.Equal(TimeSpan.Zero, read.Offset);
    }

    [Fact]
    public void ATimeWrittenByTheStore_ReadsBackToTheSameTick()
    {
        var random = new Random(13);
        for (var i = 0; i < 10_000; i++)
        {
            var time = new DateTimeOffset(new DateTime(2000, 1, 1, 0, 0, 0, DateTimeKind.Utc).AddTicks(random.NextInt64(TimeSpan.TicksPerDay * 365 * 40)));
            Assert.Equal(time, TypeHandlers.ReadSqliteTime(TypeHandlers.ToSqliteText(time)));
        }
    }

    [Fact]
    public void ATimeThatIsNotOne_IsRefused()
    {
        Assert.Throws<FormatException>(() => TypeHandlers.ReadSqliteTime("2026-02-30T00:00:00.0000000Z"));
        Assert.Throws<FormatException>(() => TypeHandlers.ReadSqliteDate("2026-13-01"));
    }

    [Theory]
    [InlineData("2026-03-29", 2026, 3, 29)]
    [InlineData("2024-02-29T23:00:00.0000000Z", 2024, 2, 29)]
    public void ADate_ReadsItsDay(string text, int year, int month, int day) =>
        Assert.Equal(new DateOnly(year, month, day), TypeHandlers.ReadSqliteDate(text));
}
