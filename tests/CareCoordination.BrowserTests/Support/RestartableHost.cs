using System.Net;
using CareCoordination.Store;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace CareCoordination.BrowserTests.Support;

/// <summary>
/// The real host on Kestrel that a test can stop under an open page and start again on the same port, store and key
/// ring, as a node that fails and comes back: the page's circuit is gone, its sign-in cookie still holds. Each start
/// is a new host (a WebApplicationFactory cannot start twice); the demo is seeded only into the empty store.
/// </summary>
public sealed class RestartableHost(IMessageSink diagnostics) : IAsyncLifetime
{
    private readonly string _store = Testing.TestScratch.NewPath(extension: ".db");
    private readonly string _keys = Testing.TestScratch.NewPath("keys-");
    private readonly Chromium _chromium = new(diagnostics);
    private Node? _node;
    private int _port;

    public string BaseUrl => $"http://127.0.0.1:{_port}";

    private sealed class Node(string store, string keys) : WebApplicationFactory<Program>
    {
        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            builder.UseEnvironment("Testing");
            builder.UseStaticWebAssets();
            builder.UseSetting("Database:Provider", nameof(StoreProvider.Sqlite));
            builder.UseSetting("ConnectionStrings:CareCoordination", $"Data Source={store}");
            builder.UseSetting("DataProtection:KeysPath", keys);
            builder.UseSetting("Demo:Seed", "true");
            builder.UseSetting("Demo:Password", BrowserHost.Password);
            BrowserHost.QuietSystemTimers(builder);
        }
    }

    public Task StartAsync()
    {
        var node = new Node(_store, _keys);
        node.UseKestrel(options => options.Listen(IPAddress.Loopback, _port));
        node.StartServer();
        _port = new Uri(node.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()).Port;
        _node = node;
        return Task.CompletedTask;
    }

    /// <summary>Stops the node: its connections close and its circuits are gone, as when a server fails.</summary>
    public async Task StopAsync()
    {
        if (_node is { } node)
        {
            _node = null;
            await node.DisposeAsync();
        }
    }

    public async Task<TResponse> SendAsAsync<TResponse>(string username, Mediator.IMessage message)
    {
        await using var scope = _node!.Services.CreateAsyncScope();
        var database = scope.ServiceProvider.GetRequiredService<Database>();
        await using (var connection = await database.OpenAsync())
        {
            var account = await Dapper.SqlMapper.QuerySingleAsync<Auth.StaffAccount>(connection, Auth.StaffAccount.Select + " WHERE u.username = @username", new { username });
            scope.ServiceProvider.GetRequiredService<Auth.ActorAccessor>().Principal = account.ToPrincipal("test");
        }
        return (TResponse)(await scope.ServiceProvider.GetRequiredService<Mediator.IMediator>().Send((object)message))!;
    }

    /// <summary>The sequence number of the last change recorded about a referral.</summary>
    public async Task<long> LastChangeAboutAsync(long referralId)
    {
        await using var connection = await _node!.Services.GetRequiredService<Database>().OpenAsync();
        return await Dapper.SqlMapper.ExecuteScalarAsync<long>(connection,
            "SELECT MAX(seq) FROM change WHERE entity_type = 'referral' AND entity_id = @referralId", new { referralId });
    }

    public async Task<IPage> SignedInPageAsync(string username)
    {
        var context = await _chromium.NewContextAsync(new BrowserNewContextOptions { BaseURL = BaseUrl, Locale = "en-GB", TimezoneId = "Europe/London", AcceptDownloads = true });
        context.SetDefaultTimeout(15_000);
        var page = await context.NewPageAsync();
        await page.GotoAsync("/signin");
        await page.GetByLabel("Username").FillAsync(username);
        await page.GetByLabel("Password").FillAsync(BrowserHost.Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await page.WaitForURLAsync(url => !url.Contains("/signin", StringComparison.Ordinal));
        await BrowserHost.WaitForCircuitAsync(page);
        return page;
    }

    public async Task InitializeAsync()
    {
        await StartAsync();
        await _chromium.LaunchAsync();
    }

    async Task IAsyncLifetime.DisposeAsync()
    {
        await _chromium.DisposeAsync();
        await StopAsync();
        if (Directory.Exists(_keys))
        {
            Directory.Delete(_keys, recursive: true);
        }
    }
}
