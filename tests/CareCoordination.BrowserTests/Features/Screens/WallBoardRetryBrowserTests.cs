using CareCoordination.BrowserTests.Support;
using CareCoordination.Components;
using Microsoft.Extensions.Logging;
using Microsoft.Playwright;

namespace CareCoordination.BrowserTests.Features.Screens;

/// <summary>The wall screen mends itself: nobody stands at a wall to press Load again.</summary>
public sealed class WallBoardRetryBrowserTests(ClockedBrowserHost host) : IClassFixture<ClockedBrowserHost>
{
    /// <summary>
    /// A wall board whose first read fails reads again by its own timer 30 s later and shows itself, with nothing pressed;
    /// the server logs the failure once as an error and the recovery once, though the board swaps its badge as it shows.
    /// </summary>
    [Fact]
    public async Task TheWallBoard_WhoseFirstReadFails_ShowsItself30SecondsLater_WithNothingPressed()
    {
        // Only this test's lines: the host (and its log) is the class's, and whatever ran on it before is not this board's.
        host.Logs.Clear();
        var page = await WallBoardWhoseReadFails.OpenAsync(host,
            unreadable => Assertions.Expect(unreadable).ToContainTextAsync("It tries again by itself every 30 seconds"));

        // The store answers again, and time passes: no change arrives and nobody presses anything.
        host.Clock.Advance(TimeSpan.FromSeconds(30));

        await Assertions.Expect(page.GetByTestId("tile-available")).ToBeVisibleAsync();
        await Assertions.Expect(page.GetByTestId("board-unreadable")).ToHaveCountAsync(0);
        // The badge goes to "Live" in the draw that logs the recovery, so once the browser shows it the log holds it.
        await Assertions.Expect(page.GetByTestId("not-up-to-date")).ToHaveCountAsync(0);
        var logged = host.Logs.GetSnapshot().Where(log => log.Category == typeof(LiveBadge).FullName).Select(log => (log.Level, log.Message)).ToList();
        Assert.Equal(
            [
                (LogLevel.Error, "A live page could not load its latest figures; it says it is not up to date until a load succeeds"),
                (LogLevel.Information, "A live page read its latest figures again; failed reads before it: 1"),
            ],
            logged);
        await page.Context.CloseAsync();
    }
}
