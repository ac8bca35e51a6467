using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using CareCoordination.Tests.Support;

namespace CareCoordination.Tests.Features.Partners;

public sealed class IssueTokenTests(AppFactory app) : IClassFixture<AppFactory>
{
    private static FormUrlEncodedContent Form(params (string Key, string Value)[] fields) =>
        new(fields.Select(f => new KeyValuePair<string, string>(f.Key, f.Value)));

    private async Task<HttpResponseMessage> AskAsync(HttpClient client, string secret, string? scope = null)
    {
        var fields = new List<(string, string)> { ("grant_type", "client_credentials"), ("client_id", "demo-acute-trust"), ("client_secret", secret) };
        if (scope is not null)
        {
            fields.Add(("scope", scope));
        }
        return await client.PostAsync("/oauth/token", Form([.. fields]));
    }

    private static async Task<string> TokenFromAsync(HttpResponseMessage response)
    {
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        return body.GetProperty("access_token").GetString()!;
    }

    private async Task<HttpResponseMessage> WhoAmIAsync(HttpClient client, string token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/me");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return await client.SendAsync(request);
    }

    [Fact]
    public async Task Token_ForTheRightSecret_IsIssuedBoundToTheOrganisationAndScopes()
    {
        using var client = app.CreateBrowserlessClient();

        var response = await AskAsync(client, AppFactory.PartnerSecret, "system/ServiceRequest.cr system/Location.rs");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("no-store", response.Headers.CacheControl?.ToString());
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("Bearer", body.GetProperty("token_type").GetString());
        Assert.Equal(3600, body.GetProperty("expires_in").GetInt32());
        var me = await WhoAmIAsync(client, body.GetProperty("access_token").GetString()!);
        Assert.Equal(HttpStatusCode.OK, me.StatusCode);
        var who = await me.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("partner", who.GetProperty("kind").GetString());
        Assert.Equal("demo-acute-trust", who.GetProperty("name").GetString());
        Assert.True(who.GetProperty("organisationId").GetInt64() > 0);
        Assert.Equal(["system/Location.rs", "system/ServiceRequest.cr"], who.GetProperty("scopes").EnumerateArray().Select(s => s.GetString()));
    }

    [Fact]
    public async Task Token_ForAWrongSecret_IsRefusedAsInvalidClient()
    {
        using var client = app.CreateBrowserlessClient();

        var response = await AskAsync(client, "not-the-secret");

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        var body = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("invalid_client", body.GetProperty("error").GetString());
        Assert.False(body.TryGetProperty("access_token", out _));
    }

    [Fact]
    public async Task Token_ForAScopeNotGranted_IsRefused()
    {
        using var client = app.CreateBrowserlessClient();

        var response = await AskAsync(client, AppFactory.PartnerSecret, "system/AuditEvent.d");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("invalid_scope", (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error").GetString());
    }

    [Fact]
    public async Task Token_WithAnotherGrantType_IsRefused()
    {
        using var client = app.CreateBrowserlessClient();

        var response = await client.PostAsync("/oauth/token", Form(("grant_type", "password"), ("client_id", "demo-acute-trust"), ("client_secret", AppFactory.PartnerSecret)));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("unsupported_grant_type", (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error").GetString());
    }

    [Fact]
    public async Task Token_OnceExpired_IsRefused()
    {
        // Its own host: time only moves forward, and the other tests want the present.
        await using var isolated = new AppFactory();
        using var client = isolated.CreateBrowserlessClient();
        var token = await TokenFromAsync(await AskAsync(client, AppFactory.PartnerSecret));
        Assert.Equal(HttpStatusCode.OK, (await WhoAmIAsync(client, token)).StatusCode);

        isolated.Clock.Advance(TimeSpan.FromMinutes(61));

        Assert.Equal(HttpStatusCode.Unauthorized, (await WhoAmIAsync(client, token)).StatusCode);
    }

    [Fact]
    public async Task Token_Tampered_IsRefused()
    {
        using var client = app.CreateBrowserlessClient();
        var token = await TokenFromAsync(await AskAsync(client, AppFactory.PartnerSecret, "system/Location.rs"));
        var parts = token.Split('.');
        // Claim a wider scope in the payload and keep the old signature.
        var payload = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(Microsoft.IdentityModel.Tokens.Base64UrlEncoder.Decode(parts[1]))!;
        payload["scope"] = JsonSerializer.SerializeToElement("system/*.cruds");
        var forged = $"{parts[0]}.{Microsoft.IdentityModel.Tokens.Base64UrlEncoder.Encode(JsonSerializer.Serialize(payload))}.{parts[2]}";

        Assert.Equal(HttpStatusCode.Unauthorized, (await WhoAmIAsync(client, forged)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await WhoAmIAsync(client, token[..^4] + "AAAA")).StatusCode);
    }

    [Fact]
    public async Task Token_SignedWithAnotherKey_IsRefused()
    {
        using var client = app.CreateBrowserlessClient();
        var otherKey = new Microsoft.IdentityModel.Tokens.SymmetricSecurityKey(new byte[64]);
        var forged = new Microsoft.IdentityModel.JsonWebTokens.JsonWebTokenHandler().CreateToken(new Microsoft.IdentityModel.Tokens.SecurityTokenDescriptor
        {
            Issuer = CareCoordination.Auth.PartnerTokens.Issuer,
            Audience = CareCoordination.Auth.PartnerTokens.Audience,
            Expires = DateTime.UtcNow.AddMinutes(5),
            Claims = new Dictionary<string, object> { ["client_id"] = "demo-acute-trust", ["org"] = "1", ["scope"] = "system/*.cruds" },
            SigningCredentials = new Microsoft.IdentityModel.Tokens.SigningCredentials(otherKey, Microsoft.IdentityModel.Tokens.SecurityAlgorithms.HmacSha256),
        });

        Assert.Equal(HttpStatusCode.Unauthorized, (await WhoAmIAsync(client, forged)).StatusCode);
    }
}
