using System.Net;
using CareCoordination.Auth;
using CareCoordination.Tests.Support;
using Dapper;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.Http.Connections.Client;
using Microsoft.AspNetCore.Mvc.Testing.Handlers;
using Microsoft.AspNetCore.SignalR.Client;

namespace CareCoordination.Tests.Features.Live;

/// <summary>
/// Issue 15: a hub connection kept a deactivated account's rights for as long as it stayed open. Its next call is
/// refused and the connection closed; a connection that only listens is closed at the next sweep.
/// </summary>
public abstract class LiveHubAccessTests(AppFactory app)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);
    private const string Secret = FhirPartner.OtherSecret;

    [Fact]
    public async Task Call_FromAConnectionWhoseAccountWasDeactivated_IsRefused_AndTheConnectionClosed()
    {
        var username = await NewStaffAsync();
        var (connection, closed) = await StaffConnectionAsync(username);
        await using var _ = connection;
        await connection.InvokeAsync<long>("Subscribe", "queue/coordination");

        await ExecuteAsync("UPDATE staff_user SET active = FALSE WHERE username = @username", new { username });

        // Refused, and closed at once: whether the refusal's reason or the close reaches the client first is the transport's race.
        Assert.NotNull(await Record.ExceptionAsync(() => connection.InvokeAsync<object>("GetChangesSince", 0L)));
        await closed.WaitAsync(Patience);
    }

    [Fact]
    public async Task Listener_WhoseAccountIsDeactivated_IsDisconnectedAtTheNextSweep_AndAnotherIsNot()
    {
        var leaver = await NewStaffAsync();
        var stayer = await NewStaffAsync();
        var (leaving, leavingClosed) = await StaffConnectionAsync(leaver);
        var (staying, stayingClosed) = await StaffConnectionAsync(stayer);
        await using var _ = leaving;
        await using var __ = staying;
        await leaving.InvokeAsync<long>("Subscribe", "queue/coordination");
        await staying.InvokeAsync<long>("Subscribe", "queue/coordination");

        await ExecuteAsync("UPDATE staff_user SET active = FALSE WHERE username = @username", new { username = leaver });
        app.Clock.Advance(TimeSpan.FromSeconds(30));

        await leavingClosed.WaitAsync(Patience);
        Assert.False(stayingClosed.IsCompleted);
        await staying.InvokeAsync<long>("Subscribe", "capacity");
    }

    [Fact]
    public async Task Listener_OfAPartnerClientDeactivated_IsDisconnectedAtTheNextSweep()
    {
        var clientId = await NewPartnerAsync();
        using var http = app.CreateBrowserlessClient();
        var token = await FhirPartner.TokenAsync(http, null, clientId, Secret);
        var (connection, closed) = await StartAsync(options => options.AccessTokenProvider = () => Task.FromResult<string?>(token), "Bearer " + token);
        await using var _ = connection;
        await connection.InvokeAsync<long>("Subscribe", "capacity");

        await ExecuteAsync("UPDATE partner_client SET active = FALSE WHERE client_id = @clientId", new { clientId });
        app.Clock.Advance(TimeSpan.FromSeconds(30));

        await closed.WaitAsync(Patience);
    }

    private async Task ExecuteAsync(string sql, object parameters)
    {
        await using var connection = await app.OpenAsync();
        Assert.Equal(1, await connection.ExecuteAsync(sql, parameters));
    }

    private async Task<string> NewStaffAsync()
    {
        var username = "listener-" + Guid.NewGuid().ToString("N")[..8];
        await ExecuteAsync(
            """
            INSERT INTO staff_user (username, display_name, password_hash, role, organisation_id, active, created_at)
            SELECT @username, 'A Listener', password_hash, 'coordinator', organisation_id, TRUE, created_at FROM staff_user WHERE username = 'coordinator'
            """, new { username });
        return username;
    }

    private Task<string> NewPartnerAsync() => app.NewPartnerClientAsync("RWM", prefix: "listening");

    /// <summary>Signs in through the real sign-in page and connects with the session cookie it set.</summary>
    private async Task<(HubConnection Connection, Task Closed)> StaffConnectionAsync(string username)
    {
        var cookie = await app.SessionCookieAsync(username);
        return await StartAsync(options => options.Headers["Cookie"] = cookie, cookie: cookie);
    }

    /// <summary>
    /// Over a WebSocket, as a browser or board screen holds it: once it is open, calls travel inside it and no
    /// request is authenticated again, which is what the hub's own check is for.
    /// </summary>
    private async Task<(HubConnection Connection, Task Closed)> StartAsync(Action<HttpConnectionOptions> configure, string? authorization = null, string? cookie = null)
    {
        var connection = new HubConnectionBuilder()
            .WithUrl(new Uri(app.Server.BaseAddress, "hubs/live"), options =>
            {
                options.HttpMessageHandlerFactory = _ => app.Server.CreateHandler();
                options.Transports = HttpTransportType.WebSockets;
                options.WebSocketFactory = async (context, cancellationToken) =>
                {
                    var sockets = app.Server.CreateWebSocketClient();
                    sockets.ConfigureRequest = request =>
                    {
                        // The handshake is made here, not by the client's own socket: it carries what the client would have.
                        if (cookie is not null)
                        {
                            request.Headers.Cookie = cookie;
                        }
                        if (authorization is not null)
                        {
                            request.Headers.Authorization = authorization;
                        }
                    };
                    return await sockets.ConnectAsync(context.Uri, cancellationToken);
                };
                configure(options);
            })
            .Build();
        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        connection.Closed += _ =>
        {
            closed.TrySetResult();
            return Task.CompletedTask;
        };
        await connection.StartAsync();
        return (connection, closed.Task);
    }
}

public sealed class LiveHubAccessOnSqliteTests(AppFactory app) : LiveHubAccessTests(app), IClassFixture<AppFactory>;

public sealed class LiveHubAccessOnPostgresTests(PostgresAppFactory app) : LiveHubAccessTests(app), IClassFixture<PostgresAppFactory>;
