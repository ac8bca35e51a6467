using System.Net;
using CareCoordination.Tests.Support;
using Dapper;
using Npgsql;

namespace CareCoordination.Tests.Components;

/// <summary>
/// A page asked for while the store does not answer (a reload, a wall screen reloading itself after its server restarted):
/// the answer says so and comes back by itself once the store is back, where a generic error page stayed on the wall for good.
/// On PostgreSQL: a server can be down while the node runs. An embedded SQLite store fails with its node, and its open
/// connections keep reading a file that is removed, so there is no outage to make there.
/// </summary>
public sealed class StoreOutagePageTests
{
    [Fact]
    public async Task APageAskedForWhileTheStoreIsDown_Says503AndTriesAgainByItself_AndIsServedOnceTheStoreIsBack()
    {
        await using var app = new PostgresAppFactory();
        using var client = app.CreateBrowserlessClient();
        Assert.Equal(HttpStatusCode.Redirect, (await app.SignInAsync(client, "coordinator", AppFactory.Password)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/boards/wall")).StatusCode);

        var restore = await CutTheStoreAsync(app);
        try
        {
            using var down = await client.GetAsync("/boards/wall");
            var page = await down.Content.ReadAsStringAsync();

            Assert.Equal(HttpStatusCode.ServiceUnavailable, down.StatusCode);
            Assert.Equal(TimeSpan.FromSeconds(15), down.Headers.RetryAfter?.Delta);
            Assert.Contains("cannot reach its store", page, StringComparison.Ordinal);
            Assert.Contains("<meta http-equiv=\"refresh\" content=\"15\"", page, StringComparison.Ordinal);
            Assert.DoesNotContain("Something went wrong", page, StringComparison.Ordinal);
        }
        finally
        {
            await restore();
        }

        // What the page's refresh asks for next: the page itself, as the signed-in user, with nothing to do by hand.
        using var back = await client.GetAsync("/boards/wall");
        Assert.Equal(HttpStatusCode.OK, back.StatusCode);
        Assert.Contains("Westmoor capacity", await back.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    /// <summary>As a server restarting or cut off: no new connection is taken, and those open are ended. Returns how to bring it back.</summary>
    private static async Task<Func<Task>> CutTheStoreAsync(AppFactory app)
    {
        var database = new NpgsqlConnectionStringBuilder(app.ConnectionString).Database!;
        var server = new NpgsqlConnectionStringBuilder(app.ConnectionString) { Database = "postgres", Pooling = false }.ConnectionString;
        await using (var connection = new NpgsqlConnection(server))
        {
            await connection.ExecuteAsync($"ALTER DATABASE \"{database}\" WITH ALLOW_CONNECTIONS false");
            await connection.ExecuteAsync("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = @database", new { database });
        }
        return async () =>
        {
            await using var connection = new NpgsqlConnection(server);
            await connection.ExecuteAsync($"ALTER DATABASE \"{database}\" WITH ALLOW_CONNECTIONS true");
        };
    }
}
