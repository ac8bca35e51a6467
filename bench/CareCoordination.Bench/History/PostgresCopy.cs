using System.Diagnostics;
using System.Globalization;
using CareCoordination.Store;
using Dapper;
using Microsoft.Data.Sqlite;
using Npgsql;
using NpgsqlTypes;

namespace CareCoordination.Bench.History;

/// <summary>
/// The large store on PostgreSQL: the SQLite store <see cref="LargeStore"/> wrote, copied row for row into a database the
/// product has migrated, so that both stores are measured on the same history (the same ids, people and times). Written
/// through the product's own write path a million referrals would take hours; through LargeStore's SQL a second time it
/// would be a second generator to keep in step with the schema. The schema is the product's: every table the two stores
/// share is emptied and filled by binary COPY, column by column as PostgreSQL types them; the one table PostgreSQL keeps
/// differently (the people a read disclosed, one array a read since migration 0040) is built from SQLite's rows.
/// </summary>
public static class PostgresCopy
{
    private sealed record Column(string Name, string Type);

    public static async Task<TimeSpan> CopyAsync(string sqlitePath, string postgresConnectionString, string marker)
    {
        var clock = Stopwatch.StartNew();
        await using var source = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = sqlitePath, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        await source.OpenAsync();
        await using var target = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(postgresConnectionString) { Pooling = false, CommandTimeout = 0 }.ToString());
        await target.OpenAsync();

