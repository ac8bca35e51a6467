using System.Security.Claims;
using System.Text.Json;
using System.Threading.Channels;
using CareCoordination.Domain;
using CareCoordination.Features.Referrals;
using CareCoordination.Store;
using CareCoordination.Tests.Support;
using Dapper;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace CareCoordination.Tests.Store;

/// <summary>The operator's backup and restore, written once and run on each store (the one-line subclasses below).</summary>
public abstract class BackupTests(ITestStore store) : IDisposable
{
    private readonly string _folder = Testing.TestScratch.NewPath("backups-");

    /// <summary>The real host, on a fresh seeded store or on one a restore filled.</summary>
    private sealed class Host(ITestStore store) : AppFactory(store);

    private sealed class ExistingStore(StoreProvider provider, string connectionString) : ITestStore
    {
        public StoreProvider Provider => provider;

        public Task<string> CreateEmptyAsync() => Task.FromResult(connectionString);
    }

    public sealed record ChangeRow(long Seq, string Kind, string EntityType, long EntityId);

    /// <summary>Every referral row (as JSON, by id) and every change, read straight from a store.</summary>
    private sealed record Contents(IReadOnlyDictionary<long, string> Referrals, IReadOnlyList<ChangeRow> Changes);

    private string NewFile() => Path.Combine(_folder, Guid.NewGuid().ToString("N") + (store.Provider == StoreProvider.Sqlite ? ".db" : ".dump"));

