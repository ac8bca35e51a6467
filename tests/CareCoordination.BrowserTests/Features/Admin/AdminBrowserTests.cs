using System.Globalization;
using CareCoordination.BrowserTests.Support;
using static CareCoordination.BrowserTests.Support.Accessibility;
using Microsoft.Playwright;

namespace CareCoordination.BrowserTests.Features.Admin;

/// <summary>The administration pages worked in a browser: forms send their commands, refusals show where they were asked, and the pages pass axe.</summary>
public sealed class AdminBrowserTests(BrowserHost host) : IClassFixture<BrowserHost>
{
    [Fact]
    public async Task AnAdministrator_AddsASiteWardAndBeds_FromTheMenu_AndATakenLabelIsRefusedInPlace()
    {
        var page = await host.NewPageAsync();
        await host.SignInAsync(page, "admin");
        await page.GetByRole(AriaRole.Link, new() { Name = "Sites, wards and beds" }).ClickAsync();
        await Assertions.Expect(page.GetByTestId("add-site")).ToBeVisibleAsync();
        await AssertNoSeriousFaultsAsync(page);

        var name = "Gwel an Mor " + Random.Shared.Next(1000, 9999).ToString(CultureInfo.InvariantCulture);
        var form = page.GetByTestId("add-site");
        await form.Locator("#site-name").FillAsync(name);
        await Choose(page, "#site-kind", "Care home");
        await Choose(page, "#site-provider", "Hearthside Care Homes Ltd");
        await Choose(page, "#site-locality", "Saltmouth");
        await form.Locator("#site-postcode").FillAsync("wm8 1zz");
        await form.GetByRole(AriaRole.Button, new() { Name = "Add site" }).ClickAsync();
        await Assertions.Expect(form.GetByTestId("admin-done")).ToContainTextAsync($"{name} added");

        var site = page.Locator("section[data-testid=admin-site]", new() { Has = page.GetByRole(AriaRole.Heading, new() { Name = name }) });
        await Assertions.Expect(site).ToContainTextAsync("WM8 1ZZ");
        await site.GetByRole(AriaRole.Button, new() { Name = $"Add a ward to {name}" }).ClickAsync();
        await site.Locator("#ward-name").FillAsync("Bay Wing");
        await site.GetByRole(AriaRole.Button, new() { Name = "Add ward" }).ClickAsync();
        await Assertions.Expect(site.GetByTestId("admin-done")).ToContainTextAsync("Bay Wing added");

        await site.GetByRole(AriaRole.Button, new() { Name = $"Add beds to {name} Bay Wing" }).ClickAsync();
        var beds = site.GetByTestId("add-beds");
        await beds.Locator("#beds-count-input").FillAsync("3");
        await beds.Locator("#beds-count-input").PressAsync("Tab");
        // The count is applied (the button is named for it) before the type is chosen: the panel redrawn under an open
        // list of types once closed it with the choice unmade.
        await Assertions.Expect(beds.GetByRole(AriaRole.Button, new() { Name = "Add B01–B03" })).ToBeVisibleAsync();
        await Choose(page, "#beds-type", "Nursing");
        await beds.GetByRole(AriaRole.Button, new() { Name = "Add B01–B03" }).ClickAsync();
        await Assertions.Expect(beds.GetByTestId("admin-done")).ToContainTextAsync("Beds B01–B03 added");
        await Assertions.Expect(site.GetByTestId("admin-bed")).ToHaveCountAsync(3);

        // Numbering from 3 again clashes with B03: refused in the panel, and no bed is added.
        await beds.Locator("#beds-first-input").FillAsync("3");
        await beds.Locator("#beds-count-input").FillAsync("2");
        await beds.Locator("#beds-count-input").PressAsync("Tab");
        await beds.GetByRole(AriaRole.Button, new() { Name = "Add B03–B04" }).ClickAsync();
        await Assertions.Expect(beds.GetByTestId("admin-problem")).ToContainTextAsync("already has a bed labelled B03");
        await Assertions.Expect(site.GetByTestId("admin-bed")).ToHaveCountAsync(3);
        await AssertNoSeriousFaultsAsync(page);
    }

