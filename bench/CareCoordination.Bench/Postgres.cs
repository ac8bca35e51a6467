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

    private static async Task<NpgsqlConnection> OpenAdminAsync(string serverConnectionString)
    {
        var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(serverConnectionString) { Database = "postgres", Pooling = false }.ToString());
        await connection.OpenAsync();
        return connection;
    }
}
