using System.Data;
using System.Data.Common;
using System.Diagnostics;
using System.Globalization;
using Dapper;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace CareCoordination.Store;

/// <summary>
/// The operator's backup and restore of the store, run as verbs of the app before the web host starts
/// (docs/operations.md). SQLite: the online backup API, a copy of the store at one instant while the server
/// goes on writing. PostgreSQL: pg_dump's custom format from one snapshot, put back by pg_restore in one
/// transaction. A restore goes only into an empty store unless told to overwrite, and the store it leaves
/// is checked: every migration applied and, on SQLite, its integrity.
/// </summary>
public static class Backup
{
    public const string Usage =
        """
        Usage:
          backup --to <file> [--overwrite]      copy the configured store into <file>
          restore --from <file> [--overwrite]   put a backup into the configured store (only an empty one unless --overwrite)
        The store is the one the app would serve (Database:Provider, ConnectionStrings:CareCoordination). See docs/operations.md.
        """;

    /// <summary>What a backup holds, or a restored store now holds.</summary>
    public sealed record Summary
    {
        public long SchemaVersion { get; init; }
        public long Referrals { get; init; }
        public long People { get; init; }
        public long Changes { get; init; }
        public long LastSeq { get; init; }

        public override string ToString() =>
            $"{Referrals} referrals, {People} people, {Changes} changes up to sequence number {LastSeq}, schema version {SchemaVersion}";
    }

    public sealed record Restored(Summary Summary, IReadOnlyList<int> MigrationsApplied);

    /// <summary>A verb and its options; the other arguments are configuration for the store, as when serving.</summary>
    public sealed record Command(string Verb, string? File, bool Overwrite, IReadOnlyList<string> HostArgs)
    {
        /// <summary>Null when the first argument is not a verb: then the app serves.</summary>
        public static Command? Parse(string[] args)
        {
            ArgumentNullException.ThrowIfNull(args);
            if (args.Length == 0 || args[0] is not ("backup" or "restore"))
            {
                return null;
            }
            var verb = args[0];
            var fileOption = verb == "backup" ? "--to" : "--from";
            string? file = null;
            var overwrite = false;
            var hostArgs = new List<string>();
            for (var i = 1; i < args.Length; i++)
            {
                if (args[i] == fileOption && i + 1 < args.Length)
                {
                    file = args[++i];
                }
                else if (args[i] == "--overwrite")
                {
                    overwrite = true;
                }
                else
                {
                    hostArgs.Add(args[i]);
                }
            }
            return new Command(verb, file, overwrite, hostArgs);
        }

        /// <returns>The process exit code: 0 done, 1 refused or failed (the reason on <paramref name="error"/>), 2 not understood.</returns>
        public async Task<int> RunAsync(IConfiguration configuration, TextWriter output, TextWriter error, CancellationToken cancellationToken = default)
        {
            ArgumentNullException.ThrowIfNull(configuration);
            ArgumentNullException.ThrowIfNull(output);
            ArgumentNullException.ThrowIfNull(error);
            if (File is null)
            {
                await error.WriteLineAsync(Usage);
                return 2;
            }
            var path = Path.GetFullPath(File);
            var postgresBin = configuration["Backup:PostgresBin"];
            try
            {
                await using var database = Database.FromConfiguration(configuration);
                if (Verb == "backup")
                {
                    var summary = await CreateAsync(database, path, Overwrite, postgresBin, cancellationToken);
                    await output.WriteLineAsync($"Backed up the {database.Provider} store to {path}: {summary}.");
                }
                else
                {
                    var restored = await RestoreAsync(database, path, Overwrite, postgresBin, cancellationToken);
                    await output.WriteLineAsync($"Restored {path} into the {database.Provider} store: {restored.Summary}.");
                    await output.WriteLineAsync(restored.MigrationsApplied.Count == 0
                        ? "Checked: every migration was already applied."
                        : $"Checked: applied the migrations the backup predates ({string.Join(", ", restored.MigrationsApplied)}).");
                }
                return 0;
            }
            // Not a crash with a stack trace: a folder that may not be written, or a client program that may not be run, is the
            // operator's to put right, said in a line, with exit code 1 as every other failure.
            catch (Exception ex) when (ex is BackupFailure or InvalidOperationException or DbException or IOException or UnauthorizedAccessException
                or System.ComponentModel.Win32Exception)
            {
                await error.WriteLineAsync($"{Verb} failed: {ex.Message}");
                return 1;
            }
        }
    }

