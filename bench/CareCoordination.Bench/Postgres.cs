using Dapper;
using Npgsql;

namespace CareCoordination.Bench;

/// <summary>The bench's own databases on a PostgreSQL server it is given (made new for each run, dropped after).</summary>
public static class Postgres
{
    public static string For(string serverConnectionString, string database) =>
        new NpgsqlConnectionStringBuilder(serverConnectionString) { Database = database }.ToString();

    public static async Task CreateDatabaseAsync(string serverConnectionString, string database)
    {
        await DropDatabaseAsync(serverConnectionString, database);
        await using var admin = await OpenAdminAsync(serverConnectionString);
        await admin.ExecuteAsync($"CREATE DATABASE \"{database}\"");
    }

    public static async Task DropDatabaseAsync(string serverConnectionString, string database)
    {
        await using var admin = await OpenAdminAsync(serverConnectionString);
        await admin.ExecuteAsync($"DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)");
    }

    /// <summary>The database's comment, or null when there is no such database or it has none.</summary>
    public static async Task<string?> CommentAsync(string serverConnectionString, string database)
    {
        await using var admin = await OpenAdminAsync(serverConnectionString);
        return await admin.ExecuteScalarAsync<string?>(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = @database", new { database });
    }

    public static async Task<long> SizeAsync(string serverConnectionString, string database)
    {
        await using var admin = await OpenAdminAsync(serverConnectionString);
        return await admin.ExecuteScalarAsync<long>("SELECT pg_database_size(@database)", new { database });
    }

    /// <summary>
    /// Says so when the server holds many databases: autovacuum visits each in turn, and on a small machine that takes CPU from
    /// every figure, the references' too (1,766 databases left by test runs took about a quarter of two cores, 7 December 2026).
    /// </summary>
    public static async Task WarnIfCrowdedAsync(string serverConnectionString)
    {
        await using var admin = await OpenAdminAsync(serverConnectionString);
        var databases = await admin.ExecuteScalarAsync<long>("SELECT count(*) FROM pg_database");
        if (databases > CrowdedAt)
        {
            Console.WriteLine($"bench: the PostgreSQL server holds {databases:N0} databases: its autovacuum visits each in turn and takes CPU "
                + "from every figure below. Measure on a server of its own, or drop what earlier runs left.");
        }
    }

    /// <summary>More than a few test runs leave on a server (a whole run of the tests leaves about a hundred, swept by the next).</summary>
    private const long CrowdedAt = 200;

    private static async Task<NpgsqlConnection> OpenAdminAsync(string serverConnectionString)
    {
        var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(serverConnectionString) { Database = "postgres", Pooling = false }.ToString());
        await connection.OpenAsync();
        return connection;
    }
}
