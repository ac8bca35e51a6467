using CareCoordination.Store;
using CareCoordination.Tests.Support;
using Dapper;

namespace CareCoordination.Tests.Store;

/// <summary>
/// A bulk read's people on PostgreSQL are written without a per-row check against audit_event (0044): the foreign key's
/// trigger, fired for each of a download's 100,000 people, took three quarters of the audit write's time (issue 13).
/// </summary>
public sealed class PostgresAuditPersonTests : IAsyncLifetime
{
    private Database _database = null!;

    public async Task InitializeAsync() => _database = await new PostgresTestStore().MigratedAsync();

    public async Task DisposeAsync() => await _database.DisposeAsync();

    [Fact]
    public async Task ABulkReadsPeople_AreWrittenWithNoTriggerPerRow()
    {
        await using var connection = await _database.OpenAsync();

        // The foreign key's checks are the table's only triggers (internal ones, listed in pg_trigger all the same).
        Assert.Equal(0, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM pg_trigger WHERE tgrelid = 'audit_person'::regclass"));
        Assert.Equal(0, await connection.ExecuteScalarAsync<long>(
            "SELECT COUNT(*) FROM pg_constraint WHERE conrelid = 'audit_person'::regclass AND contype = 'f'"));
    }
}
