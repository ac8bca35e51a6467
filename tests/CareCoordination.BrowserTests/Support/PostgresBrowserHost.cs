using CareCoordination.Store;
using Dapper;
using Microsoft.AspNetCore.Hosting;
using Npgsql;
using Xunit.Abstractions;

namespace CareCoordination.BrowserTests.Support;

/// <summary>
/// The browser host on a fresh PostgreSQL database of the server test.sh starts, for what only a store outside the
/// process can show: the store failing while the node runs. The test can make the database refuse connections and
/// let it take them again.
/// </summary>
public sealed class PostgresBrowserHost(IMessageSink diagnostics) : BrowserHost(diagnostics)
{
    private readonly string _server = Environment.GetEnvironmentVariable("CARECOORDINATION_TEST_POSTGRES")
        ?? throw new InvalidOperationException("CARECOORDINATION_TEST_POSTGRES is not set: run the tests with ./test.sh, which starts a throwaway PostgreSQL.");

    private string _database = "";

    protected override void UseStore(IWebHostBuilder builder)
    {
        _database = Testing.TestScratch.NewDatabaseAsync(_server, "browser_").GetAwaiter().GetResult();
        builder.UseSetting("Database:Provider", nameof(StoreProvider.PostgreSQL));
        builder.UseSetting("ConnectionStrings:CareCoordination", new NpgsqlConnectionStringBuilder(_server) { Database = _database }.ConnectionString);
        // The node asks its store often, so that a test need not wait the default five seconds.
        builder.UseSetting("Downtime:ProbeSeconds", "0.5");
        builder.UseSetting("Downtime:ProbeTimeoutSeconds", "2");
    }

    /// <summary>The store stops taking connections and ends those it has, as a failed database server would.</summary>
    public async Task CutTheStoreAsync()
    {
        await using var connection = new NpgsqlConnection(_server);
        await connection.OpenAsync();
        await connection.ExecuteAsync($"ALTER DATABASE {_database} WITH ALLOW_CONNECTIONS false");
        await connection.ExecuteAsync("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = @name", new { name = _database });
    }

    public async Task RestoreTheStoreAsync()
    {
        await using var connection = new NpgsqlConnection(_server);
        await connection.OpenAsync();
        await connection.ExecuteAsync($"ALTER DATABASE {_database} WITH ALLOW_CONNECTIONS true");
    }
}
