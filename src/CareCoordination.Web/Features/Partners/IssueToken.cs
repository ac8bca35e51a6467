using CareCoordination.Auth;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Mediator;

namespace CareCoordination.Features.Partners;

/// <summary>
/// OAuth 2.0 client credentials (RFC 6749 §4.4): a partner system swaps its id and secret for a short-lived
/// bearer token bound to its organisation and to the scopes it asked for, within those it was granted.
/// </summary>
public static class IssueToken
{
    /// <summary>A token request is a few short fields: anything near this is not one.</summary>
    public const int MaxRequestBytes = 8 * 1024;

    /// <summary>Longer than any client id this server issues: refused before it reaches a query.</summary>
    private const int MaxClientIdLength = 200;

    /// <summary>
    /// Not a command: it changes nothing, and its secret check (PBKDF2, slow on purpose) must hold no write
    /// transaction, or a flood of wrong secrets queues every writer behind it. Every use is still audited, on a
    /// short connection of its own once the check is done.
    /// </summary>
    [AllowAnonymousMessage]
    public sealed record Request(string? GrantType, string? ClientId, string? ClientSecret, string? Scope) : IRequest<Result>, IAudited;

    public sealed record Result(string? AccessToken, int ExpiresIn, string? Scope, string? Error, string? ErrorDescription)
    {
        public bool Succeeded => AccessToken is not null;
    }

    private sealed record Client
    {
        public long Id { get; init; }
        public string ClientId { get; init; } = "";
        public long OrganisationId { get; init; }
        public string SecretHash { get; init; } = "";
        public string Scopes { get; init; } = "";
        public bool Active { get; init; }
    }

    public sealed class Handler(Database database, Work work, PartnerTokens tokens, SecretChecks secrets) : IRequestHandler<Request, Result>
    {
        public async ValueTask<Result> Handle(Request request, CancellationToken cancellationToken)
        {
            var scope = work.Scope;
            scope.AuditDetail = $"client {request.ClientId}";
            if (request.GrantType != "client_credentials")
            {
                return Refuse("unsupported_grant_type", "Only grant_type=client_credentials is supported.");
            }
            if (string.IsNullOrEmpty(request.ClientId) || string.IsNullOrEmpty(request.ClientSecret))
            {
                return Refuse("invalid_request", "client_id and client_secret are required.");
            }
            if (request.ClientId.Length > MaxClientIdLength || request.ClientId.Any(char.IsControl))
            {
                return Refuse("invalid_request", "client_id is not one this server could have issued.");
            }

            Client? client;
            // The connection goes back to the pool before the secret is checked.
            await using (var connection = await database.OpenAsync(cancellationToken))
            {
                client = await connection.QuerySingleOrDefaultAsync<Client>(
                    "SELECT id AS Id, client_id AS ClientId, organisation_id AS OrganisationId, secret_hash AS SecretHash, scopes AS Scopes, active AS Active FROM partner_client WHERE client_id = @ClientId",
                    new { request.ClientId });
            }
            if (client is null || !client.Active || !await secrets.VerifyAsync(client.SecretHash, request.ClientSecret, cancellationToken))
            {
                return Refuse("invalid_client", "The client is unknown or the secret is wrong.");
            }

            var granted = client.Scopes.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var asked = (request.Scope ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var notGranted = asked.Where(a => !granted.Any(g => AccessPolicy.ScopeGrants(g, a))).ToList();
            if (notGranted.Count > 0)
            {
                return Refuse("invalid_scope", $"This client may not have: {string.Join(' ', notGranted)}.");
            }
            var scopes = asked.Length > 0 ? asked : granted;
            scope.Touch("partner_client", client.Id);
            return new Result(tokens.Issue(client.ClientId, client.OrganisationId, scopes), (int)tokens.Lifetime.TotalSeconds, string.Join(' ', scopes), null, null);

            Result Refuse(string error, string description)
            {
                scope.Outcome = "denied";
                return new Result(null, 0, null, error, description);
            }
        }
    }

    public static void MapIssueToken(this IEndpointRouteBuilder app) =>
        app.MapPost("/oauth/token", async (HttpRequest request, IMediator mediator, TokenThrottle throttle, CancellationToken cancellationToken) =>
        {
            // RFC 6749 §5.1: tokens must not be cached.
            request.HttpContext.Response.Headers.CacheControl = "no-store";
            request.HttpContext.Response.Headers.Pragma = "no-cache";
            if (!request.HasFormContentType)
            {
                return Error("invalid_request", "Send application/x-www-form-urlencoded.", StatusCodes.Status400BadRequest);
            }
            // The caller is anonymous: an oversized body is refused before it is read, not stored in the audit trail.
            if (request.ContentLength > MaxRequestBytes)
            {
                return TooLarge();
            }
            IFormCollection form;
            try
            {
                form = await request.ReadFormAsync(cancellationToken);
            }
            catch (InvalidDataException)
            {
                // The form limits below (a body sent without a Content-Length meets them here), or a NUL in a field.
                return Error("invalid_request", "This form could not be read: a field is too long, or holds a character a form may not.", StatusCodes.Status400BadRequest);
            }
            catch (BadHttpRequestException unread)
            {
                // Kestrel: past the size limit below (413), or a body that stopped arriving.
                return unread.StatusCode == StatusCodes.Status413PayloadTooLarge
                    ? TooLarge()
                    : Error("invalid_request", "The request body could not be read.", unread.StatusCode);
            }

            using var lease = throttle.Acquire(request.HttpContext, form["client_id"]);
            if (!lease.IsAcquired)
            {
                return TokenThrottle.Refusal(request.HttpContext, lease);
            }
            var result = await mediator.Send(new Request(form["grant_type"], form["client_id"], form["client_secret"], form["scope"]), cancellationToken);
            if (result.Succeeded)
            {
                return Results.Json(new { access_token = result.AccessToken, token_type = "Bearer", expires_in = result.ExpiresIn, scope = result.Scope });
            }
            return Error(result.Error!, result.ErrorDescription!, result.Error == "invalid_client" ? StatusCodes.Status401Unauthorized : StatusCodes.Status400BadRequest);
        })
        .AllowAnonymous()
        .DisableAntiforgery()
        // Kestrel stops reading at the size limit; the form reader stops at a long field whatever the server.
        .WithMetadata(new Microsoft.AspNetCore.Mvc.RequestSizeLimitAttribute(MaxRequestBytes))
        .WithFormOptions(valueCountLimit: 16, keyLengthLimit: 64, valueLengthLimit: 2048);

    /// <summary>RFC 6749 §5.2: an error and what it means, as JSON.</summary>
    internal static IResult Error(string error, string description, int status) =>
        Results.Json(new { error, error_description = description }, statusCode: status);

    private static IResult TooLarge() =>
        Error("invalid_request", $"A token request is at most {MaxRequestBytes} bytes.", StatusCodes.Status413PayloadTooLarge);
}
