using CareCoordination.BrowserTests.Support;
using Deque.AxeCore.Playwright;
using Microsoft.Playwright;

namespace CareCoordination.BrowserTests.Features.Carers;

/// <summary>The referral form's carer part in a browser: it appears once a carer is named, and a yes needs a real e-mail.</summary>
public sealed class CarerAgreementBrowserTests(BrowserHost host) : IClassFixture<BrowserHost>
{
    [Fact]
    public async Task NamingACarer_AsksForThePersonsAgreement_AndAYesNeedsTheirEmail()
    {
        var page = await host.NewPageAsync();
        await host.SignInAsync(page, "referrer");
        await page.GotoAsync("/referrals/new");
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Refer a person for support" })).ToBeVisibleAsync();
        // The form is drawn once the page is live: until then nothing of it is there, the carer's part included.
        await Assertions.Expect(page.GetByLabel("Carer or next of kin")).ToBeVisibleAsync();
        await Assertions.Expect(page.GetByTestId("carer-updates")).ToHaveCountAsync(0);

        await page.GetByLabel("Carer or next of kin").FillAsync("Susan Trelawny");
        await page.GetByLabel("Carer or next of kin").PressAsync("Tab");
        await Assertions.Expect(page.GetByTestId("carer-updates")).ToBeVisibleAsync();
        await page.GetByRole(AriaRole.Radio, new() { Name = "Yes, the person agrees" }).ClickAsync();
        await page.GetByRole(AriaRole.Button, new() { Name = "Send referral" }).ClickAsync();

        var summary = page.GetByTestId("error-summary");
        await Assertions.Expect(summary).ToContainTextAsync("Give the carer's e-mail address, so they can be told.");
        var email = page.GetByLabel("Carer's e-mail address *");
        await email.FillAsync("susan at example.org");
        await email.PressAsync("Tab");
        await Assertions.Expect(page.Locator("#CarerEmail-error")).ToHaveTextAsync("Enter the carer's e-mail address like name@example.org.");
        await email.FillAsync("susan@example.org");
        await email.PressAsync("Tab");
        await Assertions.Expect(page.Locator("#CarerEmail-error")).ToHaveCountAsync(0);

        var result = await page.RunAxe();
        var serious = result.Violations.Where(v => v.Impact is "serious" or "critical")
            .Select(v => $"{v.Id}: {v.Help} ({string.Join(", ", v.Nodes.Select(n => n.Html))})").ToList();
        Assert.True(serious.Count == 0, string.Join(Environment.NewLine, serious));
        await page.Context.CloseAsync();
    }
}
