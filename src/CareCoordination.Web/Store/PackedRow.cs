using System.Globalization;

namespace CareCoordination.Store;

/// <summary>
/// A row handed back by the store as one text: its fields joined by <see cref="Separator"/>, the ASCII unit separator, which
/// no stored number, date, time or code holds. PERF: Microsoft.Data.Sqlite makes three to six native calls for each column
/// it reads, each taking and releasing the statement's handle: a year's 570,000 client-level events read as 12 columns each
/// spent about a fifth of the file's CPU in them (perf, issue 13), and the capacity board's fortnight at 1M referrals a
/// third of its time (issue 14). As one column a row costs a few calls. For queries that read tens of thousands of rows.
/// </summary>
public static class PackedRow
{
    public const char Separator = '\u001f';

    /// <summary>
    /// The SQL of one text holding <paramref name="columns"/> in order, each NULL written as nothing. A time (a column named
    /// "..._at", as every time in the store is) is written in SQLite's stored shape on either store (TypeHandlers.ToSqliteText;
    /// PostgreSQL's to the microsecond), and a date named in <paramref name="dates"/> as yyyy-MM-dd: on PostgreSQL by to_char,
    /// since a cast to text follows the server's DateStyle. Anything else is cast to text as the store casts it (numbers and
    /// codes read alike; booleans and reals do not, so read them as such only on one store). The last column may hold the
    /// separator itself (Fields.Rest), so free text goes last.
    /// </summary>
    public static string Select(StoreProvider provider, IEnumerable<string> columns, params string[] dates) =>
        // concat_ws (SQLite 3.44, PostgreSQL 9.1) makes the text once, where "||" copied it again with each field.
        $"concat_ws('{Separator}', " + string.Join(", ", columns.Select(column => provider switch
        {
            StoreProvider.PostgreSQL when column.EndsWith("_at", StringComparison.Ordinal) =>
                $"COALESCE(to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"0Z\"'), '')",
            StoreProvider.PostgreSQL when dates.Contains(column) => $"COALESCE(to_char({column}, 'YYYY-MM-DD'), '')",
            _ => $"COALESCE(CAST({column} AS TEXT), '')",
        })) + ")";

    /// <summary>A packed row's fields, read in the order they were packed (<see cref="Select"/>); an empty field was NULL.</summary>
    public ref struct Fields(ReadOnlySpan<char> row)
    {
        private ReadOnlySpan<char> _rest = row;

        public ReadOnlySpan<char> Next()
        {
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
        public readonly ReadOnlySpan<char> Rest() => _rest;

        public long Number() => long.Parse(Next(), NumberStyles.None, CultureInfo.InvariantCulture);

        public long? NumberOrNone() => Next() is { IsEmpty: false } field ? long.Parse(field, NumberStyles.None, CultureInfo.InvariantCulture) : null;

        public DateOnly Date() => TypeHandlers.ReadSqliteDate(Next());

        public DateTimeOffset Time() => TypeHandlers.ReadSqliteTime(Next());

        public DateTimeOffset? TimeOrNone() => Next() is { IsEmpty: false } field ? TypeHandlers.ReadSqliteTime(field) : null;
    }
}
