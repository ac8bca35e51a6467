using System.Net;
using CareCoordination.Tests.Support;
using Dapper;
using Microsoft.Data.Sqlite;

namespace CareCoordination.Tests.Features.Account;

public sealed class SignInTests(AppFactory app) : IClassFixture<AppFactory>
{
    private static string? PathOf(HttpResponseMessage response) =>
        response.Headers.Location is { IsAbsoluteUri: true } absolute ? absolute.AbsolutePath : response.Headers.Location?.OriginalString;

    public static TheoryData<string, string> LandingByUser => new()
    {
        { "referrer", "Referrals from " },
        { "coordinator", "Coordination centre" },
        { "bedbureau", "Bed bureau" },
        { "manager", "Capacity and flow" },
        { "admin", "Administration" },
    };

    [Theory]
    [MemberData(nameof(LandingByUser))]
    public async Task SignIn_EachRoleWithTheRightPassword_LandsOnItsHomePage(string username, string landingTitle)
    {
        using var client = app.CreateBrowserlessClient();

        var response = await app.SignInAsync(client, username, AppFactory.Password);

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Equal("/", PathOf(response));
        var home = await client.GetAsync("/");
        Assert.Equal(HttpStatusCode.OK, home.StatusCode);
        Assert.Contains(landingTitle, await home.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task SignIn_WithAWrongPassword_IsRefusedAndGetsNoCookie()
    {
        using var client = app.CreateBrowserlessClient();

        var response = await app.SignInAsync(client, "coordinator", "not-the-password");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("username or password is not right", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        var home = await client.GetAsync("/");
        Assert.Equal(HttpStatusCode.Redirect, home.StatusCode);
        Assert.StartsWith("/signin", home.Headers.Location?.PathAndQuery ?? home.Headers.Location?.OriginalString, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("//evil.example/phish")]
    [InlineData("/\\evil.example/phish")]
    [InlineData("/\t/evil.example/phish")]
    [InlineData("https://evil.example/phish")]
    public async Task SignIn_ReturnUrlToAnotherSite_LandsHomeInstead(string returnUrl)
    {
        using var client = app.CreateBrowserlessClient();

        var response = await app.SignInAsync(client, "admin", AppFactory.Password, returnUrl);

        Assert.Equal("/", PathOf(response));
        Assert.True(response.Headers.Location is { IsAbsoluteUri: false } or { Host: "localhost" }, response.Headers.Location?.ToString());
    }

    [Fact]
    public async Task SignIn_EveryAttempt_IsAudited()
    {
        // Through the host, so its store is made first: run on its own, this test is the first to touch the fixture.
        await using var connection = await app.OpenAsync();
        var before = await connection.ExecuteScalarAsync<long>("SELECT COALESCE(MAX(id), 0) FROM audit_event");
        using var client = app.CreateBrowserlessClient();
        await app.SignInAsync(client, "referrer", "wrong");
        await app.SignInAsync(client, "referrer", AppFactory.Password);

        var outcomes = (await connection.QueryAsync<string>(
            "SELECT outcome FROM audit_event WHERE id > @before AND action = 'SignIn' AND detail = 'username referrer' ORDER BY id", new { before })).ToList();

        Assert.Equal(["denied", "success"], outcomes);
    }

    [Fact]
    public async Task Session_OfAnAccountDeactivatedSinceSignIn_IsEnded()
    {
        using var client = app.CreateBrowserlessClient();
        await using var connection = new SqliteConnection(app.ConnectionString);
        await connection.ExecuteAsync(
            "INSERT INTO staff_user (username, display_name, password_hash, role, organisation_id, active, created_at) SELECT 'leaver', 'A Leaver', password_hash, 'coordinator', organisation_id, TRUE, created_at FROM staff_user WHERE username = 'coordinator'");
        await app.SignInAsync(client, "leaver", AppFactory.Password);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/")).StatusCode);

        await connection.ExecuteAsync("UPDATE staff_user SET active = FALSE WHERE username = 'leaver'");

        var after = await client.GetAsync("/");
        Assert.Equal(HttpStatusCode.Redirect, after.StatusCode);
        Assert.Contains("/signin", after.Headers.Location?.OriginalString, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("/")]
    [InlineData("/denied")]
    [InlineData("/some/page/that/does/not/exist")]
    public async Task AnonymousRequest_ForAPage_IsSentToSignIn(string path)
    {
        using var client = app.CreateBrowserlessClient();

        var response = await client.GetAsync(path);

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Contains("/signin", response.Headers.Location?.OriginalString, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("GET", "/api/me")]
    [InlineData("GET", "/api/anything")]
    [InlineData("GET", "/fhir/Patient")]
    [InlineData("POST", "/hubs/live/negotiate")]
    public async Task AnonymousRequest_ForAnApi_IsRefusedWith401(string method, string path)
    {
        using var client = app.CreateBrowserlessClient();

        var response = await client.SendAsync(new HttpRequestMessage(new HttpMethod(method), path));

        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
    }

    [Fact]
    public async Task SignOut_WithoutTheFormsToken_IsRefused()
    {
        using var client = app.CreateBrowserlessClient();
        await app.SignInAsync(client, "bedbureau", AppFactory.Password);

        using var form = new FormUrlEncodedContent(new Dictionary<string, string>());
        var response = await client.PostAsync("/signout", form);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/")).StatusCode);
    }

    [Fact]
    public async Task SignOut_EndsTheSession()
    {
        using var client = app.CreateBrowserlessClient();
        await app.SignInAsync(client, "coordinator", AppFactory.Password);
        var home = await client.GetStringAsync("/");
        var token = System.Text.RegularExpressions.Regex.Match(home, "name=\"__RequestVerificationToken\" value=\"([^\"]+)\"").Groups[1].Value;

        using var form = new FormUrlEncodedContent(new Dictionary<string, string> { ["__RequestVerificationToken"] = WebUtility.HtmlDecode(token) });
        var signedOut = await client.PostAsync("/signout", form);

        Assert.Equal(HttpStatusCode.Redirect, signedOut.StatusCode);
        Assert.Equal(HttpStatusCode.Redirect, (await client.GetAsync("/")).StatusCode);
    }
}

/// <summary>Its own host: the lock-out it causes must not leak into the other sign-in tests.</summary>
public sealed class SignInThrottleTests(AppFactory app) : IClassFixture<AppFactory>
{
    [Fact]
    public async Task SignIn_AfterFiveFailures_RefusesEvenTheRightPassword()
    {
        using var client = app.CreateBrowserlessClient();
        for (var i = 0; i < 5; i++)
        {
            await app.SignInAsync(client, "manager", "wrong-" + i);
        }

        var response = await app.SignInAsync(client, "manager", AppFactory.Password);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("Too many failed sign-ins", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }
}
