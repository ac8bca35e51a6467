namespace CareCoordination.Tests.Support;

/// <summary>
/// A browser's cookies kept by hand, for what HttpClient's own cookie handling cannot show: one browser
/// going to several nodes (one jar, a handler per node), and a proxy that ends TLS, where the node marks
/// cookies Secure although the test reaches it over plain http. Every Set-Cookie line is kept to be read.
/// </summary>
public sealed class HandCookies
{
    private readonly Dictionary<string, string> _jar = new(StringComparer.Ordinal);
    private readonly List<string> _received = [];

    /// <summary>Every Set-Cookie line received, in order.</summary>
    public IReadOnlyList<string> Received
    {
        get
        {
            lock (_received)
            {
                return [.. _received];
            }
        }
    }

    /// <summary>The last Set-Cookie line for this cookie name.</summary>
    public string LastSet(string name) =>
        Received.LastOrDefault(line => line.StartsWith(name + "=", StringComparison.Ordinal))
            ?? throw new InvalidOperationException($"No Set-Cookie for {name}; received: {string.Join(" | ", Received)}");

    /// <summary>The cookie's value as the browser holds it now.</summary>
    public string Value(string name)
    {
        lock (_received)
        {
            return _jar.TryGetValue(name, out var value) ? value : throw new InvalidOperationException($"The browser holds no {name} cookie.");
        }
    }

    /// <summary>A handler over this jar that also adds the given headers (a proxy's X-Forwarded-*) to every request.</summary>
    public DelegatingHandler Handler(IReadOnlyDictionary<string, string>? headers = null) => new JarHandler(this, headers);

    /// <summary>A client to a real server (a node or a proxy) over this jar, not following redirects.</summary>
    public HttpClient Client(string baseUrl, IReadOnlyDictionary<string, string>? headers = null)
    {
        var handler = Handler(headers);
        handler.InnerHandler = new SocketsHttpHandler { UseCookies = false, AllowAutoRedirect = false };
        return new HttpClient(handler) { BaseAddress = new Uri(baseUrl) };
    }

    private sealed class JarHandler(HandCookies cookies, IReadOnlyDictionary<string, string>? headers) : DelegatingHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            foreach (var (name, value) in headers ?? new Dictionary<string, string>())
            {
                request.Headers.TryAddWithoutValidation(name, value);
            }
            lock (cookies._received)
            {
                if (cookies._jar.Count > 0)
                {
                    request.Headers.TryAddWithoutValidation("Cookie", string.Join("; ", cookies._jar.Select(c => $"{c.Key}={c.Value}")));
                }
            }
            var response = await base.SendAsync(request, cancellationToken);
            if (response.Headers.TryGetValues("Set-Cookie", out var lines))
            {
                lock (cookies._received)
                {
                    foreach (var line in lines)
                    {
                        cookies._received.Add(line);
                        var pair = line.Split(';', 2)[0];
                        var equals = pair.IndexOf('=', StringComparison.Ordinal);
                        cookies._jar[pair[..equals]] = pair[(equals + 1)..];
                    }
                }
            }
            return response;
        }
    }
}
