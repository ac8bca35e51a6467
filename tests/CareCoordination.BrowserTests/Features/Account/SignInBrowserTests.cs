using CareCoordination.BrowserTests.Support;
using Deque.AxeCore.Playwright;
using Microsoft.Playwright;

namespace CareCoordination.BrowserTests.Features.Account;

public sealed class SignInBrowserTests(BrowserHost host) : IClassFixture<BrowserHost>
{
    [Theory]
    [InlineData("referrer", "Referrals from Westmoor General Hospital", "Referrer")]
    [InlineData("coordinator", "Coordination centre", "Coordination centre")]
    [InlineData("bedbureau", "Bed bureau", "Bed bureau")]
    [InlineData("manager", "Capacity and flow", "Manager")]
    [InlineData("admin", "Administration", "Administrator")]
    public async Task SignIn_AsEachRole_ShowsThatRolesLandingPage(string username, string heading, string roleShown)
    {
        var page = await host.NewPageAsync();

        await host.SignInAsync(page, username);

        var title = page.GetByRole(AriaRole.Heading, new() { Level = 1 });
        await Assertions.Expect(title).ToContainTextAsync(heading);
        await Assertions.Expect(page.GetByTestId("signed-in-user")).ToContainTextAsync(roleShown);
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task SignIn_WithAWrongPassword_SaysSoAndStaysOnTheForm()
    {
        var page = await host.NewPageAsync();
        await page.GotoAsync("/signin");

        await page.GetByLabel("Username").FillAsync("coordinator");
        await page.GetByLabel("Password").FillAsync("not-the-password");
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();

        // The sign-in form's own alert: on a loaded machine the live-connection banner (also an alert) may show beside it.
        await Assertions.Expect(page.GetByTestId("signin-error")).ToHaveAttributeAsync("role", "alert");
        await Assertions.Expect(page.GetByTestId("signin-error")).ToContainTextAsync("username or password is not right");
        Assert.Contains("/signin", page.Url, StringComparison.Ordinal);
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task SignInPage_HasNoSeriousAccessibilityFaults()
    {
        var page = await host.NewPageAsync();
        await page.GotoAsync("/signin");

        var result = await page.RunAxe();

        var serious = result.Violations.Where(v => v.Impact is "serious" or "critical").Select(v => $"{v.Id}: {v.Help}").ToList();
        Assert.Empty(serious);
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task SignOut_FromTheHeader_ReturnsToSignIn()
    {
        var page = await host.NewPageAsync();
        await host.SignInAsync(page, "manager");

        await page.GetByRole(AriaRole.Button, new() { Name = "Sign out" }).ClickAsync();

        await page.WaitForURLAsync(url => url.Contains("/signin", StringComparison.Ordinal));
        await page.GotoAsync("/");
        await page.WaitForURLAsync(url => url.Contains("/signin", StringComparison.Ordinal));
        await page.Context.CloseAsync();
    }
}
