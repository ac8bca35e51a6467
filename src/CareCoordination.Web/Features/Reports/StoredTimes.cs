using CareCoordination.Domain;
using CareCoordination.Store;

namespace CareCoordination.Features.Reports;

/// <summary>
/// Times for a report that reads hundreds of thousands of them (a year of referrals, issue 13): SQLite keeps every time
/// as the same fixed UTC text (TypeHandlers.ToSqliteText), read digit by digit by TypeHandlers.ReadSqliteTime;
/// PostgreSQL hands back a DateTime, taken as it is. Map the column to an object property and read it with
/// <see cref="Read"/>, which skips Dapper's per-row handler lookup. And London days through a cache of the
/// London offset per UTC hour (the clocks change on the hour), instead of a time zone conversion per value.
/// </summary>
public sealed class StoredTimes
{
    private readonly Dictionary<long, TimeSpan> _offsets = [];

    public static DateTimeOffset Read(object value) => TypeHandlers.ReadStoredTime(value);

    public static DateTimeOffset? ReadOrNull(object? value) => value is null or DBNull ? null : Read(value);

    /// <summary>A date as either store hands it back: SQLite's text (TypeHandlers.ReadSqliteDate), PostgreSQL's DateTime or DateOnly.</summary>
    public static DateOnly ReadDate(object value) => TypeHandlers.ReadStoredDate(value);

    public static DateOnly? ReadDateOrNull(object? value) => value is null or DBNull ? null : ReadDate(value);

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
}