    /// <summary>Copies the store into <paramref name="file"/>, which must not exist unless <paramref name="overwrite"/>.</summary>
    public static async Task<Summary> CreateAsync(Database database, string file, bool overwrite = false, string? postgresBin = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(database);
        var path = Path.GetFullPath(file);
        if (File.Exists(path) && !overwrite)
        {
            throw new BackupFailure($"{path} already exists. Choose a new file, or add --overwrite to replace it.");
        }
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        // Written beside the target and moved into place once whole and checked: a failed backup never looks like a good one.
        var partial = path + ".partial";
        File.Delete(partial);
        try
        {
            var summary = database.Provider == StoreProvider.Sqlite
                ? await BackUpSqliteAsync(database, partial, cancellationToken)
                : await BackUpPostgresAsync(database, partial, PostgresTools.Find(postgresBin), cancellationToken);
            File.Move(partial, path, overwrite: true);
            return summary;
        }
        finally
        {
            File.Delete(partial);
        }
    }

    /// <summary>
    /// Puts a backup into the store. Refused when the store holds any table, unless <paramref name="overwrite"/>:
    /// then what the backup holds replaces what the store holds.
    /// </summary>
    public static async Task<Restored> RestoreAsync(Database database, string file, bool overwrite = false, string? postgresBin = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(database);
        var path = Path.GetFullPath(file);
        if (!File.Exists(path))
        {
            throw new BackupFailure($"{path} does not exist.");
        }
        if (database.Provider == StoreProvider.Sqlite)
        {
            // Held to the end, so that no node starts on the store while it is being replaced.
            using var alone = SqliteNodeMark.ForRestore(database.ConnectionString);
            return await RestoreIntoAsync(database, path, overwrite, postgresBin, cancellationToken);
        }
        // The restore's own sessions under a name of their own: a node's (Database.NodeApplicationName) still connected is refused.
        var named = new NpgsqlConnectionStringBuilder(database.ConnectionString) { ApplicationName = RestoreApplicationName }.ConnectionString;
        await using var restoring = new Database(StoreProvider.PostgreSQL, named);
        await RefuseWhileNodesAreConnectedAsync(restoring, cancellationToken);
        return await RestoreIntoAsync(restoring, path, overwrite, postgresBin, cancellationToken);
    }

    private const string RestoreApplicationName = "carecoordination-restore";

    private static async Task<Restored> RestoreIntoAsync(Database database, string path, bool overwrite, string? postgresBin, CancellationToken cancellationToken)
    {
        if (!overwrite && await HoldsTablesAsync(database, cancellationToken))
        {
            throw new BackupFailure("The store is not empty, and restoring would replace what it holds. Restore into a new, empty store, " +
                "or add --overwrite to replace it (back it up first).");
        }

        Summary? expected = null;
        if (database.Provider == StoreProvider.Sqlite)
        {
            expected = await RestoreSqliteAsync(database, path, cancellationToken);
        }
        else
        {
            var tools = PostgresTools.Find(postgresBin);
            await tools.ListOurArchiveAsync(database.ConnectionString, path, cancellationToken);
            RefuseNewer(await tools.SchemaVersionOfAsync(database.ConnectionString, path, cancellationToken));
            await RestorePostgresAsync(database, path, overwrite, tools, cancellationToken);
        }
        return await CheckRestoredAsync(database, expected, cancellationToken);
    }

    private static async Task<Summary> BackUpSqliteAsync(Database database, string partial, CancellationToken cancellationToken)
    {
        var store = Path.GetFullPath(new SqliteConnectionStringBuilder(database.ConnectionString).DataSource);
        if (!File.Exists(store))
        {
            throw new BackupFailure($"There is no store at {store} to back up.");
        }
        await using var source = (SqliteConnection)await database.OpenAsync(cancellationToken);
        await using var copy = OpenFile(partial, SqliteOpenMode.ReadWriteCreate);
        await copy.OpenAsync(cancellationToken);
        // In one step: the whole copy is read in one read transaction, so it is the store at one instant, while
        // writers go on committing (WAL lets them).
        source.BackupDatabase(copy);
        // One self-contained file, with no write-ahead log beside it.
        await copy.ExecuteAsync("PRAGMA journal_mode = DELETE");
        await CheckSqliteAsync(copy, "The backup", cancellationToken);
        return await SummariseAsync(copy, null, cancellationToken);
    }

