using System.Net;
using CareCoordination.Store;
using CareCoordination.Tests.Support;
using Dapper;
using Microsoft.AspNetCore.Hosting;

namespace CareCoordination.Tests.Deployment;

/// <summary>
/// Two nodes on one PostgreSQL store, installed in different folders as on two machines: a browser moved
/// from one to the other keeps its sign-in and its half-filled form, because the key ring that seals them
/// is in the store.
/// </summary>
public sealed class SharedKeyRingTests(PostgresAppFactory first) : IClassFixture<PostgresAppFactory>
{
    /// <summary>Another node on the same store (migrated and seeded by the first), with its own install folder.</summary>
    private sealed class SecondNode(string connectionString) : AppFactory(new ExistingStore(connectionString))
    {
        private readonly string _installedAt = Directory.CreateTempSubdirectory("carecoordination-node-").FullName;

        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            base.ConfigureWebHost(builder);
            builder.UseContentRoot(_installedAt);
        }
    }

    private sealed class ExistingStore(string connectionString) : ITestStore
    {
        public StoreProvider Provider => StoreProvider.PostgreSQL;

        public Task<string> CreateEmptyAsync() => Task.FromResult(connectionString);
    }

    [Fact]
    public async Task AFormFromOneNode_SignsInOnAnother_AndThatSignInIsReadByTheFirst()
    {
        _ = first.Services;
        await using var second = new SecondNode(first.ConnectionString);
        var browser = new HandCookies();
        using var onFirst = first.CreateDefaultClient(browser.Handler());
        using var onSecond = second.CreateDefaultClient(browser.Handler());

        // The form and its antiforgery cookie come from the first node; the second checks them and signs in.
        var signIn = await SignInForm.PostAsync(onFirst, onSecond, "coordinator", AppFactory.Password);
        Assert.Equal(HttpStatusCode.Redirect, signIn.StatusCode);
        _ = browser.LastSet("carecoordination");

        // The first node reads the second's sign-in cookie.
        var me = await onFirst.GetAsync("/api/me");
        Assert.Equal(HttpStatusCode.OK, me.StatusCode);
        Assert.Contains("coordinator", await me.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        // One key for both: the second node found the first's rather than making its own.
        await using var connection = await first.OpenAsync();
        Assert.Equal(1, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM data_protection_key"));
    }
}
