using System.Net;
using System.Net.Http.Headers;
using CareCoordination.Tests.Support;
using Hl7.Fhir.Model;
using Task = System.Threading.Tasks.Task;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace CareCoordination.Tests.Deployment;

/// <summary>
/// The real host on Kestrel at 127.0.0.1, so that every request comes from a real peer address: the test
/// server has none, and the framework applies forwarded headers without checking the sender when there is none.
/// </summary>
public abstract class KestrelAppFactory : AppFactory
{
    private readonly IReadOnlyDictionary<string, string> _settings;

    protected KestrelAppFactory(IReadOnlyDictionary<string, string> settings)
    {
        _settings = settings;
        UseKestrel(options => options.Listen(IPAddress.Loopback, 0));
    }

    public string BaseUrl
    {
        get
        {
            StartServer();
            return Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        }
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        foreach (var (key, value) in _settings)
        {
            builder.UseSetting(key, value);
        }
    }
}

/// <summary>What a browser or partner behind the proxy sees, and what the proxy tells the node about them.</summary>
public static class Forwarded
{
    public const string Host = "care.westmoor.nhs.uk";

    public static Dictionary<string, string> By(string clientAddress, string proto = "https") => new()
    {
        ["X-Forwarded-For"] = clientAddress,
        ["X-Forwarded-Proto"] = proto,
        ["X-Forwarded-Host"] = Host,
    };

    /// <summary>The address of the CapabilityStatement's implementation: the FHIR base as the caller reached it.</summary>
    public static async Task<string> FhirBaseAsync(HttpClient client) =>
        (await FhirPartner.ParseAsync<CapabilityStatement>(await client.GetAsync("/fhir/metadata"))).Implementation?.Url ?? "(none)";

    public static bool IsSecure(string setCookie) =>
        setCookie.Split(';').Skip(1).Any(attribute => attribute.Trim().Equals("secure", StringComparison.OrdinalIgnoreCase));

    public static string AntiforgeryCookie(HandCookies cookies) =>
        cookies.Received.Last(line => line.StartsWith(".AspNetCore.Antiforgery.", StringComparison.Ordinal));

    /// <summary>Fails to sign in under new usernames until the address is locked out; the attempts it took.</summary>
    public static async Task<int> LockOutAsync(Func<int, HttpClient> attempt)
    {
        for (var i = 1; i <= 20; i++)
        {
            using var client = attempt(i);
            var page = await (await SignInForm.PostAsync(client, $"nobody-{Guid.NewGuid():N}", "wrong-password")).Content.ReadAsStringAsync();
            if (page.Contains(SignInForm.LockedOut, StringComparison.Ordinal))
            {
                return i;
            }
        }
        throw new InvalidOperationException("20 failed sign-ins from one address never locked it out.");
    }
}

/// <summary>A node behind a proxy it knows (here, the test itself at 127.0.0.1): it believes the proxy's X-Forwarded-* headers.</summary>
public sealed class BehindAKnownProxyTests(BehindAKnownProxyTests.Host app) : IClassFixture<BehindAKnownProxyTests.Host>
{
    public sealed class Host() : KestrelAppFactory(new Dictionary<string, string>
    {
        ["ReverseProxy:KnownProxies"] = "127.0.0.1",
        // An address is locked out after six failures (six times one per name), so the test stays short.
        ["Auth:SignInFailuresAllowed"] = "1",
    });