    [Fact]
    public async Task ACoordinator_ConfirmsTodaysCapacity_AndAnAdministratorsOpenPageShowsItLive()
    {
        var admin = await host.NewPageAsync();
        await host.SignInAsync(admin, "admin");
        await admin.GotoAsync("/admin/services");
        await BrowserHost.WaitForCircuitAsync(admin);
        var adminRow = admin.GetByRole(AriaRole.Row).Filter(new() { HasText = "Community Therapy Team - South" });
        await Assertions.Expect(adminRow).ToBeVisibleAsync();
        await Assertions.Expect(admin.GetByTestId("add-service")).ToBeVisibleAsync();
        await AssertNoSeriousFaultsAsync(admin);

        var coordinator = await host.NewPageAsync();
        await host.SignInAsync(coordinator, "coordinator");
        await coordinator.GetByRole(AriaRole.Link, new() { Name = "Services and capacity" }).ClickAsync();
        // The list is drawn before the form's absence counts: while the page loads, nothing at all is there.
        var confirm = coordinator.GetByRole(AriaRole.Button, new() { Name = "Confirm today's capacity of Community Therapy Team - South" });
        await Assertions.Expect(confirm).ToBeVisibleAsync();
        await Assertions.Expect(coordinator.GetByTestId("add-service")).ToHaveCountAsync(0);
        await confirm.ClickAsync();
        await coordinator.Locator("#confirm-available-input").FillAsync("9");
        await coordinator.GetByRole(AriaRole.Button, new() { Name = "Confirm today's capacity", Exact = true }).ClickAsync();
        await Assertions.Expect(coordinator.GetByTestId("admin-problem")).ToContainTextAsync("at most 8 slots a day");

        await coordinator.Locator("#confirm-available-input").FillAsync("7");
        await coordinator.GetByRole(AriaRole.Button, new() { Name = "Confirm today's capacity", Exact = true }).ClickAsync();
        await Assertions.Expect(coordinator.GetByTestId("admin-done")).ToContainTextAsync("7 slots free today");

        await Assertions.Expect(adminRow.GetByTestId("free-today")).ToHaveTextAsync("7");
        await Assertions.Expect(adminRow.GetByTestId("last-confirmed")).ToContainTextAsync("just now");
    }

    [Fact]
    public async Task AManager_PutsAProviderUnderAmberCaution_WhichMustSayWhy()
    {
        var page = await host.NewPageAsync();
        await host.SignInAsync(page, "manager");
        await page.GetByRole(AriaRole.Link, new() { Name = "Providers" }).ClickAsync();
        await Assertions.Expect(page.GetByTestId("providers")).ToBeVisibleAsync();
        await AssertNoSeriousFaultsAsync(page);

        await page.GetByRole(AriaRole.Button, new() { Name = "Change the rating or caution of Orchard Lodge Care Group" }).ClickAsync();
        var panel = page.GetByTestId("change-rating");
        await panel.GetByText("Amber:").ClickAsync();
        await panel.Locator("#rating-reason").FillAsync("Quality visit found gaps in falls care plans.");
        await panel.GetByRole(AriaRole.Button, new() { Name = "Save rating and caution" }).ClickAsync();
        await Assertions.Expect(panel.GetByTestId("admin-problem")).ToContainTextAsync("Say what the caution is");

        await panel.Locator("#rating-note").FillAsync("Falls care plans under review; discuss each placement with the quality team.");
        await panel.GetByRole(AriaRole.Button, new() { Name = "Save rating and caution" }).ClickAsync();
        await Assertions.Expect(page.GetByTestId("admin-done")).ToContainTextAsync("amber caution");
        var row = page.GetByRole(AriaRole.Row).Filter(new() { HasText = "Orchard Lodge Care Group" });
        await Assertions.Expect(row).ToContainTextAsync("Falls care plans under review");
        await Assertions.Expect(row).ToContainTextAsync("by David Trelawney");
    }

    private static async Task Choose(IPage page, string dropdown, string option)
    {
        await page.Locator(dropdown).ClickAsync();
        // By its whole text: "Nursing" is also part of "Step-down nursing".
        await page.Locator(".rz-popup:visible .rz-dropdown-item").GetByText(option, new() { Exact = true }).ClickAsync();
        await Assertions.Expect(page.Locator($"{dropdown} .rz-dropdown-label")).ToHaveTextAsync(option);
    }
}
