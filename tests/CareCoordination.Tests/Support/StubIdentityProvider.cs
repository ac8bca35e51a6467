using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace CareCoordination.Tests.Support;

/// <summary>Who the person signing in at the stub provider is: the claims its id_token will carry.</summary>
public sealed record StubIdentity(string Subject, string? Email, bool EmailVerified, string? PreferredUsername = null, string? Name = null);

/// <summary>
/// A small OpenID Connect provider on loopback (Kestrel, 127.0.0.1, a free port), enough for the real host's
/// OpenID Connect handler to sign someone in with the authorisation code flow: discovery, a JWKS with an RSA
/// key, an authorize endpoint with a login form (the test fills in who signs in), and a token endpoint that
/// checks the client, the redirect URI and PKCE before issuing an RS256 id_token with the nonce it was given.
/// </summary>
public sealed class StubIdentityProvider : IAsyncDisposable
{
    public const string ClientId = "carecoordination-test";
    public const string ClientSecret = "stub-client-secret";

    private readonly RSA _key = RSA.Create(2048);
    private readonly string _keyId = "stub-" + Guid.NewGuid().ToString("N")[..8];
    private readonly ConcurrentDictionary<string, Grant> _codes = new(StringComparer.Ordinal);
    private readonly WebApplication _app;

    private sealed record Grant(StubIdentity Identity, string Nonce, string RedirectUri, string CodeChallenge);

