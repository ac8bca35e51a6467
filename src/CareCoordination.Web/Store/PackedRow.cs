using System.Globalization;

namespace CareCoordination.Store;

/// <summary>
/// A row handed back by SQLite as one text: its fields joined by <see cref="Separator"/>, the ASCII unit separator, which
/// no stored number, date, time or code holds. PERF: Microsoft.Data.Sqlite makes three to six native calls for each column
/// it reads, each taking and releasing the statement's handle: a year's 570,000 client-level events read as 12 columns each
/// spent about a fifth of the file's CPU in them (perf, issue 13), and the capacity board's fortnight at 1M referrals a
/// third of its time (issue 14). As one column a row costs a few calls. For queries that read tens of thousands of rows.
/// PostgreSQL reads the same fields as columns of their own: Npgsql's columns cost nothing like SQLite's, and making the
/// text cost the server more than the whole read (to_char for each time: the fortnight's 12,000 triaged referrals 10.6 ms
/// against 1.5 ms as columns, issue 14). <see cref="Fields"/> reads either the same way.
/// </summary>
public static class PackedRow
{
    public const char Separator = '\u001f';

    /// <summary>
    /// The SQL of <paramref name="columns"/> in order: on SQLite one text, each NULL written as nothing; on PostgreSQL a column
    /// each. A time (a column named "..._at", as every time in the store is) is SQLite's stored shape (TypeHandlers.ToSqliteText)
    /// or PostgreSQL's timestamptz, a date named in <paramref name="dates"/> SQLite's yyyy-MM-dd or PostgreSQL's date. Anything
    /// else is cast to text as the store casts it (numbers and codes read alike; booleans and reals do not, so read them as
    /// such only on one store). The last column may hold the separator itself (Fields.Rest), so free text goes last.
    /// </summary>
    public static string Select(StoreProvider provider, IEnumerable<string> columns, params string[] dates) => provider switch
    {
        StoreProvider.PostgreSQL => string.Join(", ", columns.Select(column =>
            column.EndsWith("_at", StringComparison.Ordinal) || dates.Contains(column) ? column : $"CAST({column} AS TEXT)")),
        // concat_ws (SQLite 3.44) makes the text once, where "||" copied it again with each field.
        _ => $"concat_ws('{Separator}', " + string.Join(", ", columns.Select(column => $"COALESCE(CAST({column} AS TEXT), '')")) + ")",
    };

    /// <summary>
    /// A row's fields as <see cref="Select"/> asked for them, read in that order; on SQLite an empty field was NULL, and on
    /// PostgreSQL a NULL reads as an empty field.
    /// </summary>
    public ref struct Fields
    {
        private ReadOnlySpan<char> _rest;
        private readonly System.Data.Common.DbDataReader? _columns;
        private int _next;

        /// <summary>The current row of <paramref name="reader"/>, selected by <see cref="Select"/> for <paramref name="provider"/>.</summary>
        public Fields(System.Data.Common.DbDataReader reader, StoreProvider provider)
        {
            if (provider == StoreProvider.PostgreSQL)
            {
                _columns = reader;
            }
            else
            {
                _rest = reader.GetString(0);
            }
        }

        public ReadOnlySpan<char> Next()
        {
            if (_columns is { } columns)
            {
                var ordinal = _next++;
                return columns.IsDBNull(ordinal) ? [] : columns.GetString(ordinal);
            }
            var end = _rest.IndexOf(Separator);
            if (end < 0)
            {
                var last = _rest;
                _rest = [];
                return last;
            }
            var field = _rest[..end];
            _rest = _rest[(end + 1)..];
            return field;
        }

        /// <summary>All that is left, separators and all: the free text packed last.</summary>
        public readonly ReadOnlySpan<char> Rest() =>
            _columns is { } columns ? (columns.IsDBNull(_next) ? [] : columns.GetString(_next)) : _rest;

        public long Number() => long.Parse(Next(), NumberStyles.None, CultureInfo.InvariantCulture);

        public long? NumberOrNone() => Next() is { IsEmpty: false } field ? long.Parse(field, NumberStyles.None, CultureInfo.InvariantCulture) : null;

        public DateOnly Date() => _columns is { } columns ? TypeHandlers.ReadStoredDate(columns.GetValue(_next++)) : TypeHandlers.ReadSqliteDate(Next());

        public DateTimeOffset Time() => _columns is { } columns ? TypeHandlers.ReadStoredTime(columns.GetValue(_next++)) : TypeHandlers.ReadSqliteTime(Next());

        public DateTimeOffset? TimeOrNone()
        {
            if (_columns is { } columns)
            {
                var value = columns.GetValue(_next++);
                return value is DBNull ? null : TypeHandlers.ReadStoredTime(value);
            }
            return Next() is { IsEmpty: false } field ? TypeHandlers.ReadSqliteTime(field) : null;
        }
    }
}
