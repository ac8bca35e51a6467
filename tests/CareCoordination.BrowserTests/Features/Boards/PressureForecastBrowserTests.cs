using CareCoordination.BrowserTests.Support;
using CareCoordination.Features.Boards;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace CareCoordination.BrowserTests.Features.Boards;

/// <summary>The capacity board shows the pressure forecast: its band in a chart, the same figures in a table, and how it was made.</summary>
public sealed class PressureForecastBrowserTests(BrowserHost host) : IClassFixture<BrowserHost>
{
    [Fact]
    public async Task TheCapacityBoard_ShowsTheForecastBand_ItsTable_AndHowItWasMade()
    {
        var page = await host.NewPageAsync();
        await host.SignInAsync(page, "manager");
        await page.GotoAsync("/boards/capacity");
        await BrowserHost.WaitForCircuitAsync(page);

        var forecast = page.GetByRole(AriaRole.Region, new() { Name = "The next 7 days: pressure forecast" });
        await Assertions.Expect(forecast).ToBeVisibleAsync();
        // A band (low to high) and the likely line in the referrals chart, and one for reablement.
        await Assertions.Expect(forecast.Locator(".rz-range-area-series path").First).ToBeVisibleAsync();
        // A band for referrals and for reablement at least: a second chart is drawn after the first, once its width is measured.
        await Assertions.Expect(forecast.Locator(".rz-range-area-series").Nth(1)).ToBeAttachedAsync();
        await Assertions.Expect(forecast.GetByRole(AriaRole.Heading, new() { Name = "Reablement slots needed" })).ToBeVisibleAsync();

        var table = forecast.GetByRole(AriaRole.Table, new() { Name = "The forecast day by day: low – likely – high" });
        await Assertions.Expect(table.GetByRole(AriaRole.Row)).ToHaveCountAsync(8);
        await Assertions.Expect(table.GetByRole(AriaRole.Columnheader, new() { Name = "Referrals expected" })).ToBeVisibleAsync();
        // The demo county has referrals every day: the likely figure of the first day is not nothing.
        var firstDay = await table.GetByRole(AriaRole.Row).Nth(1).GetByRole(AriaRole.Cell).First.InnerTextAsync();
        Assert.Matches(@"^\d+(\.\d)? – [1-9]\d*(\.\d)? – \d+(\.\d)?$", firstDay);

        var outlook = forecast.GetByRole(AriaRole.Table, new() { Name = "When each is expected to run out" });
        await Assertions.Expect(outlook.GetByRole(AriaRole.Rowheader, new() { Name = "Reablement" })).ToBeVisibleAsync();

        await Assertions.Expect(forecast.GetByRole(AriaRole.Heading, new() { Name = "How this forecast was made" })).ToBeVisibleAsync();
        await Assertions.Expect(forecast.GetByText("the same weekday over the last", new() { Exact = false })).ToBeVisibleAsync();
    }

    // The panel's first read used to throw out of its start, which ended the whole board's connection.
    [Fact]
    public async Task AForecastThatCannotBeRead_SaysSo_AndTheRestOfTheBoardStaysLive()
    {
        var page = await host.NewPageAsync();
        await host.SignInAsync(page, "manager");
        var hold = host.Services.GetRequiredService<ReadHold>();
        try
        {
            hold.Fail<PressureForecast.Query>(_ => true, new TimeoutException("The store did not answer in time."));
            await page.GotoAsync("/boards/capacity");
            await BrowserHost.WaitForCircuitAsync(page);
            await Assertions.Expect(page.GetByTestId("forecast-unreadable")).ToBeVisibleAsync();
            Assert.Contains(host.Logs.GetSnapshot(), log => log.Level == Microsoft.Extensions.Logging.LogLevel.Error
                && log.Exception?.Message == "The store did not answer in time." && log.Category == typeof(PressureForecastPanel).FullName);
            await Assertions.Expect(page.GetByTestId("live-badge").GetByText("Live", new() { Exact = true })).ToBeVisibleAsync();
            await Assertions.Expect(page.GetByTestId("live-badge").GetByText("Reconnecting…")).ToBeHiddenAsync();
        }
        finally
        {
            hold.Disarm();
        }
        await page.Context.CloseAsync();
    }
}
