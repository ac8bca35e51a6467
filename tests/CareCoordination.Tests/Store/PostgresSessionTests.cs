using CareCoordination.Store;
using CareCoordination.Tests.Support;
using Dapper;

namespace CareCoordination.Tests.Store;

/// <summary>How the app's PostgreSQL sessions are set up, on a real server: what <see cref="Database.WithConnectionDefaults"/> asks for holds there.</summary>
public sealed class PostgresSessionTests : IAsyncLifetime
{
    private Database _database = null!;

    public async Task InitializeAsync() => _database = await new PostgresTestStore().MigratedAsync();

    public async Task DisposeAsync() => await _database.DisposeAsync();

    /// <summary>The server's default is on; compiled at each execution, the reports' reads took twice as long (issue 14).</summary>
    [Fact]
    public async Task TheAppsSessions_RunWithoutJit()
    {
        await using var connection = await _database.OpenAsync();

        Assert.Equal("off", await connection.ExecuteScalarAsync<string>("SHOW jit"));
    }
}
