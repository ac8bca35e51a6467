using System.Data.Common;
using System.Net;
using System.Text.Json;
using CareCoordination.Features.Referrals;
using CareCoordination.Features.Reports;
using CareCoordination.Store;
using CareCoordination.Tests.Support;
using Dapper;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;

namespace CareCoordination.Tests.Features.Health;

/// <summary>/health as a load balancer and a monitor read it: the status code, and each check in the JSON body.</summary>
public abstract class HealthTests
{
    /// <summary>A host on a fresh store of its own: these tests break their store.</summary>
    protected abstract AppFactory Start();

    /// <summary>
    /// Start-up's own pokes of the change feed have happened: the warm-up has ended, and on PostgreSQL the listener for other
    /// nodes' changes, which pokes the feed once it listens, is listening (CI saw its poke publish the test's change).
    /// </summary>
    private static async Task StartUpPokesOverAsync(AppFactory app)
    {
        await app.Services.GetRequiredService<SubmissionWarmUp>().Done;
        if (app.Services.GetRequiredService<Database>().Provider != StoreProvider.PostgreSQL)
        {
            return;
        }
        await using var connection = await app.OpenAsync();
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (await connection.ExecuteScalarAsync<long>(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %'") == 0)
        {
            Assert.True(waited.Elapsed < TimeSpan.FromSeconds(30), "The change listener did not listen within 30 s.");
            await Task.Delay(20);
        }
        // Its poke follows the LISTEN at once, and the feed reads on its own thread straight after.
        await Task.Delay(300);
    }

    /// <summary>The status code, the overall status and each check; a body that is not the JSON report is its overall status as it stands.</summary>
    private static async Task<(HttpStatusCode Status, string Overall, Dictionary<string, (string Status, string Description)> Checks)> HealthAsync(HttpClient client)
    {
        var response = await client.GetAsync("/health");
        var text = await response.Content.ReadAsStringAsync();
        if (!text.StartsWith('{'))
        {
            return (response.StatusCode, text, []);
        }
        using var body = JsonDocument.Parse(text);
        var checks = body.RootElement.GetProperty("checks").EnumerateArray().ToDictionary(
            c => c.GetProperty("name").GetString()!,
            c => (c.GetProperty("status").GetString()!, c.GetProperty("description").GetString() ?? ""));
        return (response.StatusCode, body.RootElement.GetProperty("status").GetString()!, checks);
    }

    [Fact]
    public async Task Health_WhileTheStoreTakesWrites_Is200Healthy_ListingEachCheck()
    {
        await using var app = Start();
        using var client = app.CreateBrowserlessClient();

        var (status, overall, checks) = await HealthAsync(client);

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("Healthy", overall);
        Assert.Equal(["change-feed", "deprivation-lookup", "store-integrity", "store-write"], checks.Keys.Order());
        Assert.All(checks.Values, c => Assert.Equal("Healthy", c.Status));
        await using var connection = await app.OpenAsync();
        Assert.NotNull(await connection.ExecuteScalarAsync<string>("SELECT checked_by FROM store_health WHERE id = 1"));
    }

    /// <summary>Holds what every write needs until disposed: the database's write lock on SQLite, the change table on PostgreSQL.</summary>
    private static async Task<DbConnection> HoldEveryWriteAsync(AppFactory app)
    {
        var connection = await app.OpenAsync();
        await connection.ExecuteAsync(connection is SqliteConnection ? "BEGIN IMMEDIATE" : "BEGIN; LOCK TABLE change IN SHARE MODE");
        return connection;
    }

    [Fact]
    public async Task Health_WhileReadsWorkButNoWriteCanBeMade_Is503()
    {
        await using var store = Start();
        await using var app = store.WithWebHostBuilder(builder => builder.UseSetting("Health:WriteTimeoutSeconds", "1"));
        using var client = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        Assert.Equal(HttpStatusCode.OK, (await HealthAsync(client)).Status);

        await using (var holder = await HoldEveryWriteAsync(store))
        {
            var (status, overall, checks) = await HealthAsync(client);

            Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
            Assert.Equal("Unhealthy", overall);
            Assert.Equal("Unhealthy", checks["store-write"].Status);
            Assert.Contains("takes no writes", checks["store-write"].Description, StringComparison.Ordinal);
            // Reads still work: this is what the old read-only probe could not see.
            await using var reader = await store.OpenAsync();
            Assert.True(await reader.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM referral") > 0);
        }

        Assert.Equal(HttpStatusCode.OK, (await HealthAsync(client)).Status);
    }

    [Fact]
    public async Task Health_WhileLiveScreensAreBehindTheStore_Is200Degraded()
    {
        await using var app = Start();
        using var client = app.CreateBrowserlessClient();
        Assert.Equal("Healthy", (await HealthAsync(client)).Overall);
        await StartUpPokesOverAsync(app);

        // A change committed two minutes ago that the feed was never told of (as when another node's notification is lost).
        await using (var connection = await app.OpenAsync())
        {
            await connection.ExecuteAsync("INSERT INTO change (at, kind, entity_type, entity_id) VALUES (@at, 'test', 'referral', 0)",
                new { at = app.Clock.GetUtcNow().AddMinutes(-2) });
        }

        var (status, overall, checks) = await HealthAsync(client);

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("Degraded", overall);
        Assert.Equal("Degraded", checks["change-feed"].Status);
        Assert.Contains("behind: 1 committed changes", checks["change-feed"].Description, StringComparison.Ordinal);
        Assert.Equal("Healthy", checks["store-write"].Status);
    }
}

public sealed class HealthOnSqliteTests : HealthTests
{
    protected override AppFactory Start() => new();

    [Fact]
    public async Task Health_WhenTheStoreIsGone_Is503()
    {
        await using var app = new AppFactory();
        using var client = app.CreateBrowserlessClient();
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/health")).StatusCode);

        // Pooling is off in tests, so the next connection opens the path afresh and finds a folder, not a store.
        var file = app.ReplaceSqliteStoreWithFolder();
        try
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, (await client.GetAsync("/health")).StatusCode);
        }
        finally
        {
            Directory.Delete(file);
        }
    }

    /// <summary>
    /// Overwrites the referral table's first page in the file: the probes' own tables still read and write, a referral no
    /// longer can. Start-up's writes beside serving (the deprivation lookup, the warm-up) end first, and the WAL is emptied
    /// into the file, asserted: a newer copy of the page left in the WAL would be read instead of the broken one.
    /// </summary>
    private static async Task CorruptTheReferralTableAsync(AppFactory app)
    {
        await app.Services.GetRequiredService<DeprivationLookup>().WhenLoadedAsync(CancellationToken.None);
        await app.Services.GetRequiredService<SubmissionWarmUp>().Done;
        long page, pageSize;
        await using (var connection = await app.OpenAsync())
        {
            var (busy, _, _) = await connection.QuerySingleAsync<(long Busy, long Log, long Checkpointed)>("PRAGMA wal_checkpoint(TRUNCATE)");
            Assert.Equal(0, busy);
            page = await connection.ExecuteScalarAsync<long>("SELECT rootpage FROM sqlite_master WHERE type = 'table' AND name = 'referral'");
            pageSize = await connection.ExecuteScalarAsync<long>("PRAGMA page_size");
        }
        var file = new SqliteConnectionStringBuilder(app.ConnectionString).DataSource;
        await using var stream = new FileStream(file, FileMode.Open, FileAccess.Write, FileShare.ReadWrite);
        stream.Position = (page - 1) * pageSize;
        stream.Write(Enumerable.Repeat((byte)0xFF, (int)pageSize).ToArray());
    }

    private static async Task<(HttpStatusCode Status, string Description)> IntegrityAsync(HttpClient client)
    {
        using var response = await client.GetAsync("/health");
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var integrity = body.RootElement.GetProperty("checks").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "store-integrity");
        return (response.StatusCode, integrity.GetProperty("description").GetString() ?? "");
    }

