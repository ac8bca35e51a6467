using CareCoordination.BrowserTests.Support;
using CareCoordination.Domain;
using CareCoordination.Features.Reports;
using Deque.AxeCore.Playwright;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace CareCoordination.BrowserTests.Features.Reports;

/// <summary>
/// An administrator keeps the "you said, we did" list on its page with labelled fields, and the item appears in the
/// experience panel of the decision pack for its quarter; both pages pass axe.
/// </summary>
public sealed class DecisionPackBrowserTests(BrowserHost host) : IClassFixture<BrowserHost>
{
    [Fact]
    public async Task AnAdministrator_AddsAYouSaidWeDidItem_AndTheDecisionPackShowsIt_BothPagesAccessible()
    {
        var page = await host.NewPageAsync();
        await host.SignInAsync(page, "admin");
        await page.GotoAsync("/admin/you-said-we-did");
        await BrowserHost.WaitForCircuitAsync(page);
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "You said, we did", Level = 1 })).ToBeVisibleAsync();
        await AssertNoViolationsAsync(page, "/admin/you-said-we-did");

        var said = "Browser test: nobody said when the carers would come " + Guid.NewGuid().ToString("N")[..6];
        await page.GetByLabel("You said", new() { Exact = true }).FillAsync(said);
        await page.GetByLabel("We did", new() { Exact = true }).FillAsync("Start times are now sent by text.");
        await page.GetByRole(AriaRole.Button, new() { Name = "Add item" }).ClickAsync();
        await Assertions.Expect(page.GetByTestId("admin-done")).ToBeVisibleAsync();
        await Assertions.Expect(page.GetByTestId("you-said-items")).ToContainTextAsync(said);
        await AssertNoViolationsAsync(page, "/admin/you-said-we-did after adding");

        // The form offers the last full quarter first: the pack for that quarter shows the item.
        var quarter = Quarter.LastFull(LondonTime.Today(TimeProvider.System));
        await page.GotoAsync($"/reports/decision-pack?from={quarter.First:yyyy-MM-dd}&to={quarter.Last:yyyy-MM-dd}");
        await BrowserHost.WaitForCircuitAsync(page);
        await Assertions.Expect(page.GetByTestId("pack-you-said")).ToContainTextAsync(said);
        await Assertions.Expect(page.GetByTestId("pack-panel")).ToHaveCountAsync(DecisionPack.Panels.All.Count);
        await AssertNoViolationsAsync(page, "/reports/decision-pack");
    }

    /// <summary>
    /// A pack takes seconds to count. A manager who chooses one quarter and then, before it shows, another is shown the one
    /// chosen last: the first quarter's count, landing after, once put its figures under the second's name.
    /// </summary>
    [Fact]
    public async Task AQuarterChosenWhileAnotherIsCounted_IsTheOneShown_CountedOneAtATime()
    {
        var current = Quarter.Containing(LondonTime.Today(TimeProvider.System));
        var (first, last) = (current.Previous, current.Previous.Previous);
        var (page, quarters) = await PackOfAsync(current);

        var hold = host.Services.GetRequiredService<ReadHold>();
        try
        {
            hold.Arm<DecisionPack.Query>(read => read.Filter.From == first.First || read.Filter.From == last.First);
            await quarters.GetByRole(AriaRole.Link, new() { Name = first.Name }).ClickAsync();
            await hold.Held.WaitAsync(TimeSpan.FromSeconds(15));
            await quarters.GetByRole(AriaRole.Link, new() { Name = last.Name }).ClickAsync();
            // Counted beside the first, the second starts now; one count at a time waits for the first.
            await Task.WhenAny(hold.SecondStarted, Task.Delay(TimeSpan.FromSeconds(3)));
        }
        finally
        {
            hold.Disarm();
        }

        await Assertions.Expect(quarters.Locator("a[aria-current='page']")).ToHaveTextAsync(last.Name);
        await Assertions.Expect(page.GetByTestId("report-applied")).ToContainTextAsync(last.First.ToString("ddd d MMM yyyy", System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(1, hold.MostInFlight);
        await page.Context.CloseAsync();
    }

    /// <summary>
    /// A count that fails after a quarter's link is not lost, and does not end the connection: the page says in its place
    /// that it could not be shown, and Try again, once the store answers, shows the quarter asked for.
    /// </summary>
    [Fact]
    public async Task AQuarterWhoseCountFails_SaysThePageCouldNotBeShown_AndTryAgainShowsTheQuarter()
    {
        var current = Quarter.Containing(LondonTime.Today(TimeProvider.System));
        var (page, quarters) = await PackOfAsync(current);

        await FailingThePreviousQuarterAsync(page, quarters, current);

        await page.GetByTestId("page-failed-retry").ClickAsync();
        await Assertions.Expect(quarters.Locator("a[aria-current='page']")).ToHaveTextAsync(current.Previous.Name);
        await Assertions.Expect(page.GetByTestId("report-applied")).ToContainTextAsync(
            current.Previous.First.ToString("ddd d MMM yyyy", System.Globalization.CultureInfo.InvariantCulture));
        await Assertions.Expect(page.GetByTestId("page-failed")).ToHaveCountAsync(0);
        await page.Context.CloseAsync();
    }

    /// <summary>After a page failed, the menu still works: the next page opens in its place, with no Try again first.</summary>
    [Fact]
    public async Task AfterAPageFailed_TheMenuOpensTheNextPage()
    {
        var current = Quarter.Containing(LondonTime.Today(TimeProvider.System));
        var (page, quarters) = await PackOfAsync(current);

        await FailingThePreviousQuarterAsync(page, quarters, current);

        await page.GetByRole(AriaRole.Navigation, new() { Name = "Main" }).GetByRole(AriaRole.Link, new() { Name = "Reports", Exact = true }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Reports", Level = 1 })).ToBeVisibleAsync();
        await Assertions.Expect(page.GetByTestId("page-failed")).ToHaveCountAsync(0);
        await page.Context.CloseAsync();
    }

    /// <summary>Opens the quarter before <paramref name="current"/> while its count fails, and checks how the page says so.</summary>
    private async Task FailingThePreviousQuarterAsync(IPage page, ILocator quarters, Quarter current)
    {
        var hold = host.Services.GetRequiredService<ReadHold>();
        try
        {
            // A message of this call's own: the class's tests share one log.
            var failure = new TimeoutException("The store did not answer in time: " + Guid.NewGuid().ToString("N"));
            hold.Fail<DecisionPack.Query>(read => read.Filter.From == current.Previous.First, failure);
            await quarters.GetByRole(AriaRole.Link, new() { Name = current.Previous.Name }).ClickAsync();
            var failed = page.GetByTestId("page-failed");
            await Assertions.Expect(failed.GetByRole(AriaRole.Heading, new() { Name = "This page could not be shown", Level = 1 })).ToBeFocusedAsync();
            await Assertions.Expect(failed).ToContainTextAsync("(the store did not answer)");
            await Assertions.Expect(page).ToHaveTitleAsync("This page could not be shown · CareCoordination");
            Assert.Contains(host.Logs.GetSnapshot(), log => log.Level == Microsoft.Extensions.Logging.LogLevel.Error
                && log.Exception?.Message == failure.Message && log.Category == typeof(global::CareCoordination.Components.PageBoundary).FullName);
            await AssertNoViolationsAsync(page, "a page that could not be shown");
        }
        finally
        {
            hold.Disarm();
        }
    }

    /// <summary>A manager's page showing the pack for <paramref name="quarter"/>, and its quarter chooser.</summary>
    private async Task<(IPage Page, ILocator Quarters)> PackOfAsync(Quarter quarter)
    {
        var page = await host.NewPageAsync();
        await host.SignInAsync(page, "manager");
        await page.GotoAsync($"/reports/decision-pack?from={quarter.First:yyyy-MM-dd}&to={quarter.Last:yyyy-MM-dd}");
        await BrowserHost.WaitForCircuitAsync(page);
        var quarters = page.GetByRole(AriaRole.Navigation, new() { Name = "Quarters" });
        await Assertions.Expect(quarters.Locator("a[aria-current='page']")).ToHaveTextAsync(quarter.Name);
        return (page, quarters);
    }

    private static async Task AssertNoViolationsAsync(IPage page, string where)
    {
        var results = await page.RunAxe();
        Assert.True(results.Violations.Length == 0, where + ":\n" + string.Join("\n",
            results.Violations.Select(v => $"{v.Id} ({v.Impact}): {v.Help} ({string.Join(", ", v.Nodes.Select(n => n.Html))})")));
    }
}
