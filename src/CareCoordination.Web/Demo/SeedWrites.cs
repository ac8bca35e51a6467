using System.Collections.Concurrent;
using System.Data.Common;
using System.Reflection;
using System.Text.RegularExpressions;
using Dapper;
using Npgsql;

namespace CareCoordination.Demo;

/// <summary>
/// The demo seed's writes, table by table, inside the seed's one transaction. SQLite runs in process, so a statement per row
/// costs microseconds and stays as it was. PostgreSQL pays a round trip per statement: the seed's 12,000 of them were most of
/// its cold start (issue 14). There a table's rows go in one INSERT (a typed array per column, unnested), their ids reserved
/// from the table's identity first (the order of RETURNING's rows is not promised). The seed writes each row whole, so it
/// has no UPDATEs to send.
/// </summary>
internal sealed partial class SeedWrites(DbConnection connection, DbTransaction transaction, CancellationToken cancellationToken)
{
    // PostgreSQL's protocol allows 65,535 parameters a statement; well under, so that a batch's text stays small too.
    private const int ParametersPerStatement = 30_000;

    private static readonly ConcurrentDictionary<Type, PropertyInfo[]> Properties = new();

    private bool Postgres => connection is NpgsqlConnection;

    /// <summary>
    /// <paramref name="sql"/> is one row's <c>INSERT INTO t (columns) VALUES (@A, @B)</c>; with <paramref name="keepId"/>, each
    /// row is told the id it was given. With <paramref name="key"/> (or <paramref name="keepId"/>, key "id"), the rows take that
    /// identity column's values in their order, as one at a time would.
    /// </summary>
    public async Task InsertAsync<T>(string sql, IEnumerable<T> rows, Func<T, object> parameters, Action<T, long>? keepId = null, string? key = null)
    {
        var list = rows as IReadOnlyList<T> ?? rows.ToList();
        if (list.Count == 0)
        {
            return;
        }
        if (!Postgres)
        {
            if (keepId is null)
            {
                await connection.ExecuteAsync(new CommandDefinition(sql, list.Select(parameters), transaction, cancellationToken: cancellationToken));
                return;
            }
            foreach (var row in list)
            {
                keepId(row, await connection.ExecuteScalarAsync<long>(
                    new CommandDefinition(sql + " RETURNING id", parameters(row), transaction, cancellationToken: cancellationToken)));
            }
            return;
        }

        var insert = InsertShape().Match(sql);
        if (!insert.Success)
        {
            throw new ArgumentException("Expected INSERT INTO table (columns) VALUES (...): " + sql, nameof(sql));
        }
        var table = insert.Groups["table"].Value;
        key ??= keepId is null ? null : "id";
        long[]? ids = null;
        if (key is not null)
        {
            ids = (await connection.QueryAsync<long>(new CommandDefinition(
                "SELECT nextval(pg_get_serial_sequence(@table, @key)) FROM generate_series(1, @count)",
                new { table, key, count = list.Count }, transaction, cancellationToken: cancellationToken))).Order().ToArray();
            for (var i = 0; keepId is not null && i < list.Count; i++)
            {
                keepId(list[i], ids[i]);
            }
        }
        // One typed array per parameter, unnested in one statement: a county's rows in one round trip per table, whatever their number.
        var values = list.Select(parameters).ToList();
        var elements = insert.Groups["values"].Value.Trim()[1..^1].Split(',', StringSplitOptions.TrimEntries);
        var properties = Properties.GetOrAdd(values[0].GetType(), t => t.GetProperties(BindingFlags.Public | BindingFlags.Instance));
        var columns = new List<(string Name, PropertyInfo Property)>();
        var select = elements.Select(e =>
        {
            if (!e.StartsWith('@'))
            {
                return e;
            }
            var name = e[1..];
            var index = columns.FindIndex(c => string.Equals(c.Name, name, StringComparison.OrdinalIgnoreCase));
            if (index < 0)
            {
                index = columns.Count;
                columns.Add((name, properties.FirstOrDefault(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase))
                    ?? throw new ArgumentException($"No property for {e} in {sql}")));
            }
            return $"v.c{index}";
        }).ToList();
        await using var command = (NpgsqlCommand)connection.CreateCommand();
        command.Transaction = (NpgsqlTransaction)transaction;
        var unnested = new List<string>();
        if (ids is not null)
        {
            command.Parameters.Add(new NpgsqlParameter("k", ids));
            unnested.Add("@k");
            select.Insert(0, "v.k");
        }
        for (var c = 0; c < columns.Count; c++)
        {
            var type = columns[c].Property.PropertyType;
            var array = Array.CreateInstance(type, values.Count);
            for (var row = 0; row < values.Count; row++)
            {
                // timestamptz takes UTC only, as the one-row path's type handler does.
                var value = columns[c].Property.GetValue(values[row]);
                array.SetValue(value is DateTimeOffset at ? at.ToUniversalTime() : value, row);
            }
            command.Parameters.Add(new NpgsqlParameter($"c{c}", array));
            unnested.Add($"@c{c}");
        }
        var aliases = (ids is null ? [] : new[] { "k" }).Concat(columns.Select((_, c) => $"c{c}"));
        command.CommandText = $"INSERT INTO {table} ({(ids is null ? "" : key + ", ")}{insert.Groups["columns"].Value}) "
            + $"SELECT {string.Join(", ", select)} FROM unnest({string.Join(", ", unnested)}) AS v({string.Join(", ", aliases)})";
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    [GeneratedRegex(@"^\s*INSERT INTO (?<table>\w+)\s*\((?<columns>[^)]*)\)\s*VALUES\s*(?<values>\(.*\))\s*$", RegexOptions.Singleline)]
    private static partial Regex InsertShape();
}
