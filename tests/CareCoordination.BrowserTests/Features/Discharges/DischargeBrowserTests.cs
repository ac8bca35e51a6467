using System.Globalization;
using CareCoordination.BrowserTests.Support;
using static CareCoordination.BrowserTests.Support.Accessibility;
using CareCoordination.Domain;
using CareCoordination.Features.Discharges;
using Microsoft.Extensions.DependencyInjection;
using CareCoordination.Features.Coordination;
using CareCoordination.Features.Referrals;
using Microsoft.Playwright;

namespace CareCoordination.BrowserTests.Features.Discharges;

public sealed class DischargeBrowserTests(BrowserHost host) : IClassFixture<BrowserHost>
{
    [Fact]
    public async Task TheCoordinatorRecordsWhyAPersonWaits_TheReferrerRecordsTheDischarge_EachPageShowsItLive_AndBothPassAxe()
    {
        var (sent, coordinator) = await WaitingOnTheCoordinatorsPageAsync("Waitwell");
        await ChooseAsync(coordinator, "delay-reason", "Awaiting medicines to take home");
        await coordinator.GetByLabel("Note (optional)").FillAsync("Pharmacy closed until the morning");
        await coordinator.GetByRole(AriaRole.Button, new() { Name = "Record reason" }).ClickAsync();
        await Assertions.Expect(coordinator.GetByTestId("delays")).ToContainTextAsync("Hospital process: Awaiting medicines to take home (Pharmacy closed until the morning)");
        await AssertNoSeriousFaultsAsync(coordinator);

        var referrer = await host.NewPageAsync();
        await host.SignInAsync(referrer, "referrer");
        await referrer.GotoAsync($"/referrals/{sent.ReferralId}");
        await BrowserHost.WaitForCircuitAsync(referrer);
        await Assertions.Expect(referrer.GetByTestId("delays")).ToContainTextAsync("Awaiting medicines to take home");
        await ChooseAsync(referrer, "discharge-pathway", "Pathway 1");
        await ChooseAsync(referrer, "discharge-destination", "Home");
        await ChooseAsync(referrer, "discharge-care-level", "Care restarted");
        await AssertNoSeriousFaultsAsync(referrer);
        await referrer.GetByRole(AriaRole.Button, new() { Name = "Record discharge" }).ClickAsync();
        await Assertions.Expect(referrer.GetByTestId("discharged-at")).ToContainTextAsync("recorded from the referrer");
        var recorded = referrer.GetByTestId("discharge").Locator("li", new() { HasText = "Pathway at discharge" });
        await Assertions.Expect(recorded).ToContainTextAsync("Pathway at discharge: Pathway 1");
        await Assertions.Expect(recorded).ToContainTextAsync("destination: Home · Care restarted");

        // The coordinator's page, open all along, shows the discharge, and the reason's end, without a reload.
        await Assertions.Expect(coordinator.GetByTestId("discharged-at")).ToContainTextAsync("recorded from the referrer");
        await Assertions.Expect(coordinator.GetByTestId("delays")).Not.ToContainTextAsync("now");
        await Assertions.Expect(coordinator.GetByRole(AriaRole.Button, new() { Name = "Record reason" })).ToHaveCountAsync(0);
        await AssertNoSeriousFaultsAsync(coordinator);
    }

    /// <summary>
    /// The panel reads again at every change to the referral: a delay reason recorded here, or a colleague's note. What the
    /// person has chosen for the discharge and not yet saved stays, where it once went back to the defaults and could be saved so.
    /// </summary>
    [Fact]
    public async Task TheDischargeBeingFilledIn_KeepsWhatWasChosen_WhenTheReferralChangesBeforeItIsSaved()
    {
        var (_, coordinator) = await WaitingOnTheCoordinatorsPageAsync("Keepwell");

        await ChooseAsync(coordinator, "discharge-care-level", "Care restarted");
        await Assertions.Expect(coordinator.Locator("#discharge-care-level .rz-dropdown-label")).ToHaveTextAsync("Care restarted");
        // A reason for the wait: the panel reads again before it answers.
        await ChooseAsync(coordinator, "delay-reason", "Awaiting medicines to take home");
        await coordinator.GetByRole(AriaRole.Button, new() { Name = "Record reason" }).ClickAsync();
        await Assertions.Expect(coordinator.GetByTestId("delays")).ToContainTextAsync("Awaiting medicines to take home");
        await Assertions.Expect(coordinator.Locator("#discharge-care-level .rz-dropdown-label")).ToHaveTextAsync("Care restarted");

        await coordinator.Context.CloseAsync();
    }

