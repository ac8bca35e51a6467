using System.Net;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.Http.Connections.Client;
using Microsoft.AspNetCore.Mvc.Testing.Handlers;
using Microsoft.AspNetCore.SignalR.Client;

namespace CareCoordination.Tests.Support;

/// <summary>Callers of /hubs/live in a test: a staff session's cookie, and a connection over the in-memory server.</summary>
public static class LiveHubConnections
{
    /// <summary>Signs in through the real sign-in page and returns the session cookie it set, as a Cookie header.</summary>
    public static async Task<string> SessionCookieAsync(this AppFactory app, string username)
    {
        var cookies = new CookieContainer();
        using (var client = app.CreateDefaultClient(new CookieContainerHandler(cookies)))
        {
            Assert.Equal(HttpStatusCode.Redirect, (await app.SignInAsync(client, username, AppFactory.Password)).StatusCode);
        }
        return cookies.GetCookieHeader(app.Server.BaseAddress);
    }

    /// <summary>A hub connection, not yet started. The in-memory server carries plain HTTP requests, so long polling.</summary>
    public static HubConnection LiveHub(this AppFactory app, Action<HttpConnectionOptions> configure, string path = "hubs/live") =>
        new HubConnectionBuilder()
            .WithUrl(new Uri(app.Server.BaseAddress, path), options =>
            {
                options.HttpMessageHandlerFactory = _ => app.Server.CreateHandler();
                options.Transports = HttpTransportType.LongPolling;
                configure(options);
            })
            .Build();
}
