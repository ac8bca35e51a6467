using System.Globalization;
using System.Text.RegularExpressions;
using CareCoordination.BrowserTests.Support;
using static CareCoordination.BrowserTests.Support.Accessibility;
using CareCoordination.Domain;
using CareCoordination.Features.Referrals;
using CsvHelper;
using Microsoft.Playwright;

namespace CareCoordination.BrowserTests.Features.Downtime;

/// <summary>
/// Downtime mode: the server is stopped under an open coordination queue and a half-typed paper referral, and started
/// again on the same port and store.
/// </summary>
public sealed partial class DowntimeBrowserTests(RestartableHost host) : IClassFixture<RestartableHost>
{
    private const string Negotiate = "**/_blazor/negotiate**";

    [GeneratedRegex(@"As of change (\d+)")]
    private static partial Regex AsOfChange();

    private static async Task<long> AsOfAsync(IPage page) =>
        long.Parse(AsOfChange().Match(await page.GetByTestId("as-of").InnerTextAsync()).Groups[1].Value, CultureInfo.InvariantCulture);

    private async Task<long> ReferAsync(string family) =>
        (await host.SendAsAsync<SubmitReferral.Result>("referrer", new SubmitReferral.Command(TestReferrals.Form(family), Guid.NewGuid().ToString("N")))).ReferralId!.Value;

