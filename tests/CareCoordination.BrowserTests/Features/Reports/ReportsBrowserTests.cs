using CareCoordination.BrowserTests.Support;
using CsvHelper;
using Deque.AxeCore.Playwright;
using Microsoft.Playwright;

namespace CareCoordination.BrowserTests.Features.Reports;

/// <summary>
/// Every report listed on /reports, as a manager finds it: whichever reports exist, each is followed from the index,
/// passes axe, shows its figures as a table, offers Print and prints without the menu and controls, and its CSV downloads and parses with a header row. The
/// period is changed where the report has one, and the CSV link follows it.
/// </summary>
public sealed class ReportsBrowserTests(BrowserHost host) : IClassFixture<BrowserHost>
{
    [Fact]
    public async Task AManager_FollowsEveryReportOnTheIndex_AndEachIsAccessible_WithATable_Print_AndACsvThatParses()
    {
        var page = await host.NewPageAsync();
        await host.SignInAsync(page, "manager");
        await page.GetByRole(AriaRole.Link, new() { Name = "Reports" }).ClickAsync();
        var links = page.GetByTestId("report-list").GetByRole(AriaRole.Link);
        await Assertions.Expect(links.First).ToBeVisibleAsync();
        await AssertNoViolationsAsync(page, "/reports");
        var reports = new List<(string Title, string Path)>();
        foreach (var link in await links.AllAsync())
        {
            reports.Add(((await link.TextContentAsync())!.Trim(), (await link.GetAttributeAsync("href"))!));
        }
        Assert.NotEmpty(reports);

        foreach (var (title, path) in reports)
        {
            await page.GotoAsync("/reports");
            await BrowserHost.WaitForCircuitAsync(page);
            await page.GetByTestId("report-list").GetByRole(AriaRole.Link, new() { Name = title, Exact = true }).ClickAsync();
            await page.WaitForURLAsync(url => new Uri(url).AbsolutePath == path);
            await BrowserHost.WaitForCircuitAsync(page);
            await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = title, Level = 1 })).ToBeVisibleAsync();
            await Assertions.Expect(page.Locator(".cc-report-table table").First).ToBeVisibleAsync();
            await Assertions.Expect(page.GetByRole(AriaRole.Button, new() { Name = "Print" })).ToBeVisibleAsync();
            await Assertions.Expect(page.GetByTestId("report-definitions").Locator("dt").First).ToBeVisibleAsync();
            await AssertNoViolationsAsync(page, path);

            if (await page.Locator("#report-from").CountAsync() > 0)
            {
                // A period of its own: the address keeps it, and so does the CSV link.
                await page.Locator("#report-from").FillAsync("2026-01-05");
                await page.Locator("#report-to").FillAsync("2026-02-01");
                await page.GetByRole(AriaRole.Button, new() { Name = "Show" }).ClickAsync();
                await page.WaitForURLAsync(url => url.Contains("from=2026-01-05", StringComparison.Ordinal) && url.Contains("to=2026-02-01", StringComparison.Ordinal));
                await BrowserHost.WaitForCircuitAsync(page);
                await Assertions.Expect(page.GetByTestId("report-applied")).ToContainTextAsync("Mon 5 Jan 2026 to Sun 1 Feb 2026");
                await Assertions.Expect(page.Locator(".cc-report-table table").First).ToBeVisibleAsync();
                await Assertions.Expect(page.GetByTestId("report-csv")).ToHaveAttributeAsync("href", new System.Text.RegularExpressions.Regex("from=2026-01-05&to=2026-02-01"));
            }

            if (await page.Locator("#report-at").CountAsync() > 0)
            {
                // A snapshot read as at the end of a past day: the day is named in the filters applied and kept by the CSV link.
                var yesterday = DateTime.Parse((await page.Locator("#report-at").GetAttributeAsync("max"))!, System.Globalization.CultureInfo.InvariantCulture).AddDays(-1);
                await page.Locator("#report-at").FillAsync(yesterday.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture));
                await page.GetByRole(AriaRole.Button, new() { Name = "Show" }).ClickAsync();
                await page.WaitForURLAsync(url => url.Contains($"at={yesterday:yyyy-MM-dd}", StringComparison.Ordinal));
                await BrowserHost.WaitForCircuitAsync(page);
                await Assertions.Expect(page.GetByTestId("report-applied")).ToContainTextAsync(
                    $"As the record stood at the end of {yesterday.ToString("ddd d MMM yyyy", System.Globalization.CultureInfo.InvariantCulture)}");
                await Assertions.Expect(page.GetByTestId("report-csv")).ToHaveAttributeAsync("href", new System.Text.RegularExpressions.Regex($"at={yesterday:yyyy-MM-dd}"));
                await AssertNoViolationsAsync(page, path + " as at a past day");
            }

            if (await page.Locator("#report-provider").CountAsync() > 0)
            {
                // A report about beds: narrowed to one provider's sites, named in the filters applied and kept by the CSV link.
                var provider = page.Locator("#report-provider option").Nth(1);
                var (providerId, providerName) = ((await provider.GetAttributeAsync("value"))!, (await provider.TextContentAsync())!.Trim());
                await page.Locator("#report-provider").SelectOptionAsync(providerId);
                await page.GetByRole(AriaRole.Button, new() { Name = "Show" }).ClickAsync();
                await page.WaitForURLAsync(url => url.Contains($"provider={providerId}", StringComparison.Ordinal));
                await BrowserHost.WaitForCircuitAsync(page);
                await Assertions.Expect(page.GetByTestId("report-applied")).ToContainTextAsync($"Bed provider: {providerName}.");
                await Assertions.Expect(page.GetByTestId("report-csv")).ToHaveAttributeAsync("href", new System.Text.RegularExpressions.Regex($"provider={providerId}(&|$)"));
            }

            // On paper: no menu, header or controls; the filters applied, the time produced, the figures and their definitions.
            await page.EmulateMediaAsync(new() { Media = Media.Print });
            await Assertions.Expect(page.GetByRole(AriaRole.Navigation, new() { Name = "Main" })).ToBeHiddenAsync();
            await Assertions.Expect(page.GetByTestId("report-filters")).ToBeHiddenAsync();
            await Assertions.Expect(page.GetByTestId("report-applied")).ToContainTextAsync("Produced");
            await Assertions.Expect(page.GetByTestId("report-applied")).ToBeVisibleAsync();
            await Assertions.Expect(page.Locator(".cc-report-table table").First).ToBeVisibleAsync();
            await Assertions.Expect(page.GetByTestId("report-definitions")).ToBeVisibleAsync();
            await page.EmulateMediaAsync(new() { Media = Media.Screen });

            var download = await page.RunAndWaitForDownloadAsync(() => page.GetByTestId("report-csv").ClickAsync());
            Assert.EndsWith(".csv", download.SuggestedFilename, StringComparison.Ordinal);
            using var reader = CsvReader.Create(await File.ReadAllBytesAsync((await download.PathAsync())!));
            reader.ReadHeader();
            Assert.True(reader.Headers.Count > 0 && reader.Headers.All(h => h.Length > 0), $"{path}: the CSV has no header row");
            while (reader.Read())
            {
                Assert.Equal(reader.Headers.Count, reader.FieldCount);
            }
        }
    }

    [Fact]
    public async Task AReferrer_HasNoReportsMenu_AndIsRefusedTheReports_AndTheirCsv()
    {
        var page = await host.NewPageAsync();
        await host.SignInAsync(page, "referrer");
        await Assertions.Expect(page.GetByRole(AriaRole.Link, new() { Name = "Reports" })).ToHaveCountAsync(0);
        await page.GotoAsync("/reports");
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "You do not have access to that page" })).ToBeVisibleAsync();
        Assert.Contains("/denied", page.Url, StringComparison.Ordinal);
        var csv = await page.APIRequest.GetAsync("/reports/capacity-tracker.csv");
        Assert.Equal(403, csv.Status);
    }

    private static async Task AssertNoViolationsAsync(IPage page, string where)
    {
        var results = await page.RunAxe();
        Assert.True(results.Violations.Length == 0, where + ":\n" + string.Join("\n",
            results.Violations.Select(v => $"{v.Id} ({v.Impact}): {v.Help} ({string.Join(", ", v.Nodes.Select(n => n.Html))})")));
    }
}
