using System.Globalization;
using CareCoordination.BrowserTests.Support;
using CareCoordination.Domain;
using CareCoordination.Features.Boards;
using CareCoordination.Features.Coordination;
using CareCoordination.Features.Referrals;
using CareCoordination.Store;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace CareCoordination.BrowserTests.Features.Screens;

/// <summary>What a person meets on the staff screens: words for codes, a banner that keeps up, columns that fit, an icon.</summary>
public sealed class ScreensBrowserTests(BrowserHost host) : IClassFixture<BrowserHost>
{
    [Fact]
    public async Task NewReferralForm_ForAPersonWithAnOpenReferral_SaysItsStatusInWords()
    {
        var family = "Knownworth" + Random.Shared.Next(1000, 9999).ToString(CultureInfo.InvariantCulture);
        var form = TestReferrals.Form(family);
        var sent = await host.SendAsAsync<SubmitReferral.Result>("referrer", new SubmitReferral.Command(form, Guid.NewGuid().ToString("N")));

        var page = await host.NewPageAsync();
        await host.SignInAsync(page, "referrer");
        await page.GotoAsync("/referrals/new");
        await BrowserHost.WaitForCircuitAsync(page);
        await page.GetByLabel("NHS number *").FillAsync(form.NhsNumber!);
        await page.GetByLabel("NHS number *").PressAsync("Tab");

        var known = page.GetByTestId("known-person");
        await Assertions.Expect(known).ToContainTextAsync($"Referral {sent.ReferralId} from");
        await Assertions.Expect(known).ToContainTextAsync("Waiting for triage");
        await Assertions.Expect(known).Not.ToContainTextAsync("submitted");
        await page.Context.CloseAsync();
    }