    /// <summary>
    /// Choices made and not saved are kept while the form is open; a colleague recording the discharge closes it. "Correct the
    /// discharge" then opens on what the colleague recorded, where it once opened on the unsaved choices, ready to save over it.
    /// </summary>
    [Fact]
    public async Task ADischargeRecordedByAColleague_WhileChoicesAreUnsaved_IsWhatCorrectTheDischargeOpensOn()
    {
        var (sent, coordinator) = await WaitingOnTheCoordinatorsPageAsync("Otherwell");
        await coordinator.Context.CloseAsync();
        var referrer = await host.NewPageAsync();
        await host.SignInAsync(referrer, "referrer");
        await referrer.GotoAsync($"/referrals/{sent.ReferralId}");
        await BrowserHost.WaitForCircuitAsync(referrer);
        await Assertions.Expect(referrer.GetByTestId("discharged-at")).ToContainTextAsync("not yet recorded");

        await ChooseAsync(referrer, "discharge-care-level", "Care restarted");
        await Assertions.Expect(referrer.Locator("#discharge-care-level .rz-dropdown-label")).ToHaveTextAsync("Care restarted");

        await host.SendAsAsync<Mediator.Unit>("coordinator", new RecordDischarge.Command(sent.ReferralId!.Value, DateTimeOffset.UtcNow.AddHours(-1),
            "1", "care-home", "new"));
        await Assertions.Expect(referrer.GetByTestId("discharged-at")).ToContainTextAsync("recorded from the coordination centre or bed bureau");
        await Assertions.Expect(referrer.GetByTestId("discharge").Locator("li", new() { HasText = "Pathway at discharge" })).ToContainTextAsync("New care or support");

        await referrer.GetByRole(AriaRole.Button, new() { Name = "Correct the discharge" }).ClickAsync();
        await Assertions.Expect(referrer.Locator("#discharge-care-level .rz-dropdown-label")).ToHaveTextAsync("New care or support");
        await Assertions.Expect(referrer.Locator("#discharge-destination .rz-dropdown-label")).ToHaveTextAsync("Care home");

        await referrer.Context.CloseAsync();
    }

    /// <summary>
    /// Two people correcting the discharge at once: the panel reads the colleague's saved correction into the fields this
    /// person has not touched, so saving sends back their own change and the colleague's, where it once sent back the
    /// colleague's field as it was before their correction.
    /// </summary>
    [Fact]
    public async Task TwoCorrectionsAtOnce_SavingOneKeepsTheFieldTheOtherCorrected()
    {
        var (referralId, leftAt, coordinator) = await CorrectingTheCareLevelAsync("Bothwell");

        // The referrer corrects the destination meanwhile.
        await host.SendAsAsync<Mediator.Unit>("referrer", new RecordDischarge.Command(referralId, leftAt, "1", "care-home", "new"));
        var recorded = coordinator.GetByTestId("discharge").Locator("li", new() { HasText = "Pathway at discharge" });
        await Assertions.Expect(recorded).ToContainTextAsync("destination: Care home");
        await Assertions.Expect(coordinator.Locator("#discharge-destination .rz-dropdown-label")).ToHaveTextAsync("Care home");
        await Assertions.Expect(coordinator.Locator("#discharge-care-level .rz-dropdown-label")).ToHaveTextAsync("Care restarted");

        await coordinator.GetByRole(AriaRole.Button, new() { Name = "Save correction" }).ClickAsync();
        await Assertions.Expect(recorded).ToContainTextAsync("destination: Care home · Care restarted");

        await coordinator.Context.CloseAsync();
    }

