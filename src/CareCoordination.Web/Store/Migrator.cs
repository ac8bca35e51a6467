using System.Reflection;
using System.Text.RegularExpressions;
using Dapper;

namespace CareCoordination.Store;

/// <summary>
/// Applies the numbered scripts in Store/Migrations in order, with their version rows, in one transaction, so a failed
/// script leaves nothing of the run behind and a re-run is a no-op. One transaction, not one a script: a new store takes
/// every script at once, and each commit was a round trip or four and a wait for the disk (issue 14, cold start).
/// </summary>
public sealed partial class Migrator(Database database, ILogger<Migrator> logger)
{
    public sealed record Script(int Version, string Name, string Sql);

    public static IReadOnlyList<Script> Scripts { get; } = LoadScripts();

    public Task<IReadOnlyList<int>> ApplyAsync(CancellationToken cancellationToken = default) => ApplyAsync(Scripts, cancellationToken);

    /// <summary>The run with scripts of a test's own, numbered 1..n as <see cref="Scripts"/> are.</summary>
    internal async Task<IReadOnlyList<int>> ApplyAsync(IReadOnlyList<Script> scripts, CancellationToken cancellationToken = default)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        // A restart on a store that is up to date (the usual case) reads once and writes nothing: one write transaction per
        // script, each waiting for the writer's lock, was most of a restart's store time. An applied version is never
        // unapplied, so what this read sees applied needs no lock.
        var known = await AppliedAsync(connection, cancellationToken);
        RefuseNewer(known, scripts);
        if (known is not null && scripts.All(s => known.Contains(s.Version)))
        {
            return [];
        }
        var applied = new List<int>();
        await using var transaction = await database.BeginWriteAsync(connection, cancellationToken);
        // Under the lock: two nodes starting together on PostgreSQL would otherwise race to create the table and apply the scripts.
        if (database.MigrationLock is { } lockSql)
        {
            await connection.ExecuteAsync(lockSql, transaction: transaction);
        }
        await connection.ExecuteAsync(
            "CREATE TABLE IF NOT EXISTS schema_migration (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)",
            transaction: transaction);
        // Read inside the lock: another node may have applied them while this one waited.
        var done = (await connection.QueryAsync<int>("SELECT version FROM schema_migration", transaction: transaction)).ToHashSet();
        RefuseNewer(done, scripts);
        foreach (var script in scripts.Where(s => !done.Contains(s.Version)))
        {
            try
            {
                await RunScriptAsync(connection, transaction, database.Dialect(script.Sql));
            }
            catch (EndedItsTransaction)
            {
                // Unlike a failed statement, not all taken back: what the script did before its COMMIT is kept.
                throw new InvalidOperationException(
                    $"Migration {script.Version} {script.Name} ended the transaction the run is in; scripts must not COMMIT, END or ROLLBACK. "
                    + "What the run did up to the end of that script may be committed; no script after it was applied.");
            }
            catch (System.Data.Common.DbException error)
            {
                // The store's own message names no script, and nothing of the run is left to show how far it got.
                throw new InvalidOperationException(
                    $"Migration {script.Version} {script.Name} failed, so none of this start's {scripts.Count(s => !done.Contains(s.Version))} migrations was applied: {error.Message}", error);
            }
            await connection.ExecuteAsync(
                "INSERT INTO schema_migration (version, name, applied_at) VALUES (@Version, @Name, @At)",
                new { script.Version, script.Name, At = DateTimeOffset.UtcNow }, transaction);
            applied.Add(script.Version);
        }
        // Not cancelled part-way: a COMMIT sent and then abandoned would leave it unknown whether the scripts were applied.
        await transaction.CommitAsync(CancellationToken.None);
        // Said once committed: a script that failed took the whole run back with it.
        foreach (var version in applied)
        {
            logger.LogInformation("Applied migration {Version} {Name}", version, scripts[version - 1].Name);
        }
        return applied;
    }

    /// <summary>
    /// Every statement of a script, stopping at the first that fails, with its error. On SQLite not through a command:
    /// Microsoft.Data.Sqlite loses the failure of any statement after one it takes for a query (it finishes a batch's reader
    /// inside a catch-all: dotnet/efcore#32740), and an ALTER TABLE ... ADD COLUMN with a CHECK, which SQLite checks against
    /// the rows there, is taken for one: a script that failed after such a statement was recorded as applied, the rest of it
    /// never run (script 3 did so here when its table was in the way). sqlite3_exec runs each statement in turn inside the open
    /// transaction and returns the first failure. (Fixed upstream after 10.0 by dotnet/efcore#38971; until then, this.)
    /// A script that ends the run's transaction (COMMIT, END, ROLLBACK) is refused on both stores.
    /// </summary>
    internal static async Task RunScriptAsync(System.Data.Common.DbConnection connection, System.Data.Common.DbTransaction transaction, string sql)
    {
        if (connection is Microsoft.Data.Sqlite.SqliteConnection sqlite)
        {
            var result = SQLitePCL.raw.sqlite3_exec(sqlite.Handle, sql, out _);
            // A script that ended the transaction (COMMIT, END) would leave the rest of the run outside it, whether or not a
            // statement after that failed; said first, since the run's usual words ("none was applied") would then be wrong. An
            // empty transaction is begun again so that the caller's rollback has one to end.
            if (SQLitePCL.raw.sqlite3_get_autocommit(sqlite.Handle) != 0)
            {
                SQLitePCL.raw.sqlite3_exec(sqlite.Handle, "BEGIN", out _);
                throw new EndedItsTransaction();
            }
            Microsoft.Data.Sqlite.SqliteException.ThrowExceptionForRC(result, sqlite.Handle);
            return;
        }
        // PostgreSQL runs a COMMIT or ROLLBACK in a script as it comes; the run then went on to its next statement, which failed
        // with Npgsql's "Transaction is already completed", naming no script. Asked after the script and after any failure of
        // it, since a statement that fails after a COMMIT does not undo what the COMMIT kept ("none was applied" would be wrong).
        try
        {
            await connection.ExecuteAsync(sql, transaction: transaction);
        }
        catch (System.Data.Common.DbException) when (connection is Npgsql.NpgsqlConnection)
        {
            if (await EndedAsync(connection))
            {
                throw new EndedItsTransaction();
            }
            throw;
        }
        if (await EndedAsync(connection))
        {
            throw new EndedItsTransaction();
        }
    }

    /// <summary>
    /// PostgreSQL: whether the run's transaction has ended. Npgsql does not say publicly, so the server is asked: a savepoint
    /// can only be taken inside a transaction block (one aborted by a failed statement is still one: its own error, not this).
    /// Sent without the transaction object, which Npgsql refuses once it has seen the transaction end.
    /// </summary>
    private static async Task<bool> EndedAsync(System.Data.Common.DbConnection connection)
    {
        try
        {
            await connection.ExecuteAsync("SAVEPOINT migration_script_ended; RELEASE SAVEPOINT migration_script_ended");
            return false;
        }
        catch (Npgsql.PostgresException outside) when (outside.SqlState == Npgsql.PostgresErrorCodes.NoActiveSqlTransaction)
        {
            return true;
        }
        catch (Npgsql.PostgresException aborted) when (aborted.SqlState == Npgsql.PostgresErrorCodes.InFailedSqlTransaction)
        {
            return false;
        }
    }

    internal sealed class EndedItsTransaction() : InvalidOperationException("A migration script ended the transaction it runs in; scripts must not COMMIT, END or ROLLBACK.");

    /// <summary>
    /// A store a newer version has migrated is not served by this one: its code does not know the tables and columns that
    /// version changed, and would write into the old shapes (an upgrade rolled back to the old build, or a newer backup
    /// restored by hand). Its own scripts all applied, it would otherwise start as if nothing were wrong.
    /// </summary>
    private static void RefuseNewer(HashSet<int>? applied, IReadOnlyList<Script> scripts)
    {
        if (applied is { Count: > 0 } && applied.Max() > scripts.Count)
        {
            throw new InvalidOperationException(
                $"The store was migrated by a newer version of CareCoordination (schema version {applied.Max()}; this one knows {scripts.Count}). "
                + "Start that version on it, or restore a backup made by this one.");
        }
    }

    /// <summary>The versions applied, or null on a store that has no schema_migration table yet.</summary>
    private async Task<HashSet<int>?> AppliedAsync(System.Data.Common.DbConnection connection, CancellationToken cancellationToken)
    {
        var exists = database.Provider == StoreProvider.PostgreSQL
            ? "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'schema_migration'"
            : "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migration'";
        if (await connection.ExecuteScalarAsync<long>(new CommandDefinition(exists, cancellationToken: cancellationToken)) == 0)
        {
            return null;
        }
        return [.. await connection.QueryAsync<int>(new CommandDefinition("SELECT version FROM schema_migration", cancellationToken: cancellationToken))];
    }

    private static List<Script> LoadScripts()
    {
        var assembly = typeof(Migrator).Assembly;
        var scripts = new List<Script>();
        foreach (var resource in assembly.GetManifestResourceNames())
        {
            var match = ScriptName().Match(resource);
            if (!match.Success)
            {
                continue;
            }
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream);
            scripts.Add(new Script(int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), match.Groups[2].Value, reader.ReadToEnd()));
        }
        scripts.Sort((a, b) => a.Version.CompareTo(b.Version));
        for (var i = 0; i < scripts.Count; i++)
        {
            if (scripts[i].Version != i + 1)
            {
                throw new InvalidOperationException($"Migration scripts must be numbered 1..n without gaps; found {scripts[i].Version} at position {i + 1}.");
            }
        }
        return scripts;
    }

    [GeneratedRegex(@"\.Migrations\.(\d{4})_([A-Za-z0-9_]+)\.sql$")]
    private static partial Regex ScriptName();
}
