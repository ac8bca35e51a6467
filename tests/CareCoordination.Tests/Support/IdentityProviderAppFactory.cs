using System.Net;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;

namespace CareCoordination.Tests.Support;

/// <summary>The real host with OpenID Connect sign-in pointed at a stub provider of its own on loopback.</summary>
public class IdentityProviderAppFactory : AppFactory
{
    public IdentityProviderAppFactory() : this(new SqliteTestStore())
    {
    }

    protected IdentityProviderAppFactory(ITestStore store) : base(store) => IdentityProvider = StubIdentityProvider.Start();

    public StubIdentityProvider IdentityProvider { get; }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.UseSetting("Auth:OpenIdConnect:Authority", IdentityProvider.Issuer);
        builder.UseSetting("Auth:OpenIdConnect:ClientId", StubIdentityProvider.ClientId);
        builder.UseSetting("Auth:OpenIdConnect:ClientSecret", StubIdentityProvider.ClientSecret);
    }

    /// <summary>
    /// A browser without JavaScript: it follows the round trip by hand. The app is addressed as https://localhost
    /// because the handler's correlation and nonce cookies are Secure, and a cookie jar keeps them only for https.
    /// </summary>
    public ProviderBrowser CreateProviderBrowser() =>
        new(CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = true, BaseAddress = new Uri("https://localhost") }));

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        await IdentityProvider.DisposeAsync();
    }
}

public sealed class PostgresIdentityProviderAppFactory() : IdentityProviderAppFactory(new PostgresTestStore());

/// <summary>Walks challenge → the provider's login page → its answer (a form post back) → the host's callback.</summary>
public sealed partial class ProviderBrowser(HttpClient app) : IDisposable
{
    private readonly HttpClient _provider = new(new HttpClientHandler { AllowAutoRedirect = false });

    /// <summary>The app, with this browser's cookies.</summary>
    public HttpClient App => app;

    /// <summary>
    /// Signs in at the provider as the given person; returns the host's answer to the callback. A test that wants
    /// the provider's id_token to answer another sign-in than this one gives the nonce it should carry instead.
    /// </summary>
    public Task<HttpResponseMessage> SignInAsync(StubIdentity who, string returnUrl = "/", string? nonce = null) =>
        AtTheProviderAsync(login =>
        {
            login["sub"] = who.Subject;
            login["email"] = who.Email ?? "";
            login["email_verified"] = who.EmailVerified ? "true" : "false";
            login["preferred_username"] = who.PreferredUsername ?? "";
            login["name"] = who.Name ?? "";
            if (nonce is not null)
            {
                login["nonce"] = nonce;
            }
        }, returnUrl);

    /// <summary>Goes to the provider, then chooses Cancel there instead of signing in.</summary>
    public Task<HttpResponseMessage> CancelAtTheProviderAsync() => AtTheProviderAsync(login => login["cancel"] = "true", "/");

    private async Task<HttpResponseMessage> AtTheProviderAsync(Action<Dictionary<string, string>> fillIn, string returnUrl)
    {
        var challenge = await app.GetAsync($"/signin/external?returnUrl={Uri.EscapeDataString(returnUrl)}");
        Assert.Equal(HttpStatusCode.Redirect, challenge.StatusCode);
        var authorize = challenge.Headers.Location!;
        Assert.StartsWith("http://127.0.0.1:", authorize.ToString(), StringComparison.Ordinal);

        var loginPage = await _provider.GetAsync(authorize);
        Assert.Equal(HttpStatusCode.OK, loginPage.StatusCode);
        var login = Form.Parse(await loginPage.Content.ReadAsStringAsync(), authorize);
        fillIn(login.Fields);
        using var loginPost = new FormUrlEncodedContent(login.Fields);
        var answer = await _provider.PostAsync(login.Action, loginPost);

        if (answer.StatusCode == HttpStatusCode.Redirect)
        {
            return await app.GetAsync(answer.Headers.Location);
        }
        // response_mode=form_post, the handler's default: a page whose form the browser posts back to the host.
        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        var callback = Form.Parse(await answer.Content.ReadAsStringAsync(), login.Action);
        using var callbackPost = new FormUrlEncodedContent(callback.Fields);
        return await app.PostAsync(callback.Action, callbackPost);
    }

    public void Dispose()
    {
        _provider.Dispose();
        app.Dispose();
    }

    private sealed record Form(Uri Action, Dictionary<string, string> Fields)
    {
        public static Form Parse(string html, Uri page)
        {
            var action = FormAction().Match(html);
            Assert.True(action.Success, html);
            var fields = Input().Matches(html).ToDictionary(m => m.Groups[1].Value, m => WebUtility.HtmlDecode(m.Groups[2].Value), StringComparer.Ordinal);
            return new Form(new Uri(page, WebUtility.HtmlDecode(action.Groups[1].Value)), fields);
        }
    }

    [GeneratedRegex("<form method=\"post\" action=\"([^\"]*)\">")]
    private static partial Regex FormAction();

    [GeneratedRegex("<input (?:type=\"hidden\" )?name=\"([^\"]+)\" value=\"([^\"]*)\">")]
    private static partial Regex Input();
}
