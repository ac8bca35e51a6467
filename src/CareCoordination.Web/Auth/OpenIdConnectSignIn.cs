using System.Globalization;
using CareCoordination.Features.Account;
using CareCoordination.Pipeline;
using Mediator;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;

namespace CareCoordination.Auth;

/// <summary>
/// Staff sign-in through the organisation's OpenID Connect identity provider, when Auth:OpenIdConnect:Authority
/// is set. The provider says who someone is (its issuer, their subject); SignInWithIdentityProvider decides
/// whether that identity is linked to an active staff account, audits the attempt and throttles failures.
/// </summary>
public static class OpenIdConnectSignIn
{
    /// <summary>Where the person lands when the provider's answer does not sign them in: the sign-in page says why.</summary>
    private static string RefusalPath(string reason) => "/signin?external=" + Uri.EscapeDataString(reason);

    public static AuthenticationBuilder AddOpenIdConnectSignIn(this AuthenticationBuilder authentication, IConfiguration configuration)
    {
        var oidc = configuration.GetSection("Auth:OpenIdConnect");
        if (string.IsNullOrWhiteSpace(oidc["Authority"]))
        {
            return authentication;
        }
        var authority = new Uri(oidc["Authority"]!, UriKind.Absolute);
        return authentication.AddOpenIdConnect(AuthenticationSetup.OpenIdConnect, oidc["DisplayName"] ?? "Your organisation's sign-in", options =>
        {
            options.SignInScheme = CookieAuthenticationDefaults.AuthenticationScheme;
            options.Authority = oidc["Authority"];
            options.ClientId = oidc["ClientId"];
            options.ClientSecret = oidc["ClientSecret"];
            // Keys and endpoints over plain http only from this machine (a development or test provider on
            // loopback); from anywhere else they could be replaced on the way.
            options.RequireHttpsMetadata = !(authority.Scheme == Uri.UriSchemeHttp && authority.IsLoopback);
            options.ResponseType = "code";
            options.UsePkce = true;
            options.SaveTokens = false;
            options.Scope.Add("email");
            options.CallbackPath = "/signin-oidc";
            options.Events.OnTokenValidated = RememberIdentityAsync;
            options.Events.OnTicketReceived = LinkedAccountAsync;
            options.Events.OnRemoteFailure = FailedAsync;
        });
    }

    /// <summary>Who the provider says signed in, read from its validated id_token.</summary>
    private sealed record ProviderIdentity(string Issuer, string Subject, string? Email, bool EmailVerified, string? Name);

    private static readonly object IdentityKey = new();

    /// <summary>
    /// Only notes who it is. The handler checks the nonce and at_hash after this event, and skips them if the event
    /// ends the request: so nothing is decided or written until every check has passed (OnTicketReceived).
    /// </summary>
    private static Task RememberIdentityAsync(TokenValidatedContext context)
    {
        var token = context.SecurityToken;
        var claims = token?.Payload;
        var verified = claims is not null && claims.TryGetValue("email_verified", out var value)
            && string.Equals(Convert.ToString(value, CultureInfo.InvariantCulture), "true", StringComparison.OrdinalIgnoreCase);
        context.HttpContext.Items[IdentityKey] = new ProviderIdentity(token?.Issuer ?? "", token?.Subject ?? "",
            claims?.GetValueOrDefault("email") as string, verified, claims?.GetValueOrDefault("name") as string);
        return Task.CompletedTask;
    }

    /// <summary>
    /// The provider's answer has passed every check. The principal signed in is the linked staff account's, never the
    /// provider's: every path here either replaces it or ends the request (Fail here would not stop the sign-in).
    /// </summary>
    private static async Task LinkedAccountAsync(TicketReceivedContext context)
    {
        if (context.HttpContext.Items[IdentityKey] is not ProviderIdentity identity)
        {
            Refuse(context, "failed");
            return;
        }
        var command = new SignInWithIdentityProvider.Command(identity.Issuer, identity.Subject, identity.Email, identity.EmailVerified, identity.Name,
            context.HttpContext.Connection.RemoteIpAddress?.ToString());
        SignInWithIdentityProvider.Result result;
        try
        {
            result = await context.HttpContext.RequestServices.GetRequiredService<IMediator>().Send(command, context.HttpContext.RequestAborted);
        }
        catch (ValidationFailed)
        {
            // Audited as invalid by the pipeline (a token without a subject, an absurd one).
            result = new SignInWithIdentityProvider.Result(SignInWithIdentityProvider.Outcome.Refused, null);
        }

        if (result.Principal is { } principal)
        {
            context.Principal = principal;
            return;
        }
        Refuse(context, result.Outcome switch
        {
            SignInWithIdentityProvider.Outcome.AwaitingApproval => "awaiting-approval",
            SignInWithIdentityProvider.Outcome.LockedOut => "locked-out",
            _ => "refused",
        });
    }

    private static void Refuse(TicketReceivedContext context, string reason)
    {
        context.Response.Redirect(RefusalPath(reason));
        context.HandleResponse();
    }

    /// <summary>The provider said no, the person cancelled there, or its answer did not validate: audited, and explained on the sign-in page rather than as an error page.</summary>
    private static async Task FailedAsync(RemoteFailureContext context)
    {
        var services = context.HttpContext.RequestServices;
        services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(OpenIdConnectSignIn))
            .LogWarning(context.Failure, "Sign-in through the identity provider failed.");
        var scope = new MessageScope(Actor.Anonymous, services.GetRequiredService<TimeProvider>().GetUtcNow(), nameof(SignInWithIdentityProvider))
        {
            AuditDetail = Shortened($"the identity provider's answer was not accepted: {context.Failure?.Message}"),
        };
        await services.GetRequiredService<AuditWriter>().WriteAsync(scope, "failed", null, null, CancellationToken.None);
        context.Response.Redirect(RefusalPath("failed"));
        context.HandleResponse();
    }

    // The failure can carry the provider's own error_description: the audit row keeps the gist, not an essay.
    private static string Shortened(string text) => text.Length <= 500 ? text : text[..500];
}
