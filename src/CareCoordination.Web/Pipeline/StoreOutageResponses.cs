using System.Net;
using CareCoordination.Auth;
using CareCoordination.Changes;
using CareCoordination.Domain;
using CareCoordination.Store;
using Microsoft.AspNetCore.Diagnostics;

namespace CareCoordination.Pipeline;

/// <summary>
/// A page asked for while the store does not answer: a reload, a link opened, a wall screen reloading itself after its
/// server restarted. It is answered 503 with a page that says so and asks again by itself, instead of the error page, which
/// asks a person to try again and stayed on a wall screen, where nobody does, after the store came back. Written here, not
/// by re-running the request as the error page: the sign-in check of every staff request asks the store (Revocation), so
/// the re-run would fail again. Programs (/fhir, /api, /hubs, /oauth) keep their own answers.
/// </summary>
public sealed class StoreOutageResponses(TimeProvider clock) : IExceptionHandler
{
    /// <summary>How long the page waits before asking again, and what Retry-After says.</summary>
    public const int RetrySeconds = 15;

    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        var path = httpContext.Features.Get<IExceptionHandlerPathFeature>()?.Path ?? httpContext.Request.Path.Value;
        if (AuthenticationSetup.IsMachinePath(new PathString(path)) || httpContext.Response.HasStarted || !CausedByTheStore(exception))
        {
            return false;
        }
        // A reload asks for the page again; a form sent again is the person's to decide, with what they typed before them.
        var again = HttpMethods.IsGet(httpContext.Request.Method) || HttpMethods.IsHead(httpContext.Request.Method);
        var downSince = httpContext.RequestServices.GetService<StoreWatch>()?.DownSince;
        var response = httpContext.Response;
        response.StatusCode = StatusCodes.Status503ServiceUnavailable;
        response.Headers.RetryAfter = RetrySeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        response.Headers.CacheControl = "no-store";
        response.ContentType = "text/html; charset=utf-8";
        var since = downSince is { } at ? $"<p><strong>Offline since {LondonTime.ToLocal(at):HH:mm}.</strong></p>" : "";
        var next = again
            ? $"<p>This page asks again by itself every {RetrySeconds} seconds and opens as soon as the store answers: leave it on the screen.</p>"
            : "<p>What you sent was not saved. Go back: what you typed is still in the page; send it again once the system is back.</p>";
        await response.WriteAsync($$"""
            <!DOCTYPE html>
            <html lang="en-GB">
            <head>
            <meta charset="utf-8">
            {{(again ? $"<meta http-equiv=\"refresh\" content=\"{RetrySeconds}\">" : "")}}
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>The system cannot reach its store · CareCoordination</title>
            <style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;line-height:1.5;color:#1b1b1b}</style>
            </head>
            <body>
            <main>
            <h1>The system cannot reach its store just now</h1>
            {{since}}
            {{next}}
            <p>Nothing was half-saved: everything saved before stays as it was. Meanwhile work from the pages you printed or
            downloaded and the paper referral form, as your downtime plan says.</p>
            <p>Asked for at {{WebUtility.HtmlEncode(LondonTime.ToLocal(clock.GetUtcNow()).ToString("HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture))}}.</p>
            </main>
            </body>
            </html>
            """, cancellationToken);
        return true;
    }

    /// <summary>
    /// The store out of reach, as thrown or as the cause of what was thrown (a page's render wraps what its read threw): a
    /// store's own exception. A bare timeout may be anyone's (an identity provider's metadata, say), not the store's.
    /// </summary>
    private static bool CausedByTheStore(Exception exception)
    {
        for (Exception? cause = exception; cause is not null; cause = cause.InnerException)
        {
            if (cause is System.Data.Common.DbException && StoreFailure.IsUnreachable(cause))
            {
                return true;
            }
        }
        return false;
    }
}
