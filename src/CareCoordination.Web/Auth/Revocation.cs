using System.Collections.Concurrent;
using System.Data;
using System.Data.Common;
using CareCoordination.Store;
using Dapper;
using Microsoft.AspNetCore.Components.Authorization;
using Microsoft.AspNetCore.Components.Server;

namespace CareCoordination.Auth;

/// <summary>
/// Whether what a session was granted has since been taken back: a staff account deactivated, moved to another role or
/// organisation, or signed out (its session stamp moved on: SignOut), a partner client deactivated. Asked on every cookie
/// request and bearer request, at every live-hub call, and every Auth:RevalidateSeconds for open Blazor circuits and hub connections, which
/// otherwise keep the rights they connected with for as long as the tab or socket stays open.
/// </summary>
/// <remarks>
/// Asked of the store every time, never remembered: an account or client is revoked by changing its row, from the admin
/// screens or by hand, and the next request must see it. What is kept is the means of asking: a few connections, each
/// with the two questions compiled once (issue 14: opening a connection and compiling the query for every request was
/// about 3% of the server's CPU per referral).
/// </remarks>
public sealed class Revocation(Database database) : IDisposable
{
    /// <summary>Connections kept between checks: as many as checks that run at once on a small server; more are opened and closed.</summary>
    private const int Kept = 8;

    private readonly ConcurrentQueue<StandingQueries> _idle = new();
    private int _opened;

    /// <summary>How many connections the checks have opened: at most a few while they come no more than that many at a time.</summary>
    internal int ConnectionsOpened => Volatile.Read(ref _opened);

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
                var account = await AskAsync(staff: true, userId, cancellationToken);
                return account is not { Active: true } || account.Role != actor.Role || account.OrganisationId != actor.OrganisationId
                    || account.SessionStamp != actor.SessionStamp;
            }
            case ActorKind.Partner:
                return (await CheckPartnerAsync(actor, cancellationToken)).Revoked;
            default:
                // Anonymous holds nothing to take back; the system is not a session.
                return false;
        }
    }

    /// <summary>
    /// A partner client's check, which also answers its organisation's ODS code and kind, as they are now: a referral's
    /// check of its requester needs them, and asking here saves a round trip of every partner submission (issue 14). And the
    /// scopes the client may have now, for what outlives a token (a subscription's deliveries).
    /// </summary>
    public async Task<(bool Revoked, string? OrganisationCode, string? OrganisationKind, string Scopes)> CheckPartnerAsync(Actor actor, CancellationToken cancellationToken)
    {
        if (actor.Kind != ActorKind.Partner || actor.Id is not { } clientId)
        {
            return (true, null, null, "");
        }
        var client = await AskAsync(staff: false, clientId, cancellationToken);
        return client is not { Active: true } || client.OrganisationId != actor.OrganisationId
            ? (true, null, null, "")
            : (false, client.OrganisationCode, client.OrganisationKind, client.Scopes ?? "");
    }

    private async Task<Standing?> AskAsync(bool staff, object key, CancellationToken cancellationToken)
    {
        if (_idle.TryDequeue(out var kept))
        {
            try
            {
                return await AskOnAsync(kept, staff, key, cancellationToken);
            }
            catch (Exception) when (!cancellationToken.IsCancellationRequested)
            {
                // A kept connection can go stale (a PostgreSQL server restarted): asked once more on a new one.
            }
        }
        return await AskOnAsync(await OpenAsync(cancellationToken), staff, key, cancellationToken);
    }

    /// <summary>Asks on <paramref name="queries"/>, then keeps them for the next check, or closes them if enough are kept or it failed.</summary>
    private async Task<Standing?> AskOnAsync(StandingQueries queries, bool staff, object key, CancellationToken cancellationToken)
    {
        var keep = false;
        try
        {
            var command = staff ? queries.Staff : queries.Partner;
            command.Parameters[0].Value = key;
            Standing? standing = null;
            await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
            {
                if (await reader.ReadAsync(cancellationToken))
                {
                    standing = reader.GetRowParser<Standing>()(reader);
                }
            }
            keep = _idle.Count < Kept;
            return standing;
        }
        finally
        {
            if (keep)
            {
                _idle.Enqueue(queries);
            }
            else
            {
                queries.Dispose();
            }
        }
    }

    private async Task<StandingQueries> OpenAsync(CancellationToken cancellationToken)
    {
        var connection = await database.OpenAsync(cancellationToken);
        Interlocked.Increment(ref _opened);
        try
        {
            return new StandingQueries(connection,
                Sql.Prepare(connection, "SELECT active AS Active, role AS Role, organisation_id AS OrganisationId, session_stamp AS SessionStamp FROM staff_user WHERE id = @key", ("key", DbType.Int64)),
                Sql.Prepare(connection, """
                    SELECT c.active AS Active, c.organisation_id AS OrganisationId, o.code AS OrganisationCode, o.kind AS OrganisationKind, c.scopes AS Scopes
                    FROM partner_client c LEFT JOIN organisation o ON o.id = c.organisation_id WHERE c.client_id = @key
                    """, ("key", DbType.String)));
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    public void Dispose()
    {
        while (_idle.TryDequeue(out var queries))
        {
            queries.Dispose();
        }
    }

    private sealed record StandingQueries(DbConnection Connection, DbCommand Staff, DbCommand Partner) : IDisposable
    {
        public void Dispose()
        {
            Staff.Dispose();
            Partner.Dispose();
            Connection.Dispose();
        }
    }

    private sealed record Standing
    {
        public bool Active { get; init; }
        public string? Role { get; init; }
        public long OrganisationId { get; init; }
        public string? OrganisationCode { get; init; }
        public string? OrganisationKind { get; init; }
        public string? Scopes { get; init; }
        public long SessionStamp { get; init; }
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