    /// <summary>
    /// A colleague's correction saved a moment before this person's, before the page had heard of it: this person's save is
    /// refused rather than sending back the colleague's field as it was, and the form then shows the colleague's value beside
    /// this person's own change, ready to save again.
    /// </summary>
    [Fact]
    public async Task ACorrectionSavedOverAColleaguesNotYetShown_IsRefused_AndTheFormThenShowsBoth()
    {
        var (referralId, leftAt, coordinator) = await CorrectingTheCareLevelAsync("Latewell");

        var hold = host.Services.GetRequiredService<ReadHold>();
        try
        {
            // The page's read after the colleague's correction is held: the panel has not heard of it when this person saves.
            hold.Arm<PersonStory.Query>(read => read.ReferralId == referralId);
            await host.SendAsAsync<Mediator.Unit>("referrer", new RecordDischarge.Command(referralId, leftAt, "1", "care-home", "new"));
            await hold.Held.WaitAsync(TimeSpan.FromSeconds(15));
            await coordinator.GetByRole(AriaRole.Button, new() { Name = "Save correction" }).ClickAsync();
            await Assertions.Expect(coordinator.GetByTestId("discharge-problem")).ToContainTextAsync("Someone changed this referral while you were filling this in");
        }
        finally
        {
            hold.Disarm();
        }

        var recorded = coordinator.GetByTestId("discharge").Locator("li", new() { HasText = "Pathway at discharge" });
        await Assertions.Expect(recorded).ToContainTextAsync("destination: Care home · New care or support");
        await Assertions.Expect(coordinator.Locator("#discharge-destination .rz-dropdown-label")).ToHaveTextAsync("Care home");
        await Assertions.Expect(coordinator.Locator("#discharge-care-level .rz-dropdown-label")).ToHaveTextAsync("Care restarted");

        await coordinator.Context.CloseAsync();
    }

    /// <summary>
    /// A discharge the referrer recorded an hour ago (pathway 1, home, new care), open on the coordinator's page, who has
    /// begun to correct it: the care level chosen as "Care restarted" and not yet saved.
    /// </summary>
    private async Task<(long ReferralId, DateTimeOffset LeftAt, IPage Coordinator)> CorrectingTheCareLevelAsync(string familyStem)
    {
        var (sent, coordinator) = await WaitingOnTheCoordinatorsPageAsync(familyStem);
        var referralId = sent.ReferralId!.Value;
        var leftAt = DateTimeOffset.UtcNow.AddHours(-1);
        await host.SendAsAsync<Mediator.Unit>("referrer", new RecordDischarge.Command(referralId, leftAt, "1", "home", "new"));
        await Assertions.Expect(coordinator.GetByTestId("discharged-at")).ToContainTextAsync("recorded from the referrer");
        await coordinator.GetByRole(AriaRole.Button, new() { Name = "Correct the discharge" }).ClickAsync();
        await ChooseAsync(coordinator, "discharge-care-level", "Care restarted");
        await Assertions.Expect(coordinator.Locator("#discharge-care-level .rz-dropdown-label")).ToHaveTextAsync("Care restarted");
        return (referralId, leftAt, coordinator);
    }

    /// <summary>Opens the dropdown <paramref name="id"/> and picks the first option whose text holds <paramref name="option"/>.</summary>
    private static async Task ChooseAsync(IPage page, string id, string option)
    {
        await page.Locator("#" + id).ClickAsync();
        await page.Locator(".rz-popup:visible .rz-dropdown-item", new() { HasText = option }).First.ClickAsync();
        // Radzen closes its popup over a JS round trip before it sets the value: a click sent in that window reaches the
        // server first and sees no choice. A person sees the label change before they click on; so does the test.
        await Assertions.Expect(page.Locator($"#{id} .rz-dropdown-label")).ToContainTextAsync(option);
    }

    /// <summary>A hospital referral medically optimised two days ago, not yet discharged, open on the coordinator's page.</summary>
    private async Task<(SubmitReferral.Result Sent, IPage Coordinator)> WaitingOnTheCoordinatorsPageAsync(string familyStem)
    {
        var form = TestReferrals.Form(familyStem + Random.Shared.Next(1000, 9999).ToString(CultureInfo.InvariantCulture));
        form.MedicallyOptimisedOn = LondonTime.Today(TimeProvider.System).AddDays(-2);
        var sent = await host.SendAsAsync<SubmitReferral.Result>("referrer", new SubmitReferral.Command(form, Guid.NewGuid().ToString("N")));
        var coordinator = await host.NewPageAsync();
        await host.SignInAsync(coordinator, "coordinator");
        await coordinator.GotoAsync($"/coordination/referrals/{sent.ReferralId}");
        await BrowserHost.WaitForCircuitAsync(coordinator);
        await Assertions.Expect(coordinator.GetByTestId("discharged-at")).ToContainTextAsync("not yet recorded");
        return (sent, coordinator);
    }
}