    private StubIdentityProvider()
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0));
        builder.Services.AddRoutingCore();
        _app = builder.Build();
        _app.MapGet("/.well-known/openid-configuration", Discovery);
        _app.MapGet("/jwks", Keys);
        _app.MapGet("/authorize", AuthorizeAsync);
        _app.MapPost("/login", LoginAsync);
        _app.MapPost("/token", (Delegate)TokenAsync);
    }

    public string Issuer { get; private set; } = "";

    public static StubIdentityProvider Start()
    {
        var provider = new StubIdentityProvider();
        provider._app.StartAsync().GetAwaiter().GetResult();
        provider.Issuer = provider._app.Urls.Single().TrimEnd('/');
        return provider;
    }

    private IResult Discovery() => Results.Json(new Dictionary<string, object>
    {
        ["issuer"] = Issuer,
        ["authorization_endpoint"] = Issuer + "/authorize",
        ["token_endpoint"] = Issuer + "/token",
        ["jwks_uri"] = Issuer + "/jwks",
        ["response_types_supported"] = new[] { "code" },
        ["response_modes_supported"] = new[] { "query", "form_post" },
        ["subject_types_supported"] = new[] { "public" },
        ["id_token_signing_alg_values_supported"] = new[] { "RS256" },
        ["scopes_supported"] = new[] { "openid", "profile", "email" },
        ["token_endpoint_auth_methods_supported"] = new[] { "client_secret_post", "client_secret_basic" },
        ["code_challenge_methods_supported"] = new[] { "S256" },
    });

    private IResult Keys()
    {
        var key = _key.ExportParameters(includePrivateParameters: false);
        return Results.Json(new
        {
            keys = new[]
            {
                new { kty = "RSA", use = "sig", alg = "RS256", kid = _keyId, n = Base64UrlEncoder.Encode(key.Modulus), e = Base64UrlEncoder.Encode(key.Exponent) },
            },
        });
    }

    /// <summary>The provider's login page: the authorisation request rides along in hidden fields; the test types in who it is.</summary>
    private static async Task AuthorizeAsync(HttpContext context)
    {
        var query = context.Request.Query;
        if (query["client_id"] != ClientId || query["response_type"] != "code" || query["code_challenge_method"] != "S256"
            || !query["scope"].ToString().Split(' ').Contains("openid") || string.IsNullOrEmpty(query["nonce"]) || string.IsNullOrEmpty(query["redirect_uri"]))
        {
            context.Response.StatusCode = StatusCodes.Status400BadRequest;
            await context.Response.WriteAsync("invalid_request");
            return;
        }
        var carried = new[] { "redirect_uri", "state", "nonce", "code_challenge", "response_mode" }
            .Select(name => Hidden(name, query[name].ToString()));
        var identity = new[] { "sub", "email", "email_verified", "preferred_username", "name" }
            .Select(name => $"<label>{name} <input name=\"{name}\" value=\"\"></label>");
        await WritePageAsync(context, $"<form method=\"post\" action=\"/login\">{string.Concat(carried)}{string.Concat(identity)}</form>");
    }

    /// <summary>The person has signed in here: a one-use code goes back to the client, as a form post or in the query.</summary>
    private async Task LoginAsync(HttpContext context)
    {
        var form = await context.Request.ReadFormAsync();
        var redirectUri = form["redirect_uri"].ToString();
        if (form["cancel"] == "true")
        {
            // The person chose Cancel on the provider's page.
            await AnswerAsync(context, form, redirectUri, ("error", "access_denied"), ("error_description", "The user cancelled the sign-in."));
            return;
        }
        var identity = new StubIdentity(form["sub"].ToString(), NullIfEmpty(form["email"]), form["email_verified"] == "true",
            NullIfEmpty(form["preferred_username"]), NullIfEmpty(form["name"]));
        var code = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(32));
        _codes[code] = new Grant(identity, form["nonce"].ToString(), redirectUri, form["code_challenge"].ToString());
        await AnswerAsync(context, form, redirectUri, ("code", code));
    }

    /// <summary>The authorisation response, with the client's state, as the client asked for it: a form post or the query.</summary>
    private static async Task AnswerAsync(HttpContext context, IFormCollection form, string redirectUri, params (string Name, string Value)[] parameters)
    {
        var all = parameters.Append((Name: "state", Value: form["state"].ToString())).ToArray();
        if (form["response_mode"] == "form_post")
        {
            await WritePageAsync(context,
                $"<form method=\"post\" action=\"{WebUtility.HtmlEncode(redirectUri)}\">{string.Concat(all.Select(p => Hidden(p.Name, p.Value)))}</form>");
            return;
        }
        context.Response.Redirect($"{redirectUri}?{string.Join("&", all.Select(p => $"{p.Name}={Uri.EscapeDataString(p.Value)}"))}");
    }

    private async Task<IResult> TokenAsync(HttpContext context)
    {
        var form = await context.Request.ReadFormAsync();
        var (clientId, secret) = ClientCredentials(context.Request, form);
        if (clientId != ClientId || secret != ClientSecret)
        {
            return Results.Json(new { error = "invalid_client" }, statusCode: StatusCodes.Status401Unauthorized);
        }
        // A code is good once, for the redirect URI and PKCE verifier it was issued against.
        if (form["grant_type"] != "authorization_code" || !_codes.TryRemove(form["code"].ToString(), out var grant)
            || grant.RedirectUri != form["redirect_uri"] || Challenge(form["code_verifier"].ToString()) != grant.CodeChallenge)
        {
            return Results.Json(new { error = "invalid_grant" }, statusCode: StatusCodes.Status400BadRequest);
        }
        var accessToken = Base64UrlEncoder.Encode(RandomNumberGenerator.GetBytes(32));
        var now = DateTime.UtcNow;
        var claims = new Dictionary<string, object>
        {
            ["sub"] = grant.Identity.Subject,
            ["nonce"] = grant.Nonce,
            ["at_hash"] = Base64UrlEncoder.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(accessToken))[..16]),
            ["email_verified"] = grant.Identity.EmailVerified,
        };
        AddIfPresent(claims, "email", grant.Identity.Email);
        AddIfPresent(claims, "preferred_username", grant.Identity.PreferredUsername);
        AddIfPresent(claims, "name", grant.Identity.Name);
        var idToken = new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = Issuer,
            Audience = ClientId,
            IssuedAt = now,
            NotBefore = now,
            Expires = now.AddMinutes(5),
            Claims = claims,
            SigningCredentials = new SigningCredentials(new RsaSecurityKey(_key) { KeyId = _keyId }, SecurityAlgorithms.RsaSha256),
        });
        return Results.Json(new { access_token = accessToken, token_type = "Bearer", expires_in = 300, id_token = idToken });
    }

    private static (string? ClientId, string? Secret) ClientCredentials(HttpRequest request, IFormCollection form)
    {
        var header = request.Headers.Authorization.ToString();
        if (header.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase))
        {
            var pair = Encoding.UTF8.GetString(Convert.FromBase64String(header["Basic ".Length..])).Split(':', 2);
            return (Uri.UnescapeDataString(pair[0]), pair.Length > 1 ? Uri.UnescapeDataString(pair[1]) : null);
        }
        return (form["client_id"], form["client_secret"]);
    }

    private static string Challenge(string verifier) => Base64UrlEncoder.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(verifier)));

    private static void AddIfPresent(Dictionary<string, object> claims, string name, string? value)
    {
        if (value is not null)
        {
            claims[name] = value;
        }
    }

    private static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;

    private static string Hidden(string name, string value) =>
        $"<input type=\"hidden\" name=\"{name}\" value=\"{WebUtility.HtmlEncode(value)}\">";

    private static Task WritePageAsync(HttpContext context, string body)
    {
        context.Response.ContentType = "text/html; charset=utf-8";
        return context.Response.WriteAsync($"<!doctype html><html><body>{body}</body></html>");
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        _key.Dispose();
    }
}
