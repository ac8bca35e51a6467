using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using CareCoordination.Auth;
using CareCoordination.Tests.Support;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace CareCoordination.Tests.Auth;

/// <summary>
/// Issue 14: a partner's token is checked in full once, then remembered; only its lifetime is checked again on each request,
/// and the client's standing is still asked every time (RevocationTests: a deactivated client's token, already used, is
/// refused at its next request).
/// </summary>
public sealed class ValidatedTokensTests
{
    [Fact]
    public async Task AToken_CheckedOnce_IsRemembered_ButRefusedOnceItExpires()
    {
        // Its own host: time only moves forward here.
        await using var app = new AppFactory();
        using var client = app.CreateBrowserlessClient();
        var issued = await client.PostAsync("/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = FhirPartner.DemoClient,
            ["client_secret"] = AppFactory.PartnerSecret,
        }));
        var token = (await issued.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("access_token").GetString()!;
        var handler = app.Services.GetRequiredService<IOptionsMonitor<JwtBearerOptions>>().Get(JwtBearerDefaults.AuthenticationScheme)
            .TokenHandlers.OfType<ValidatedTokens>().Single();
        var parameters = app.Services.GetRequiredService<PartnerTokens>().ValidationParameters();

        var first = await handler.ValidateTokenAsync(token, parameters);
        var again = await handler.ValidateTokenAsync(token, parameters);
        var tampered = await handler.ValidateTokenAsync(token[..^4] + (token.EndsWith("AAAA", StringComparison.Ordinal) ? "BBBB" : "AAAA"), parameters);

        Assert.True(first.IsValid);
        Assert.Same(first, again);
        Assert.False(tampered.IsValid);
        Assert.Equal(HttpStatusCode.OK, (await WhoAmIAsync(client, token)).StatusCode);

        app.Clock.Advance(TimeSpan.FromMinutes(61));

        Assert.False((await handler.ValidateTokenAsync(token, parameters)).IsValid);
        Assert.Equal(HttpStatusCode.Unauthorized, (await WhoAmIAsync(client, token)).StatusCode);
    }

    private static async Task<HttpResponseMessage> WhoAmIAsync(HttpClient client, string token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/me");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return await client.SendAsync(request);
    }
}
