using System.Net;
using System.Text;
using System.Text.Json;
using CareCoordination.Tests.Support;
using Dapper;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.TestHost;

namespace CareCoordination.Tests.Features.Partners;

/// <summary>
/// POST /oauth/token is limited per client id from one address, per caller address, and per client id from every address;
/// past any limit it answers 429 without checking the secret.
/// </summary>
public sealed class TokenThrottleTests(TokenThrottleTests.SmallLimitsApp app) : IClassFixture<TokenThrottleTests.SmallLimitsApp>
{
    private const int PerClient = 3;
    private const int PerAddress = 5;
    private const int PerClientEverywhere = 7;

    public sealed class SmallLimitsApp : AppFactory
    {
        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            base.ConfigureWebHost(builder);
            builder.UseSetting("Auth:TokenRequestsPerClientPerMinute", PerClient.ToString(System.Globalization.CultureInfo.InvariantCulture));
            builder.UseSetting("Auth:TokenRequestsPerAddressPerMinute", PerAddress.ToString(System.Globalization.CultureInfo.InvariantCulture));
            builder.UseSetting("Auth:TokenRequestsPerClientAllAddressesPerMinute", PerClientEverywhere.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    /// <summary>A wrong-secret token request from the given address, as the server sees it.</summary>
    private Task<HttpContext> AskAsync(string clientId, string address) =>
        app.Server.SendAsync(context =>
        {
            var body = Encoding.UTF8.GetBytes($"grant_type=client_credentials&client_id={Uri.EscapeDataString(clientId)}&client_secret=a-wrong-guess");
            context.Request.Method = HttpMethods.Post;
            context.Request.Path = "/oauth/token";
            context.Request.ContentType = "application/x-www-form-urlencoded";
            context.Request.ContentLength = body.Length;
            context.Request.Body = new MemoryStream(body);
            context.Connection.RemoteIpAddress = IPAddress.Parse(address);
        });

    private static async Task<string?> ErrorOfAsync(HttpContext context) =>
        (await JsonSerializer.DeserializeAsync<JsonElement>(context.Response.Body)).GetProperty("error").GetString();

    private async Task<long> SecretChecksAsync(string clientId)
    {
        await using var connection = await app.OpenAsync();
        return await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM audit_event WHERE action = 'IssueToken' AND detail = @detail", new { detail = "client " + clientId });
    }

    [Fact]
    public async Task TokenRequests_ForOneClientFromManyAddresses_Get429PastTheClientsLimitOverEveryAddress()
    {
        var clientId = "guessed-" + Guid.NewGuid().ToString("N")[..8];
        for (var i = 0; i < PerClientEverywhere; i++)
        {
            Assert.Equal(StatusCodes.Status401Unauthorized, (await AskAsync(clientId, $"192.0.2.{i + 1}")).Response.StatusCode);
        }

        var refused = await AskAsync(clientId, "192.0.2.200");

        Assert.Equal(StatusCodes.Status429TooManyRequests, refused.Response.StatusCode);
        Assert.Equal("slow_down", await ErrorOfAsync(refused));
        Assert.InRange(int.Parse(refused.Response.Headers.RetryAfter.ToString(), System.Globalization.CultureInfo.InvariantCulture), 1, 60);
        Assert.Equal("no-store", refused.Response.Headers.CacheControl.ToString());
        // The refused request never reached the secret check, nor the audit trail.
        Assert.Equal(PerClientEverywhere, await SecretChecksAsync(clientId));
    }

    /// <summary>
    /// A client id is no secret: someone guessing with it from one address uses up that address's count for it, and the client
    /// itself, from its own address, still gets its tokens.
    /// </summary>
    [Fact]
    public async Task TokenRequests_ForOneClientFromOneAddress_Get429_AndTheClientFromItsOwnAddressDoesNot()
    {
        var clientId = "guessed-" + Guid.NewGuid().ToString("N")[..8];
        for (var i = 0; i < PerClient; i++)
        {
            Assert.Equal(StatusCodes.Status401Unauthorized, (await AskAsync(clientId, "198.51.100.7")).Response.StatusCode);
        }

        Assert.Equal(StatusCodes.Status429TooManyRequests, (await AskAsync(clientId, "198.51.100.7")).Response.StatusCode);
        Assert.Equal(StatusCodes.Status401Unauthorized, (await AskAsync(clientId, "198.51.100.8")).Response.StatusCode);
        Assert.Equal(PerClient + 1, await SecretChecksAsync(clientId));
    }

    [Fact]
    public async Task TokenRequests_FromOneAddressForManyClients_Get429PastTheAddressLimit()
    {
        const string address = "2001:db8:15::1";
        for (var i = 0; i < PerAddress; i++)
        {
            Assert.Equal(StatusCodes.Status401Unauthorized, (await AskAsync("guessed-" + Guid.NewGuid().ToString("N")[..8], address)).Response.StatusCode);
        }

        // Another address in the same IPv6 /64 is the same sender.
        var refused = await AskAsync("guessed-" + Guid.NewGuid().ToString("N")[..8], "2001:db8:15::beef");

        Assert.Equal(StatusCodes.Status429TooManyRequests, refused.Response.StatusCode);
        Assert.Equal("slow_down", await ErrorOfAsync(refused));
        Assert.True(refused.Response.Headers.ContainsKey("Retry-After"));
        // Another sender is not held back by this one.
        Assert.Equal(StatusCodes.Status401Unauthorized, (await AskAsync("guessed-" + Guid.NewGuid().ToString("N")[..8], "2001:db8:16::1")).Response.StatusCode);
    }
}