    [Fact]
    public async Task Backup_TakenWhileReferralsArrive_RestoresIntoAFreshStore_WhereAHostFindsEveryReferralAndItsSequence()
    {
        await using var app = new Host(store);
        var referrer = await app.StaffAsync("referrer");
        // Held open, as a server's connection pool holds them: SQLite then keeps recent commits in its write-ahead
        // log instead of folding them into the file whenever the last connection closes, as a real store does.
        await using var held = await app.OpenAsync();
        var before = new List<long>();
        for (var i = 0; i < 5; i++)
        {
            before.Add(await SubmitAsync(app, referrer));
        }

        // A referrer goes on sending while the backup is taken, and after.
        var sent = Channel.CreateUnbounded<long>();
        using var stop = new CancellationTokenSource();
        var writer = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                await sent.Writer.WriteAsync(await SubmitAsync(app, referrer));
            }
        });
        await sent.Reader.ReadAsync();
        var file = NewFile();
        var summary = await Backup.CreateAsync(app.Services.GetRequiredService<Database>(), file);
        await sent.Reader.ReadAsync();
        await sent.Reader.ReadAsync();
        await stop.CancelAsync();
        await writer;
        var original = await ReadAsync(app);
        Assert.True(original.Changes[^1].Seq > summary.LastSeq, "Referrals went on arriving after the backup's moment.");

        var restoredStore = await store.CreateEmptyAsync();
        await using (var target = new Database(store.Provider, restoredStore))
        {
            var restored = await Backup.RestoreAsync(target, file);
            Assert.Equal(summary, restored.Summary);
            Assert.Empty(restored.MigrationsApplied);
        }
        await using var second = new Host(new ExistingStore(store.Provider, restoredStore));
        var secondReferrer = await second.StaffAsync("referrer");
        var copy = await ReadAsync(second);

        // The store at one moment: every change up to the backup's last sequence number, with its number, and none after.
        Assert.Equal(original.Changes.Where(c => c.Seq <= summary.LastSeq), copy.Changes);
        // Every referral it held, as it was; a referral sent during the backup is there exactly when its submission is.
        Assert.Equal(summary.Referrals, copy.Referrals.Count);
        Assert.All(copy.Referrals, referral => Assert.Equal(original.Referrals[referral.Key], referral.Value));
        var submitted = original.Changes.Where(c => c.Kind == "referral.submitted").ToList();
        Assert.All(submitted, s => Assert.Equal(s.Seq <= summary.LastSeq, copy.Referrals.ContainsKey(s.EntityId)));
        Assert.All(before, id => Assert.Contains(id, copy.Referrals.Keys));

        // The restored host serves them as the first did.
        foreach (var id in before)
        {
            var there = await app.SendAsync<TrackReferral.Result>(new TrackReferral.Query(id), referrer);
            var here = await second.SendAsync<TrackReferral.Result>(new TrackReferral.Query(id), secondReferrer);
            Assert.Equal(JsonSerializer.Serialize(there.Referral), JsonSerializer.Serialize(here.Referral));
        }
        // And numbers go on from where the backup stopped: nothing restored is numbered twice.
        var next = await SubmitAsync(second, secondReferrer);
        var after = await ReadAsync(second);
        Assert.True(next > copy.Referrals.Keys.Max());
        Assert.True(after.Changes.Single(c => c.Kind == "referral.submitted" && c.EntityId == next).Seq > summary.LastSeq);
    }

    [Fact]
    public async Task Restore_IntoAStoreThatHoldsData_IsRefused_AndWithOverwrite_LeavesExactlyTheBackup()
    {
        var app = new Host(store);
        var referrer = await app.StaffAsync("referrer");
        var database = app.Services.GetRequiredService<Database>();
        var file = NewFile();
        var summary = await Backup.CreateAsync(database, file);
        var later = await SubmitAsync(app, referrer);

        // The app still running on the store is the first thing said (below); the store not being empty, once it has stopped.
        var refused = await Assert.ThrowsAsync<BackupFailure>(() => Backup.RestoreAsync(database, file));
        Assert.StartsWith("CareCoordination is still", refused.Message, StringComparison.Ordinal);
        Assert.Contains(later, (await ReadAsync(app)).Referrals.Keys);
        var again = await Assert.ThrowsAsync<BackupFailure>(() => Backup.CreateAsync(database, file));
        Assert.Contains("already exists", again.Message, StringComparison.Ordinal);

        // Over a store the app is still running on: refused. PostgreSQL's server says who is connected; on SQLite each node
        // holds a lock on the store's mark, which a restore must take alone.
        var connectionString = app.ConnectionString;
        await using (var underTheNode = new Database(store.Provider, connectionString))
        {
            var running = await Assert.ThrowsAsync<BackupFailure>(() => Backup.RestoreAsync(underTheNode, file, overwrite: true));
            Assert.StartsWith(store.Provider == StoreProvider.PostgreSQL
                ? "CareCoordination is still connected to this database" : "CareCoordination is still running on this store", running.Message, StringComparison.Ordinal);
            Assert.Contains(later, (await ReadAsync(app)).Referrals.Keys);
        }
        if (store.Provider == StoreProvider.Sqlite)
        {
            // A second node beside the first is let on; none while a restore holds the store.
            SqliteNodeMark.ForNode(connectionString)!.Dispose();
            Assert.Throws<BackupFailure>(() => SqliteNodeMark.ForRestore(connectionString));
        }

        // As the operator guide says: stop the app, then restore over its store.
        await app.DisposeAsync();
        if (store.Provider == StoreProvider.Sqlite)
        {
            using (SqliteNodeMark.ForRestore(connectionString))
            {
                var held = Assert.Throws<InvalidOperationException>(() => SqliteNodeMark.ForNode(connectionString));
                Assert.StartsWith("A restore is running on the store", held.Message, StringComparison.Ordinal);
            }
        }
        await using (var target = new Database(store.Provider, connectionString))
        {
            Assert.Contains("not empty", (await Assert.ThrowsAsync<BackupFailure>(() => Backup.RestoreAsync(target, file))).Message, StringComparison.Ordinal);
            var restored = await Backup.RestoreAsync(target, file, overwrite: true);
            Assert.Equal(summary, restored.Summary);
        }
        await using var back = new Host(new ExistingStore(store.Provider, connectionString));
        var contents = await ReadAsync(back);
        Assert.DoesNotContain(later, contents.Referrals.Keys);
        Assert.Equal(summary.Referrals, contents.Referrals.Count);
        Assert.Equal(summary.LastSeq, contents.Changes[^1].Seq);
    }

    [Fact]
    public async Task Restore_OfAFileThatIsNotABackup_IsRefused_AndTheStoreStaysEmpty()
    {
        Directory.CreateDirectory(_folder);
        var file = NewFile();
        await File.WriteAllTextAsync(file, "Not a backup: a note someone saved with the wrong name.");
        await using var target = new Database(store.Provider, await store.CreateEmptyAsync());

        var refused = await Assert.ThrowsAsync<BackupFailure>(() => Backup.RestoreAsync(target, file));

        Assert.Contains("is not a CareCoordination backup", refused.Message, StringComparison.Ordinal);
        await using var connection = await target.OpenAsync();
        var tables = store.Provider == StoreProvider.Sqlite
            ? "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'"
            : "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'";
        Assert.Equal(0, await connection.ExecuteScalarAsync<long>(tables));
    }

    [Fact]
    public async Task Restore_OfABackupFromAnOlderVersion_AppliesTheMigrationsItPredates()
    {
        await using var app = new Host(store);
        _ = app.Services;
        // The store as the version before migration 7 left it (7 only adds an index; shipped migrations never change).
        await using (var connection = await app.OpenAsync())
        {
            await connection.ExecuteAsync("DROP INDEX ix_audit_actor");
            await connection.ExecuteAsync("DELETE FROM schema_migration WHERE version = 7");
        }
        var file = NewFile();
        await Backup.CreateAsync(app.Services.GetRequiredService<Database>(), file);
        var fresh = await store.CreateEmptyAsync();
        await using var target = new Database(store.Provider, fresh);

        var restored = await Backup.RestoreAsync(target, file);

        Assert.Equal([7], restored.MigrationsApplied);
        Assert.Equal(Migrator.Scripts.Count, restored.Summary.SchemaVersion);
        await using var check = await target.OpenAsync();
        var index = store.Provider == StoreProvider.Sqlite
            ? "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'ix_audit_actor'"
            : "SELECT COUNT(*) FROM pg_indexes WHERE indexname = 'ix_audit_actor'";
        Assert.Equal(1, await check.ExecuteScalarAsync<long>(index));
    }

    [Fact]
    public async Task Restore_OfABackupFromANewerVersion_IsRefused_NamingTheVersions()
    {
        await using var app = new Host(store);
        _ = app.Services;
        await using (var connection = await app.OpenAsync())
        {
            await connection.ExecuteAsync("INSERT INTO schema_migration (version, name, applied_at) VALUES (@Version, 'from_the_future', @At)",
                new { Version = Migrator.Scripts.Count + 1, At = DateTimeOffset.UtcNow });
        }
        var file = NewFile();
        await Backup.CreateAsync(app.Services.GetRequiredService<Database>(), file);
        await using var target = new Database(store.Provider, await store.CreateEmptyAsync());

        var refused = await Assert.ThrowsAsync<BackupFailure>(() => Backup.RestoreAsync(target, file));

        Assert.Contains($"newer version of CareCoordination (schema version {Migrator.Scripts.Count + 1}; this one knows {Migrator.Scripts.Count})",
            refused.Message, StringComparison.Ordinal);
        // Refused before anything was written: the store is as empty as it was, and a backup this version made still goes in.
        await using (var connection = await target.OpenAsync())
        {
            Assert.Equal(0, await connection.ExecuteScalarAsync<long>(store.Provider == StoreProvider.PostgreSQL
                ? "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()"
                : "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'"));
        }
    }

    [Fact]
    public async Task Verbs_BackupAndRestore_WorkOnTheConfiguredStore_AndSayWhatTheyDid()
    {
        await using var app = new Host(store);
        _ = app.Services;
        var file = NewFile();
        var fresh = await store.CreateEmptyAsync();

        var backup = Backup.Command.Parse(["backup", "--to", file, "--Database:Provider=" + store.Provider]);
        Assert.Equal(["--Database:Provider=" + store.Provider], backup!.HostArgs);
        var (code, output, error) = await RunAsync(backup, app.ConnectionString);
        Assert.Equal(0, code);
        Assert.StartsWith($"Backed up the {store.Provider} store to {file}: ", output, StringComparison.Ordinal);

        (code, _, error) = await RunAsync(backup, app.ConnectionString);
        Assert.Equal(1, code);
        Assert.Contains("already exists", error, StringComparison.Ordinal);

        var restore = Backup.Command.Parse(["restore", "--from", file])!;
        (code, output, _) = await RunAsync(restore, fresh);
        Assert.Equal(0, code);
        Assert.Contains($"Restored {file} into the {store.Provider} store: ", output, StringComparison.Ordinal);
        Assert.Contains("Checked: every migration was already applied.", output, StringComparison.Ordinal);

        (code, _, error) = await RunAsync(restore, fresh);
        Assert.Equal(1, code);
        Assert.Contains("not empty", error, StringComparison.Ordinal);

        (code, _, error) = await RunAsync(Backup.Command.Parse(["restore"])!, fresh);
        Assert.Equal(2, code);
        Assert.Contains("Usage:", error, StringComparison.Ordinal);
        Assert.Null(Backup.Command.Parse(["--urls", "http://127.0.0.1:5080"]));
    }

    private async Task<(int Code, string Output, string Error)> RunAsync(Backup.Command command, string connectionString)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Database:Provider"] = store.Provider.ToString(),
            ["ConnectionStrings:CareCoordination"] = connectionString,
        }).Build();
        using var output = new StringWriter();
        using var error = new StringWriter();
        var code = await command.RunAsync(configuration, output, error);
        return (code, output.ToString(), error.ToString());
    }

    private static async Task<long> SubmitAsync(AppFactory app, ClaimsPrincipal referrer)
    {
        var form = ReferralForms.Discharge(LondonTime.Today(app.Clock), await app.NewNhsNumberAsync());
        var sent = await app.SendAsync<SubmitReferral.Result>(new SubmitReferral.Command(form, Guid.NewGuid().ToString("N")), referrer);
        return sent.ReferralId!.Value;
    }

    private static async Task<Contents> ReadAsync(AppFactory app)
    {
        await using var connection = await app.OpenAsync();
        var referrals = (await connection.QueryAsync("SELECT * FROM referral"))
            .Cast<IDictionary<string, object?>>()
            .ToDictionary(row => Convert.ToInt64(row["id"], System.Globalization.CultureInfo.InvariantCulture), row => JsonSerializer.Serialize(row));
        var changes = (await connection.QueryAsync<ChangeRow>(
            "SELECT seq AS Seq, kind AS Kind, entity_type AS EntityType, entity_id AS EntityId FROM change ORDER BY seq")).ToList();
        return new Contents(referrals, changes);
    }

    public void Dispose()
    {
        if (Directory.Exists(_folder))
        {
            Directory.Delete(_folder, recursive: true);
        }
        GC.SuppressFinalize(this);
    }
}

public sealed class SqliteBackupTests() : BackupTests(new SqliteTestStore());

public sealed class PostgresBackupTests() : BackupTests(new PostgresTestStore());
