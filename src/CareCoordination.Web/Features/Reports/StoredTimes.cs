using System.Globalization;
using CareCoordination.Domain;

namespace CareCoordination.Features.Reports;

/// <summary>
/// Times for a report that reads hundreds of thousands of them (a year of referrals, issue 13): SQLite keeps every time
/// as the same fixed UTC text (TypeHandlers.ToSqliteText), read here digit by digit, where DateTimeOffset.Parse, which
/// Dapper's handler calls, costs a microsecond or more per value; PostgreSQL hands back a DateTime, taken as it is.
/// Map the column to an object property and read it with <see cref="Read"/>. And London days through a cache of the
/// London offset per UTC hour (the clocks change on the hour), instead of a time zone conversion per value.
/// </summary>
public sealed class StoredTimes
{
    private readonly Dictionary<long, TimeSpan> _offsets = [];

    public static DateTimeOffset Read(object value) => value switch
    {
        string text when Fixed(text) is { } utc => utc,
        string text => DateTimeOffset.Parse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal),
        DateTime time => new DateTimeOffset(DateTime.SpecifyKind(time, DateTimeKind.Utc)),
        DateTimeOffset time => time.ToUniversalTime(),
        _ => throw new InvalidCastException($"Cannot read {value.GetType().Name} as a time."),
    };

    public static DateTimeOffset? ReadOrNull(object? value) => value is null or DBNull ? null : Read(value);

    /// <summary>The London day of an instant: the same as LondonTime.DateOf.</summary>
    public DateOnly DayOf(DateTimeOffset utc)
    {
        var hour = utc.UtcTicks / TimeSpan.TicksPerHour;
        if (!_offsets.TryGetValue(hour, out var offset))
        {
            offset = LondonTime.Zone.GetUtcOffset(new DateTime(hour * TimeSpan.TicksPerHour, DateTimeKind.Utc));
            _offsets[hour] = offset;
        }
        return DateOnly.FromDateTime(utc.UtcDateTime + offset);
    }

    /// <summary>"yyyy-MM-ddTHH:mm:ss.fffffffZ", or null for any other shape (then the general parser reads it).</summary>
    private static DateTimeOffset? Fixed(string text)
    {
        if (text.Length != 28 || text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' || text[16] != ':' || text[19] != '.' || text[27] != 'Z')
        {
            return null;
        }
        int Digits(int at, int count)
        {
            var value = 0;
            for (var i = at; i < at + count; i++)
            {
                var digit = text[i] - '0';
                if (digit is < 0 or > 9)
                {
                    return -1;
                }
                value = value * 10 + digit;
            }
            return value;
        }
        var (year, month, day, hour, minute, second, fraction) =
            (Digits(0, 4), Digits(5, 2), Digits(8, 2), Digits(11, 2), Digits(14, 2), Digits(17, 2), Digits(20, 7));
        if (year < 1 || month is < 1 or > 12 || day < 1 || day > DateTime.DaysInMonth(year, month) || hour is < 0 or > 23
            || minute is < 0 or > 59 || second is < 0 or > 59 || fraction < 0)
        {
            return null;
        }
        return new DateTimeOffset(new DateTime(year, month, day, hour, minute, second, DateTimeKind.Utc).AddTicks(fraction));
    }
}