    /// <summary>
    /// A wall board whose first read fails says so on the wall and keeps its connection and its timer, instead of the page
    /// failing in its place (or, before that, the connection ending silently: the wall has no error bar); loaded again, the
    /// board shows.
    /// </summary>
    [Fact]
    public async Task TheWallBoard_WhoseFirstReadFails_SaysItCouldNotBeRead_AndLoadsWhenAskedAgain()
    {
        var page = await WallBoardWhoseReadFails.OpenAsync(host, async unreadable =>
        {
            await Assertions.Expect(unreadable).ToContainTextAsync("The board could not be read (the store did not answer)");
            await Assertions.Expect(unreadable.GetByTestId("not-up-to-date")).ToBeVisibleAsync();
            await Assertions.Expect(unreadable.Page.GetByTestId("page-failed")).ToHaveCountAsync(0);
        });
        await page.GetByTestId("load-again").ClickAsync();
        await Assertions.Expect(page.GetByTestId("tile-available")).ToBeVisibleAsync();
        await Assertions.Expect(page.GetByTestId("board-unreadable")).ToHaveCountAsync(0);
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task SentBanner_WhenTheDecisionArrivesLive_GivesWayToTheDecision()
    {
        var family = "Bannerworth" + Random.Shared.Next(1000, 9999).ToString(CultureInfo.InvariantCulture);
        var sent = await host.SendAsAsync<SubmitReferral.Result>("referrer", new SubmitReferral.Command(TestReferrals.Form(family), Guid.NewGuid().ToString("N")));

        // Where the form lands after "Send referral".
        var referrer = await host.NewPageAsync();
        await host.SignInAsync(referrer, "referrer");
        await referrer.GotoAsync($"/referrals/{sent.ReferralId}?sent=true");
        await BrowserHost.WaitForCircuitAsync(referrer);
        await Assertions.Expect(referrer.GetByTestId("sent-confirmation")).ToBeVisibleAsync();

        // The coordination centre decides, at another desk.
        var task = await TaskOfAsync(sent.ReferralId!.Value);
        await host.SendAsAsync<Mediator.Unit>("coordinator", new TakeReferral.Command(task));
        await host.SendAsAsync<AcceptIntoService.Result>("coordinator", new AcceptIntoService.Command(task, await ReablementAsync(), LondonTime.Today(TimeProvider.System),
            OverrideFullService: true, OverrideReason: "Test: the banner."));

        await Assertions.Expect(referrer.GetByTestId("status")).ToHaveTextAsync("Accepted");
        await Assertions.Expect(referrer.GetByTestId("decision")).ToHaveTextAsync("Decision: Accepted: Reablement");
        await Assertions.Expect(referrer.GetByTestId("sent-confirmation")).ToHaveCountAsync(0);
        await referrer.Context.CloseAsync();
    }

    // A live page reads again at each change. The take and the decision arrive moments apart: if the page reads for the
    // decision while the take's read still runs, the take's older read can land last and the page shows a state long gone,
    // as CI once saw ("Being triaged" over a referral already accepted). So each read is held after it has read, and the
    // page must not start another read beside it.

    [Fact]
    public Task TrackedReferral_WhenAnOlderReadLandsLate_StillShowsTheDecision() =>
        ReadsOneAtATimeAsync(id => $"/referrals/{id}", (hold, id, _) => hold.Arm<TrackReferral.Query>(read => read.ReferralId == id),
            (page, _) => page.GetByTestId("status"));

    [Fact]
    public Task MyReferrals_WhenAnOlderReadLandsLate_StillShowsTheDecision() =>
        ReadsOneAtATimeAsync(_ => "/referrals", (hold, _, family) => hold.Arm<MyReferrals.Query>(read => read.Search == family),
            (page, family) => page.GetByTestId("my-referrals").Locator("tbody tr", new() { HasText = family }).GetByTestId("referral-status"),
            // Found by the family name: only this page's reads carry it, not another open My referrals page's.
            async (page, family) =>
            {
                await page.GetByLabel("Find by name or NHS number").FillAsync(family);
                await page.GetByLabel("Find by name or NHS number").PressAsync("Tab");
                // The row found, and nothing else: a search that found nothing also draws one row, saying so.
                await Assertions.Expect(page.GetByTestId("my-referrals").Locator("tbody tr", new() { HasText = family })).ToHaveCountAsync(1);
                await Assertions.Expect(page.GetByTestId("my-referrals").Locator("tbody tr")).ToHaveCountAsync(1);
            });

    [Fact]
    public Task DischargePanel_WhenAnOlderReadLandsLate_ReadsOneAtATime() =>
        ReadsOneAtATimeAsync(id => $"/referrals/{id}", (hold, id, _) => hold.Arm<CareCoordination.Features.Discharges.DischargeRecord.Query>(read => read.ReferralId == id),
            (page, _) => page.GetByTestId("status"));

    /// <param name="arm">Arms the hold on this page's reads alone, given the referral's id and the person's family name: the
    /// screen-size tests open these pages as the same referrer.</param>
    private async Task ReadsOneAtATimeAsync(Func<long, string> address, Action<ReadHold, long, string> arm, Func<IPage, string, ILocator> status,
        Func<IPage, string, Task>? find = null)
    {
        var family = "Lateworth" + Random.Shared.Next(1000, 9999).ToString(CultureInfo.InvariantCulture);
        var sent = await host.SendAsAsync<SubmitReferral.Result>("referrer", new SubmitReferral.Command(TestReferrals.Form(family), Guid.NewGuid().ToString("N")));
        var referralId = sent.ReferralId!.Value;
        var referrer = await host.NewPageAsync();
        await host.SignInAsync(referrer, "referrer");
        await referrer.GotoAsync(address(referralId));
        await BrowserHost.WaitForCircuitAsync(referrer);
        if (find is not null)
        {
            await find(referrer, family);
        }
        await Assertions.Expect(status(referrer, family)).ToHaveTextAsync("Waiting for triage");

        var hold = host.Services.GetRequiredService<ReadHold>();
        var task = await TaskOfAsync(referralId);
        var reablement = await ReablementAsync();
        try
        {
            arm(hold, referralId, family);
            await host.SendAsAsync<Mediator.Unit>("coordinator", new TakeReferral.Command(task));
            await hold.Held.WaitAsync(TimeSpan.FromSeconds(15));
            await host.SendAsAsync<AcceptIntoService.Result>("coordinator", new AcceptIntoService.Command(task, reablement, LondonTime.Today(TimeProvider.System),
                OverrideFullService: true, OverrideReason: "Test: a late read."));
            // A page that reads beside a read still running starts its next read now; one read at a time waits for the release.
            await Task.WhenAny(hold.SecondStarted, Task.Delay(TimeSpan.FromSeconds(3)));
        }
        finally
        {
            hold.Disarm();
        }

        await Assertions.Expect(status(referrer, family)).ToHaveTextAsync("Accepted");
        Assert.Equal(1, hold.MostInFlight);
        await referrer.Context.CloseAsync();
    }

    private async Task<long> TaskOfAsync(long referralId)
    {
        await using var scope = host.Services.CreateAsyncScope();
        await using var connection = await scope.ServiceProvider.GetRequiredService<Database>().OpenAsync();
        return await connection.ExecuteScalarAsync<long>("SELECT id FROM triage_task WHERE referral_id = @referralId", new { referralId });
    }

    private async Task<long> ReablementAsync()
    {
        await using var scope = host.Services.CreateAsyncScope();
        await using var connection = await scope.ServiceProvider.GetRequiredService<Database>().OpenAsync();
        return await connection.ExecuteScalarAsync<long>("SELECT id FROM service WHERE name = 'Home First Reablement - North'");
    }

    /// <summary>Desk screens from a laptop to a wide monitor, and the 1080p wall screen in the coordination centre.</summary>
    public static TheoryData<int, int> Screens => new() { { 1280, 800 }, { 1440, 900 }, { 1920, 1200 }, { 1920, 1080 } };

    [Theory]
    [MemberData(nameof(Screens))]
    public async Task QueuesAndMyReferrals_AtCommonScreenSizes_CutNoCellShort(int width, int height)
    {
        var cut = new List<string>();
        foreach (var (user, address, ready) in new[]
        {
            ("coordinator", "/coordination", "queue"), ("bedbureau", "/bed-bureau/queue", "queue"), ("referrer", "/referrals", "my-referrals"),
            ("manager", "/boards/wall", null),
        })
        {
            var page = await host.NewPageAsync();
            await page.SetViewportSizeAsync(width, height);
            await host.SignInAsync(page, user);
            await page.GotoAsync(address);
            await BrowserHost.WaitForCircuitAsync(page);
            if (ready is not null)
            {
                await Assertions.Expect(page.GetByTestId(ready)).ToHaveAttributeAsync("data-live", "yes");
                await Assertions.Expect(page.GetByTestId(ready).Locator("tbody tr").First).ToBeVisibleAsync();
            }
            await Assertions.Expect(page.Locator(".rz-progressbar-circular")).ToHaveCountAsync(0);
            cut.AddRange((await page.EvaluateAsync<string[]>(FindCutText)).Select(c => $"{address} at {width}x{height}: {c}"));
            await page.Context.CloseAsync();
        }
        Assert.True(cut.Count == 0, "Cut short:" + Environment.NewLine + string.Join(Environment.NewLine, cut.Distinct()));
    }

    /// <summary>
    /// Every table cell, and everything in it, whose text overflows a box that hides the rest (an ellipsis, or overflow
    /// hidden), and every table that needs sideways scrolling to be read.
    /// </summary>
    private const string FindCutText = """
        () => {
            const cut = [];
            for (const cell of document.querySelectorAll('td, th')) {
                for (const el of [cell, ...cell.querySelectorAll('*')]) {
                    if (!el.offsetParent || !el.innerText?.trim()) continue;
                    const style = getComputedStyle(el);
                    const hides = style.textOverflow === 'ellipsis' || style.overflowX === 'hidden' || style.overflowX === 'clip';
                    if (hides && el.scrollWidth > el.clientWidth + 1) {
                        cut.push(`"${el.innerText.trim().slice(0, 60)}" shows ${el.clientWidth} of ${el.scrollWidth} px`);
                    }
                }
            }
            for (const table of document.querySelectorAll('table')) {
                const box = table.closest('.cc-table-scroll, .rz-data-grid-data');
                if (box && box.scrollWidth > box.clientWidth + 1) {
                    cut.push(`a table ${box.scrollWidth} px wide in ${box.clientWidth} px: read only by scrolling sideways`);
                }
            }
            return cut;
        }
        """;

    [Fact]
    public async Task EveryPage_LinksItsIcon_AndAFirstLoadAsksForNothingMissing()
    {
        var page = await host.NewPageAsync();
        var missing = new List<string>();
        page.Response += (_, response) =>
        {
            if (response.Status == 404)
            {
                missing.Add(response.Url);
            }
        };
        await page.GotoAsync("/signin");
        await page.WaitForLoadStateAsync(LoadState.NetworkIdle);

        var link = page.Locator("link[rel='icon']");
        await Assertions.Expect(link).ToHaveCountAsync(1);
        var icon = await link.GetAttributeAsync("href");
        Assert.NotNull(icon);
        var answer = await page.APIRequest.GetAsync(icon);
        Assert.Equal(200, answer.Status);
        Assert.StartsWith("image/", answer.Headers["content-type"], StringComparison.Ordinal);
        Assert.Empty(missing);
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task ThePageGoingLive_KeepsTheThemesStylesheets_SoItIsNeverDrawnWithoutTheWcagColours()
    {
        var page = await host.NewPageAsync();
        await host.SignInAsync(page, "coordinator");
        // Watches from before the page's own scripts run; a stylesheet taken out and put back is a moment without it.
        await page.AddInitScriptAsync("""
            window.removedStylesheets = [];
            new MutationObserver(changes => {
              for (const change of changes)
                for (const node of change.removedNodes)
                  if (node.nodeName === 'LINK' && node.rel === 'stylesheet') window.removedStylesheets.push(node.href);
            }).observe(document, { childList: true, subtree: true });
            """);
        await page.GotoAsync("/coordination");
        await BrowserHost.WaitForCircuitAsync(page);
        await Assertions.Expect(page.Locator("link#radzen-wcag-theme-link")).ToHaveCountAsync(1);

        Assert.Empty(await page.EvaluateAsync<string[]>("() => window.removedStylesheets"));
        await page.Context.CloseAsync();
    }
}
