using Microsoft.Playwright;
using Xunit.Abstractions;
using Xunit.Sdk;

namespace CareCoordination.BrowserTests.Support;

/// <summary>
/// Debian's Chromium, driven by Playwright (test.sh installs it; Playwright downloads nothing). Should the browser's
/// process have gone when a test asks for a page, a new one is launched and the diagnostics say so: a Chromium that
/// dies once (a CI run saw one die between its launch and a class's first page) then fails only the test it died under,
/// not every test left in its class. A test is never run again: the one in flight when it died still fails.
/// </summary>
public sealed class Chromium(IMessageSink diagnostics) : IAsyncDisposable
{
    private static readonly BrowserTypeLaunchOptions Options = new()
    {
        ExecutablePath = "/usr/bin/chromium",
        Headless = true,
        Args =
        [
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic",
        ],
    };

    private IPlaywright? _playwright;
    private IBrowser? _browser;
    private DateTimeOffset _launchedAt;
    private DateTimeOffset? _lostAt;

    public async Task LaunchAsync()
    {
        _playwright = await Playwright.CreateAsync();
        _browser = await _playwright.Chromium.LaunchAsync(Options);
        _launchedAt = DateTimeOffset.UtcNow;
        _lostAt = null;
        _browser.Disconnected += (_, _) => _lostAt ??= DateTimeOffset.UtcNow;
    }

    /// <summary>A new browser context (its own cookies), from a live browser.</summary>
    public async Task<IBrowserContext> NewContextAsync(BrowserNewContextOptions options)
    {
        if (_browser is null)
        {
            throw new InvalidOperationException("Chromium has not been launched.");
        }
        if (!_browser.IsConnected)
        {
            var lost = _lostAt ?? DateTimeOffset.UtcNow;
            diagnostics.OnMessage(new DiagnosticMessage(
                $"Chromium (launched {_launchedAt:HH:mm:ss.fff} UTC) had gone at {lost:HH:mm:ss.fff} UTC; launching another for the tests left."));
            await DisposeAsync();
            await LaunchAsync();
        }
        return await _browser!.NewContextAsync(options);
    }

    public async ValueTask DisposeAsync()
    {
        if (_browser is { IsConnected: true } browser)
        {
            await browser.CloseAsync();
        }
        _browser = null;
        _playwright?.Dispose();
        _playwright = null;
    }
}
