using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication.Cookies;

namespace CareCoordination.Features.Account;

public static class AccountEndpoints
{
    public static void MapAccountEndpoints(this IEndpointRouteBuilder app)
    {
        // A form post with the antiforgery token from the layout: a link could sign people out from another site.
        app.MapPost("/signout", async (HttpContext context, IAntiforgery antiforgery, Mediator.IMediator mediator, ILogger<SignOut.Command> logger) =>
        {
            // It binds no form, so the framework would not refuse a missing token by itself.
            if (!await antiforgery.IsRequestValidAsync(context))
            {
                return Results.Problem(statusCode: StatusCodes.Status400BadRequest, title: "This sign-out form has expired",
                    detail: "Reload the page, then choose Sign out again.");
            }
            // Every session of this person's ends (SignOut), then this browser's cookie goes, whatever became of the first: the
            // person at this screen is signed out even while the store cannot take the write.
            try
            {
                await mediator.Send(new SignOut.Command(), context.RequestAborted);
            }
            catch (Exception failure) when (failure is System.Data.Common.DbException or TimeoutException)
            {
                logger.LogWarning(failure, "A sign-out ended this browser's session only: the store did not take the end of the others");
            }
            await context.SignOutAsync(CookieAuthenticationDefaults.AuthenticationScheme);
            return Results.LocalRedirect("/signin");
        });

        app.MapGet("/signin/external", (string? returnUrl) =>
            Results.Challenge(new AuthenticationProperties { RedirectUri = SafeReturnUrl(returnUrl) }, [Auth.AuthenticationSetup.OpenIdConnect]))
            .AllowAnonymous();
    }

    /// <summary>Only local paths: an open redirect would let a phishing link borrow our sign-in page.</summary>
    public static string SafeReturnUrl(string? returnUrl) =>
        !string.IsNullOrEmpty(returnUrl) && returnUrl.StartsWith('/') && !returnUrl.StartsWith("//", StringComparison.Ordinal) && !returnUrl.StartsWith("/\\", StringComparison.Ordinal) && !returnUrl.Any(char.IsControl)
            ? returnUrl
            : "/";
}
