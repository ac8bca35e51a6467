using System.Globalization;
using CareCoordination.BrowserTests.Support;
using CareCoordination.Features.Reports;
using CsvHelper;
using Microsoft.Playwright;

namespace CareCoordination.BrowserTests.Features.Reports;

/// <summary>The equity report in a browser: a manager opens it from the reports list, changes the period, downloads the CSV.</summary>
public sealed class EquityBrowserTests(BrowserHost host) : IClassFixture<BrowserHost>
{
    [Fact]
    public async Task AManager_OpensTheEquityReport_ChangesThePeriod_AndDownloadsItsFigures()
    {
        var page = await host.NewPageAsync();
        await host.SignInAsync(page, "manager");
        await page.GotoAsync("/reports");
        await BrowserHost.WaitForCircuitAsync(page);
        await page.GetByRole(AriaRole.Link, new() { Name = "Equity" }).ClickAsync();
        await Assertions.Expect(page.GetByTestId("equity-table")).ToHaveCountAsync(4);

        // The demo county's referrals are of the last fortnight.
        var today = DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(DateTimeOffset.UtcNow, TimeZoneInfo.FindSystemTimeZoneById("Europe/London")).DateTime);
        await page.Locator("#report-from").FillAsync(today.AddDays(-13).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
        await page.Locator("#report-to").FillAsync(today.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
        await page.GetByRole(AriaRole.Button, new() { Name = "Show" }).ClickAsync();
        await page.WaitForURLAsync(url => url.Contains("from=", StringComparison.Ordinal));
        await BrowserHost.WaitForCircuitAsync(page);
        var everyone = page.GetByTestId("equity-table").First.Locator("tbody tr").First;
        await Assertions.Expect(everyone).ToContainTextAsync("Everyone referred");
        var referrals = await everyone.Locator("td").First.InnerTextAsync();
        Assert.True(int.Parse(referrals, CultureInfo.InvariantCulture) > 0, $"the demo's fortnight has referrals, not {referrals}");
        await Assertions.Expect(page.GetByTestId("equity-illustrative")).ToBeVisibleAsync();

        await Accessibility.AssertNoSeriousFaultsAsync(page);

        var download = await page.RunAndWaitForDownloadAsync(() => page.GetByTestId("report-csv").ClickAsync());
        var path = await download.PathAsync();
        using var reader = CsvReader.Create(await File.ReadAllBytesAsync(path));
        var rows = reader.GetRecords<EquityReport.Row>().ToList();
        Assert.Equal(referrals, rows.Single(r => r.Dimension == "All referrals").Referrals);
        Assert.Equal(27, rows.Count);
    }
}