    private static async Task<Summary> BackUpPostgresAsync(Database database, string partial, PostgresTools tools, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        // pg_dump reads the snapshot this transaction exports, so the summary counts exactly what the dump holds.
        await using var snapshot = await connection.BeginTransactionAsync(IsolationLevel.RepeatableRead, cancellationToken);
        var snapshotId = await connection.ExecuteScalarAsync<string>(
            new CommandDefinition("SELECT pg_export_snapshot()", transaction: snapshot, cancellationToken: cancellationToken));
        var summary = await SummariseAsync(connection, snapshot, cancellationToken);
        await tools.RunAsync("pg_dump", database.ConnectionString,
            ["--format=custom", "--no-password", $"--snapshot={snapshotId}", $"--file={partial}"], cancellationToken);
        await snapshot.RollbackAsync(cancellationToken);
        await tools.ListOurArchiveAsync(database.ConnectionString, partial, cancellationToken);
        return summary;
    }

    private static async Task<Summary> RestoreSqliteAsync(Database database, string path, CancellationToken cancellationToken)
    {
        await using var backup = OpenFile(path, SqliteOpenMode.ReadOnly);
        try
        {
            await backup.OpenAsync(cancellationToken);
            await CheckSqliteAsync(backup, path, cancellationToken);
        }
        catch (SqliteException ex)
        {
            throw new BackupFailure($"{path} is not a CareCoordination backup: {ex.Message}");
        }
        var expected = await SummariseAsync(backup, null, cancellationToken);
        // Before a page is written: refused afterwards, the store would already hold the backup it was refused.
        RefuseNewer(expected.SchemaVersion);
        await using var target = (SqliteConnection)await database.OpenAsync(cancellationToken);
        // Every page, in one write transaction on the store: afterwards it holds the backup and nothing else.
        backup.BackupDatabase(target);
        return expected;
    }

    private static async Task RestorePostgresAsync(Database database, string path, bool overwrite, PostgresTools tools, CancellationToken cancellationToken)
    {
        var target = new NpgsqlConnectionStringBuilder(database.ConnectionString).Database
            ?? throw new BackupFailure("ConnectionStrings:CareCoordination names no Database to restore into.");
        // One transaction: the store gets the whole backup or stays as it was. Owners and grants are the restoring
        // role's, so a backup restores into a database that has none of the original roles.
        List<string> arguments = [$"--dbname={target}", "--no-password", "--single-transaction", "--exit-on-error", "--no-owner", "--no-privileges"];
        if (overwrite)
        {
            arguments.AddRange(["--clean", "--if-exists"]);
        }
        arguments.Add(path);
        await tools.RunAsync("pg_restore", database.ConnectionString, arguments, cancellationToken);
    }

    private static async Task<Restored> CheckRestoredAsync(Database database, Summary? expected, CancellationToken cancellationToken)
    {
        await using (var connection = await database.OpenAsync(cancellationToken))
        {
            if (connection is SqliteConnection sqlite)
            {
                await CheckSqliteAsync(sqlite, "The restored store", cancellationToken);
            }
            var restored = await SummariseAsync(connection, null, cancellationToken);
            if (expected is not null && restored != expected)
            {
                throw new BackupFailure($"The restored store holds {restored}, but the backup holds {expected}.");
            }
            RefuseNewer(restored.SchemaVersion);
        }
        // A backup from an older version is brought up to this one, as a start-up would.
        var applied = await new Migrator(database, NullLogger<Migrator>.Instance).ApplyAsync(cancellationToken);
        await using var after = await database.OpenAsync(cancellationToken);
        var versions = (await after.QueryAsync<long>(new CommandDefinition("SELECT version FROM schema_migration ORDER BY version", cancellationToken: cancellationToken))).ToList();
        if (!versions.SequenceEqual(Migrator.Scripts.Select(s => (long)s.Version)))
        {
            throw new BackupFailure($"The restored store has migrations {string.Join(", ", versions)}; this version needs 1 to {Migrator.Scripts.Count}.");
        }
        return new Restored(await SummariseAsync(after, null, cancellationToken), applied);
    }

