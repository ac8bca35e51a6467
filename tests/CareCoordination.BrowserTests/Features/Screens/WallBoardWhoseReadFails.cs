using CareCoordination.BrowserTests.Support;
using CareCoordination.Features.Boards;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace CareCoordination.BrowserTests.Features.Screens;

/// <summary>The wall screen opened by a manager while the capacity board's read fails: shared by the wall's retry tests.</summary>
internal static class WallBoardWhoseReadFails
{
    /// <summary>
    /// Opens the wall with every capacity board read failing as the store not answering, runs <paramref name="whileFailing"/>
    /// on the board's "could not be read" notice, then lets the store answer again. Returns the page, still open.
    /// </summary>
    public static async Task<IPage> OpenAsync(BrowserHost host, Func<ILocator, Task> whileFailing)
    {
        var page = await host.NewPageAsync();
        await host.SignInAsync(page, "manager");
        var hold = host.Services.GetRequiredService<ReadHold>();
        try
        {
            hold.Fail<CapacityBoard.Query>(_ => true, new TimeoutException("The store did not answer in time."));
            await page.GotoAsync("/boards/wall");
            await BrowserHost.WaitForCircuitAsync(page);
            await whileFailing(page.GetByTestId("board-unreadable"));
        }
        finally
        {
            hold.Disarm();
        }
        return page;
    }
}
