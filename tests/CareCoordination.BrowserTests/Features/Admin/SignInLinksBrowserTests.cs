using CareCoordination.BrowserTests.Support;
using static CareCoordination.BrowserTests.Support.Accessibility;
using CareCoordination.Features.Account;
using CareCoordination.Store;
using Dapper;
using Mediator;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace CareCoordination.BrowserTests.Features.Admin;

/// <summary>Staff sign-in links worked in a browser: a request arrives live, an administrator approves, refuses and unlinks, and the page passes axe.</summary>
public sealed class SignInLinksBrowserTests(BrowserHost host) : IClassFixture<BrowserHost>
{
    private const string Issuer = "https://login.westmoor.example";

    private async Task<string> NewAccountAsync(string displayName)
    {
        var email = $"{displayName.Replace(' ', '.')}@westmoor.example".ToLowerInvariant();
        await using var connection = await host.Services.GetRequiredService<Database>().OpenAsync();
        await connection.ExecuteAsync(
            """
            INSERT INTO staff_user (username, display_name, email, role, organisation_id, active, created_at)
            SELECT @username, @displayName, @email, 'bed-bureau', organisation_id, TRUE, created_at FROM staff_user WHERE username = 'bedbureau'
            """, new { username = "sso-" + Guid.NewGuid().ToString("N")[..8], displayName, email });
        return email;
    }

    /// <summary>What the OpenID Connect handler sends once the provider's id_token has validated.</summary>
    private async Task<SignInWithIdentityProvider.Outcome> SignsInAtTheProviderAsync(string subject, string email, string name)
    {
        await using var scope = host.Services.CreateAsyncScope();
        var result = await scope.ServiceProvider.GetRequiredService<IMediator>().Send(
            new SignInWithIdentityProvider.Command(Issuer, subject, email, EmailVerified: true, name, "127.0.0.1"));
        return result.Outcome;
    }

    [Fact]
    public async Task AnAdministrator_SeesARequestArriveLive_ApprovesIt_RefusesAnother_AndUnlinks()
    {
        var tag = Guid.NewGuid().ToString("N")[..4];
        var morwenna = $"Morwenna Hosking {tag}";
        var tristan = $"Tristan Penrose {tag}";
        var morwennaEmail = await NewAccountAsync(morwenna);
        var tristanEmail = await NewAccountAsync(tristan);
        var page = await host.NewPageAsync();
        await host.SignInAsync(page, "admin");
        await page.GetByRole(AriaRole.Link, new() { Name = "Staff sign-in links" }).ClickAsync();
        var requests = page.GetByTestId("link-requests");
        var links = page.GetByTestId("links");
        await Assertions.Expect(requests).ToBeVisibleAsync();
        await BrowserHost.WaitForCircuitAsync(page);
        await AssertNoSeriousFaultsAsync(page);

        Assert.Equal(SignInWithIdentityProvider.Outcome.AwaitingApproval, await SignsInAtTheProviderAsync("subject-m-" + tag, morwennaEmail, morwenna));
        Assert.Equal(SignInWithIdentityProvider.Outcome.AwaitingApproval, await SignsInAtTheProviderAsync("subject-t-" + tag, tristanEmail, tristan));
        var morwennaRow = requests.GetByRole(AriaRole.Row).Filter(new() { HasText = morwennaEmail });
        await Assertions.Expect(morwennaRow).ToContainTextAsync("Waiting");
        await Assertions.Expect(morwennaRow).ToContainTextAsync("subject-m-" + tag);

        await page.GetByRole(AriaRole.Button, new() { Name = $"Approve the link to {morwenna}" }).ClickAsync();
        await Assertions.Expect(page.GetByTestId("admin-done")).ToContainTextAsync($"{morwenna} can now sign in");
        await Assertions.Expect(links.GetByRole(AriaRole.Row).Filter(new() { HasText = morwenna })).ToContainTextAsync("by Sam Whitfield");
        await Assertions.Expect(morwennaRow).ToHaveCountAsync(0);
        Assert.Equal(SignInWithIdentityProvider.Outcome.SignedIn, await SignsInAtTheProviderAsync("subject-m-" + tag, morwennaEmail, morwenna));

        // A refusal needs a reason, said in its panel; then the request shows refused, with who and why.
        await page.GetByRole(AriaRole.Button, new() { Name = $"Refuse the link to {tristan}" }).ClickAsync();
        var refuse = page.GetByTestId("refuse-link");
        await refuse.GetByRole(AriaRole.Button, new() { Name = "Refuse the link" }).ClickAsync();
        await Assertions.Expect(page.GetByTestId("admin-problem")).ToContainTextAsync("Say why the link is refused");
        await refuse.Locator("#refuse-reason").FillAsync("Tristan signs in with a password.");
        await refuse.GetByRole(AriaRole.Button, new() { Name = "Refuse the link" }).ClickAsync();
        var tristanRow = requests.GetByRole(AriaRole.Row).Filter(new() { HasText = tristanEmail });
        await Assertions.Expect(tristanRow).ToContainTextAsync("Refused");
        await Assertions.Expect(tristanRow).ToContainTextAsync("by Sam Whitfield: Tristan signs in with a password.");
        Assert.Equal(SignInWithIdentityProvider.Outcome.Refused, await SignsInAtTheProviderAsync("subject-t-" + tag, tristanEmail, tristan));

        await page.GetByRole(AriaRole.Button, new() { Name = $"Unlink the sign-in of {morwenna}" }).ClickAsync();
        var unlink = page.GetByTestId("unlink");
        await unlink.Locator("#unlink-reason").FillAsync("Moved to the council's own sign-in.");
        await unlink.GetByRole(AriaRole.Button, new() { Name = "Unlink" }).ClickAsync();
        await Assertions.Expect(page.GetByTestId("admin-done")).ToContainTextAsync($"{morwenna} can no longer sign in");
        await Assertions.Expect(links.GetByRole(AriaRole.Row).Filter(new() { HasText = morwenna })).ToHaveCountAsync(0);
        await AssertNoSeriousFaultsAsync(page);
    }
}
