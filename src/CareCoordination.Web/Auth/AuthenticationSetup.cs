using System.Globalization;
using System.Security.Claims;
using CareCoordination.Store;
using Dapper;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Components.Server.Circuits;
using Microsoft.AspNetCore.Components.Authorization;

namespace CareCoordination.Auth;

public static class AuthenticationSetup
{
    public const string Smart = "smart";
    public const string OpenIdConnect = "oidc";

    /// <summary>Paths answered to programs, not people: refuse with 401 rather than redirect to the sign-in page.</summary>
    public static bool IsMachinePath(PathString path) =>
        path.StartsWithSegments("/api") || path.StartsWithSegments("/fhir") || path.StartsWithSegments("/hubs") || path.StartsWithSegments("/oauth");

    public static IServiceCollection AddCareAuthentication(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddSingleton<PartnerTokens>();
        services.AddSingleton(Passwords.Hasher);
        services.AddSingleton<SecretChecks>();
        services.AddSingleton<SignInThrottle>();
        services.AddSingleton<TokenThrottle>();
        services.AddScoped<ActorAccessor>();
        services.AddSingleton<Revocation>();
        // Before AddRazorComponents, which adds the framework's provider only when none is registered.
        services.AddScoped<AuthenticationStateProvider, CircuitRevalidation>();
        services.AddScoped<CircuitHandler, ActorCircuitHandler>();
        services.AddScoped<Changes.CircuitConnection>();
        services.AddScoped<CircuitHandler>(sp => sp.GetRequiredService<Changes.CircuitConnection>());
        services.AddCascadingAuthenticationState();

        var authentication = services
            .AddAuthentication(Smart)
            // Staff come with a cookie, partner systems with a bearer token: pick the handler by what arrived.
            .AddPolicyScheme(Smart, "Cookie or bearer", options => options.ForwardDefaultSelector = context =>
                context.Request.Headers.Authorization.ToString().StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)
                || (context.Request.Path.StartsWithSegments("/hubs") && context.Request.Query.ContainsKey("access_token"))
                    ? JwtBearerDefaults.AuthenticationScheme
                    : CookieAuthenticationDefaults.AuthenticationScheme)
            .AddCookie(options =>
            {
                options.LoginPath = "/signin";
                options.LogoutPath = "/signout";
                options.AccessDeniedPath = "/denied";
                options.Cookie.Name = "carecoordination";
                options.Cookie.HttpOnly = true;
                options.Cookie.SameSite = SameSiteMode.Lax;
                options.ExpireTimeSpan = TimeSpan.FromHours(configuration.GetValue("Auth:SessionHours", 10));
                options.SlidingExpiration = true;
                options.Events.OnRedirectToLogin = context => Refuse(context, StatusCodes.Status401Unauthorized);
                options.Events.OnValidatePrincipal = RejectRevokedSessionAsync;
                options.Events.OnRedirectToAccessDenied = context => Refuse(context, StatusCodes.Status403Forbidden);
            })
            .AddJwtBearer(options =>
            {
                options.MapInboundClaims = false;
                // SignalR clients cannot set headers on WebSockets, so they send the token in the query string.
                options.Events = new JwtBearerEvents
                {
                    OnMessageReceived = context =>
                    {
                        if (context.Request.Path.StartsWithSegments("/hubs") && context.Request.Query.TryGetValue("access_token", out var token))
                        {
                            context.Token = token;
                        }
                        return Task.CompletedTask;
                    },
                    OnTokenValidated = context => context.HttpContext.RequestServices.GetRequiredService<PartnerTokens>().AcceptAsync(context),
                };
            });
        services.AddOptions<JwtBearerOptions>(JwtBearerDefaults.AuthenticationScheme)
            .Configure<PartnerTokens>((options, tokens) =>
            {
                options.TokenValidationParameters = tokens.ValidationParameters();
                options.TokenHandlers.Clear();
                options.TokenHandlers.Add(new ValidatedTokens(tokens) { MapInboundClaims = options.MapInboundClaims });
            });

        authentication.AddOpenIdConnectSignIn(configuration);

