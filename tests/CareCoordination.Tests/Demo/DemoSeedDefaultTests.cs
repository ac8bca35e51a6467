using CareCoordination.Tests.Support;
using Dapper;
using Microsoft.AspNetCore.Hosting;

namespace CareCoordination.Tests.Demo;

/// <summary>
/// Demo:Seed unset on SQLite: a developer's machine gets the demo county, anywhere else the store starts empty, so a live
/// node's first start never puts invented people and beds on the boards beside the real ones.
/// </summary>
public sealed class DemoSeedDefaultTests
{
    /// <summary>The real host on a new SQLite store, in the environment named, with Demo:Seed not set.</summary>
    private sealed class Unset(string environment) : AppFactory(new SqliteTestStore())
    {
        protected override bool SeedsDemo => false;

        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            base.ConfigureWebHost(builder);
            builder.UseEnvironment(environment);
        }
    }

    [Theory]
    [InlineData("Development", true)]
    [InlineData("Production", false)]
    [InlineData("Testing", false)]
    public async Task UnsetOnSqlite_SeedsOnlyADevelopersStore(string environment, bool seeded)
    {
        await using var app = new Unset(environment);
        await using var connection = await app.OpenAsync();
        Assert.Equal(seeded, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM staff_user WHERE username = 'referrer'") == 1);
        Assert.Equal(seeded, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM bed") > 0);
    }
}
