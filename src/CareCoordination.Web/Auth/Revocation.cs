using CareCoordination.Store;
using Dapper;
using Microsoft.AspNetCore.Components.Authorization;
using Microsoft.AspNetCore.Components.Server;

namespace CareCoordination.Auth;

/// <summary>
/// Whether what a session was granted has since been taken back: a staff account deactivated or moved to another
/// role or organisation, a partner client deactivated. Asked on every cookie request and bearer request, at
/// every live-hub call, and every Auth:RevalidateSeconds for open Blazor circuits and hub connections, which
/// otherwise keep the rights they connected with for as long as the tab or socket stays open.
/// </summary>
public sealed class Revocation(Database database)
{
    public async Task<bool> IsRevokedAsync(Actor actor, CancellationToken cancellationToken)
    {
        switch (actor.Kind)
        {
            case ActorKind.Staff:
            {
                if (actor.UserId is not { } userId)
                {
                    return true;
                }
                await using var connection = await database.OpenAsync(cancellationToken);
                var account = await connection.QuerySingleOrDefaultAsync<Standing>(new CommandDefinition(
                    "SELECT active AS Active, role AS Role, organisation_id AS OrganisationId FROM staff_user WHERE id = @userId", new { userId }, cancellationToken: cancellationToken));
                return account is not { Active: true } || account.Role != actor.Role || account.OrganisationId != actor.OrganisationId;
            }
            case ActorKind.Partner:
            {
                await using var connection = await database.OpenAsync(cancellationToken);
                var client = await connection.QuerySingleOrDefaultAsync<Standing>(new CommandDefinition(
                    "SELECT active AS Active, organisation_id AS OrganisationId FROM partner_client WHERE client_id = @Id", new { actor.Id }, cancellationToken: cancellationToken));
                return client is not { Active: true } || client.OrganisationId != actor.OrganisationId;
            }
            default:
                // Anonymous holds nothing to take back; the system is not a session.
                return false;
        }
    }

    private sealed record Standing
    {
        public bool Active { get; init; }
        public string? Role { get; init; }
        public long OrganisationId { get; init; }
    }
}

/// <summary>
/// An open Blazor tab is one long connection: the cookie is checked when it opens, never again. This rechecks
/// the circuit's user every Auth:RevalidateSeconds and, once revoked, makes it anonymous, so its pages show
/// the sign-in redirect and its messages are refused (ActorCircuitHandler follows the change).
/// </summary>
public sealed class CircuitRevalidation(ILoggerFactory loggers, Revocation revocation, IConfiguration configuration)
    : RevalidatingServerAuthenticationStateProvider(loggers)
{
    protected override TimeSpan RevalidationInterval { get; } = TimeSpan.FromSeconds(Math.Max(1, configuration.GetValue("Auth:RevalidateSeconds", 30)));

    protected override async Task<bool> ValidateAuthenticationStateAsync(AuthenticationState authenticationState, CancellationToken cancellationToken)
    {
        // Only staff sign in to the screens: any other principal here was not made by the sign-in.
        var actor = Actor.From(authenticationState.User);
        return actor.Kind == ActorKind.Staff && !await revocation.IsRevokedAsync(actor, cancellationToken);
    }
}
