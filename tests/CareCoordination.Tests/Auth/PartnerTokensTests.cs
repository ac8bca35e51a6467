using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Claims;
using System.Text.Json;
using CareCoordination.Auth;
using CareCoordination.Tests.Support;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace CareCoordination.Tests.Auth;

/// <summary>
/// Issue 15: a bearer token without client_id became staff with whatever role it claimed, and the key that signs
/// tokens sat in app_setting as it is. A bearer token only ever speaks for a partner system; the key is stored sealed.
/// </summary>
public abstract class PartnerTokensTests(AppFactory app)
{
    /// <summary>A token signed with this host's own key, carrying exactly the claims given.</summary>
    private string Signed(Dictionary<string, object> claims) =>
        new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = PartnerTokens.Issuer,
            Audience = PartnerTokens.Audience,
            IssuedAt = app.Clock.GetUtcNow().UtcDateTime,
            NotBefore = app.Clock.GetUtcNow().UtcDateTime,
            Expires = app.Clock.GetUtcNow().UtcDateTime.AddMinutes(5),
            Claims = claims,
            SigningCredentials = new SigningCredentials(app.Services.GetRequiredService<PartnerTokens>().Key, SecurityAlgorithms.HmacSha256),
        });

    private async Task<HttpResponseMessage> GetAsync(string path, string token)
    {
        using var client = app.CreateBrowserlessClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return await client.SendAsync(request);
    }

    private async Task<long> DemoOrganisationAsync()
    {
        await using var connection = await app.OpenAsync();
        return await connection.ExecuteScalarAsync<long>("SELECT organisation_id FROM partner_client WHERE client_id = @DemoClient", new { FhirPartner.DemoClient });
    }

    [Fact]
    public async Task BearerToken_SignedWithTheRealKey_ClaimingAdminWithoutAClientId_IsRefused_NeverStaff()
    {
        var admin = await app.StaffAsync("admin");
        var token = Signed(new Dictionary<string, object>
        {
            ["sub"] = admin.FindFirstValue(ClaimTypes.NameIdentifier)!,
            [ClaimTypes.NameIdentifier] = admin.FindFirstValue(ClaimTypes.NameIdentifier)!,
            ["role"] = "admin",
            [ClaimTypes.Role] = "admin",
            ["org"] = admin.FindFirstValue(CareClaims.Organisation)!,
        });

        Assert.Equal(HttpStatusCode.Unauthorized, (await GetAsync("/api/me", token)).StatusCode);
        Assert.NotEqual(HttpStatusCode.OK, (await GetAsync("/admin/beds", token)).StatusCode);
    }

    [Fact]
    public async Task BearerToken_OfAPartnerThatAlsoClaimsARole_IsThatPartner_WithNoRole()
    {
        var token = Signed(new Dictionary<string, object>
        {
            ["client_id"] = FhirPartner.DemoClient,
            ["org"] = (await DemoOrganisationAsync()).ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["scope"] = "system/Location.rs",
            ["role"] = "admin",
            [ClaimTypes.Role] = "admin",
        });

        var me = await (await GetAsync("/api/me", token)).Content.ReadFromJsonAsync<JsonElement>();

        Assert.Equal("partner", me.GetProperty("kind").GetString());
        Assert.Equal(JsonValueKind.Null, me.GetProperty("role").ValueKind);
        Assert.NotEqual(HttpStatusCode.OK, (await GetAsync("/admin/beds", token)).StatusCode);
    }

    [Fact]
    public async Task BearerToken_NamingAnotherOrganisationThanItsClients_IsRefused()
    {
        var token = Signed(new Dictionary<string, object>
        {
            ["client_id"] = FhirPartner.DemoClient,
            ["org"] = (await DemoOrganisationAsync() + 1).ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["scope"] = "system/*.rs",
        });

        Assert.Equal(HttpStatusCode.Unauthorized, (await GetAsync("/api/me", token)).StatusCode);
    }

    [Fact]
    public async Task SigningKey_IsStoredSealed_NeverAsTheKeyItself()
    {
        // Loaded afresh, as a start-up would: the key the stored value stands for, whatever another test left there.
        var tokens = ActivatorUtilities.CreateInstance<PartnerTokens>(app.Services);
        await tokens.LoadAsync();
        var key = tokens.Key.Key;

        await using var connection = await app.OpenAsync();
        var stored = (await connection.QueryAsync<string>("SELECT value FROM app_setting WHERE key LIKE 'token-signing-key%'")).ToList();

        Assert.Single(stored);
        Assert.DoesNotContain(Convert.ToBase64String(key), stored[0], StringComparison.Ordinal);
        Assert.DoesNotContain(Base64UrlEncoder.Encode(key), stored[0], StringComparison.Ordinal);
    }

    [Fact]
    public async Task SigningKey_StoredPlainByAnEarlierVersion_IsKept_AndRewrittenSealed()
    {
        var legacy = System.Security.Cryptography.RandomNumberGenerator.GetBytes(64);
        await using (var connection = await app.OpenAsync())
        {
            await connection.ExecuteAsync("DELETE FROM app_setting WHERE key LIKE 'token-signing-key%'");
            await connection.ExecuteAsync("INSERT INTO app_setting (key, value) VALUES ('token-signing-key', @value)", new { value = Convert.ToBase64String(legacy) });
        }

        // As the next start-up would: the same services, a fresh load.
        var tokens = ActivatorUtilities.CreateInstance<PartnerTokens>(app.Services);
        await tokens.LoadAsync();
        var again = ActivatorUtilities.CreateInstance<PartnerTokens>(app.Services);
        await again.LoadAsync();

        // Tokens signed before the upgrade still validate: the key is the same one.
        Assert.Equal(legacy, tokens.Key.Key);
        Assert.Equal(legacy, again.Key.Key);
        await using var check = await app.OpenAsync();
        var stored = (await check.QueryAsync<string>("SELECT value FROM app_setting WHERE key LIKE 'token-signing-key%'")).ToList();
        Assert.Single(stored);
        Assert.DoesNotContain(Convert.ToBase64String(legacy), stored[0], StringComparison.Ordinal);
    }
}

public sealed class PartnerTokensOnSqliteTests(AppFactory app) : PartnerTokensTests(app), IClassFixture<AppFactory>;

public sealed class PartnerTokensOnPostgresTests(PostgresAppFactory app) : PartnerTokensTests(app), IClassFixture<PostgresAppFactory>;
