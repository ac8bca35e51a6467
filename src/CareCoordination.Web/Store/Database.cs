using System.Data.Common;
using System.Runtime.CompilerServices;
using Dapper;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace CareCoordination.Store;

public enum StoreProvider { Sqlite, PostgreSQL }

/// <summary>
/// The one place that knows which engine is behind the store. Everything that differs between
/// SQLite and PostgreSQL is here; feature SQL is written once.
/// </summary>
public sealed partial class Database : IAsyncDisposable
{
    private readonly NpgsqlDataSource? _postgres;
    private readonly SqliteWriter? _sqliteWriter;
    private readonly string _connectionString;

    static Database() => SqliteThreading.Configure();

    /// <summary>
    /// PostgreSQL: write transactions this node runs at once; the rest wait their turn in process, on no connection. More
    /// writers than cores only queue in the server's and the app's run queues, where every screen's read then waits behind
    /// them (issue 14, on two cores with the server beside the node: sixteen writers at once left the capacity read's p95 at
    /// 80-126 ms, four at 44-58 ms, two at 19-29 ms, the submissions' rate within the runs' spread; docs/performance.md).
    /// </summary>
    private readonly SemaphoreSlim? _postgresWriters;

    /// <summary>
    /// The default of Database:PostgresWriters: the cores. A node whose server is elsewhere, with long round trips, may do
    /// more writes with more (docs/deployment.md).
    /// </summary>
    public static int DefaultPostgresWriters => Environment.ProcessorCount;

    public Database(StoreProvider provider, string connectionString, WriteGroupLimits? writeGroups = null, int? postgresWriters = null)
    {
        Provider = provider;
        _connectionString = connectionString;
        if (provider == StoreProvider.PostgreSQL)
        {
            _postgres = NpgsqlDataSource.Create(WithConnectionDefaults(connectionString));
            _reportPostgres = ReportDataSource(connectionString);
            _postgresWriters = new SemaphoreSlim(postgresWriters ?? DefaultPostgresWriters);
        }
        else
        {
            EnsureSqliteFolderExists(connectionString);
            _sqliteWriter = new SqliteWriter(connectionString, PrepareSqliteAsync, writeGroups ?? WriteGroupLimits.Default);
        }
    }

    public StoreProvider Provider { get; }

    /// <summary>
    /// PostgreSQL parses and plans every statement afresh unless it is prepared. Npgsql prepares, per physical connection,
    /// the statements a connection runs repeatedly (a referral's ~40 are the same texts every time), unless the connection
    /// string says otherwise (Max Auto Prepare=0, e.g. behind a pooler that cannot carry prepared statements).
    /// </summary>
    internal static string WithConnectionDefaults(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        if (!Given(connectionString, "MaxAutoPrepare"))
        {
            builder.MaxAutoPrepare = 128;
            builder.AutoPrepareMinUsages = 2;
        }
        if (!Given(connectionString, "ApplicationName"))
        {
            // Each node's sessions are named, so that an operator sees them in pg_stat_activity and a restore can tell that
            // nodes are still connected (Backup).
            builder.ApplicationName = NodeApplicationName;
        }
        if (!Given(connectionString, "NoResetOnClose"))
        {
            // A pooled connection handed back is otherwise reset with seven statements (RESET ALL, SET SESSION
            // AUTHORIZATION DEFAULT, DISCARD TEMP, ...), sent with its next use: about 18 a submission, each parsed and run
            // by the server (issue 14). The app keeps no session state on a pooled connection (its locks are the
            // transaction's, LISTEN has a connection of its own, SET only as SET LOCAL), and an open transaction is still
            // rolled back when a connection is handed back.
            builder.NoResetOnClose = true;
        }
        // PostgreSQL compiles a statement whose estimated cost passes jit_above_cost (100,000) to machine code at each
        // execution. The planner's estimates for the reports' and the capacity board's reads pass it easily (a correlated
        // lookup that never runs is costed as if it ran for every row), and the compiling took longer than the work: the
        // fortnight's placements 86-116 ms with it against 18 ms without, the decision pack for a quarter 9.8 s against 4.8 s,
        // on a 1M-referral store (docs/performance.md, issue 14). Added to the operator's own options (the connection
        // string's, else PGOPTIONS, which Npgsql reads only when the string has none), unless they say how jit is to be.
        var options = builder.Options ?? Environment.GetEnvironmentVariable("PGOPTIONS");
        if (options?.Contains("jit", StringComparison.OrdinalIgnoreCase) != true)
        {
            builder.Options = string.IsNullOrWhiteSpace(options) ? "-c jit=off" : options + " -c jit=off";
        }
        return builder.ConnectionString;
    }

