using Dapper;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace CareCoordination.Bench.Load;

/// <summary>Where a server under test keeps its rows: a SQLite file in the run's temp folder, or a database of its own on the PostgreSQL server.</summary>
public sealed record StoreUnderTest(string Kind, string Path, string? Server)
{
    public bool IsPostgres => Server is not null;

    public static StoreUnderTest Sqlite(string folder, string name) => new("SQLite", System.IO.Path.Combine(folder, name + ".db"), null);

    public static StoreUnderTest Postgres(string server, string database) => new("PostgreSQL", database, server);

    public async Task CreateAsync()
    {
        if (Server is not null)
        {
            await Bench.Postgres.CreateDatabaseAsync(Server, Path);
        }
    }

    public async Task DropAsync()
    {
        if (Server is not null)
        {
            await Bench.Postgres.DropDatabaseAsync(Server, Path);
        }
    }

    /// <summary>The product's settings for this store (everything else as the product ships it).</summary>
    public Dictionary<string, string> ProductSettings() => Server is null
        ? new() { ["Database__Provider"] = "Sqlite", ["ConnectionStrings__CareCoordination"] = "Data Source=" + Path }
        : new() { ["Database__Provider"] = "PostgreSQL", ["ConnectionStrings__CareCoordination"] = Bench.Postgres.For(Server, Path) };

    public string[] BareAppArguments(bool existing) =>
        [.. Server is null ? ["--store", Path] : (string[])["--postgres", Server, "--database", Path], .. existing ? (string[])["--existing"] : []];

    /// <summary>
    /// Bytes the store takes, read while its server is stopped: the SQLite file after a full checkpoint (so no WAL is left
    /// over), or pg_database_size.
    /// </summary>
    public async Task<long> SizeAsync()
    {
        if (Server is not null)
        {
            return await Bench.Postgres.SizeAsync(Server, Path);
        }
        await using (var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path, Pooling = false }.ToString()))
        {
            await connection.OpenAsync();
            await connection.ExecuteAsync("PRAGMA wal_checkpoint(TRUNCATE)");
        }
        return new[] { Path, Path + "-wal" }.Where(File.Exists).Sum(f => new FileInfo(f).Length);
    }

    /// <summary>
    /// PostgreSQL: each table, index and TOAST table of the store with every fork (what pg_database_size counts), a table's
    /// TOAST (with its index) as "table (toast)".
    /// </summary>
    private const string PostgresRelations = """
        SELECT c.relname AS name, pg_total_relation_size(c.oid) - pg_indexes_size(c.oid) - COALESCE(pg_total_relation_size(NULLIF(c.reltoastrelid, 0)), 0) AS bytes
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'm')
        UNION ALL
        SELECT c.relname || ' (toast)', pg_total_relation_size(c.reltoastrelid)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'm') AND c.reltoastrelid <> 0
        UNION ALL
        SELECT c.relname, pg_relation_size(c.oid)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'i'
        """;

    /// <summary>
    /// Bytes each table and index takes, to say where a referral's growth goes. SQLite: the SQLite the app ships has no dbstat,
    /// so this asks the sqlite3 program, when there is one (else it is empty). PostgreSQL: its own size functions.
    /// </summary>
    public async Task<Dictionary<string, long>> BytesByTableAsync()
    {
        var result = new Dictionary<string, long>();
        if (Server is not null)
        {
            await using var pg = new NpgsqlConnection(Bench.Postgres.For(Server, Path) + ";Pooling=false");
            await pg.OpenAsync();
            foreach (var (name, bytes) in await pg.QueryAsync<(string Name, long Bytes)>(PostgresRelations))
            {
                result[name] = bytes;
            }
            return result;
        }
        try
        {
            var start = new System.Diagnostics.ProcessStartInfo("sqlite3") { RedirectStandardOutput = true, RedirectStandardError = true };
            start.ArgumentList.Add(Path);
            start.ArgumentList.Add("SELECT name || '|' || SUM(pgsize) FROM dbstat GROUP BY name");
            using var process = System.Diagnostics.Process.Start(start)!;
            var output = await process.StandardOutput.ReadToEndAsync();
            await process.WaitForExitAsync();
            foreach (var line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                var bar = line.LastIndexOf('|');
                result[line[..bar]] = long.Parse(line[(bar + 1)..], System.Globalization.CultureInfo.InvariantCulture);
            }
        }
        catch (System.ComponentModel.Win32Exception)
        {
            // No sqlite3 program here: the total growth is still measured.
        }
        return result;
    }

    public async Task<long> CountAsync(string table)
    {
        if (Server is not null)
        {
            await using var pg = new NpgsqlConnection(Bench.Postgres.For(Server, Path) + ";Pooling=false");
            await pg.OpenAsync();
            return await pg.ExecuteScalarAsync<long>($"SELECT COUNT(*) FROM {table}");
        }
        await using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path, Pooling = false }.ToString());
        await connection.OpenAsync();
        return await connection.ExecuteScalarAsync<long>($"SELECT COUNT(*) FROM {table}");
    }
}
