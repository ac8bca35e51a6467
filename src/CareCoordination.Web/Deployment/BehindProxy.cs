using System.Net;
using Microsoft.AspNetCore.HttpOverrides;

namespace CareCoordination.Deployment;

/// <summary>
/// Behind a reverse proxy or load balancer the node sees the proxy's address and, where the proxy ends
/// TLS, plain http. The proxy says what the client sent in X-Forwarded-For, -Proto and -Host; those headers
/// are believed only from the proxies named in ReverseProxy:KnownProxies or KnownNetworks, because anyone
/// else could write them to pick their own address (and walk round the sign-in throttle) or their own host
/// (and have FHIR links point elsewhere).
/// </summary>
public static class BehindProxy
{
    /// <summary>Reads ReverseProxy:* once at start-up; a malformed address stops the start rather than trusting the wrong peer.</summary>
    public static IServiceCollection AddBehindProxy(this IServiceCollection services, IConfiguration configuration)
    {
        var section = configuration.GetSection("ReverseProxy");
        var proxies = List(section.GetSection("KnownProxies")).Select(p => IPAddress.TryParse(p, out var address)
            ? address
            : throw new InvalidOperationException($"ReverseProxy:KnownProxies: '{p}' is not an IP address.")).ToList();
        var networks = List(section.GetSection("KnownNetworks")).Select(n => System.Net.IPNetwork.TryParse(n, out var network)
            ? network
            : throw new InvalidOperationException($"ReverseProxy:KnownNetworks: '{n}' is not a network in CIDR form (e.g. 10.0.0.0/24).")).ToList();
        var allowedHosts = List(section.GetSection("AllowedHosts")).ToList();

        services.Configure<ForwardedHeadersOptions>(options =>
        {
            options.ForwardedHeaders = ForwardedHeaders.XForwardedFor | ForwardedHeaders.XForwardedProto | ForwardedHeaders.XForwardedHost;
            // The framework trusts loopback by default, and everyone when both lists are empty: only what is configured here.
            options.KnownProxies.Clear();
            options.KnownIPNetworks.Clear();
            proxies.ForEach(options.KnownProxies.Add);
            networks.ForEach(options.KnownIPNetworks.Add);
            options.ForwardLimit = section.GetValue("ForwardLimit", 1);
            allowedHosts.ForEach(options.AllowedHosts.Add);
        });
        services.AddSingleton(new ProxyTrust(proxies.Count + networks.Count > 0));

        // The framework leaves the form-token cookie without Secure even over https; the sign-in cookie is
        // already Secure whenever the request is. With the forwarded scheme both follow what the browser used.
        services.AddAntiforgery(options => options.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest);
        return services;
    }

    /// <summary>First in the pipeline, so that everything after it sees the client's address, scheme and host.</summary>
    public static void UseForwardedHeadersFromKnownProxies(this WebApplication app)
    {
        // Not added at all when no proxy is configured: the middleware with no known proxy trusts any sender.
        if (app.Services.GetRequiredService<ProxyTrust>().Configured)
        {
            app.UseForwardedHeaders();
        }
    }

    /// <summary>A list as an array (KnownProxies:0, KnownProxies:1) or as one comma-separated value, which is easier in an environment variable.</summary>
    private static IEnumerable<string> List(IConfigurationSection section) =>
        (section.Value is { } single ? single.Split(',') : section.GetChildren().Select(c => c.Value ?? ""))
            .Select(v => v.Trim())
            .Where(v => v.Length > 0);

    private sealed record ProxyTrust(bool Configured);
}
