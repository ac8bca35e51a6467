using CareCoordination.Store;
using CareCoordination.Tests.Support;
using Dapper;
using Microsoft.Extensions.Logging.Abstractions;

namespace CareCoordination.Tests.Store;

/// <summary>Written once, run against every store (see the one-line subclasses below).</summary>
public abstract class MigrationTests(ITestStore store)
{
    private static readonly string[] DomainTables =
    [
        "organisation", "staff_user", "partner_client", "person", "service", "site", "ward", "bed", "referral",
        "referral_note", "triage_task", "placement", "change", "audit_event", "app_setting",
    ];

    private async Task<Database> EmptyStoreAsync()
    {
        TypeHandlers.Register();
        return new Database(store.Provider, await store.CreateEmptyAsync());
    }

    [Fact]
    public async Task Migrations_OnAnEmptyStore_CreateTheWholeDomain()
    {
        await using var database = await EmptyStoreAsync();

        var applied = await new Migrator(database, NullLogger<Migrator>.Instance).ApplyAsync();

        Assert.Equal(Migrator.Scripts.Select(s => s.Version), applied);
        await using var connection = await database.OpenAsync();
        foreach (var table in DomainTables)
        {
            Assert.Equal(0, await connection.ExecuteScalarAsync<long>($"SELECT COUNT(*) FROM {table}"));
        }
    }

    [Fact]
    public async Task Migrations_AppliedAgain_AreANoOp()
    {
        await using var database = await EmptyStoreAsync();
        var migrator = new Migrator(database, NullLogger<Migrator>.Instance);
        await migrator.ApplyAsync();

        var second = await migrator.ApplyAsync();

        Assert.Empty(second);
        await using var connection = await database.OpenAsync();
        Assert.Equal(Migrator.Scripts.Count, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM schema_migration"));
    }

    [Fact]
    public async Task Bed_WithALivePlacement_RefusesASecondOne()
    {
        await using var database = await store.MigratedAsync();
        await using var connection = await database.OpenAsync();
        var world = await StoreWorld.CreateAsync(connection);
        var first = await world.AddReferralAsync(connection, "9990000018");
        var second = await world.AddReferralAsync(connection, "9990000026");
        await world.PlaceInBedAsync(connection, first, "active");

        var refused = await Record.ExceptionAsync(() => world.PlaceInBedAsync(connection, second, "reserved"));

        Assert.NotNull(refused);
        Assert.True(database.IsUniqueViolation(refused), refused.Message);
        Assert.Equal(1, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM placement"));
    }

    [Fact]
    public async Task Bed_AfterItsPlacementEnds_TakesTheNextOne()
    {
        await using var database = await store.MigratedAsync();
        await using var connection = await database.OpenAsync();
        var world = await StoreWorld.CreateAsync(connection);
        var first = await world.AddReferralAsync(connection, "9990000018");
        var second = await world.AddReferralAsync(connection, "9990000026");
        var placement = await world.PlaceInBedAsync(connection, first, "active");
        await connection.ExecuteAsync("UPDATE placement SET status = 'ended', ended_at = @now WHERE id = @placement", new { placement, now = DateTimeOffset.UtcNow });

        await world.PlaceInBedAsync(connection, second, "active");

        Assert.Equal(2, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM placement"));
    }

    [Fact]
    public async Task Person_NhsNumber_IsUnique()
    {
        await using var database = await store.MigratedAsync();
        await using var connection = await database.OpenAsync();
        var world = await StoreWorld.CreateAsync(connection);
        await world.AddPersonAsync(connection, "9990000018");

        var refused = await Record.ExceptionAsync(() => world.AddPersonAsync(connection, "9990000018"));

        Assert.NotNull(refused);
        Assert.True(database.IsUniqueViolation(refused), refused.Message);
    }

    [Fact]
    public async Task Referral_SubmittedWithoutConsentOrLawfulReason_IsRefusedByTheStore()
    {
        await using var database = await store.MigratedAsync();
        await using var connection = await database.OpenAsync();
        var world = await StoreWorld.CreateAsync(connection);

        var refused = await Record.ExceptionAsync(() => world.AddReferralAsync(connection, "9990000018", consent: false));

        Assert.NotNull(refused);
        Assert.Equal(0, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM referral"));
    }

    [Fact]
    public async Task Times_RoundTrip_AsUtcAndSortAsTime()
    {
        await using var database = await store.MigratedAsync();
        await using var connection = await database.OpenAsync();
        var early = new DateTimeOffset(2026, 3, 29, 0, 59, 59, 999, TimeSpan.Zero);
        var late = new DateTimeOffset(2026, 3, 29, 1, 0, 0, TimeSpan.FromHours(1)); // the same instant as 00:00 UTC, written with an offset
        foreach (var (kind, at) in new[] { ("late", late), ("early", early) })
        {
            await connection.ExecuteAsync("INSERT INTO change (at, kind, entity_type, entity_id) VALUES (@at, @kind, 'test', 1)", new { at, kind });
        }

        var ordered = (await connection.QueryAsync<TimedRow>("SELECT kind AS Kind, at AS At FROM change ORDER BY at")).ToList();

        Assert.Equal(["late", "early"], ordered.Select(o => o.Kind));
        Assert.Equal(late.UtcDateTime, ordered[0].At.UtcDateTime);
        Assert.Equal(TimeSpan.Zero, ordered[0].At.Offset);
    }
}

public sealed class TimedRow
{
    public string Kind { get; init; } = "";
    public DateTimeOffset At { get; init; }
}

public sealed class SqliteMigrationTests() : MigrationTests(new SqliteTestStore());

public sealed class PostgresMigrationTests() : MigrationTests(new PostgresTestStore());