        services.AddAuthorizationBuilder()
            // Everything needs a signed-in user unless it says otherwise.
            .SetFallbackPolicy(new AuthorizationPolicyBuilder().RequireAuthenticatedUser().Build());
        return services;
    }

    /// <summary>
    /// An account an administrator deactivates, or moves to another role or organisation, loses its session at its
    /// next request, not when the cookie runs out.
    /// </summary>
    private static async Task RejectRevokedSessionAsync(CookieValidatePrincipalContext context)
    {
        var actor = Actor.From(context.Principal);
        var revocation = context.HttpContext.RequestServices.GetRequiredService<Revocation>();
        // Only staff sign in with a cookie: any other principal in one was not made by the sign-in.
        if (actor.Kind != ActorKind.Staff || await revocation.IsRevokedAsync(actor, context.HttpContext.RequestAborted))
        {
            context.RejectPrincipal();
            await context.HttpContext.SignOutAsync(CookieAuthenticationDefaults.AuthenticationScheme);
        }
    }

    private static Task Refuse(RedirectContext<CookieAuthenticationOptions> context, int status)
    {
        if (IsMachinePath(context.Request.Path))
        {
            context.Response.StatusCode = status;
        }
        else
        {
            context.Response.Redirect(context.RedirectUri);
        }
        return Task.CompletedTask;
    }
}

/// <summary>A staff account as sign-in needs it.</summary>
public sealed record StaffAccount
{
    public const string Select = """
        SELECT u.id AS Id, u.username AS Username, u.display_name AS DisplayName, u.password_hash AS PasswordHash,
               u.role AS Role, u.organisation_id AS OrganisationId, o.name AS OrganisationName, u.active AS Active,
               u.session_stamp AS SessionStamp
        FROM staff_user u JOIN organisation o ON o.id = u.organisation_id
        """;

    public long Id { get; init; }
    public string Username { get; init; } = "";
    public string DisplayName { get; init; } = "";
    public string? PasswordHash { get; init; }
    public string Role { get; init; } = "";
    public long OrganisationId { get; init; }
    public string OrganisationName { get; init; } = "";
    public bool Active { get; init; }
    public long SessionStamp { get; init; }

    public ClaimsPrincipal ToPrincipal(string authenticationType) => new(new ClaimsIdentity(
        [
            new Claim(ClaimTypes.NameIdentifier, Id.ToString(CultureInfo.InvariantCulture)),
            new Claim(ClaimTypes.Name, Username),
            new Claim(CareClaims.DisplayName, DisplayName),
            new Claim(ClaimTypes.Role, Role),
            new Claim(CareClaims.Organisation, OrganisationId.ToString(CultureInfo.InvariantCulture)),
            new Claim(CareClaims.OrganisationName, OrganisationName),
            new Claim(CareClaims.SessionStamp, SessionStamp.ToString(CultureInfo.InvariantCulture)),
        ],
        authenticationType, ClaimTypes.Name, ClaimTypes.Role));
}

/// <summary>Keeps the circuit's ActorAccessor in step with its authentication state (see Microsoft's circuit-handler pattern).</summary>
internal sealed class ActorCircuitHandler(AuthenticationStateProvider authentication, ActorAccessor actors) : CircuitHandler, IDisposable
{
    public override Task OnCircuitOpenedAsync(Circuit circuit, CancellationToken cancellationToken)
    {
        authentication.AuthenticationStateChanged += OnChanged;
        return base.OnCircuitOpenedAsync(circuit, cancellationToken);
    }

    public override Func<CircuitInboundActivityContext, Task> CreateInboundActivityHandler(Func<CircuitInboundActivityContext, Task> next) =>
        async context =>
        {
            actors.Principal = (await authentication.GetAuthenticationStateAsync()).User;
            await next(context);
        };

    private void OnChanged(Task<AuthenticationState> state) =>
        _ = state.ContinueWith(t =>
        {
            if (t.IsCompletedSuccessfully)
            {
                actors.Principal = t.Result.User;
            }
        }, TaskScheduler.Default);

    public void Dispose() => authentication.AuthenticationStateChanged -= OnChanged;
}
