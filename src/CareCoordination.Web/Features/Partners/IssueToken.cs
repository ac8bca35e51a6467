using CareCoordination.Auth;
using CareCoordination.Pipeline;
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

    [AllowAnonymousMessage]
    public sealed record Command(string? GrantType, string? ClientId, string? ClientSecret, string? Scope) : ICommand<Result>;

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

    public sealed class Handler(Work work, PartnerTokens tokens) : ICommandHandler<Command, Result>
    {
        public async ValueTask<Result> Handle(Command command, CancellationToken cancellationToken)
        {
            var scope = work.Scope;
            scope.AuditDetail = $"client {command.ClientId}";
            if (command.GrantType != "client_credentials")
            {
                return Refuse("unsupported_grant_type", "Only grant_type=client_credentials is supported.");
            }
            if (string.IsNullOrEmpty(command.ClientId) || string.IsNullOrEmpty(command.ClientSecret))
            {
                return Refuse("invalid_request", "client_id and client_secret are required.");
            }
            if (command.ClientId.Length > MaxClientIdLength || command.ClientId.Any(char.IsControl))
            {
                return Refuse("invalid_request", "client_id is not one this server could have issued.");
            }

            var client = await work.Connection.QuerySingleOrDefaultAsync<Client>(
                "SELECT id AS Id, client_id AS ClientId, organisation_id AS OrganisationId, secret_hash AS SecretHash, scopes AS Scopes, active AS Active FROM partner_client WHERE client_id = @ClientId",
                new { command.ClientId }, work.Transaction);
            if (client is null || !client.Active || !Passwords.Verify(client.SecretHash, command.ClientSecret))
            {
                return Refuse("invalid_client", "The client is unknown or the secret is wrong.");
            }

            var granted = client.Scopes.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var asked = (command.Scope ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
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
        app.MapPost("/oauth/token", async (HttpRequest request, IMediator mediator, CancellationToken cancellationToken) =>
        {
            if (!request.HasFormContentType)
            {
                return Results.Json(new { error = "invalid_request", error_description = "Send application/x-www-form-urlencoded." }, statusCode: StatusCodes.Status400BadRequest);
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
                return Results.Json(new { error = "invalid_request", error_description = "This form could not be read: a field is too long, or holds a character a form may not." },
                    statusCode: StatusCodes.Status400BadRequest);
            }
            catch (BadHttpRequestException tooLarge) when (tooLarge.StatusCode == StatusCodes.Status413PayloadTooLarge)
            {
                return TooLarge();
            }
            var result = await mediator.Send(new Command(form["grant_type"], form["client_id"], form["client_secret"], form["scope"]), cancellationToken);
            // RFC 6749 §5.1: tokens must not be cached.
            request.HttpContext.Response.Headers.CacheControl = "no-store";
            request.HttpContext.Response.Headers.Pragma = "no-cache";
            if (result.Succeeded)
            {
                return Results.Json(new { access_token = result.AccessToken, token_type = "Bearer", expires_in = result.ExpiresIn, scope = result.Scope });
            }
            var status = result.Error == "invalid_client" ? StatusCodes.Status401Unauthorized : StatusCodes.Status400BadRequest;
            return Results.Json(new { error = result.Error, error_description = result.ErrorDescription }, statusCode: status);
        })
        .AllowAnonymous()
        .DisableAntiforgery()
        // Kestrel stops reading at the size limit; the form reader stops at a long field whatever the server.
        .WithMetadata(new Microsoft.AspNetCore.Mvc.RequestSizeLimitAttribute(MaxRequestBytes))
        .WithFormOptions(valueCountLimit: 16, keyLengthLimit: 64, valueLengthLimit: 2048);

    private static IResult TooLarge() =>
        Results.Json(new { error = "invalid_request", error_description = $"A token request is at most {MaxRequestBytes} bytes." }, statusCode: StatusCodes.Status413PayloadTooLarge);
}
