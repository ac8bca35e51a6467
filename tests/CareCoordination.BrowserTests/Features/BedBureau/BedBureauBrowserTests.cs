using System.Globalization;
using CareCoordination.BrowserTests.Support;
using CareCoordination.Domain;
using CareCoordination.Features.Coordination;
using CareCoordination.Features.Referrals;
using Deque.AxeCore.Playwright;
using Microsoft.Playwright;

namespace CareCoordination.BrowserTests.Features.BedBureau;

public sealed class BedBureauBrowserTests(BrowserHost host) : IClassFixture<BrowserHost>
{
    /// <summary>A pathway 2 referral passed to the bureau and taken there by Helen Marsh (bedbureau).</summary>
    private async Task<long> AtTheBureauAsync(string family)
    {
        var today = LondonTime.Today(TimeProvider.System);
        var form = new ReferralForm
        {
            NhsNumber = TestReferrals.NewNhsNumber("9995"), GivenName = "Alice", FamilyName = family, DateOfBirth = new DateOnly(1936, 3, 4),
            Sex = "female", AddressLine = "9 Mill Lane, Ashbury", Postcode = "WM1 2AB", Ethnicity = "A", Source = "acute-hospital",
            Pathway = "2", Urgency = "urgent", Ward = "Ward 5", MedicallyOptimisedOn = today, ExpectedDischargeOn = today.AddDays(1),
            Needs = ["mobility", "transfers"], ConsentToShare = true, ConsentGivenBy = "Alice herself",
            PersonWishes = "To walk to the shop again.", Summary = "Hip fracture repaired; needs a rehabilitation bed before home.",
        };
        var sent = await host.SendAsAsync<SubmitReferral.Result>("referrer", new SubmitReferral.Command(form, Guid.NewGuid().ToString("N")));
        var referralId = sent.ReferralId!.Value;
        var story = await host.SendAsAsync<PersonStory.Result>("coordinator", new PersonStory.Query(referralId));
        await host.SendAsAsync<Mediator.Unit>("coordinator", new TakeReferral.Command(story.Task!.Row.Id));
        await host.SendAsAsync<Mediator.Unit>("coordinator", new RedirectToBedBureau.Command(story.Task.Row.Id, "Not safe at home yet: needs rehabilitation first."));
        var bureauTask = (await host.SendAsAsync<PersonStory.Result>("bedbureau", new PersonStory.Query(referralId))).Task!.Row.Id;
        await host.SendAsAsync<Mediator.Unit>("bedbureau", new TakeReferral.Command(bureauTask));
        return referralId;
    }

    private static async Task<int> NumberAsync(ILocator cell) => int.Parse(await cell.InnerTextAsync(), CultureInfo.InvariantCulture);

    [Fact]
    public async Task TheBureauReservesAndAdmits_AndAManagersBoard_ShowsTheCountsChange_WithoutReload()
    {
        var manager = await host.NewPageAsync();
        await host.SignInAsync(manager, "manager");
        await manager.GetByRole(AriaRole.Link, new() { Name = "Capacity and flow" }).ClickAsync();
        await Assertions.Expect(manager.GetByTestId("capacity-board")).ToHaveAttributeAsync("data-live", "yes");
        var reservedBefore = await NumberAsync(manager.GetByTestId("total-reserved"));
        var occupiedBefore = await NumberAsync(manager.GetByTestId("total-occupied"));

        var family = "Bedworth" + Random.Shared.Next(1000, 9999).ToString(CultureInfo.InvariantCulture);
        var referralId = await AtTheBureauAsync(family);
        var bureau = await host.NewPageAsync();
        await host.SignInAsync(bureau, "bedbureau");
        await bureau.GotoAsync($"/coordination/referrals/{referralId}");
        await BrowserHost.WaitForCircuitAsync(bureau);
        var reserve = bureau.GetByTestId("matches").GetByRole(AriaRole.Button).First;
        var place = (await reserve.GetAttributeAsync("aria-label"))!["Reserve ".Length..];
        await reserve.ClickAsync();
        await Assertions.Expect(bureau.GetByTestId("action-done")).ToContainTextAsync("Reserved");

        await Assertions.Expect(manager.GetByTestId("total-reserved")).ToHaveTextAsync((reservedBefore + 1).ToString(CultureInfo.InvariantCulture));

        await bureau.GetByRole(AriaRole.Link, new() { Name = "Bed board" }).ClickAsync();
        await bureau.GetByRole(AriaRole.Button, new() { Name = place.Replace(", ", " ", StringComparison.Ordinal) + ": Reserved" }).ClickAsync();
        await Assertions.Expect(bureau.GetByTestId("bed-panel")).ToContainTextAsync(family);
        await bureau.GetByRole(AriaRole.Button, new() { Name = "Confirm admission" }).ClickAsync();
        await Assertions.Expect(bureau.GetByTestId("bed-status")).ToHaveTextAsync("Occupied");

        await Assertions.Expect(manager.GetByTestId("total-occupied")).ToHaveTextAsync((occupiedBefore + 1).ToString(CultureInfo.InvariantCulture));
        await Assertions.Expect(manager.GetByTestId("total-reserved")).ToHaveTextAsync(reservedBefore.ToString(CultureInfo.InvariantCulture));
    }