    [Fact]
    public async Task Health_WhenTheFileIsCorruptAtStartUp_Is503_OnceTheFirstIntegrityCheckEnds_WithoutHoldingUpTheFirstProbe()
    {
        await using var app = new AppFactory();
        await CorruptTheReferralTableAsync(app);
        using var client = app.CreateBrowserlessClient();

        // No probe is Healthy on a finished check of this file; once the background check ends, it is Unhealthy.
        (HttpStatusCode Status, string Description) probe;
        while ((probe = await IntegrityAsync(client)).Description.Contains("is running", StringComparison.Ordinal))
        {
            await Task.Delay(20);
        }

        Assert.Equal(HttpStatusCode.ServiceUnavailable, probe.Status);
        Assert.Contains("corrupt", probe.Description, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Health_WhenTheFileIsCorrupt_Is503_ByTheNextIntegrityCheck()
    {
        await using var app = new AppFactory();
        using var client = app.CreateBrowserlessClient();
        // The first check since start-up runs in the background: wait for its result before breaking the file.
        while (!(await IntegrityAsync(client)).Description.Contains("found no fault", StringComparison.Ordinal))
        {
            await Task.Delay(20);
        }

        await CorruptTheReferralTableAsync(app);

        // Checked at most once an hour (Health:IntegrityCheckMinutes): until then the last result stands.
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/health")).StatusCode);
        app.Clock.Advance(TimeSpan.FromMinutes(61));

        var response = await client.GetAsync("/health");

        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var integrity = body.RootElement.GetProperty("checks").EnumerateArray().Single(c => c.GetProperty("name").GetString() == "store-integrity");
        Assert.Equal("Unhealthy", integrity.GetProperty("status").GetString());
        Assert.Contains("corrupt", integrity.GetProperty("description").GetString(), StringComparison.Ordinal);
    }
}

public sealed class HealthOnPostgresTests : HealthTests
{
    protected override AppFactory Start() => new PostgresAppFactory();
}