    [Fact]
    public async Task FhirLinks_FromAKnownProxy_UseTheBrowsersSchemeAndHost()
    {
        var cookies = new HandCookies();
        using var client = cookies.Client(app.BaseUrl, Forwarded.By("203.0.113.5"));
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", await FhirPartner.TokenAsync(client));

        Assert.Equal($"https://{Forwarded.Host}/fhir", await Forwarded.FhirBaseAsync(client));
        var page = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync("/fhir/Location?_count=1"));
        Assert.StartsWith($"https://{Forwarded.Host}/fhir/Location?", page.SelfLink?.OriginalString, StringComparison.Ordinal);
        Assert.StartsWith($"https://{Forwarded.Host}/fhir/Location?", page.NextLink?.OriginalString, StringComparison.Ordinal);
        Assert.StartsWith($"https://{Forwarded.Host}/fhir/Location/", Assert.Single(page.Entry).FullUrl, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cookies_FromAKnownProxyThatEndedHttps_AreSecure_AndOverPlainHttpAreNot()
    {
        var overHttps = new HandCookies();
        using (var client = overHttps.Client(app.BaseUrl, Forwarded.By("203.0.113.6")))
        {
            Assert.Equal(HttpStatusCode.Redirect, (await SignInForm.PostAsync(client, "referrer", AppFactory.Password)).StatusCode);
        }
        Assert.True(Forwarded.IsSecure(Forwarded.AntiforgeryCookie(overHttps)), Forwarded.AntiforgeryCookie(overHttps));
        Assert.True(Forwarded.IsSecure(overHttps.LastSet("carecoordination")), overHttps.LastSet("carecoordination"));

        // Secure follows the browser's scheme rather than always being set, so a node reached over plain http still works.
        var overHttp = new HandCookies();
        using (var client = overHttp.Client(app.BaseUrl, Forwarded.By("203.0.113.6", proto: "http")))
        {
            Assert.Equal(HttpStatusCode.Redirect, (await SignInForm.PostAsync(client, "referrer", AppFactory.Password)).StatusCode);
        }
        Assert.False(Forwarded.IsSecure(Forwarded.AntiforgeryCookie(overHttp)));
        Assert.False(Forwarded.IsSecure(overHttp.LastSet("carecoordination")));
    }

    [Fact]
    public async Task SignInThrottle_FromAKnownProxy_LocksOutTheBrowsersAddress_NotTheProxys()
    {
        await Forwarded.LockOutAsync(_ => new HandCookies().Client(app.BaseUrl, Forwarded.By("203.0.113.7")));

        // That address is refused even with the right password...
        using (var locked = new HandCookies().Client(app.BaseUrl, Forwarded.By("203.0.113.7")))
        {
            var page = await (await SignInForm.PostAsync(locked, "coordinator", AppFactory.Password)).Content.ReadAsStringAsync();
            Assert.Contains(SignInForm.LockedOut, page, StringComparison.Ordinal);
        }
        // ...while a colleague at another desk behind the same proxy signs in.
        using var colleague = new HandCookies().Client(app.BaseUrl, Forwarded.By("203.0.113.8"));
        Assert.Equal(HttpStatusCode.Redirect, (await SignInForm.PostAsync(colleague, "coordinator", AppFactory.Password)).StatusCode);
    }
}

/// <summary>
/// X-Forwarded-* headers from a sender that is not a configured proxy are anyone's to write: they must change
/// nothing. Without this, a caller could choose a new address for every wrong password.
/// </summary>
public abstract class ForwardedHeadersIgnoredTests(KestrelAppFactory app)
{
    [Fact]
    public async Task ForgedForwardedHeaders_ChangeNeitherFhirLinksNorCookies_NorEscapeTheAddressLockout()
    {
        var cookies = new HandCookies();
        using (var forger = cookies.Client(app.BaseUrl, Forwarded.By("198.51.100.1")))
        {
            Assert.Equal($"{app.BaseUrl}/fhir", await Forwarded.FhirBaseAsync(forger));
            Assert.Equal(HttpStatusCode.Redirect, (await SignInForm.PostAsync(forger, "referrer", AppFactory.Password)).StatusCode);
        }
        Assert.False(Forwarded.IsSecure(Forwarded.AntiforgeryCookie(cookies)));
        Assert.False(Forwarded.IsSecure(cookies.LastSet("carecoordination")));

        // A new forged address for every attempt: the lockout still falls on the real sender.
        await Forwarded.LockOutAsync(i => new HandCookies().Client(app.BaseUrl, Forwarded.By($"198.51.100.{i + 1}")));
        using var next = new HandCookies().Client(app.BaseUrl, Forwarded.By("198.51.100.99"));
        var page = await (await SignInForm.PostAsync(next, "coordinator", AppFactory.Password)).Content.ReadAsStringAsync();
        Assert.Contains(SignInForm.LockedOut, page, StringComparison.Ordinal);
    }
}

public sealed class ForwardedHeadersIgnoredWhenNoProxyIsConfiguredTests(ForwardedHeadersIgnoredWhenNoProxyIsConfiguredTests.Host app)
    : ForwardedHeadersIgnoredTests(app), IClassFixture<ForwardedHeadersIgnoredWhenNoProxyIsConfiguredTests.Host>
{
    public sealed class Host() : KestrelAppFactory(new Dictionary<string, string> { ["Auth:SignInFailuresAllowed"] = "1" });
}

public sealed class ForwardedHeadersIgnoredFromAnUnknownProxyTests(ForwardedHeadersIgnoredFromAnUnknownProxyTests.Host app)
    : ForwardedHeadersIgnoredTests(app), IClassFixture<ForwardedHeadersIgnoredFromAnUnknownProxyTests.Host>
{
    // The proxy is elsewhere; the test, at 127.0.0.1, is not it.
    public sealed class Host() : KestrelAppFactory(new Dictionary<string, string>
    {
        ["ReverseProxy:KnownProxies"] = "192.0.2.10",
        ["ReverseProxy:KnownNetworks"] = "192.0.2.0/28",
        ["Auth:SignInFailuresAllowed"] = "1",
    });
}
