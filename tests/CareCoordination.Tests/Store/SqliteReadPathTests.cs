using CareCoordination.Features.Referrals;
using CareCoordination.Store;
using CareCoordination.Tests.Support;
using Dapper;
using Microsoft.Data.Sqlite;

namespace CareCoordination.Tests.Store;

/// <summary>
/// SQLite's read connections: settings that hold on every connection the pool hands out again, and the plan of the
/// person read every FHIR write and read makes (it must not walk the store's history).
/// </summary>
public sealed class SqliteReadPathTests : IAsyncLifetime
{
    private Database _database = null!;

    public async Task InitializeAsync() => _database = await new SqliteTestStore().MigratedAsync();

    public async Task DisposeAsync() => await _database.DisposeAsync();

    [Fact]
    public void SQLiteRunsMultiThread_AsTheAppSetsIt_SoAColumnReadTakesNoMutex() =>
        // Set before the process's first connection (SqliteThreading); SQLite answers SQLITE_OK only if it took the mode.
        Assert.True(SqliteThreading.MultiThread);

    [Fact]
    public async Task AConnectionOpenedAgainFromThePool_KeepsItsSettings_AndRefusesARowThatPointsNowhere()
    {
        for (var open = 0; open < 3; open++)
        {
            await using var connection = await _database.OpenAsync();

            Assert.Equal(1, await connection.ExecuteScalarAsync<long>("PRAGMA foreign_keys"));
            Assert.Equal(10000, await connection.ExecuteScalarAsync<long>("PRAGMA busy_timeout"));
            Assert.Equal(2, await connection.ExecuteScalarAsync<long>("PRAGMA synchronous")); // FULL
            Assert.Equal("wal", await connection.ExecuteScalarAsync<string>("PRAGMA journal_mode"));
            // A screen's read does not map the store: under partner load the file grows several times a second, and each mapped
            // pooled connection mapped it again at its next read (issue 14).
            Assert.Equal(0, await connection.ExecuteScalarAsync<long>("PRAGMA mmap_size"));
            var orphan = await Assert.ThrowsAsync<SqliteException>(() => connection.ExecuteAsync(
                "INSERT INTO triage_task (referral_id, queue, status, version, created_at, updated_at) VALUES (987654321, 'coordination', 'requested', 1, '2026-01-01', '2026-01-01')"));
            Assert.Contains("FOREIGN KEY", orphan.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task ABulkWriteConnection_HasTheStoresSettingsAndRoomForItsTransaction_AndLeavesThePooledConnectionsAsTheyWere()
    {
        await using (var pooled = await _database.OpenAsync())
        {
            Assert.Equal(-2000, await pooled.ExecuteScalarAsync<long>("PRAGMA cache_size")); // SQLite's default, 2 MB
        }

        await using (var bulk = await _database.OpenForBulkWriteAsync())
        {
            Assert.Equal(-Database.BulkWriteCacheKiB, await bulk.ExecuteScalarAsync<long>("PRAGMA cache_size"));
            Assert.Equal(1, await bulk.ExecuteScalarAsync<long>("PRAGMA foreign_keys"));
            Assert.Equal(10000, await bulk.ExecuteScalarAsync<long>("PRAGMA busy_timeout"));
            Assert.Equal(2, await bulk.ExecuteScalarAsync<long>("PRAGMA synchronous"));
            Assert.Equal("wal", await bulk.ExecuteScalarAsync<string>("PRAGMA journal_mode"));
        }

        // The large cache went with the bulk connection: none the pool hands out has it.
        for (var open = 0; open < 3; open++)
        {
            await using var connection = await _database.OpenAsync();
            Assert.Equal(-2000, await connection.ExecuteScalarAsync<long>("PRAGMA cache_size"));
        }
    }

    [Fact]
    public async Task AReportsConnection_ReadsTheStoreMappedIntoMemory_AndTheMappingGoesWithIt()
    {
        await using (var report = await _database.OpenForReportAsync())
        {
            // Reads through the store mapped into memory, not copied page by page (issue 13's reports at 1M referrals).
            Assert.Equal(Database.ReportMapBytes, await report.ExecuteScalarAsync<long>("PRAGMA mmap_size"));
            Assert.Equal(10000, await report.ExecuteScalarAsync<long>("PRAGMA busy_timeout"));
            Assert.Equal("wal", await report.ExecuteScalarAsync<string>("PRAGMA journal_mode"));
        }

        for (var open = 0; open < 3; open++)
        {
            await using var connection = await _database.OpenAsync();
            Assert.Equal(0, await connection.ExecuteScalarAsync<long>("PRAGMA mmap_size"));
        }
    }

    [Fact]
    public async Task TheFortnightsBedStays_AreReadFromTheBedsIndex_NotFromEveryPlacementStillRunning()
    {
        await using var connection = await _database.OpenAsync();

        var plan = (await connection.QueryAsync<(long Id, long Parent, long NotUsed, string Detail)>(
            "EXPLAIN QUERY PLAN " + CareCoordination.Features.Boards.FlowHistory.BedStays(StoreProvider.Sqlite), new { from = DateTimeOffset.UtcNow })).Select(step => step.Detail).ToList();

        Assert.DoesNotContain(plan, step => step.Contains("ix_placement_ended", StringComparison.Ordinal));
        Assert.Equal(2, plan.Count(step => step.StartsWith("SEARCH placement USING COVERING INDEX ix_placement_bed_stays", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task TheFortnightsPlacements_AreOneRangeOfTheirIndex_NotALookupOfEachReferral()
    {
        await using var connection = await _database.OpenAsync();

        var plan = (await connection.QueryAsync<(long Id, long Parent, long NotUsed, string Detail)>(
            "EXPLAIN QUERY PLAN " + CareCoordination.Features.Boards.FlowHistory.PlacementsStarted(StoreProvider.Sqlite), new { from = DateTimeOffset.UtcNow })).Select(step => step.Detail).ToList();

        // The referral is read only for a placement that does not keep its submission (the subquery under COALESCE).
        Assert.Equal("SEARCH pl USING COVERING INDEX ix_placement_started_submitted (started_at>?)", plan[0]);
        Assert.DoesNotContain(plan, step => step.StartsWith("SCAN", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ReadingAPersonAsAnOrganisationSaidIt_SeeksByThePerson_NotThroughEveryReferralOfTheOrganisation()
    {
        await using var connection = await _database.OpenAsync();

        var plan = (await connection.QueryAsync<(long Id, long Parent, long NotUsed, string Detail)>(
            $"EXPLAIN QUERY PLAN SELECT {PersonRecord.AsReferredColumns} FROM person p {PersonRecord.LatestAsReferredBy} WHERE p.id = @Id",
            new { Id = 1, OrganisationId = 1 })).Select(step => step.Detail).ToList();

        Assert.DoesNotContain(plan, step => step.Contains("ix_referral_organisation_status", StringComparison.Ordinal));
        Assert.DoesNotContain(plan, step => step.StartsWith("SCAN", StringComparison.Ordinal) && !step.StartsWith("SCAN rp", StringComparison.Ordinal));
        Assert.Contains(plan, step => step.Contains("SEARCH s USING INDEX ix_referral_person_person", StringComparison.Ordinal));
    }
}