    [Fact]
    public async Task TheServerGoes_ThePageSaysOfflineSince_KeepsItsFigures_PrintsAndDownloadsThem_KeepsWhatWasTyped_AndCatchesUpWhenItIsBack()
    {
        var suffix = Random.Shared.Next(1000, 9999).ToString(CultureInfo.InvariantCulture);
        await ReferAsync("Beforehand" + suffix);
        var queue = await host.SignedInPageAsync("coordinator");
        await queue.GotoAsync("/coordination");
        await BrowserHost.WaitForCircuitAsync(queue);
        await Assertions.Expect(queue.GetByTestId("queue")).ToContainTextAsync("Beforehand" + suffix);
        await Assertions.Expect(queue.GetByTestId("offline")).ToBeHiddenAsync();
        var waiting = await queue.GetByTestId("count-waiting").Locator("strong").InnerTextAsync();
        var seenBefore = await AsOfAsync(queue);
        // The change named with the time it was made (London), so a printout says how old it is.
        await Assertions.Expect(queue.GetByTestId("as-of")).ToContainTextAsync(new Regex(@"^As of change \d+, \w{3} \d{1,2} \w{3} \d\d:\d\d$"));

        // The same coordinator, in another tab, is typing in a paper referral.
        var form = await queue.Context.NewPageAsync();
        await form.GotoAsync("/coordination/paper-referrals");
        await BrowserHost.WaitForCircuitAsync(form);
        await AssertNoSeriousFaultsAsync(form);
        await form.Locator("#GivenName").FillAsync("Winifred");
        await form.Locator("#Summary").FillAsync("Typed before the server went.");
        // The blank form, printed ahead of downtime, is one click from every staff page.
        var blank = await queue.Context.NewPageAsync();
        await blank.GotoAsync("/referrals/blank-form");
        await Assertions.Expect(blank.GetByRole(AriaRole.Heading, new() { Level = 1 })).ToContainTextAsync("paper form for downtime");
        await AssertNoSeriousFaultsAsync(blank);
        await blank.CloseAsync();

        // The pages may not reach the server again until the test lets them, so that a change can be made meanwhile.
        await queue.Context.RouteAsync(Negotiate, route => route.AbortAsync());
        await host.StopAsync();

        var offline = queue.GetByTestId("offline");
        await Assertions.Expect(offline).ToBeVisibleAsync();
        await Assertions.Expect(offline).ToContainTextAsync(new Regex(@"Offline since \d\d:\d\d\."));
        await Assertions.Expect(offline).ToContainTextAsync($"change {seenBefore}");
        await AssertNoSeriousFaultsAsync(queue);
        await Assertions.Expect(queue.GetByTestId("queue")).ToContainTextAsync("Beforehand" + suffix);
        Assert.Equal(waiting, await queue.GetByTestId("count-waiting").Locator("strong").InnerTextAsync());
        await form.Locator("#FamilyName").FillAsync("Offline-Typed");

        // With no server: the CSV of what the page shows, as of the change it last saw.
        var download = await queue.RunAndWaitForDownloadAsync(() => queue.GetByRole(AriaRole.Button, new() { Name = "Download CSV" }).ClickAsync());
        Assert.EndsWith(".csv", download.SuggestedFilename, StringComparison.Ordinal);
        var records = new List<string[]>();
        using (var reader = CsvReader.Create(await File.ReadAllBytesAsync((await download.PathAsync())!), new CsvReaderOptions { HasHeader = false }))
        {
            while (reader.Read())
            {
                records.Add([.. Enumerable.Range(0, reader.FieldCount).Select(reader.GetString)]);
            }
        }
        Assert.Contains(records, r => r is ["As of change", var seq] && seq == seenBefore.ToString(CultureInfo.InvariantCulture));
        Assert.Contains(records, r => r is ["Offline since", var at] && Regex.IsMatch(at, @"^\d\d:\d\d$"));
        Assert.Contains(records, r => r is ["Waiting", var count] && count == waiting);
        var header = records.FindIndex(r => r.Length > 1 && r[0] == "Priority" && r[1] == "Person");
        Assert.True(header >= 0, "the queue's table has its header row in the CSV");
        Assert.Contains(records.Skip(header + 1), r => r.Length == 6 && r[1].Contains("Beforehand" + suffix, StringComparison.Ordinal));

        // ...and it prints: the print button calls the browser's print, and the print layout drops the menus and says when.
        await queue.EvaluateAsync("() => { window.printed = 0; window.print = () => { window.printed++; }; }");
        await queue.GetByRole(AriaRole.Button, new() { Name = "Print" }).ClickAsync();
        Assert.Equal(1, await queue.EvaluateAsync<int>("() => window.printed"));
        await queue.EmulateMediaAsync(new() { Media = Media.Print });
        await Assertions.Expect(queue.GetByRole(AriaRole.Navigation, new() { Name = "Main" })).ToBeHiddenAsync();
        await Assertions.Expect(queue.Locator(".cc-print-only")).ToContainTextAsync($"as of change {seenBefore}");
        await Assertions.Expect(queue.Locator(".cc-print-only")).ToBeVisibleAsync();
        await Assertions.Expect(offline).ToBeVisibleAsync();
        await queue.EmulateMediaAsync(new() { Media = Media.Screen });

        // The server is back on the same port and store; a referral arrives before the pages can reach it.
        await host.StartAsync();
        var whileAway = await ReferAsync("Meanwhile" + suffix);
        var whileAwaySeq = await host.LastChangeAboutAsync(whileAway);
        await Assertions.Expect(queue.GetByTestId("queue")).Not.ToContainTextAsync("Meanwhile" + suffix);
        await Assertions.Expect(offline).ToBeVisibleAsync();
        await queue.Context.UnrouteAsync(Negotiate);

        // Back: the banner clears, and the page is as of a change at or after the one it missed, which it shows.
        await Assertions.Expect(queue.GetByTestId("queue")).ToContainTextAsync("Meanwhile" + suffix, new() { Timeout = 45_000 });
        await Assertions.Expect(queue.GetByTestId("offline")).ToBeHiddenAsync();
        Assert.True(await AsOfAsync(queue) >= whileAwaySeq);
        // And it is live again: the next referral arrives by itself.
        var after = await ReferAsync("Afterwards" + suffix);
        await Assertions.Expect(queue.GetByTestId("queue")).ToContainTextAsync("Afterwards" + suffix);
        await Assertions.Expect(queue.GetByTestId("as-of")).ToContainTextAsync(new Regex(@"As of change \d+"));
        Assert.True(await AsOfAsync(queue) >= await host.LastChangeAboutAsync(after));

        // Nothing typed was lost, and the person is told it was not sent.
        await Assertions.Expect(form.GetByTestId("kept-text")).ToContainTextAsync("NOT been sent", new() { Timeout = 45_000 });
        await Assertions.Expect(form.Locator("#GivenName")).ToHaveValueAsync("Winifred");
        await Assertions.Expect(form.Locator("#FamilyName")).ToHaveValueAsync("Offline-Typed");
        await Assertions.Expect(form.Locator("#Summary")).ToHaveValueAsync("Typed before the server went.");
        // The kept text reached the new page's form: completed and entered, it is the referral the server records.
        await EnterTheRestOfThePaperAsync(form, TimeSpan.FromHours(1));
        await Assertions.Expect(form.GetByTestId("entered")).ToContainTextAsync("Winifred Offline-Typed");
    }
    [Fact]
    public async Task TheConnectionBreaksWhileTheServerRuns_ThePageCatchesUpBySequenceNumber_AndWhatWasTypedMeanwhileReachesTheForm()
    {
        var suffix = Random.Shared.Next(1000, 9999).ToString(CultureInfo.InvariantCulture);
        var queue = await host.SignedInPageAsync("coordinator");
        // Every live connection from here on passes through the test, which can break it while the server runs on.
        var sockets = new List<IWebSocketRoute>();
        await queue.Context.RouteWebSocketAsync("**/_blazor**", page =>
        {
            var server = page.ConnectToServer();
            lock (sockets)
            {
                sockets.AddRange([page, server]);
            }
        });
        await queue.GotoAsync("/coordination");
        await BrowserHost.WaitForCircuitAsync(queue);
        var form = await queue.Context.NewPageAsync();
        await form.GotoAsync("/coordination/paper-referrals");
        await BrowserHost.WaitForCircuitAsync(form);
        await form.Locator("#GivenName").FillAsync("Winifred");
        await queue.EvaluateAsync("() => { window.sameDocument = true; }");

        await queue.Context.RouteAsync(Negotiate, route => route.AbortAsync());
        IWebSocketRoute[] open;
        lock (sockets)
        {
            open = [.. sockets];
        }
        foreach (var socket in open)
        {
            await socket.CloseAsync();
        }
        var offline = queue.GetByTestId("offline");
        await Assertions.Expect(offline).ToContainTextAsync(new Regex(@"Offline since \d\d:\d\d\."));
        // The badge's words are swapped by the browser alone while the server cannot draw: Reconnecting, not Live.
        var badge = queue.GetByTestId("live-badge");
        await Assertions.Expect(badge.GetByText("Reconnecting…")).ToBeVisibleAsync();
        await Assertions.Expect(badge.GetByText("Live", new() { Exact = true })).ToBeHiddenAsync();
        await form.Locator("#FamilyName").FillAsync("Offline-Typed");
        var whileAway = await ReferAsync("Meanwhile" + suffix);
        var whileAwaySeq = await host.LastChangeAboutAsync(whileAway);
        await Assertions.Expect(queue.GetByTestId("queue")).Not.ToContainTextAsync("Meanwhile" + suffix);
        await queue.Context.UnrouteAsync(Negotiate);

        // The same circuit comes back (the page was not reloaded) and asks for what it missed after the last change it saw.
        await Assertions.Expect(queue.GetByTestId("queue")).ToContainTextAsync("Meanwhile" + suffix, new() { Timeout = 45_000 });
        await Assertions.Expect(offline).ToBeHiddenAsync();
        await Assertions.Expect(badge.GetByText("Live", new() { Exact = true })).ToBeVisibleAsync();
        await Assertions.Expect(badge.GetByText("Reconnecting…")).ToBeHiddenAsync();
        Assert.True(await queue.EvaluateAsync<bool>("() => window.sameDocument === true"));
        Assert.True(await AsOfAsync(queue) >= whileAwaySeq);

        // What was typed while the connection was down is handed to the form, so what is entered is what the page shows.
        await Assertions.Expect(form.GetByTestId("kept-text")).ToContainTextAsync("connection is back", new() { Timeout = 45_000 });
        await EnterTheRestOfThePaperAsync(form, TimeSpan.FromMinutes(30));
        await Assertions.Expect(form.GetByTestId("entered")).ToContainTextAsync("Winifred Offline-Typed");
    }


    /// <summary>Completes a paper referral whose names and summary were typed already, made <paramref name="ago"/>, and enters it.</summary>
    private static async Task EnterTheRestOfThePaperAsync(IPage form, TimeSpan ago)
    {
        await form.Locator("#ReceivedAt").FillAsync(LondonTime.ToLocal(DateTimeOffset.UtcNow - ago).ToString("yyyy-MM-dd'T'HH:mm", CultureInfo.InvariantCulture));
        await form.Locator("#OrganisationId").SelectOptionAsync(new SelectOptionValue { Index = 1 });
        await form.Locator("#NhsNumber").FillAsync(TestReferrals.Form("Unused").NhsNumber!);
        await form.Locator("#DateOfBirth").FillAsync("1936-03-04");
        await form.Locator("#AddressLine").FillAsync("1 Mill Lane, Ashbury");
        await form.Locator("#Postcode").FillAsync("WM1 4QT");
        await form.Locator("#ConsentToShare").SelectOptionAsync("yes");
        await form.GetByRole(AriaRole.Button, new() { Name = "Enter referral" }).ClickAsync();
    }
}
