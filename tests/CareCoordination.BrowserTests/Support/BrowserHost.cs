using System.Net;
using CareCoordination.Store;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Testing;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace CareCoordination.BrowserTests.Support;

/// <summary>
/// The real host on Kestrel at 127.0.0.1 (a random port) with a fresh demo store, and Debian's Chromium.
/// </summary>
public class BrowserHost(IMessageSink diagnostics) : WebApplicationFactory<Program>, IAsyncLifetime
{
    public const string Password = "Browser-Demo-Password-1";

    /// <summary>The demo partner client's (demo-acute-trust) secret, for a test that sends as a partner system.</summary>
    private const string PartnerSecret = "Browser-Partner-Secret-1";

    private readonly string _store = Testing.TestScratch.NewPath(extension: ".db");
    private readonly Chromium _chromium = new(diagnostics);

    public string BaseUrl { get; private set; } = "";

    /// <summary>What the host has logged.</summary>
    public FakeLogCollector Logs => Services.GetRequiredService<FakeLogCollector>();

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Testing");
        // Outside Development the framework's and Radzen's scripts are only found through the static web
        // assets manifest; without it blazor.web.js never loads and no page becomes interactive.
        builder.UseStaticWebAssets();
        builder.UseSetting("Urls", "http://127.0.0.1:0");
        UseStore(builder);
        builder.UseSetting("Demo:Seed", "true");
        builder.UseSetting("Demo:Password", Password);
        builder.UseSetting("Demo:PartnerSecret", PartnerSecret);
        QuietSystemTimers(builder);
        builder.ConfigureTestServices(services =>
        {
            services.AddFakeLogging();
            services.AddSingleton<ReadHold>();
            services.AddScoped(typeof(Mediator.IPipelineBehavior<,>), typeof(HoldReads<,>));
        });
    }

    /// <summary>
    /// Stops the system's own timers. Their first tick, a minute after start, raises re-contacts on the demo seed, and a
    /// live page reloads for those changes at whatever point a test has reached: a test that holds a page behind could
    /// find it caught up by the timer instead of by the test's own step. Tests send those commands themselves.
    /// </summary>
    public static void QuietSystemTimers(IWebHostBuilder builder)
    {
        builder.UseSetting("Coordination:RecontactCheckSeconds", "0");
        builder.UseSetting("BedBureau:ReservationCheckSeconds", "0");
    }

    /// <summary>The store the host runs on: a fresh SQLite file unless a test needs the other engine.</summary>
    protected virtual void UseStore(IWebHostBuilder builder)
    {
        builder.UseSetting("Database:Provider", nameof(StoreProvider.Sqlite));
        builder.UseSetting("ConnectionStrings:CareCoordination", $"Data Source={_store}");
    }

    /// <summary>An HTTP client speaking for the demo partner system (demo-acute-trust) with a fresh bearer token.</summary>
    public async Task<HttpClient> PartnerClientAsync()
    {
        var partner = new HttpClient { BaseAddress = new Uri(BaseUrl) };
        using var token = await partner.PostAsync("/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials", ["client_id"] = "demo-acute-trust", ["client_secret"] = PartnerSecret,
        }));
        token.EnsureSuccessStatusCode();
        using var answer = System.Text.Json.JsonDocument.Parse(await token.Content.ReadAsStringAsync());
        partner.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer",
            answer.RootElement.GetProperty("access_token").GetString());
        return partner;
    }

    public async Task InitializeAsync()
    {
        UseKestrel(options => options.Listen(IPAddress.Loopback, 0));
        StartServer();
        BaseUrl = Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        await using (var connection = await Services.GetRequiredService<Database>().OpenAsync())
        {
            TestReferrals.AvoidSeeded(await Dapper.SqlMapper.QueryAsync<string>(connection, "SELECT nhs_number FROM person"));
        }
        await _chromium.LaunchAsync();
    }

    /// <summary>
    /// Sends a message through the real mediator as a demo user, the way their page would: for arranging
    /// what a test needs without filling a form it is not about.
    /// </summary>
    public async Task<TResponse> SendAsAsync<TResponse>(string username, Mediator.IMessage message)
    {
        await using var scope = Services.CreateAsyncScope();
        var database = scope.ServiceProvider.GetRequiredService<Database>();
        await using (var connection = await database.OpenAsync())
        {
            var account = await Dapper.SqlMapper.QuerySingleAsync<Auth.StaffAccount>(connection, Auth.StaffAccount.Select + " WHERE u.username = @username", new { username });
            scope.ServiceProvider.GetRequiredService<Auth.ActorAccessor>().Principal = account.ToPrincipal("test");
        }
        return (TResponse)(await scope.ServiceProvider.GetRequiredService<Mediator.IMediator>().Send((object)message))!;
    }

    /// <summary>A new browser context (its own cookies), as a second person at another desk.</summary>
    public async Task<IPage> NewPageAsync()
    {
        var context = await _chromium.NewContextAsync(new BrowserNewContextOptions { BaseURL = BaseUrl, Locale = "en-GB", TimezoneId = "Europe/London" });
        context.SetDefaultTimeout(15_000);
        return await context.NewPageAsync();
    }

    public async Task SignInAsync(IPage page, string username)
    {
        await page.GotoAsync("/signin");
        await page.GetByLabel("Username").FillAsync(username);
        await page.GetByLabel("Password").FillAsync(Password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await page.WaitForURLAsync(url => !url.Contains("/signin", StringComparison.Ordinal));
        await WaitForCircuitAsync(page);
    }

    /// <summary>
    /// Waits until the page's live router is up. A link clicked while the circuit is still starting changes
    /// the address but can leave the old page showing, as a too-quick test once found.
    /// </summary>
    public static Task WaitForCircuitAsync(IPage page) =>
        Assertions.Expect(page.Locator("[data-circuit]")).ToHaveAttributeAsync("data-circuit", "live", new() { Timeout = 15_000 });

    async Task IAsyncLifetime.DisposeAsync()
    {
        await _chromium.DisposeAsync();
        await base.DisposeAsync();
    }
}