    /// <summary>
    /// The bureau member deciding on a referral sees its matching beds follow a provider's caution as it is set, with no reload:
    /// a red caution takes that provider's beds off the card (they stayed offered, and were refused when chosen).
    /// </summary>
    [Fact]
    public async Task TheReserveCard_DropsAProvidersBeds_WhenItGoesUnderARedCaution()
    {
        var referralId = await AtTheBureauAsync("Cautionby" + Random.Shared.Next(1000, 9999).ToString(CultureInfo.InvariantCulture));
        var bureau = await host.NewPageAsync();
        await host.SignInAsync(bureau, "bedbureau");
        await bureau.GotoAsync($"/coordination/referrals/{referralId}");
        await BrowserHost.WaitForCircuitAsync(bureau);
        var first = (await host.SendAsAsync<CareCoordination.Features.BedBureau.MatchBeds.Result>("bedbureau",
            new CareCoordination.Features.BedBureau.MatchBeds.Query(referralId))).Matches[0].Bed;
        var offered = bureau.GetByTestId("matches").GetByRole(AriaRole.Button, new() { Name = $"Reserve {first.Place}", Exact = true });
        await Assertions.Expect(offered).ToHaveCountAsync(1);
        try
        {
            await host.SendAsAsync<Mediator.Unit>("admin", new CareCoordination.Features.Admin.ChangeProviderRating.Command(
                first.ProviderId, "inadequate", "red", "Safeguarding enquiry open.", "CQC warning notice."));

            await Assertions.Expect(offered).ToHaveCountAsync(0);
        }
        finally
        {
            await host.SendAsAsync<Mediator.Unit>("admin", new CareCoordination.Features.Admin.ChangeProviderRating.Command(
                first.ProviderId, first.CqcRating ?? "not-rated", "none", null, "Test over."));
        }
        await bureau.Context.CloseAsync();
    }

    // Regression: the board's sites, wards and beds were drawn by position, so a bed added ahead of others shifted every later
    // bed into its neighbour's button, and a click on its way in landed on a button that now showed another bed.
    [Fact]
    public async Task TheBedBoard_ABedAddedAheadOfOthers_LeavesEveryOtherBedItsOwnButton()
    {
        var board = await host.SendAsAsync<CareCoordination.Features.BedBureau.BedBoard.Result>("bedbureau", new CareCoordination.Features.BedBureau.BedBoard.Query());
        var (site, ward) = (board.Sites[0], board.Sites[0].Wards[0]);
        var first = ward.Beds[0].Row;

        var page = await host.NewPageAsync();
        await host.SignInAsync(page, "bedbureau");
        await page.GotoAsync("/bed-bureau/beds");
        await BrowserHost.WaitForCircuitAsync(page);
        await Assertions.Expect(page.GetByTestId("bed-counts")).ToHaveAttributeAsync("data-live", "yes");
        var bed = page.Locator($"[data-testid=bed][aria-label^=\"{site.Name} {ward.Name} bed {first.Label}:\"]");
        await bed.EvaluateAsync("button => { button.ccMark = true; }");

        // An empty prefix numbered from 0 labels it "00": it sorts ahead of every bed in the ward.
        await host.SendAsAsync<IReadOnlyList<long>>("admin", new CareCoordination.Features.Admin.AddBeds.Command(ward.Id, 1, "", first.BedType, first.AllowedSex, false, 0));
        await Assertions.Expect(page.Locator($"[data-testid=bed][aria-label^=\"{site.Name} {ward.Name} bed 00:\"]")).ToBeVisibleAsync();

        Assert.True(await bed.EvaluateAsync<bool>("button => button.ccMark === true"), $"Bed {first.Label}'s button was handed to another bed.");
    }

    [Fact]
    public async Task TheBedBoard_AndTheCapacityBoard_PassAxe()
    {
        var page = await host.NewPageAsync();
        await host.SignInAsync(page, "bedbureau");
        foreach (var path in new[] { "/bed-bureau/beds", "/boards/capacity", "/boards/wall" })
        {
            await page.GotoAsync(path);
            await BrowserHost.WaitForCircuitAsync(page);
            await Assertions.Expect(page.Locator("[data-live=yes]").First).ToBeVisibleAsync();
            if (path == "/boards/capacity")
            {
                // The forecast loads after the board: axe runs once its charts are there (referrals and reablement always are).
                await Assertions.Expect(page.Locator("figure.cc-chart[data-measure=referrals]")).ToBeAttachedAsync(new() { Timeout = 15_000 });
                await Assertions.Expect(page.Locator("figure.cc-chart[data-measure=reablement]")).ToBeAttachedAsync(new() { Timeout = 15_000 });
            }
            var results = await page.RunAxe();
            // A name where ARIA prohibits one is only "needs review" to axe until the element has text, and a chart's text
            // comes when it has measured itself: counted as a fault either way, so the answer does not hang on that moment.
            var prohibited = results.Incomplete.Where(v => v.Id == "aria-prohibited-attr");
            var serious = results.Violations.Where(v => v.Impact is "serious" or "critical").Concat(prohibited)
                .Select(v => $"{path} {v.Id}: {v.Help} ({string.Join(", ", v.Nodes.Take(3).Select(n => n.Html))})").ToList();
            Assert.True(serious.Count == 0, string.Join(Environment.NewLine, serious));
        }
    }
}