        var sqliteTables = (await source.QueryAsync<string>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")).ToHashSet();
        var columns = (await target.QueryAsync<(string Table, string Name, string Type)>("""
            SELECT c.table_name, c.column_name, c.data_type
            FROM information_schema.columns c JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
            WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' AND c.is_generated = 'NEVER'
            ORDER BY c.table_name, c.ordinal_position
            """))
            .GroupBy(c => c.Table)
            .ToDictionary(g => g.Key, g => g.Select(c => new Column(c.Name, c.Type)).ToList());
        var shared = columns.Keys.Where(t => sqliteTables.Contains(t) && t != "schema_migration").Order(StringComparer.Ordinal).ToList();
        var peopleByRead = columns.ContainsKey("audit_read_people") && sqliteTables.Contains("audit_read_person");

        // The product's demo seed is in both; SQLite's copy of it is the one the history's rows name. Without CASCADE: a table
        // PostgreSQL alone has, referring to these, fails the copy rather than being emptied unseen.
        var emptied = peopleByRead ? [.. shared, "audit_read_people"] : shared;
        await target.ExecuteAsync($"TRUNCATE {string.Join(", ", emptied)}");
        // Each table whole, in any order: the foreign keys' triggers are the replica role's to skip (SQLite's rows already met
        // them). Setting the role needs a superuser, as the bench's server connection is (test.sh's own cluster).
        await target.ExecuteAsync("SET session_replication_role = replica");
        long rows = 0;
        foreach (var table in shared)
        {
            var sqliteColumns = (await source.QueryAsync<string>("SELECT name FROM pragma_table_info(@table)", new { table })).ToHashSet(StringComparer.Ordinal);
            var copied = columns[table].Where(c => sqliteColumns.Contains(c.Name)).ToList();
            rows += await CopyTableAsync(source, target, table, copied);
        }
        if (peopleByRead)
        {
            rows += await CopyPeopleByReadAsync(source, target);
        }
        await target.ExecuteAsync("SET session_replication_role = DEFAULT");

        // Identities carry on after the copied rows, as they would after the product's own writes.
        var identities = await target.QueryAsync<(string Table, string Column)>("""
            SELECT table_name, column_name FROM information_schema.columns
            WHERE table_schema = 'public' AND (is_identity = 'YES' OR column_default LIKE 'nextval(%')
            """);
        foreach (var (table, column) in identities.Where(i => shared.Contains(i.Table)))
        {
            await target.ExecuteAsync(
                $"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), COALESCE((SELECT MAX({column}) FROM {table}), 0) + 1, false)");
        }
        var (sqliteReferrals, postgresReferrals) = (await source.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM referral"),
            await target.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM referral"));
        Report.Current.Check(sqliteReferrals == postgresReferrals,
            $"history: the copy into PostgreSQL holds {postgresReferrals} referrals of the SQLite store's {sqliteReferrals}");
        // A store that has served for years has been vacuumed and analysed behind its writes: plans and visibility as it would be.
        await target.ExecuteAsync("VACUUM ANALYZE");
        // Last: the database says the copy finished (HistoryCommand reuses only such a one).
        await target.ExecuteAsync($"COMMENT ON DATABASE \"{target.Database}\" IS '{marker.Replace("'", "''", StringComparison.Ordinal)}'");
        Console.WriteLine($"-- history: copied {shared.Count} tables, {rows:N0} rows, into PostgreSQL in {clock.Elapsed.TotalSeconds:F0} s");
        return clock.Elapsed;
    }

    private static async Task<long> CopyTableAsync(SqliteConnection source, NpgsqlConnection target, string table, IReadOnlyList<Column> columns)
    {
        var names = string.Join(", ", columns.Select(c => c.Name));
        await using var command = source.CreateCommand();
        command.CommandText = $"SELECT {names} FROM {table}";
        await using var reader = await command.ExecuteReaderAsync();
        await using var writer = await target.BeginBinaryImportAsync($"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)");
        long rows = 0;
        while (await reader.ReadAsync())
        {
            await writer.StartRowAsync();
            for (var i = 0; i < columns.Count; i++)
            {
                if (reader.IsDBNull(i))
                {
                    await writer.WriteNullAsync();
                    continue;
                }
                var value = reader.GetValue(i);
                try
                {
                    await WriteAsync(writer, columns[i].Type, value);
                }
                catch (Exception error) when (error is FormatException or InvalidCastException or NotSupportedException or OverflowException)
                {
                    throw new InvalidOperationException($"{table}.{columns[i].Name} ({columns[i].Type}): cannot copy {value}", error);
                }
            }
            rows++;
        }
        await writer.CompleteAsync();
        return rows;
    }

    private static Task WriteAsync(NpgsqlBinaryImporter writer, string type, object value) => type switch
    {
        "bigint" => writer.WriteAsync(Convert.ToInt64(value, CultureInfo.InvariantCulture), NpgsqlDbType.Bigint),
        "integer" => writer.WriteAsync(Convert.ToInt32(value, CultureInfo.InvariantCulture), NpgsqlDbType.Integer),
        "smallint" => writer.WriteAsync(Convert.ToInt16(value, CultureInfo.InvariantCulture), NpgsqlDbType.Smallint),
        "boolean" => writer.WriteAsync(Convert.ToInt64(value, CultureInfo.InvariantCulture) != 0, NpgsqlDbType.Boolean),
        "double precision" => writer.WriteAsync(Convert.ToDouble(value, CultureInfo.InvariantCulture), NpgsqlDbType.Double),
        "real" => writer.WriteAsync(Convert.ToSingle(value, CultureInfo.InvariantCulture), NpgsqlDbType.Real),
        "numeric" => writer.WriteAsync(Convert.ToDecimal(value, CultureInfo.InvariantCulture), NpgsqlDbType.Numeric),
        "timestamp with time zone" => writer.WriteAsync(TypeHandlers.ReadSqliteTime((string)value).UtcDateTime, NpgsqlDbType.TimestampTz),
        "date" => writer.WriteAsync(TypeHandlers.ReadSqliteDate((string)value), NpgsqlDbType.Date),
        "bytea" => writer.WriteAsync((byte[])value, NpgsqlDbType.Bytea),
        "text" or "character varying" when value is not byte[] => writer.WriteAsync(Convert.ToString(value, CultureInfo.InvariantCulture)!, NpgsqlDbType.Text),
        _ => throw new NotSupportedException($"no copy for PostgreSQL type {type}"),
    };

    private static async Task<long> CopyPeopleByReadAsync(SqliteConnection source, NpgsqlConnection target)
    {
        await using var command = source.CreateCommand();
        command.CommandText = "SELECT audit_id, person_id FROM audit_read_person ORDER BY audit_id, person_id";
        await using var reader = await command.ExecuteReaderAsync();
        await using var writer = await target.BeginBinaryImportAsync("COPY audit_read_people (audit_id, person_ids) FROM STDIN (FORMAT BINARY)");
        long rows = 0;
        long? read = null;
        var people = new List<long>();
        async Task FlushAsync()
        {
            if (read is { } id)
            {
                await writer.StartRowAsync();
                await writer.WriteAsync(id, NpgsqlDbType.Bigint);
                await writer.WriteAsync(people.ToArray(), NpgsqlDbType.Array | NpgsqlDbType.Bigint);
                rows++;
            }
            people.Clear();
        }
        while (await reader.ReadAsync())
        {
            var id = reader.GetInt64(0);
            if (id != read)
            {
                await FlushAsync();
                read = id;
            }
            people.Add(reader.GetInt64(1));
        }
        await FlushAsync();
        await writer.CompleteAsync();
        return rows;
    }
}
