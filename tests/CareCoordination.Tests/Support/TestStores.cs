using CareCoordination.Store;
using Dapper;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;

namespace CareCoordination.Tests.Support;

/// <summary>A fresh, empty store per test class, for each engine the product supports.</summary>
public interface ITestStore
{
    StoreProvider Provider { get; }

    /// <summary>A connection string to a new, empty database.</summary>
    Task<string> CreateEmptyAsync();
}

public sealed class SqliteTestStore : ITestStore
{
    public StoreProvider Provider => StoreProvider.Sqlite;

    public Task<string> CreateEmptyAsync()
    {
        return Task.FromResult($"Data Source={Testing.TestScratch.NewPath(extension: ".db")};Pooling=False");
    }
}

/// <summary>
/// The test command (./test.sh) starts a throwaway PostgreSQL and names it here. Without it these tests
/// fail, on purpose: a PostgreSQL test that skipped itself would hide a gap in a green run.
/// </summary>
public sealed class PostgresTestStore : ITestStore
{
    public const string Variable = "CARECOORDINATION_TEST_POSTGRES";

    public StoreProvider Provider => StoreProvider.PostgreSQL;

    public async Task<string> CreateEmptyAsync()
    {
        var server = Environment.GetEnvironmentVariable(Variable)
            ?? throw new InvalidOperationException($"{Variable} is not set: run the tests with ./test.sh, which starts a throwaway PostgreSQL.");
        var name = await Testing.TestScratch.NewDatabaseAsync(server);
        return new NpgsqlConnectionStringBuilder(server) { Database = name }.ConnectionString;
    }
}

public static class TestStoreExtensions
{
    /// <summary>A new store with every migration applied.</summary>
    public static async Task<Database> MigratedAsync(this ITestStore store)
    {
        TypeHandlers.Register();
        var database = new Database(store.Provider, await store.CreateEmptyAsync());
        await new Migrator(database, NullLogger<Migrator>.Instance).ApplyAsync();
        return database;
    }
}
