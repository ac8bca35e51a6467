using System.Data;
using System.Globalization;
using Dapper;
using Microsoft.Data.Sqlite;

namespace CareCoordination.Store;

/// <summary>
/// SQLite has no date types: it keeps ISO text, which sorts like time only if every value has one
/// fixed UTC format. PostgreSQL hands back DateTime for timestamptz and date. These handlers make both
/// arrive as DateTimeOffset / DateOnly.
/// </summary>
public static class TypeHandlers
{
    private static int _registered;

    public static void Register()
    {
        if (Interlocked.Exchange(ref _registered, 1) == 1)
        {
            return;
        }
        // Dapper binds these types itself unless their built-in mapping is removed first; then our
        // handlers see every parameter too, not only every column read.
        SqlMapper.RemoveTypeMap(typeof(DateTimeOffset));
        SqlMapper.RemoveTypeMap(typeof(DateOnly));
        SqlMapper.AddTypeHandler(new DateTimeOffsetHandler());
        SqlMapper.AddTypeHandler(new DateOnlyHandler());
    }

    public static string ToSqliteText(DateTimeOffset value) =>
        value.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);

    /// <summary>
    /// A time as SQLite keeps it. The store writes one fixed shape (<see cref="ToSqliteText"/>), read here digit by digit: the
    /// culture-aware parse took most of a report's .NET time at 1M referrals (a year of equity is a million times read,
    /// issue 13). Any other shape (an older row, a hand-written one) still goes through the general parse.
    /// </summary>
    public static DateTimeOffset ReadSqliteTime(string text) => ReadSqliteTime(text.AsSpan());

    /// <inheritdoc cref="ReadSqliteTime(string)"/>
    public static DateTimeOffset ReadSqliteTime(ReadOnlySpan<char> text)
    {
        // yyyy-MM-ddTHH:mm:ss.fffffffZ
        if (text.Length == 28 && text[4] == '-' && text[7] == '-' && text[10] == 'T' && text[13] == ':' && text[16] == ':' && text[19] == '.' && text[27] == 'Z'
            && Digits(text, 0, 4, out var year) && Digits(text, 5, 2, out var month) && Digits(text, 8, 2, out var day)
            && Digits(text, 11, 2, out var hour) && Digits(text, 14, 2, out var minute) && Digits(text, 17, 2, out var second)
            && Digits(text, 20, 7, out var ticks)
            && year >= 1 && month is >= 1 and <= 12 && day >= 1 && day <= DateTime.DaysInMonth(year, month) && hour < 24 && minute < 60 && second < 60)
        {
            return new DateTimeOffset(new DateTime(year, month, day, hour, minute, second, DateTimeKind.Utc).AddTicks(ticks));
        }
        return DateTimeOffset.Parse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);
    }

    /// <summary>A time as either store hands it back untyped: SQLite's text, PostgreSQL's UTC DateTime.</summary>
    public static DateTimeOffset ReadStoredTime(object value) => value switch
    {
        string text => ReadSqliteTime(text),
        DateTime time => new DateTimeOffset(DateTime.SpecifyKind(time, DateTimeKind.Utc)),
        DateTimeOffset time => time.ToUniversalTime(),
        _ => throw new InvalidCastException($"Cannot read {value.GetType().Name} as a time."),
    };

    /// <summary>A date as either store hands it back untyped: SQLite's text, PostgreSQL's DateOnly (or DateTime).</summary>
    public static DateOnly ReadStoredDate(object value) => value switch
    {
        string text => ReadSqliteDate(text),
        DateOnly date => date,
        DateTime time => DateOnly.FromDateTime(time),
        _ => throw new InvalidCastException($"Cannot read {value.GetType().Name} as a date."),
    };

    /// <summary>A date as SQLite keeps it (yyyy-MM-dd, or the day of a time written in full).</summary>
    public static DateOnly ReadSqliteDate(string text) => ReadSqliteDate(text.AsSpan());

    /// <inheritdoc cref="ReadSqliteDate(string)"/>
    public static DateOnly ReadSqliteDate(ReadOnlySpan<char> text) =>
        text.Length >= 10 && text[4] == '-' && text[7] == '-' && Digits(text, 0, 4, out var year) && Digits(text, 5, 2, out var month) && Digits(text, 8, 2, out var day)
            && year >= 1 && month is >= 1 and <= 12 && day >= 1 && day <= DateTime.DaysInMonth(year, month)
            ? new DateOnly(year, month, day)
            : DateOnly.ParseExact(text[..10], "yyyy-MM-dd", CultureInfo.InvariantCulture);

    private static bool Digits(ReadOnlySpan<char> text, int start, int count, out int value)
    {
        value = 0;
        for (var i = start; i < start + count; i++)
        {
            var digit = text[i] - '0';
            if ((uint)digit > 9)
            {
                return false;
            }
            value = value * 10 + digit;
        }
        return true;
    }

    private sealed class DateTimeOffsetHandler : SqlMapper.TypeHandler<DateTimeOffset>
    {
        public override void SetValue(IDbDataParameter parameter, DateTimeOffset value)
        {
            if (parameter is SqliteParameter)
            {
                parameter.DbType = DbType.String;
                parameter.Value = ToSqliteText(value);
            }
            else
            {
                parameter.DbType = DbType.DateTimeOffset;
                parameter.Value = value.ToUniversalTime();
            }
        }

        public override DateTimeOffset Parse(object value) => value switch
        {
            DateTimeOffset dto => dto.ToUniversalTime(),
            DateTime dt => new DateTimeOffset(DateTime.SpecifyKind(dt, DateTimeKind.Utc)),
            string text => ReadSqliteTime(text),
            _ => throw new DataException($"Cannot read {value.GetType().Name} as a time."),
        };
    }

    private sealed class DateOnlyHandler : SqlMapper.TypeHandler<DateOnly>
    {
        public override void SetValue(IDbDataParameter parameter, DateOnly value)
        {
            if (parameter is SqliteParameter)
            {
                parameter.DbType = DbType.String;
                parameter.Value = value.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
            }
            else
            {
                parameter.DbType = DbType.Date;
                parameter.Value = value;
            }
        }

        public override DateOnly Parse(object value) => value switch
        {
            DateOnly d => d,
            DateTime dt => DateOnly.FromDateTime(dt),
            string text => ReadSqliteDate(text),
            _ => throw new DataException($"Cannot read {value.GetType().Name} as a date."),
        };
    }
}
