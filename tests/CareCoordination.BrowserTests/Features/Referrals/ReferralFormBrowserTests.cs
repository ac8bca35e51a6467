using System.Globalization;
using System.Text.RegularExpressions;
using CareCoordination.BrowserTests.Support;
using CareCoordination.Domain;
using CareCoordination.Features.Referrals;
using Deque.AxeCore.Playwright;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace CareCoordination.BrowserTests.Features.Referrals;

public sealed class ReferralFormBrowserTests(BrowserHost host) : IClassFixture<BrowserHost>
{
    private static string NewNhsNumber() => TestReferrals.NewNhsNumber("9997");

    [Fact]
    public async Task Referrer_FillsTheFormByItsLabels_AndTheReferralAppearsLiveForTheirColleague()
    {
        // A colleague at the same trust is already looking at My referrals.
        var colleague = await host.NewPageAsync();
        await host.SignInAsync(colleague, "aisha.begum");
        await colleague.GotoAsync("/referrals");
        await Assertions.Expect(colleague.GetByRole(AriaRole.Heading, new() { Name = "My referrals" })).ToBeVisibleAsync();
        // Live once the page's circuit is up: only then does it hear about new referrals.
        await Assertions.Expect(colleague.GetByTestId("my-referrals")).ToHaveAttributeAsync("data-live", "yes");

        var page = await host.NewPageAsync();
        await host.SignInAsync(page, "referrer");
        await page.GetByRole(AriaRole.Link, new() { Name = "New referral" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Refer a person for support" })).ToBeVisibleAsync();

        var family = "Browserton" + Random.Shared.Next(1000, 9999).ToString(CultureInfo.InvariantCulture);
        var today = DateTime.Today.ToString("dd/MM/yyyy", CultureInfo.InvariantCulture);
        var nhs = page.GetByLabel("NHS number *");
        var number = NewNhsNumber();
        await nhs.PressSequentiallyAsync(number[..5]);
        await Assertions.Expect(nhs).ToHaveValueAsync(new System.Text.RegularExpressions.Regex(@"^\d{3} \d{2}$"));
        await nhs.PressSequentiallyAsync(number[5..]);
        await Assertions.Expect(nhs).ToHaveValueAsync(new System.Text.RegularExpressions.Regex(@"^\d{3} \d{3} \d{4}$"));
        await nhs.PressAsync("Tab");
        await page.GetByLabel("Given name *").FillAsync("Edith");
        await page.GetByLabel("Family name *").FillAsync(family);
        await page.GetByLabel("Date of birth *").FillAsync("02/05/1938");
        await page.GetByLabel("Date of birth *").PressAsync("Tab");
        var born = new DateTime(1938, 5, 2);
        var age = DateTime.Today.Year - born.Year - (DateTime.Today < born.AddYears(DateTime.Today.Year - born.Year) ? 1 : 0);
        await Assertions.Expect(page.GetByText($"Age {age}", new() { Exact = true })).ToBeVisibleAsync();
        await page.GetByRole(AriaRole.Radio, new() { Name = "Female" }).ClickAsync();
        await page.GetByLabel("Address the person will go to *").FillAsync("4 Chapel Row, Ashbury");
        await page.GetByLabel("Postcode *").FillAsync("wm1 4qt");
        await page.GetByLabel("Ethnic category *").SelectOptionAsync("A");
        await page.GetByRole(AriaRole.Radio, new() { Name = "Acute hospital" }).ClickAsync();
        await page.GetByRole(AriaRole.Radio, new() { Name = "Pathway 1" }).ClickAsync();
        await page.GetByLabel("Ward *").FillAsync("Ward 7");
        await page.GetByLabel("Medically optimised on *").FillAsync(today);
        await page.GetByLabel("Medically optimised on *").PressAsync("Tab");
        await page.GetByRole(AriaRole.Radio, new() { Name = "Urgent" }).ClickAsync();
        await page.GetByRole(AriaRole.Checkbox, new() { Name = "Maintaining personal hygiene" }).ClickAsync();
        await page.GetByRole(AriaRole.Checkbox, new() { Name = "Mobility" }).ClickAsync();
        await page.GetByLabel("What the person wants *").FillAsync("To go home to her cat.");
        await page.GetByRole(AriaRole.Radio, new() { Name = "Consent given" }).ClickAsync();
        await page.GetByLabel("Consent given by *").FillAsync("Edith herself");
        await page.GetByLabel("Summary for the coordinator *").FillAsync("Fall at home, no fracture. Needs help washing and dressing.");
        await page.GetByRole(AriaRole.Button, new() { Name = "Send referral" }).ClickAsync();

        await Assertions.Expect(page.GetByTestId("sent-confirmation")).ToBeVisibleAsync(new() { Timeout = 10_000 });
        await Assertions.Expect(page.GetByTestId("status")).ToHaveTextAsync("Waiting for triage");

        // The colleague's list shows it without a reload.
        var row = colleague.GetByRole(AriaRole.Row).Filter(new() { HasText = family });
        await Assertions.Expect(row).ToBeVisibleAsync(new() { Timeout = 5_000 });
        await Assertions.Expect(row).ToContainTextAsync("Waiting for triage");
        await Assertions.Expect(row).ToContainTextAsync("Coordination centre queue");

        // Opened afresh, the referrer's own list has it too.
        await page.GotoAsync("/referrals");
        await Assertions.Expect(page.GetByRole(AriaRole.Row).Filter(new() { HasText = family })).ToBeVisibleAsync();

        await page.Context.CloseAsync();
        await colleague.Context.CloseAsync();
    }

    // My referrals is a grid keyed by each row's content: a row whose referral did not change keeps its elements as others arrive.
    [Fact]
    public async Task MyReferrals_AsANewReferralArrives_RowsAlreadyShownAreNotRedrawn()
    {
        var page = await host.NewPageAsync();
        await host.SignInAsync(page, "referrer");
        await page.GotoAsync("/referrals");
        await Assertions.Expect(page.GetByTestId("my-referrals")).ToHaveAttributeAsync("data-live", "yes");

        var family = "Steadworth" + Random.Shared.Next(1000, 9999).ToString(CultureInfo.InvariantCulture);
        await host.SendAsAsync<SubmitReferral.Result>("referrer", new SubmitReferral.Command(TestReferrals.Form(family), Guid.NewGuid().ToString("N")));
        var link = page.GetByRole(AriaRole.Row).Filter(new() { HasText = family }).GetByRole(AriaRole.Link, new() { Name = $"Mary {family}" });
        await link.EvaluateAsync("a => { a.ccMark = true; }");

        var newer = "Newworth" + Random.Shared.Next(1000, 9999).ToString(CultureInfo.InvariantCulture);
        await host.SendAsAsync<SubmitReferral.Result>("referrer", new SubmitReferral.Command(TestReferrals.Form(newer), Guid.NewGuid().ToString("N")));
        await Assertions.Expect(page.GetByRole(AriaRole.Row).Filter(new() { HasText = newer })).ToBeVisibleAsync();

        Assert.True(await link.EvaluateAsync<bool>("a => a.ccMark === true"), "The unchanged row was drawn afresh.");
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task Sending_AnEmptyForm_ListsWhatToDo_AndSendsNothing()
    {
        var page = await host.NewPageAsync();
        await host.SignInAsync(page, "referrer");
        await page.GotoAsync("/referrals/new");
        await Assertions.Expect(page.GetByRole(AriaRole.Heading, new() { Name = "Refer a person for support" })).ToBeVisibleAsync();

        await page.GetByRole(AriaRole.Button, new() { Name = "Send referral" }).ClickAsync();

        var summary = page.GetByTestId("error-summary");
        await Assertions.Expect(summary).ToContainTextAsync("Enter the NHS number.");
        await Assertions.Expect(summary).ToContainTextAsync("Choose the pathway asked for.");
        Assert.EndsWith("/referrals/new", page.Url, StringComparison.Ordinal);

        var result = await page.RunAxe();
        var serious = result.Violations.Where(v => v.Impact is "serious" or "critical")
            .Select(v => $"{v.Id}: {v.Help} ({string.Join(", ", v.Nodes.Select(n => n.Html))})").ToList();
        Assert.True(serious.Count == 0, string.Join(Environment.NewLine, serious));
        await page.Context.CloseAsync();
    }

    // The NHS number looks the person up as the referrer leaves the field, and fills in what their organisation last sent.

    [Fact]
    public async Task NhsNumber_ChangedWhileTheFirstIsLookedUp_TheFirstPersonsDetailsDoNotLandOnTheForm()
    {
        var known = await KnownPersonAsync();
        var other = NewNhsNumber();
        var page = await NewFormAsync();
        var nhs = page.GetByLabel("NHS number *");
        var hold = host.Services.GetRequiredService<ReadHold>();
        try
        {
            // The known person's lookup is read and held, as a slow one is; the referrer corrects the number meanwhile.
            hold.Arm<FindPerson.Query>(read => read.NhsNumber == known.NhsNumber || read.NhsNumber == other);
            await nhs.FillAsync(known.NhsNumber!);
            await nhs.PressAsync("Tab");
            await hold.Held.WaitAsync(TimeSpan.FromSeconds(15));
            await nhs.FillAsync(other);
            await nhs.PressAsync("Tab");
            await hold.SecondStarted.WaitAsync(TimeSpan.FromSeconds(15));
        }
        finally
        {
            hold.Disarm();
        }
        await hold.Returned.WaitAsync(TimeSpan.FromSeconds(15));
        // A change the circuit handles after the held lookup's answer: once its message shows, that answer has been applied.
        await page.GetByLabel("Postcode *").FillAsync("zz");
        await page.GetByLabel("Postcode *").PressAsync("Tab");
        await Assertions.Expect(page.GetByText("Enter a UK postcode, like WM1 4QT.")).ToBeVisibleAsync();

        await Assertions.Expect(nhs).ToHaveValueAsync(NhsNumber.Format(other)!);
        await Assertions.Expect(page.GetByLabel("Family name *")).ToHaveValueAsync("");
        await Assertions.Expect(page.GetByTestId("known-person")).ToHaveCountAsync(0);
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task NhsNumber_ChangedAfterAPersonWasFilledIn_TakesTheirUnchangedDetailsAway()
    {
        var known = await KnownPersonAsync();
        var page = await NewFormAsync();
        var nhs = page.GetByLabel("NHS number *");
        await nhs.FillAsync(known.NhsNumber!);
        await nhs.PressAsync("Tab");
        await Assertions.Expect(page.GetByLabel("Family name *")).ToHaveValueAsync(known.FamilyName!);

        await nhs.FillAsync(NewNhsNumber());
        await nhs.PressAsync("Tab");

        // Someone else's name, birth date and address under this number would be a referral for the wrong person.
        await Assertions.Expect(page.GetByLabel("Family name *")).ToHaveValueAsync("");
        await Assertions.Expect(page.GetByText("Day, month, year: 14/03/1941")).ToBeVisibleAsync();
        await Assertions.Expect(page.GetByLabel("Address the person will go to *")).ToHaveValueAsync("");
        await Assertions.Expect(page.GetByTestId("known-person")).ToHaveCountAsync(0);
        await page.Context.CloseAsync();
    }

    /// <summary>Typed before the NHS number, an address is the referrer's (the person is moving): the lookup keeps it, and shows what the last referral said.</summary>
    [Fact]
    public async Task NhsNumber_LookedUpAfterAnAddressWasTyped_KeepsTheAddress_AndShowsWhatTheLastReferralSaid()
    {
        var known = await KnownPersonAsync();
        var page = await NewFormAsync();
        var address = page.GetByLabel("Address the person will go to *");
        await address.FillAsync("Flat 2, New Court, Ashbury");
        await address.PressAsync("Tab");
        var nhs = page.GetByLabel("NHS number *");
        await nhs.FillAsync(known.NhsNumber!);
        await nhs.PressAsync("Tab");

        await Assertions.Expect(page.GetByLabel("Family name *")).ToHaveValueAsync(known.FamilyName!);
        await Assertions.Expect(address).ToHaveValueAsync("Flat 2, New Court, Ashbury");
        // The old address's postcode is not put under the new address.
        await Assertions.Expect(page.GetByLabel("Postcode *")).ToHaveValueAsync("");
        await Assertions.Expect(page.GetByTestId("kept-typed")).ToContainTextAsync($"Address: your last referral said {known.AddressLine}");

        // The number was mistyped: corrected, the person it named goes, and the address typed stays.
        await nhs.FillAsync(NewNhsNumber());
        await nhs.PressAsync("Tab");
        await Assertions.Expect(page.GetByLabel("Family name *")).ToHaveValueAsync("");
        await Assertions.Expect(page.GetByText("Day, month, year: 14/03/1941")).ToBeVisibleAsync();
        await Assertions.Expect(address).ToHaveValueAsync("Flat 2, New Court, Ashbury");
        await Assertions.Expect(page.GetByTestId("known-person")).ToHaveCountAsync(0);
        await page.Context.CloseAsync();
    }

    /// <summary>
    /// The number changed after a lookup and an edit: the edit stays, what the lookup filled in unchanged goes with its person,
    /// and other names and identifiers, filled in but never shown, go whether or not anything was edited.
    /// </summary>
    [Fact]
    public async Task NhsNumber_ChangedAfterAPersonWasFilledInAndEdited_KeepsOnlyTheEdits()
    {
        var known = TestReferrals.Form("Namesworth" + Random.Shared.Next(1000, 9999).ToString(CultureInfo.InvariantCulture));
        known.Names = [new PersonName("official", null, known.FamilyName, ["Mary"], [], []), new PersonName("maiden", null, "Oldname", ["Mary"], [], [])];
        await host.SendAsAsync<SubmitReferral.Result>("referrer", new SubmitReferral.Command(known, Guid.NewGuid().ToString("N")));
        var page = await NewFormAsync();
        var nhs = page.GetByLabel("NHS number *");
        await nhs.FillAsync(known.NhsNumber!);
        await nhs.PressAsync("Tab");
        await Assertions.Expect(page.GetByLabel("Family name *")).ToHaveValueAsync(known.FamilyName!);
        await page.GetByLabel("Postcode *").FillAsync("WM1 9ZZ");
        await page.GetByLabel("Postcode *").PressAsync("Tab");
        var other = NewNhsNumber();
        await nhs.FillAsync(other);
        await nhs.PressAsync("Tab");
        await Assertions.Expect(page.GetByLabel("Family name *")).ToHaveValueAsync("");
        await Assertions.Expect(page.GetByLabel("Postcode *")).ToHaveValueAsync("WM1 9ZZ");

        await page.GetByRole(AriaRole.Button, new() { Name = "Save draft" }).ClickAsync();
        await Assertions.Expect(page).ToHaveURLAsync(DraftAddress, new() { Timeout = 15_000 });
        var draftId = long.Parse(page.Url.Split('/')[^1], CultureInfo.InvariantCulture);
        await using var scope = host.Services.CreateAsyncScope();
        await using var connection = await scope.ServiceProvider.GetRequiredService<CareCoordination.Store.Database>().OpenAsync();
        var saved = System.Text.Json.Nodes.JsonNode.Parse(await Dapper.SqlMapper.ExecuteScalarAsync<string>(connection,
            "SELECT form FROM referral_draft WHERE id = @draftId", new { draftId }) ?? "{}")!;
        Assert.Equal("WM1 9ZZ", saved["postcode"]?.GetValue<string>());
        Assert.Equal(0, saved["names"]?.AsArray().Count ?? 0);
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task NhsNumber_WhenTheLookupFails_SaysSo_TheFormCarriesOn_AndItCanBeLookedUpAgain()
    {
        var known = await KnownPersonAsync();
        var page = await NewFormAsync();
        var nhs = page.GetByLabel("NHS number *");
        var hold = host.Services.GetRequiredService<ReadHold>();
        try
        {
            hold.Fail<FindPerson.Query>(read => read.NhsNumber == known.NhsNumber, new TimeoutException("The store did not answer in time."));
            await nhs.FillAsync(known.NhsNumber!);
            await nhs.PressAsync("Tab");
            await Assertions.Expect(page.GetByTestId("lookup-problem")).ToContainTextAsync("could not be looked up just now");
        }
        finally
        {
            hold.Disarm();
        }
        // Still a live form: leaving a field still checks it.
        await page.GetByLabel("Postcode *").FillAsync("zz");
        await page.GetByLabel("Postcode *").PressAsync("Tab");
        await Assertions.Expect(page.GetByText("Enter a UK postcode, like WM1 4QT.")).ToBeVisibleAsync();

        // The store answers again: asked, the page looks the number up again.
        await page.GetByRole(AriaRole.Button, new() { Name = "Look up again" }).ClickAsync();
        await Assertions.Expect(page.GetByLabel("Family name *")).ToHaveValueAsync(known.FamilyName!);
        await Assertions.Expect(page.GetByTestId("lookup-problem")).ToHaveCountAsync(0);
        await page.Context.CloseAsync();
    }

    /// <summary>A person the referrer's organisation has referred before: the form fills their details in from that referral.</summary>
    private async Task<ReferralForm> KnownPersonAsync()
    {
        var form = TestReferrals.Form("Lookworth" + Random.Shared.Next(1000, 9999).ToString(CultureInfo.InvariantCulture));
        await host.SendAsAsync<SubmitReferral.Result>("referrer", new SubmitReferral.Command(form, Guid.NewGuid().ToString("N")));
        return form;
    }

    /// <summary>
    /// From a draft, the menu's New referral is a blank form (Blazor keeps the page, and it kept the draft, where a save wrote
    /// over it); a carer's name taken away takes its agreement and address with it; the draft, opened again, is discarded.
    /// </summary>
    [Fact]
    public async Task FromADraft_NewReferralIsBlank_AndTheDraftCanBeDiscarded()
    {
        var page = await NewFormAsync();
        var family = "Draftley" + Random.Shared.Next(1000, 9999).ToString(CultureInfo.InvariantCulture);
        await page.GetByLabel("Family name *").FillAsync(family);
        await page.GetByLabel("Carer or next of kin").FillAsync("Susan Draftley");
        await page.GetByLabel("Carer or next of kin").PressAsync("Tab");
        await page.GetByRole(AriaRole.Radio, new() { Name = "Yes, the person agrees" }).ClickAsync();
        await page.GetByLabel("Carer's e-mail address *").FillAsync("susan@example.org");
        await page.GetByLabel("Carer or next of kin").FillAsync("");
        await page.GetByLabel("Carer or next of kin").PressAsync("Tab");
        await Assertions.Expect(page.GetByTestId("carer-updates")).ToHaveCountAsync(0);
        await page.GetByRole(AriaRole.Button, new() { Name = "Save draft" }).ClickAsync();
        await Assertions.Expect(page).ToHaveURLAsync(DraftAddress, new() { Timeout = 15_000 });
        var draftId = long.Parse(page.Url.Split('/')[^1], CultureInfo.InvariantCulture);
        await using (var scope = host.Services.CreateAsyncScope())
        await using (var connection = await scope.ServiceProvider.GetRequiredService<CareCoordination.Store.Database>().OpenAsync())
        {
            var saved = System.Text.Json.Nodes.JsonNode.Parse(await Dapper.SqlMapper.ExecuteScalarAsync<string>(connection,
                "SELECT form FROM referral_draft WHERE id = @draftId", new { draftId }) ?? "{}")!;
            Assert.Null(saved["carerMayBeTold"]?.GetValue<bool?>());
            Assert.Null(saved["carerEmail"]?.GetValue<string?>());
        }

        await page.GetByRole(AriaRole.Link, new() { Name = "New referral" }).ClickAsync();
        await Assertions.Expect(page).ToHaveURLAsync(new Regex("/referrals/new$"), new() { Timeout = 15_000 });
        await Assertions.Expect(page.GetByLabel("Family name *")).ToHaveValueAsync("");
        await Assertions.Expect(page.GetByRole(AriaRole.Button, new() { Name = "Discard draft" })).ToHaveCountAsync(0);

        await page.GotoAsync($"/referrals/drafts/{draftId}");
        await BrowserHost.WaitForCircuitAsync(page);
        await Assertions.Expect(page.GetByLabel("Family name *")).ToHaveValueAsync(family);
        await page.GetByRole(AriaRole.Button, new() { Name = "Discard draft" }).ClickAsync();
        await page.GetByTestId("discard-confirm").GetByRole(AriaRole.Button, new() { Name = "Discard it" }).ClickAsync();

        await Assertions.Expect(page.GetByTestId("draft-discarded")).ToContainTextAsync("The draft was discarded");
        await Assertions.Expect(page.Locator("main")).Not.ToContainTextAsync(family);
        await page.Context.CloseAsync();
    }

    /// <summary>
    /// A store that does not answer as the referrer saves or sends: the form and what they typed stay, and pressing again
    /// works. Here the save reached the store after all (its answer was lost): sending from the page goes over it, as the
    /// page's own save, rather than being refused as if a colleague had saved since.
    /// </summary>
    [Fact]
    public async Task SavingAndSending_WhileTheStoreDoesNotAnswer_KeepTheFormAsTyped_AndWorkWhenPressedAgain()
    {
        var (page, _) = await DraftOpenAsync("Outageby");
        await page.GetByLabel("Ward *").FillAsync("Ward 9, typed and not yet saved");
        await page.GetByLabel("Ward *").PressAsync("Tab");

        var hold = host.Services.GetRequiredService<ReadHold>();
        try
        {
            await SaveWhoseAnswerIsLostAsync(page);

            hold.Fail<SubmitReferral.Command>(_ => true, new TimeoutException("The store did not answer in time."));
            await page.GetByRole(AriaRole.Button, new() { Name = "Send referral" }).ClickAsync();
            await Assertions.Expect(page.GetByTestId("form-problem")).ToContainTextAsync("The referral could not be sent just now");
            await Assertions.Expect(page.GetByLabel("Ward *")).ToHaveValueAsync("Ward 9, typed and not yet saved");
            await Assertions.Expect(page.GetByTestId("page-failed")).ToHaveCountAsync(0);
        }
        finally
        {
            hold.Disarm();
        }

        await page.GetByRole(AriaRole.Button, new() { Name = "Send referral" }).ClickAsync();
        await Assertions.Expect(page.GetByTestId("sent-confirmation")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("main")).ToContainTextAsync("Ward 9, typed and not yet saved");
        await page.Context.CloseAsync();
    }

    /// <summary>
    /// A new draft whose first save landed with its answer lost, saved again with more typed: one draft, the page's, at its
    /// address. Its next save's answer lost too, Discard goes over that save (the page's own), not refused as a colleague's.
    /// </summary>
    [Fact]
    public async Task NewDraft_SavedAgainAfterALostAnswer_IsOneDraft_AndCanBeDiscarded()
    {
        var family = "Lostanswer" + Random.Shared.Next(1000, 9999).ToString(CultureInfo.InvariantCulture);
        var page = await NewFormAsync();
        await page.GetByLabel("Family name *").FillAsync(family);
        await page.GetByLabel("Family name *").PressAsync("Tab");
        var hold = host.Services.GetRequiredService<ReadHold>();
        SaveDraft.Result landed;
        try
        {
            landed = await SaveWhoseAnswerIsLostAsync(page);
            await page.GetByLabel("Given name *").FillAsync("Hilda");
            await page.GetByLabel("Given name *").PressAsync("Tab");
            await page.GetByRole(AriaRole.Button, new() { Name = "Save draft" }).ClickAsync();
            await Assertions.Expect(page).ToHaveURLAsync(new Regex($"/referrals/drafts/{landed.DraftId}$"), new() { Timeout = 15_000 });
            await Assertions.Expect(page.GetByTestId("draft-saved")).ToBeVisibleAsync();
            var again = await host.SendAsAsync<OpenDraft.Result>("referrer", new OpenDraft.Query(landed.DraftId));
            Assert.Equal((2, "Hilda", family), (again.Version, again.Form.GivenName, again.Form.FamilyName));
            await using (var scope = host.Services.CreateAsyncScope())
            await using (var connection = await scope.ServiceProvider.GetRequiredService<CareCoordination.Store.Database>().OpenAsync())
            {
                Assert.Equal(1, await Dapper.SqlMapper.ExecuteScalarAsync<long>(connection,
                    "SELECT COUNT(*) FROM referral_draft WHERE person_label LIKE @named", new { named = "%" + family }));
            }

            await SaveWhoseAnswerIsLostAsync(page);
        }
        finally
        {
            hold.Disarm();
        }
        await page.GetByRole(AriaRole.Button, new() { Name = "Discard draft" }).ClickAsync();
        await page.GetByTestId("discard-confirm").GetByRole(AriaRole.Button, new() { Name = "Discard it" }).ClickAsync();
        await Assertions.Expect(page.GetByTestId("draft-discarded")).ToContainTextAsync("The draft was discarded");
        await Assert.ThrowsAsync<CareCoordination.Pipeline.NotFound>(() => host.SendAsAsync<OpenDraft.Result>("referrer", new OpenDraft.Query(landed.DraftId)));
        await page.Context.CloseAsync();
    }

    /// <summary>
    /// The menu's New referral pressed while a draft is saving: the new form stays new when the save answers, rather than
    /// being taken back to the draft saved (whose Discard it showed, and whose next save it would have written the blank form over).
    /// </summary>
    [Fact]
    public async Task NewReferral_PressedWhileADraftSaves_StaysANewForm_WhenTheSaveAnswers()
    {
        var (page, draft) = await DraftOpenAsync("Movedon");
        var save = page.GetByRole(AriaRole.Button, new() { Name = "Save draft" });

        var hold = host.Services.GetRequiredService<ReadHold>();
        try
        {
            hold.Arm<SaveDraft.Command>(_ => true);
            await save.ClickAsync();
            await hold.Held.WaitAsync(TimeSpan.FromSeconds(15));
            await page.GetByRole(AriaRole.Link, new() { Name = "New referral" }).ClickAsync();
            await Assertions.Expect(page).ToHaveURLAsync(new Regex("/referrals/new$"), new() { Timeout = 15_000 });
            await Assertions.Expect(page.GetByLabel("Family name *")).ToHaveValueAsync("");
            await Assertions.Expect(save).ToBeDisabledAsync();
        }
        finally
        {
            hold.Disarm();
        }
        // The page has had the save's answer once Save draft is free again (the answer comes after the save's commit): what
        // it did with it is on the page by then.
        await Assertions.Expect(save).ToBeEnabledAsync(new() { Timeout = 15_000 });

        Assert.Equal(2, (await host.SendAsAsync<OpenDraft.Result>("referrer", new OpenDraft.Query(draft.DraftId))).Version);
        await Assertions.Expect(page.GetByTestId("draft-saved")).ToHaveCountAsync(0);
        await Assertions.Expect(page.GetByRole(AriaRole.Button, new() { Name = "Discard draft" })).ToHaveCountAsync(0);
        await Assertions.Expect(page).ToHaveURLAsync(new Regex("/referrals/new$"));
        await page.Context.CloseAsync();
    }

    /// <summary>
    /// Presses Save draft with the store failing to answer, then lands that very save in the store, as a save does whose
    /// answer is lost on its way back: the page says it could not save, and has heard nothing of the draft's new version.
    /// </summary>
    private async Task<SaveDraft.Result> SaveWhoseAnswerIsLostAsync(IPage page)
    {
        var hold = host.Services.GetRequiredService<ReadHold>();
        SaveDraft.Command? sent = null;
        hold.Fail<SaveDraft.Command>(command => (sent = command) is not null, new TimeoutException("The store did not answer in time."));
        await page.GetByRole(AriaRole.Button, new() { Name = "Save draft" }).ClickAsync();
        await Assertions.Expect(page.GetByTestId("form-problem")).ToContainTextAsync("The draft could not be saved just now");
        hold.Disarm();
        return await host.SendAsAsync<SaveDraft.Result>("referrer", sent ?? throw new InvalidOperationException("The page sent no save."));
    }

    // Saving a new draft moves the page to its address in the browser (history.replaceState). The URL is polled rather than
    // its navigation awaited: Playwright's WaitForURL checks the URL, then listens, and a same-document navigation that lands
    // between the two is never heard (seen under the full run's load, with the page already at the draft's address).
    private static readonly Regex DraftAddress = new("/referrals/drafts/[0-9]+$");

    /// <summary>A whole referral's draft, saved for the referrer, open on their form page.</summary>
    private async Task<(IPage Page, SaveDraft.Result Draft)> DraftOpenAsync(string familyPrefix)
    {
        var family = familyPrefix + Random.Shared.Next(1000, 9999).ToString(CultureInfo.InvariantCulture);
        var draft = await host.SendAsAsync<SaveDraft.Result>("referrer", new SaveDraft.Command(null, null, TestReferrals.Form(family)));
        var page = await host.NewPageAsync();
        await host.SignInAsync(page, "referrer");
        await page.GotoAsync($"/referrals/drafts/{draft.DraftId}");
        await BrowserHost.WaitForCircuitAsync(page);
        await Assertions.Expect(page.GetByLabel("Family name *")).ToHaveValueAsync(family);
        return (page, draft);
    }

    private async Task<IPage> NewFormAsync()
    {
        var page = await host.NewPageAsync();
        await host.SignInAsync(page, "referrer");
        await page.GotoAsync("/referrals/new");
        await BrowserHost.WaitForCircuitAsync(page);
        return page;
    }
}