    /// <summary>
    /// PostgreSQL: a node still connected (its sessions carry the nodes' application name, Database.NodeApplicationName) would
    /// go on writing into the restored store under its old picture of it: its change numbers and live screens from before
    /// the restore, which then stop hearing of anything, with /health still saying all is well. The guide's first step,
    /// stopping every node, is checked rather than trusted. (A node whose connection string names another application is
    /// not recognised. SQLite's nodes are found by the lock each holds on the store's mark: SqliteNodeMark.)
    /// </summary>
    private static async Task RefuseWhileNodesAreConnectedAsync(Database database, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var from = (await connection.QueryAsync<string>(new CommandDefinition(
            """
            SELECT DISTINCT COALESCE(host(client_addr), 'this machine') FROM pg_stat_activity
            WHERE datname = current_database() AND application_name = @node AND pid <> pg_backend_pid()
            """, new { node = Database.NodeApplicationName }, cancellationToken: cancellationToken))).ToList();
        if (from.Count > 0)
        {
            throw new BackupFailure($"CareCoordination is still connected to this database (from {string.Join(", ", from)}): stop every node of the app, "
                + "then restore. Nothing was restored.");
        }
    }

    /// <summary>A backup a newer version made is restored by that version: this one would start on a schema it does not know.</summary>
    private static void RefuseNewer(long schemaVersion)
    {
        if (schemaVersion > Migrator.Scripts.Count)
        {
            throw new BackupFailure($"The backup was made by a newer version of CareCoordination (schema version {schemaVersion}; " +
                $"this one knows {Migrator.Scripts.Count}). Restore it with that version. Nothing was restored.");
        }
    }

    private static async Task<bool> HoldsTablesAsync(Database database, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var sql = database.Provider == StoreProvider.Sqlite
            ? "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
            : "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema')";
        return await connection.ExecuteScalarAsync<long>(new CommandDefinition(sql, cancellationToken: cancellationToken)) > 0;
    }

