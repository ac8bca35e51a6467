using System.Net;
using System.Text.RegularExpressions;
using CareCoordination.Store;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace CareCoordination.Tests.Support;

/// <summary>
/// The real host on a fresh SQLite store seeded with demo data, with a clock the test can move.
/// </summary>
public sealed partial class AppFactory : WebApplicationFactory<Program>
{
    public const string Password = "Demo-Password-1";
    public const string PartnerSecret = "Demo-Partner-Secret-1";

    private readonly string _connectionString = new SqliteTestStore().CreateEmptyAsync().Result;

    public FakeTimeProvider Clock { get; } = new(DateTimeOffset.UtcNow);

    public string ConnectionString => _connectionString;

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Testing");
        builder.UseSetting("Database:Provider", nameof(StoreProvider.Sqlite));
        builder.UseSetting("ConnectionStrings:CareCoordination", _connectionString);
        builder.UseSetting("Demo:Seed", "true");
        builder.UseSetting("Demo:Password", Password);
        builder.UseSetting("Demo:PartnerSecret", PartnerSecret);
        builder.ConfigureTestServices(services => services.AddSingleton<TimeProvider>(Clock));
    }

    public HttpClient CreateBrowserlessClient() =>
        CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = true });

    /// <summary>Signs in through the real sign-in page, as a browser would: GET the form, POST it back with its antiforgery token.</summary>
    public async Task<HttpResponseMessage> SignInAsync(HttpClient client, string username, string password, string returnUrl = "/")
    {
        var form = await client.GetStringAsync($"/signin?returnUrl={Uri.EscapeDataString(returnUrl)}");
        var token = AntiforgeryField().Match(form).Groups[1].Value;
        using var post = new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["_handler"] = "signin",
            ["__RequestVerificationToken"] = WebUtility.HtmlDecode(token),
            ["Input.Username"] = username,
            ["Input.Password"] = password,
        });
        return await client.PostAsync($"/signin?returnUrl={Uri.EscapeDataString(returnUrl)}", post);
    }

    [GeneratedRegex("name=\"__RequestVerificationToken\" value=\"([^\"]+)\"")]
    private static partial Regex AntiforgeryField();
}