    /// <summary>The application name of a node's PostgreSQL sessions, unless the connection string gives one.</summary>
    internal const string NodeApplicationName = "carecoordination";

    private static bool Given(string connectionString, string setting) =>
        new DbConnectionStringBuilder { ConnectionString = connectionString }.Keys.Cast<string>()
            .Any(key => key.Replace(" ", "", StringComparison.Ordinal).Equals(setting, StringComparison.OrdinalIgnoreCase));

    /// <summary>For PostgreSQL's own client programs (backup and restore); it may hold the password.</summary>
    internal string ConnectionString => _connectionString;

    public static Database FromConfiguration(IConfiguration configuration)
    {
        var providerName = configuration["Database:Provider"] ?? nameof(StoreProvider.Sqlite);
        if (!Enum.TryParse<StoreProvider>(providerName, ignoreCase: true, out var provider))
        {
            throw new InvalidOperationException(
                $"Database:Provider is '{providerName}'; it must be 'Sqlite' or 'PostgreSQL'.");
        }
        var connectionString = configuration.GetConnectionString("CareCoordination");
        if (string.IsNullOrWhiteSpace(connectionString))
        {
            throw new InvalidOperationException("ConnectionStrings:CareCoordination is not set.");
        }
        var limits = new WriteGroupLimits(
            configuration.GetValue("Database:GroupCommitMaxWriters", WriteGroupLimits.Default.MaxWriters),
            TimeSpan.FromMilliseconds(configuration.GetValue("Database:GroupCommitMaxMilliseconds", WriteGroupLimits.Default.MaxAge.TotalMilliseconds)));
        if (limits.MaxWriters < 1 || limits.MaxAge < TimeSpan.Zero)
        {
            throw new InvalidOperationException("Database:GroupCommitMaxWriters must be at least 1 and Database:GroupCommitMaxMilliseconds not negative.");
        }
        // 0, or nothing: the default.
        var postgresWriters = configuration.GetValue("Database:PostgresWriters", 0) is var configured and not 0 ? configured : DefaultPostgresWriters;
        if (postgresWriters < 1)
        {
            throw new InvalidOperationException("Database:PostgresWriters must be at least 1 (or 0 for the cores).");
        }
        return new Database(provider, connectionString, limits, postgresWriters);
    }

    /// <summary>SQLite: writers queued for the turn, and groups committed (for tests).</summary>
    internal int WritersWaiting => _sqliteWriter?.Waiting ?? 0;

    internal long WriteGroupsCommitted => _sqliteWriter?.GroupsCommitted ?? 0;

    internal int WriterStatementsCompiled => _sqliteWriter?.StatementsCompiled ?? 0;

    /// <summary>One connection per operation: a Blazor circuit lives as long as its tab.</summary>
    public async Task<DbConnection> OpenAsync(CancellationToken cancellationToken = default)
    {
        if (_postgres is not null)
        {
            return await _postgres.OpenConnectionAsync(cancellationToken);
        }

        var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(cancellationToken);
        // A pooled connection keeps its settings: the PRAGMAs run once per native connection, not on every open,
        // where they were four of the ~70 statements of a referral submission.
        if (!Prepared.TryGetValue(connection.Handle!, out _))
        {
            await PrepareSqliteAsync(connection, cancellationToken);
            Prepared.AddOrUpdate(connection.Handle!, Prepared);
        }
        return connection;
    }