    private static async Task CheckSqliteAsync(SqliteConnection connection, string what, CancellationToken cancellationToken)
    {
        var integrity = (await connection.QueryAsync<string>(new CommandDefinition("PRAGMA integrity_check", cancellationToken: cancellationToken))).ToList();
        if (integrity is not ["ok"])
        {
            throw new BackupFailure($"{what} fails SQLite's integrity check: {string.Join("; ", integrity.Take(5))}");
        }
        var foreignKeys = await connection.QueryAsync(new CommandDefinition("PRAGMA foreign_key_check", cancellationToken: cancellationToken));
        if (foreignKeys.Any())
        {
            throw new BackupFailure($"{what} has rows whose foreign keys point nowhere (PRAGMA foreign_key_check).");
        }
        var isOurs = await connection.ExecuteScalarAsync<long>(new CommandDefinition(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migration'", cancellationToken: cancellationToken));
        if (isOurs == 0)
        {
            throw new BackupFailure($"{what} is not a CareCoordination store: it has no schema_migration table.");
        }
    }

    private static Task<Summary> SummariseAsync(DbConnection connection, DbTransaction? transaction, CancellationToken cancellationToken) =>
        connection.QuerySingleAsync<Summary>(new CommandDefinition(
            """
            SELECT (SELECT COALESCE(MAX(version), 0) FROM schema_migration) AS SchemaVersion,
                   (SELECT COUNT(*) FROM referral) AS Referrals,
                   (SELECT COUNT(*) FROM person) AS People,
                   (SELECT COUNT(*) FROM change) AS Changes,
                   (SELECT COALESCE(MAX(seq), 0) FROM change) AS LastSeq
            """, transaction: transaction, cancellationToken: cancellationToken));

    private static SqliteConnection OpenFile(string path, SqliteOpenMode mode) =>
        new(new SqliteConnectionStringBuilder { DataSource = path, Mode = mode, Pooling = false }.ConnectionString);

    /// <summary>
    /// PostgreSQL's own client programs, from Backup:PostgresBin, else the PATH, else the newest Debian install
    /// (/usr/lib/postgresql/N/bin). pg_dump must be at least as new as the server.
    /// </summary>
    private sealed record PostgresTools(string Folder)
    {
        public static PostgresTools Find(string? configured)
        {
            if (!string.IsNullOrWhiteSpace(configured))
            {
                return File.Exists(Path.Combine(configured, "pg_dump"))
                    ? new PostgresTools(configured)
                    : throw new BackupFailure($"Backup:PostgresBin is {configured}, which has no pg_dump.");
            }
            var onPath = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
                .FirstOrDefault(folder => File.Exists(Path.Combine(folder, "pg_dump")) && File.Exists(Path.Combine(folder, "pg_restore")));
            if (onPath is not null)
            {
                return new PostgresTools(onPath);
            }
            var debian = Directory.Exists("/usr/lib/postgresql")
                ? Directory.GetDirectories("/usr/lib/postgresql")
                    .Select(d => (Folder: Path.Combine(d, "bin"), Known: decimal.TryParse(Path.GetFileName(d), NumberStyles.Number, CultureInfo.InvariantCulture, out var version), Version: version))
                    .Where(d => d.Known && File.Exists(Path.Combine(d.Folder, "pg_dump")))
                    .OrderByDescending(d => d.Version)
                    .Select(d => d.Folder)
                    .FirstOrDefault()
                : null;
            return debian is not null
                ? new PostgresTools(debian)
                : throw new BackupFailure("pg_dump and pg_restore were not found: install PostgreSQL's client programs (Debian: postgresql-client), " +
                    "or set Backup:PostgresBin to the folder that holds them.");
        }

        /// <summary>Reads the archive's table of contents: a file pg_restore cannot read, or not ours, is refused.</summary>
        public async Task ListOurArchiveAsync(string connectionString, string path, CancellationToken cancellationToken)
        {
            string contents;
            try
            {
                contents = await RunAsync("pg_restore", connectionString, ["--list", path], cancellationToken);
            }
            catch (BackupFailure ex)
            {
                throw new BackupFailure($"{path} is not a CareCoordination backup: {ex.Message}");
            }
            if (!contents.Contains(" schema_migration ", StringComparison.Ordinal))
            {
                throw new BackupFailure($"{path} is not a CareCoordination backup: it has no schema_migration table.");
            }
        }

        /// <summary>
        /// The highest migration the archive's schema_migration holds, read from the archive alone (its rows as pg_restore
        /// writes them out), so that a backup this version cannot serve is refused before anything of the store is replaced.
        /// </summary>
        public async Task<long> SchemaVersionOfAsync(string connectionString, string path, CancellationToken cancellationToken)
        {
            var rows = await RunAsync("pg_restore", connectionString, ["--data-only", "--table=schema_migration", "--file=-", path], cancellationToken);
            var copying = false;
            long highest = 0;
            foreach (var line in rows.Split('\n'))
            {
                if (line.StartsWith("COPY ", StringComparison.Ordinal) && line.Contains("schema_migration", StringComparison.Ordinal))
                {
                    copying = true;
                }
                else if (copying && line.StartsWith("\\.", StringComparison.Ordinal))
                {
                    copying = false;
                }
                else if (copying && long.TryParse(line.Split('\t')[0], NumberStyles.Integer, CultureInfo.InvariantCulture, out var version))
                {
                    highest = Math.Max(highest, version);
                }
            }
            return highest;
        }

        /// <summary>Runs a client program against the store. The password goes in its environment, never on its command line.</summary>
        public async Task<string> RunAsync(string program, string connectionString, IReadOnlyList<string> arguments, CancellationToken cancellationToken)
        {
            var store = new NpgsqlConnectionStringBuilder(connectionString);
            var start = new ProcessStartInfo(Path.Combine(Folder, program))
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var argument in arguments)
            {
                start.ArgumentList.Add(argument);
            }
            foreach (var (variable, value) in new[]
            {
                ("PGHOST", store.Host), ("PGPORT", store.Port.ToString(CultureInfo.InvariantCulture)), ("PGUSER", store.Username),
                ("PGPASSWORD", store.Password), ("PGDATABASE", store.Database), ("PGSSLROOTCERT", store.RootCertificate),
            })
            {
                if (value is not null)
                {
                    start.Environment[variable] = value;
                }
            }
            start.Environment["PGAPPNAME"] = "carecoordination-" + program;
            start.Environment["PGSSLMODE"] = store.SslMode switch
            {
                SslMode.Disable => "disable",
                SslMode.Allow => "allow",
                SslMode.Require => "require",
                SslMode.VerifyCA => "verify-ca",
                SslMode.VerifyFull => "verify-full",
                _ => "prefer",
            };

            using var process = Process.Start(start) ?? throw new BackupFailure($"{program} did not start.");
            var output = process.StandardOutput.ReadToEndAsync(cancellationToken);
            var errors = process.StandardError.ReadToEndAsync(cancellationToken);
            await process.WaitForExitAsync(cancellationToken);
            if (process.ExitCode != 0)
            {
                throw new BackupFailure($"{program} failed (exit code {process.ExitCode}): {(await errors).Trim()}");
            }
            return await output;
        }
    }
}

/// <summary>A backup or restore refused or failed, with what the operator should know.</summary>
public sealed class BackupFailure(string message) : Exception(message);