    /// <summary>SQLite's page cache for a start-up bulk write, in KiB (PRAGMA cache_size takes a negative number as KiB).</summary>
    internal const int BulkWriteCacheKiB = 64 * 1024;

    /// <summary>
    /// A connection for one large write at start-up (the demo seed, the deprivation lookup): several MB in one transaction.
    /// PERF: in SQLite's default 2 MB page cache such a transaction spills its dirty pages to the WAL and reads them back
    /// over and over: the demo seed took 4.2 s in it and 1.2 s with room for itself (issue 14, cold start). Not pooled, so the
    /// larger cache goes when the connection closes instead of staying with every pooled reader. PostgreSQL: a pooled one.
    /// </summary>
    public Task<DbConnection> OpenForBulkWriteAsync(CancellationToken cancellationToken = default) =>
        OpenOwnAsync($"{StorePragmas} PRAGMA cache_size = -{BulkWriteCacheKiB};", cancellationToken);

    /// <summary>A SQLite connection of its own (not pooled: its settings go with it), set up by <paramref name="pragmas"/>; PostgreSQL: a pooled one.</summary>
    private async Task<DbConnection> OpenOwnAsync(string pragmas, CancellationToken cancellationToken)
    {
        if (_postgres is not null)
        {
            return await _postgres.OpenConnectionAsync(cancellationToken);
        }
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder(_connectionString) { Pooling = false }.ConnectionString);
        try
        {
            await connection.OpenAsync(cancellationToken);
            await using var pragma = connection.CreateCommand();
            pragma.CommandText = pragmas;
            await pragma.ExecuteNonQueryAsync(cancellationToken);
            SqliteOpened?.Invoke(connection);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    /// <summary>The native SQLite connections (pooled under the SqliteConnections that open them) that have had their PRAGMAs.</summary>
    private static readonly ConditionalWeakTable<SQLitePCL.sqlite3, object> Prepared = [];

    /// <summary>How much of the store a report's connection maps into memory: SQLite's default ceiling (SQLITE_MAX_MMAP_SIZE).</summary>
    internal const long ReportMapBytes = 0x7fff0000;

    /// <summary>
    /// WAL lets readers go on while one writer commits; the busy timeout queues writers instead of failing them.
    /// synchronous FULL: a commit returns only once the WAL is on the disk, so a referral acknowledged to its referrer survives
    /// a power cut or the machine's crash, not only the process's (NORMAL syncs at checkpoints alone, and in WAL mode may lose
    /// the last commits). Group commit shares the one sync among the commands a commit carries.
    /// </summary>
    private const string StorePragmas = "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; PRAGMA synchronous = FULL;";

    private async Task PrepareSqliteAsync(SqliteConnection connection, CancellationToken cancellationToken)
    {
        await using var pragma = connection.CreateCommand();
        pragma.CommandText = StorePragmas;
        await pragma.ExecuteNonQueryAsync(cancellationToken);
        SqliteOpened?.Invoke(connection);
    }

    /// <summary>
    /// Called with each new native SQLite connection once it is set up, before any other use (the writer's, every reader's,
    /// a report's): for tests that watch every statement the app runs (StatementPlanTests). Set before the first connection.
    /// </summary>
    internal Action<SqliteConnection>? SqliteOpened { get; set; }

    /// <summary>
    /// A connection for a manager's report, which may read a large share of the store. On SQLite the store is mapped into
    /// memory (up to SQLite's usual 2 GB ceiling) for it: each page it reads is then not a read() call copying it into the
    /// connection's 2 MB cache, where a year of a large store never fits (issue 13: a year of equity at 1M referrals spent
    /// about as long in the kernel as in SQLite). Not pooled, so the mapping goes with the report. Screens and the writer do
    /// not map the store: a mapped connection maps the file again at its next read whenever the file has grown, and under
    /// partner load (a checkpoint growing the file several times a second) the pooled readers did so about 270 times a
    /// second, the queue read's p95 idle 22 ms against 7 ms unmapped (issue 14). PostgreSQL: a pooled connection.
    /// On PostgreSQL the report's session plans with random_page_cost 1.1 instead of the server's default 4, unless the
    /// operator has set it (in the server's configuration, for the database or role, or in the connection's options): the
    /// default prices a read by key as for a spinning disk, so the planner read every referral (424 MB at 1M) to join the
    /// few thousand a report's period holds, where reading them by key took a quarter of the time (a month's ended services
    /// for the client-level events download 0.75 s against 0.17 s, issue 13). 1.1 is the usual value for a store on SSD or
    /// in memory. Only the reports' sessions, on connections of their own (_reportPostgres): the screens' and the writers'
    /// plans are as they were measured, and the app's pooled connections keep their settings when handed back (NoResetOnClose).
    /// </summary>
    public async Task<DbConnection> OpenForReportAsync(CancellationToken cancellationToken = default) => _reportPostgres is null
        ? await OpenOwnAsync($"PRAGMA busy_timeout = 10000; PRAGMA mmap_size = {ReportMapBytes};", cancellationToken)
        : await _reportPostgres.OpenConnectionAsync(cancellationToken);

    /// <summary>The reports' PostgreSQL connections (OpenForReportAsync): a pool of their own, each session set up by ReportPlanning as it opens.</summary>
    private readonly NpgsqlDataSource? _reportPostgres;

    /// <summary>
    /// Run by each of the reports' new sessions: random_page_cost 1.1 where nobody has set it. Asked of each session as it
    /// starts, so a setting the operator makes later (ALTER ROLE or DATABASE ... SET) is kept by the sessions after it.
    /// </summary>
    internal const string ReportPlanning =
        "SELECT set_config('random_page_cost', '1.1', false) FROM pg_settings WHERE name = 'random_page_cost' AND source = 'default'";

    private static NpgsqlDataSource ReportDataSource(string connectionString)
    {
        var builder = new NpgsqlDataSourceBuilder(WithConnectionDefaults(connectionString));
        // The setting is made once a session: a reset when a connection is handed back would undo it. Reports keep no other
        // session state.
        builder.ConnectionStringBuilder.NoResetOnClose = true;
        builder.UsePhysicalConnectionInitializer(
            connection =>
            {
                using var plan = connection.CreateCommand();
                plan.CommandText = ReportPlanning;
                plan.ExecuteNonQuery();
            },
            async connection =>
            {
                await using var plan = connection.CreateCommand();
                plan.CommandText = ReportPlanning;
                await plan.ExecuteNonQueryAsync();
            });
        return builder.Build();
    }

    /// <summary>
    /// The way to write while the app serves: runs <paramref name="work"/> in a write transaction and returns once that
    /// transaction has committed (a failure in the work, or in the commit, is thrown and nothing of the work is kept).
    /// On SQLite writers take turns in process and are committed in groups (see <see cref="SqliteWriter"/>): the work
    /// must not start another write (it would wait on itself; it throws instead), and must not keep the connection.
    /// On PostgreSQL each write is its own transaction on a pooled connection, at most Database:PostgresWriters at once
    /// (<see cref="_postgresWriters"/>); the same rule holds: a write inside a write could wait on itself.
    /// </summary>
    public async Task<T> WriteAsync<T>(Func<DbConnection, DbTransaction, Task<T>> work, CancellationToken cancellationToken = default)
    {
        if (_sqliteWriter is not null)
        {
            return await _sqliteWriter.WriteAsync(work, cancellationToken);
        }
        if (InPostgresWrite.Value == this)
        {
            throw new InvalidOperationException("A write was started inside a write: it could wait for its own turn. Write through the open transaction.");
        }
        await _postgresWriters!.WaitAsync(cancellationToken);
        InPostgresWrite.Value = this;
        try
        {
            return await WritePostgresAsync(work, cancellationToken);
        }
        finally
        {
            InPostgresWrite.Value = null;
            _postgresWriters.Release();
        }
    }

    /// <summary>The store whose writer's turn this flow holds (PostgreSQL), as SqliteWriter keeps its own.</summary>
    private static readonly AsyncLocal<Database?> InPostgresWrite = new();

    private async Task<T> WritePostgresAsync<T>(Func<DbConnection, DbTransaction, Task<T>> work, CancellationToken cancellationToken)
    {
        await using var connection = await _postgres!.OpenConnectionAsync(cancellationToken);
        // Npgsql begins it READ COMMITTED by name, whatever the server's default_transaction_isolation (checked on a database set
        // to REPEATABLE READ): the commands' version guards are written for that level, where a row moved on by another writer
        // matches nothing instead of failing the statement with a serialization error.
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        try
        {
            var result = await work(connection, transaction);
            await CommitAsync(transaction);
            return result;
        }
        finally
        {
            _committedWithLastStatement.Remove(transaction);
        }
    }

    /// <summary>Commits a write transaction of the caller's own, unless its last statement did (<see cref="ExecuteLastAsync"/>).</summary>
    public Task CommitAsync(DbTransaction transaction) =>
        _committedWithLastStatement.Remove(transaction) ? Task.CompletedTask : transaction.CommitAsync(CancellationToken.None);

    /// <summary>
    /// PostgreSQL transactions whose last statement committed them (<see cref="ExecuteLastAsync"/>), until their commit is
    /// asked for: each is taken out then, because Npgsql hands the same transaction object to the next transaction begun on
    /// the same pooled connection.
    /// </summary>
    private readonly ConditionalWeakTable<DbTransaction, object> _committedWithLastStatement = [];

    /// <summary>
    /// The last statement of a <see cref="WriteAsync{T}"/>'s work: nothing may use the transaction after it. On PostgreSQL
    /// the COMMIT goes in the same round trip, and WriteAsync does not commit again: whatever lock the statement takes is
    /// then held only while the server runs it and commits, not while the answer travels back and the client's thread pool
    /// gets round to sending COMMIT (issue 14: the change-writer lock, which every writer of every node waits for, was held
    /// across that round trip). A failure of the statement or of the commit is thrown, and nothing of the work is kept.
    /// On SQLite it is an ordinary statement: the writer commits the group.
    /// </summary>
    public async Task ExecuteLastAsync(DbConnection connection, DbTransaction transaction, string sql, object? parameters)
    {
        if (Provider != StoreProvider.PostgreSQL)
        {
            await connection.ExecuteAsync(sql, parameters, transaction);
            return;
        }
        try
        {
            await connection.ExecuteAsync(sql + ";\nCOMMIT", parameters, transaction);
        }
        catch (Exception failed) when (failed is not PostgresException)
        {
            // No answer from the server (a broken connection, a timeout, which may or may not have cancelled the statement in
            // time): the COMMIT may have landed, or may land yet. An error the server reported is a rollback, certain.
            CommitOutcomeUnknown();
            throw;
        }
        _committedWithLastStatement.AddOrUpdate(transaction, this);
    }

    /// <summary>
    /// A small write someone is waiting to see answered, on which no command's rows depend: an audited read's row. As
    /// <see cref="WriteAsync{T}"/>, but on SQLite it goes ahead of the commands queued for the writer and its group commits
    /// straight after it, so that a screen's read under a flood of submissions waits for one writer and one commit
    /// (<see cref="SqliteWriter"/>). On PostgreSQL it does not wait for a writer's turn (<see cref="_postgresWriters"/>).
    /// </summary>
    public Task WriteAheadAsync(Func<DbConnection, DbTransaction, Task> work, CancellationToken cancellationToken = default)
    {
        if (_sqliteWriter is null)
        {
            return WritePostgresAsync(async (connection, transaction) =>
            {
                await work(connection, transaction);
                return true;
            }, cancellationToken);
        }
        return _sqliteWriter.WriteAsync(async (connection, transaction) =>
        {
            await work(connection, transaction);
            return true;
        }, cancellationToken, ahead: true);
    }

    public Task WriteAsync(Func<DbConnection, DbTransaction, Task> work, CancellationToken cancellationToken = default) =>
        WriteAsync(async (connection, transaction) =>
        {
            await work(connection, transaction);
            return true;
        }, cancellationToken);

    /// <summary>
    /// A write transaction on a connection of the caller's own, for start-up steps that run before the app serves
    /// (migrations, the demo seed, the token key): while it serves, write through <see cref="WriteAsync{T}"/>, since on
    /// SQLite this waits in the busy handler behind the in-process writer and blocks its thread.
    /// SQLite takes its write lock lazily, so two transactions that read then write can deadlock into
    /// SQLITE_BUSY. An immediate transaction takes the lock up front and queues behind the busy timeout.
    /// </summary>
    public async Task<DbTransaction> BeginWriteAsync(DbConnection connection, CancellationToken cancellationToken = default)
    {
        if (connection is SqliteConnection sqlite)
        {
            return sqlite.BeginTransaction(deferred: false);
        }
        return await connection.BeginTransactionAsync(cancellationToken);
    }

    /// <summary>The identity column for migrations.</summary>
    internal string IdentityColumn => Provider == StoreProvider.PostgreSQL
        ? "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
        : "INTEGER PRIMARY KEY AUTOINCREMENT";

    /// <summary>
    /// A migration script in this store's dialect: {{id}} is the identity column, and {{without_rowid}} after a table keyed
    /// by its primary key makes it that key's one b-tree on SQLite (PostgreSQL has no rowid to drop).
    /// A table made again with its rows (SQLite cannot alter a constraint in place) uses two more: {{lock_for_copy:TABLE}} before
    /// the copy keeps other PostgreSQL nodes from writing rows the copy would miss (SQLite's one writer already does), and
    /// {{identity_after_copy:TABLE}} after it starts PostgreSQL's identity after the highest copied id (it would hand out 1
    /// again; SQLite's AUTOINCREMENT has counted the copied ids itself). A step that only one store takes is written between
    /// {{postgres}} (or {{sqlite}}) and {{end}}; the other store reads nothing there.
    /// </summary>
    internal string Dialect(string script) => CopyStep().Replace(ProviderStep().Replace(script,
            step => (step.Groups[1].Value == "postgres") == (Provider == StoreProvider.PostgreSQL) ? step.Groups[2].Value : "")
        .Replace("{{id}}", IdentityColumn, StringComparison.Ordinal)
        .Replace("{{without_rowid}}", Provider == StoreProvider.PostgreSQL ? "" : " WITHOUT ROWID", StringComparison.Ordinal),
        step => (Provider, step.Groups[1].Value, step.Groups[2].Value) switch
        {
            (StoreProvider.PostgreSQL, "lock_for_copy", var table) => $"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE;",
            (StoreProvider.PostgreSQL, _, var table) => $"SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false);",
            _ => "",
        });

    [System.Text.RegularExpressions.GeneratedRegex(@"\{\{(identity_after_copy|lock_for_copy):([a-z_]+)\}\}")]
    private static partial System.Text.RegularExpressions.Regex CopyStep();

    [System.Text.RegularExpressions.GeneratedRegex(@"\{\{(postgres|sqlite)\}\}(.*?)\{\{end\}\}", System.Text.RegularExpressions.RegexOptions.Singleline)]
    private static partial System.Text.RegularExpressions.Regex ProviderStep();

    /// <summary>
    /// PostgreSQL hands out sequence values before commit, so a reader could see seq 11 while 10 is still
    /// uncommitted and skip 10 for ever. Serialising change writers on a transaction-scoped advisory lock
    /// makes seq order commit order. SQLite already serialises writers.
    /// </summary>
    internal string? ChangeWriterLock => Provider == StoreProvider.PostgreSQL
        ? $"SELECT pg_advisory_xact_lock({ChangeWriterLockKey})"
        : null;

    internal const long ChangeWriterLockKey = 7426001;

    /// <summary>The channel on which a PostgreSQL commit that wrote change rows tells every node.</summary>
    public const string ChangeChannel = "carecoordination_changes";

    /// <summary>
    /// What this node's commits say on <see cref="ChangeChannel"/>, so that its listener hears only the other nodes': its own
    /// commits poke its feed in process already (TransactionBehaviour, even when the write's answer did not come back; a commit
    /// that lands later is heard by <see cref="HearsOwnNotices"/>), and the notice's poke was a second read of the change table
    /// for most commits (1.38 reads a submission under the bench's load, issue 14). One per store opened, as each node opens its own.
    /// </summary>
    internal string ChangeNoticeMark { get; } = Guid.NewGuid().ToString("N");

    /// <summary>
    /// Whether this node's listener should poke its feed for its own notices too: for a while after a commit whose answer
    /// never came back (<see cref="ExecuteLastAsync"/>). That commit may yet land on the server after the in-process poke has
    /// read the change table and found nothing; its own notice then publishes it at once, rather than the next commit or the
    /// store watch's next probe, seconds later.
    /// </summary>
    internal bool HearsOwnNotices => Environment.TickCount64 < Interlocked.Read(ref _hearsOwnNoticesUntil);

    // Long enough for a COMMIT the client gave up on to land (a server still working through the round trip, a connection's
    // keepalive), short enough that the second read of the change table each of this node's commits costs meanwhile stops soon.
    private static readonly TimeSpan OwnNoticesAfterAnUnknownCommit = TimeSpan.FromMinutes(1);

    private long _hearsOwnNoticesUntil;

    /// <summary>A commit was sent and its outcome is not known: this node hears its own notices for a while (<see cref="HearsOwnNotices"/>).</summary>
    private void CommitOutcomeUnknown() =>
        Interlocked.Exchange(ref _hearsOwnNoticesUntil, Environment.TickCount64 + (long)OwnNoticesAfterAnUnknownCommit.TotalMilliseconds);

    /// <summary>A dedicated connection for LISTEN, outside the pool's reach.</summary>
    public async Task<NpgsqlConnection?> OpenListenerAsync(CancellationToken cancellationToken)
    {
        if (_postgres is null)
        {
            return null;
        }
        var builder = new NpgsqlConnectionStringBuilder(_connectionString) { Pooling = false, KeepAlive = 30 };
        var connection = new NpgsqlConnection(builder.ConnectionString);
        await connection.OpenAsync(cancellationToken);
        return connection;
    }

    internal string? MigrationLock => Provider == StoreProvider.PostgreSQL
        ? "SELECT pg_advisory_xact_lock(7426000)"
        : null;

    /// <summary>
    /// Serialises transactions that decide on the same key (an idempotency key, an NHS number) until commit.
    /// SQLite already runs one writer at a time; PostgreSQL takes a transaction-scoped advisory lock.
    /// </summary>
    public async Task LockAsync(DbConnection connection, DbTransaction transaction, string key)
    {
        if (Provider == StoreProvider.PostgreSQL)
        {
            await connection.ExecuteAsync("SELECT pg_advisory_xact_lock(hashtextextended(@key, 0))", new { key }, transaction);
        }
    }

    /// <summary>
    /// <see cref="LockAsync"/> on <paramref name="first"/>'s key, then its query, then the same for <paramref name="second"/>,
    /// then <paramref name="then"/>'s query (no lock of its own; none when null, and its list empty): on PostgreSQL all in one
    /// round trip (issue 14: a submission's person, its referral key and its hospital site were a round trip each).
    /// The locks are taken in that order, always (every caller must take any two keys in one order). Each query still reads
    /// after the locks before it are granted: the server runs the statements in turn, and at read committed each takes its
    /// snapshot when it starts, so it sees whatever the transaction that held the lock committed. The parameters serve every
    /// query and must not be named LockKey or SecondLockKey.
    /// </summary>
    public async Task<(IReadOnlyList<T1> First, IReadOnlyList<T2> Second, IReadOnlyList<T3> Then)> LockThenQueryAsync<T1, T2, T3>(
        DbConnection connection, DbTransaction transaction, (string Key, string Sql) first, (string Key, string Sql) second, string? then, object parameters)
    {
        if (Provider != StoreProvider.PostgreSQL)
        {
            return ([.. await connection.QueryAsync<T1>(first.Sql, parameters, transaction)], [.. await connection.QueryAsync<T2>(second.Sql, parameters, transaction)],
                then is null ? [] : [.. await connection.QueryAsync<T3>(then, parameters, transaction)]);
        }
        var all = new DynamicParameters(parameters);
        all.Add("LockKey", first.Key);
        all.Add("SecondLockKey", second.Key);
        await using var grids = await connection.QueryMultipleAsync($"""
            SELECT NULL::int FROM pg_advisory_xact_lock(hashtextextended(@LockKey, 0));
            {first.Sql};
            SELECT NULL::int FROM pg_advisory_xact_lock(hashtextextended(@SecondLockKey, 0));
            {second.Sql}{(then is null ? "" : ";\n" + then)}
            """, all, transaction);
        await grids.ReadAsync<int?>();
        IReadOnlyList<T1> firstRows = [.. await grids.ReadAsync<T1>()];
        await grids.ReadAsync<int?>();
        IReadOnlyList<T2> secondRows = [.. await grids.ReadAsync<T2>()];
        return (firstRows, secondRows, then is null ? [] : [.. await grids.ReadAsync<T3>()]);
    }

    public bool IsUniqueViolation(Exception exception) => exception switch
    {
        SqliteException { SqliteErrorCode: 19 } sqlite => sqlite.Message.Contains("UNIQUE", StringComparison.Ordinal),
        PostgresException postgres => postgres.SqlState == PostgresErrorCodes.UniqueViolation,
        _ => false,
    };

    private SqliteNodeMark? _nodeMark;

    /// <summary>
    /// A node's claim on its SQLite store (SqliteNodeMark), held until this store is disposed, after its writer has closed:
    /// a restore is refused while it is held, and a restore running keeps the node from starting. PostgreSQL's nodes are
    /// found by their sessions' application name.
    /// </summary>
    public void HoldNodeMark()
    {
        if (Provider == StoreProvider.Sqlite)
        {
            _nodeMark ??= SqliteNodeMark.ForNode(_connectionString);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_sqliteWriter is not null)
        {
            await _sqliteWriter.DisposeAsync();
        }
        // Last of the store's own: a restore may begin only once this node has stopped writing.
        using var nodeMark = _nodeMark;
        if (_reportPostgres is not null)
        {
            await _reportPostgres.DisposeAsync();
        }
        if (_postgres is not null)
        {
            await _postgres.DisposeAsync();
        }
        // The writers' gate is not disposed: a write still finishing would release it after.
    }

    private static void EnsureSqliteFolderExists(string connectionString)
    {
        var dataSource = new SqliteConnectionStringBuilder(connectionString).DataSource;
        var folder = Path.GetDirectoryName(Path.GetFullPath(dataSource));
        if (!string.IsNullOrEmpty(folder) && dataSource != ":memory:")
        {
            Directory.CreateDirectory(folder);
        }
    }
}
