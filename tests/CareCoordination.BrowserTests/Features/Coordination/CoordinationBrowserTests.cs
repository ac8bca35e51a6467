using System.Globalization;
using CareCoordination.BrowserTests.Support;
using static CareCoordination.BrowserTests.Support.Accessibility;
using CareCoordination.Domain;
using CareCoordination.Features.Coordination;
using CareCoordination.Features.Referrals;
using CareCoordination.Store;
using Dapper;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace CareCoordination.BrowserTests.Features.Coordination;

public sealed class CoordinationBrowserTests(BrowserHost host) : IClassFixture<BrowserHost>
{
    [Fact]
    public async Task ANewReferral_AppearsInTheQueueLive_TheCoordinatorTakesAndAcceptsIt_AndTheReferrerSeesTheDecisionLive()
    {
        var coordinator = await host.NewPageAsync();
        await host.SignInAsync(coordinator, "coordinator");
        await coordinator.GetByRole(AriaRole.Link, new() { Name = "Coordination queue" }).ClickAsync();
        await Assertions.Expect(coordinator.GetByTestId("queue")).ToHaveAttributeAsync("data-live", "yes");
        await Assertions.Expect(coordinator.GetByTestId("live-badge").GetByText("Live", new() { Exact = true })).ToBeVisibleAsync();

        var family = "Queueworth" + Random.Shared.Next(1000, 9999).ToString(CultureInfo.InvariantCulture);
        var sent = await host.SendAsAsync<SubmitReferral.Result>("referrer", new SubmitReferral.Command(TestReferrals.Form(family), Guid.NewGuid().ToString("N")));

        // Within a second, with no reload.
        var row = coordinator.GetByRole(AriaRole.Row).Filter(new() { HasText = family });
        await Assertions.Expect(row).ToBeVisibleAsync(new() { Timeout = 1_000 });
        await Assertions.Expect(row.GetByTestId("rag")).ToHaveTextAsync("Green");

        // The referrer follows the referral on its own page.
        var referrer = await host.NewPageAsync();
        await host.SignInAsync(referrer, "referrer");
        await referrer.GotoAsync($"/referrals/{sent.ReferralId}");
        await BrowserHost.WaitForCircuitAsync(referrer);
        await Assertions.Expect(referrer.GetByTestId("status")).ToHaveTextAsync("Waiting for triage");

        await row.GetByRole(AriaRole.Button, new() { Name = $"Take Mary {family}" }).ClickAsync();
        await Assertions.Expect(coordinator.GetByTestId("holder")).ToHaveTextAsync("Held by Tom Okafor.");
        await Assertions.Expect(referrer.GetByTestId("status")).ToHaveTextAsync("Being triaged");

        await coordinator.Locator("#accept-service").ClickAsync();
        await coordinator.Locator(".rz-dropdown-item", new() { HasText = "Home First Reablement - North" }).ClickAsync();
        await Assertions.Expect(coordinator.GetByTestId("service-capacity")).ToContainTextAsync("slots free today");
        await coordinator.GetByTestId("accept").GetByRole(AriaRole.Button, new() { Name = "Accept" }).ClickAsync();
        await Assertions.Expect(coordinator.GetByTestId("action-done")).ToContainTextAsync("Accepted");

        // The referrer's page, untouched since it opened, shows the decision.
        await Assertions.Expect(referrer.GetByTestId("status")).ToHaveTextAsync("Accepted");
        await Assertions.Expect(referrer.GetByTestId("decision")).ToContainTextAsync("Accepted: Reablement");

        // And the referral has left the coordinator's queue.
        await coordinator.GetByRole(AriaRole.Link, new() { Name = "Back to the queue" }).ClickAsync();
        await Assertions.Expect(coordinator.GetByTestId("queue")).ToHaveAttributeAsync("data-live", "yes");
        // The queue draws its first 50 rows, and this class's other tests fill it: shown whole, a row left behind cannot hide below them.
        var rows = coordinator.GetByTestId("queue").Locator("tbody tr");
        var total = int.Parse(await coordinator.GetByTestId("count-all").Locator("strong").InnerTextAsync(), CultureInfo.InvariantCulture);
        for (var shown = 50; shown < total; shown += 50)
        {
            await Assertions.Expect(rows).ToHaveCountAsync(shown);
            await coordinator.GetByRole(AriaRole.Button, new() { Name = $"Show {Math.Min(50, total - shown)} more" }).ClickAsync();
        }
        await Assertions.Expect(rows).ToHaveCountAsync(Math.Max(total, 1));
        await Assertions.Expect(coordinator.GetByRole(AriaRole.Row).Filter(new() { HasText = family })).ToHaveCountAsync(0);
    }

    // Regression: the queue drew every row afresh on each change (its grid keyed rows by a record whose clock moves on every
    // load), so a Take click that reached the server just after a change named a button Blazor had disposed, and was dropped.
    [Fact]
    public async Task Take_WhileABurstOfReferralsArrives_TakesWithOneClick_AndTheRowIsNeverRedrawn()
    {
        var coordinator = await host.NewPageAsync();
        await host.SignInAsync(coordinator, "coordinator");
        await coordinator.GotoAsync("/coordination");
        await BrowserHost.WaitForCircuitAsync(coordinator);
        await Assertions.Expect(coordinator.GetByTestId("queue")).ToHaveAttributeAsync("data-live", "yes");

        var family = "Burstworth" + Random.Shared.Next(1000, 9999).ToString(CultureInfo.InvariantCulture);
        await host.SendAsAsync<SubmitReferral.Result>("referrer", new SubmitReferral.Command(TestReferrals.Form(family, "immediate"), Guid.NewGuid().ToString("N")));
        var take = coordinator.GetByRole(AriaRole.Row).Filter(new() { HasText = family }).GetByRole(AriaRole.Button, new() { Name = $"Take Mary {family}" });
        await Assertions.Expect(take).ToBeVisibleAsync();
        // A mark on the button's element itself: a row drawn afresh comes back without it.
        await take.EvaluateAsync("button => { button.ccMark = true; }");

        // Up to twenty referrals a second (a county sends about 130 a day), each as urgent as Mary's and sent after hers, so each
        // lands just under her row: the rows around it change while it stays where it is.
        var burstFamily = "Burstling" + Random.Shared.Next(1000, 9999).ToString(CultureInfo.InvariantCulture);
        using var stop = new CancellationTokenSource();
        var burst = Task.Run(async () =>
        {
            for (var sent = 0; !stop.IsCancellationRequested && sent < 200; sent++)
            {
                await host.SendAsAsync<SubmitReferral.Result>("referrer",
                    new SubmitReferral.Command(TestReferrals.Form($"{burstFamily}x{sent}", "immediate"), Guid.NewGuid().ToString("N")));
                await Task.Delay(50, CancellationToken.None);
            }
        });
        try
        {
            await Assertions.Expect(coordinator.GetByRole(AriaRole.Row).Filter(new() { HasText = burstFamily }).Nth(4)).ToBeVisibleAsync();
            Assert.True(await take.EvaluateAsync<bool>("button => button.ccMark === true"), "The referral's row was drawn afresh as others arrived.");

            await take.ClickAsync();
            await Assertions.Expect(coordinator.GetByTestId("holder")).ToHaveTextAsync("Held by Tom Okafor.");
            Assert.False(burst.IsCompleted, "Referrals were still arriving while the coordinator clicked.");
        }
        finally
        {
            await stop.CancelAsync();
            await burst;
            await coordinator.Context.CloseAsync();
        }
    }

    [Fact]
    public async Task ALongQueue_ShowsItsFirstFiftyRows_AndMoreOnRequest()
    {
        var family = "Longworth" + Random.Shared.Next(1000, 9999).ToString(CultureInfo.InvariantCulture);
        for (var i = 0; i < 55; i++)
        {
            await host.SendAsAsync<SubmitReferral.Result>("referrer", new SubmitReferral.Command(TestReferrals.Form($"{family}x{i}", "routine"), Guid.NewGuid().ToString("N")));
        }
        var page = await host.NewPageAsync();
        await host.SignInAsync(page, "coordinator");
        await page.GotoAsync("/coordination");
        await BrowserHost.WaitForCircuitAsync(page);
        await Assertions.Expect(page.GetByTestId("queue")).ToHaveAttributeAsync("data-live", "yes");
        var total = int.Parse(await page.GetByTestId("count-all").Locator("strong").InnerTextAsync(), CultureInfo.InvariantCulture);
        var rows = page.GetByTestId("queue").Locator("tbody tr");

        await Assertions.Expect(page.GetByTestId("rows-shown")).ToHaveTextAsync($"Showing the first 50 of {total}.");
        await Assertions.Expect(rows).ToHaveCountAsync(50);
        await page.GetByRole(AriaRole.Button, new() { Name = $"Show {Math.Min(50, total - 50)} more" }).ClickAsync();
        await Assertions.Expect(rows).ToHaveCountAsync(Math.Min(100, total));
        await page.Context.CloseAsync();
    }

    [Fact]
    public async Task AnAmberCautionedService_TheCoordinatorAsks_AManagerApprovesOnApprovals_AndTheReferralPageShowsItLive()
    {
        var family = "Amberley" + Random.Shared.Next(1000, 9999).ToString(CultureInfo.InvariantCulture);
        var sent = await host.SendAsAsync<SubmitReferral.Result>("referrer", new SubmitReferral.Command(TestReferrals.Form(family), Guid.NewGuid().ToString("N")));
        await using (var scope = host.Services.CreateAsyncScope())
        {
            await using var connection = await scope.ServiceProvider.GetRequiredService<Database>().OpenAsync();
            await connection.ExecuteAsync(
                "UPDATE organisation SET caution = 'amber', caution_note = 'Missed calls under review.' WHERE name = 'Carewell Home Care Ltd'");
            var taskId = await connection.ExecuteScalarAsync<long>("SELECT id FROM triage_task WHERE referral_id = @ReferralId", new { sent.ReferralId });
            await host.SendAsAsync<Mediator.Unit>("coordinator", new TakeReferral.Command(taskId));
        }
        var coordinator = await host.NewPageAsync();
        await host.SignInAsync(coordinator, "coordinator");
        await coordinator.GotoAsync($"/coordination/referrals/{sent.ReferralId}");
        await BrowserHost.WaitForCircuitAsync(coordinator);
        await coordinator.Locator("#accept-service").ClickAsync();
        await coordinator.Locator(".rz-dropdown-item", new() { HasText = "Carewell Home Care - South" }).ClickAsync();

        var approval = coordinator.GetByTestId("accept-approval");
        await approval.GetByLabel("Why Carewell Home Care Ltd, and what the risk discussion covered").FillAsync("Only provider covering her village; family visit daily.");
        await approval.GetByRole(AriaRole.Button, new() { Name = "Ask a manager to approve" }).ClickAsync();
        await Assertions.Expect(approval).ToContainTextAsync("waiting for their decision");
        await AssertNoSeriousFaultsAsync(coordinator);

        var manager = await host.NewPageAsync();
        await host.SignInAsync(manager, "manager");
        await manager.GetByRole(AriaRole.Link, new() { Name = "Approvals" }).ClickAsync();
        var asked = manager.GetByTestId("waiting-approval").Filter(new() { HasText = family });
        await Assertions.Expect(asked).ToContainTextAsync("Only provider covering her village");
        await AssertNoSeriousFaultsAsync(manager);
        await asked.GetByLabel("What was agreed, or why not").FillAsync("Agreed: check calls twice a week.");
        await asked.GetByRole(AriaRole.Button, new() { Name = "Approve" }).ClickAsync();
        await Assertions.Expect(manager.GetByTestId("action-done")).ToContainTextAsync("Approved");
        await Assertions.Expect(manager.GetByTestId("decided-approvals")).ToContainTextAsync(family);

        // The coordinator's page, untouched, shows who approved; then the acceptance goes through.
        await Assertions.Expect(approval).ToContainTextAsync("Approved by David Trelawney");
        await coordinator.GetByLabel("Hours a day").FillAsync("2");
        await coordinator.GetByTestId("accept").GetByRole(AriaRole.Button, new() { Name = "Accept" }).ClickAsync();
        await Assertions.Expect(coordinator.GetByTestId("action-done")).ToContainTextAsync("Accepted");
        await Assertions.Expect(coordinator.GetByTestId("timeline")).ToContainTextAsync("Approved by a manager");
    }

    /// <summary>A partner's referral that lacks answers the form asks for arrives in the live queue marked, and is asked about in one click.</summary>
    [Fact]
    public async Task AReferralSentByFhirWithMissingItems_ShowsInformationNeededLive_AndTheCoordinatorAsksInOneClick()
    {
        var coordinator = await host.NewPageAsync();
        await host.SignInAsync(coordinator, "coordinator");
        await coordinator.GotoAsync("/coordination");
        await BrowserHost.WaitForCircuitAsync(coordinator);
        await Assertions.Expect(coordinator.GetByTestId("queue")).ToHaveAttributeAsync("data-live", "yes");

        var family = "Fhirworth" + Random.Shared.Next(1000, 9999).ToString(CultureInfo.InvariantCulture);
        var nhs = TestReferrals.Form(family).NhsNumber!;
        var expected = LondonTime.Today(TimeProvider.System).AddDays(2).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        // UK Core shaped: a Consent and a Flag beside it, and none of our extensions: no pathway, ward, optimised date, needs or wishes.
        // Immediate and with a safeguarding flag, so that it is among the first fifty rows whatever other tests have queued.
        var referral = $$$"""
            {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
             "contained": [
               {"resourceType": "Patient", "id": "p", "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "{{{nhs}}}"}],
                "name": [{"use": "official", "family": "{{{family}}}", "given": ["Mary"]}], "gender": "female", "birthDate": "1940-01-09",
                "address": [{"line": ["2 Quay Street"], "postalCode": "WM1 2AB"}]},
               {"resourceType": "Consent", "id": "c", "status": "active", "scope": {"text": "privacy"}, "category": [{"text": "Direct care"}],
                "patient": {"reference": "#p"}, "policyRule": {"text": "Implied consent for direct care"}},
               {"resourceType": "Flag", "id": "f", "status": "active", "code": {"text": "Safeguarding concern"}, "subject": {"reference": "#p"}}],
             "priority": "stat", "subject": {"reference": "#p"}, "supportingInfo": [{"reference": "#c"}, {"reference": "#f"}], "occurrenceDateTime": "{{{expected}}}",
             "note": [{"text": "Sent from the ward's EPR."}]}
            """;
        using var partner = await host.PartnerClientAsync();
        var created = await partner.PostAsync("/fhir/ServiceRequest", new StringContent(referral, System.Text.Encoding.UTF8, "application/fhir+json"));
        Assert.Equal(System.Net.HttpStatusCode.Created, created.StatusCode);

        var row = coordinator.GetByRole(AriaRole.Row).Filter(new() { HasText = family });
        await Assertions.Expect(row.GetByTestId("information-needed")).ToBeVisibleAsync();
        await Assertions.Expect(row.GetByTestId("information-needed-list")).ToHaveTextAsync(
            "Not sent: the pathway asked for, the ward the person is on, the medically optimised date, the needs to support and what matters to the person");
        await Assertions.Expect(row).ToContainTextAsync("Pathway not stated");

        await row.GetByRole(AriaRole.Button, new() { Name = $"Take Mary {family}" }).ClickAsync();
        await Assertions.Expect(coordinator.GetByTestId("information-needed")).ToContainTextAsync("the pathway asked for");
        await coordinator.GetByTestId("ask-information-needed").ClickAsync();
        await Assertions.Expect(coordinator.GetByTestId("action-done")).ToContainTextAsync("Question sent");
        await Assertions.Expect(coordinator.GetByTestId("status")).ToHaveTextAsync("Needs your answer");
    }

    [Fact]
    public async Task TheQueue_AndAReferralBeingWorked_PassAxe()
    {
        var page = await host.NewPageAsync();
        await host.SignInAsync(page, "coordinator");
        await page.GotoAsync("/coordination");
        await BrowserHost.WaitForCircuitAsync(page);
        await Assertions.Expect(page.GetByTestId("queue")).ToHaveAttributeAsync("data-live", "yes");
        await AssertNoSeriousFaultsAsync(page);

        var family = "Axeworth" + Random.Shared.Next(1000, 9999).ToString(CultureInfo.InvariantCulture);
        await host.SendAsAsync<SubmitReferral.Result>("referrer", new SubmitReferral.Command(TestReferrals.Form(family), Guid.NewGuid().ToString("N")));
        var row = page.GetByRole(AriaRole.Row).Filter(new() { HasText = family });
        await row.GetByRole(AriaRole.Button, new() { Name = $"Take Mary {family}" }).ClickAsync();
        await Assertions.Expect(page.GetByTestId("accept")).ToBeVisibleAsync();
        await AssertNoSeriousFaultsAsync(page);
    }

    // A live page whose reload failed used to go on showing its older rows under "Live" until the next change came.
    [Fact]
    public async Task AQueueReloadThatFails_SaysTheQueueIsNotUpToDate_AndLoadAgainBringsItUpToDate()
    {
        var page = await host.NewPageAsync();
        await host.SignInAsync(page, "coordinator");
        await page.GotoAsync("/coordination");
        await BrowserHost.WaitForCircuitAsync(page);
        await Assertions.Expect(page.GetByTestId("queue")).ToHaveAttributeAsync("data-live", "yes");
        await Assertions.Expect(page.GetByTestId("live-badge").GetByText("Live", new() { Exact = true })).ToBeVisibleAsync();

        var family = "Staleworth" + Random.Shared.Next(1000, 9999).ToString(CultureInfo.InvariantCulture);
        var row = page.GetByRole(AriaRole.Row).Filter(new() { HasText = family });
        var hold = host.Services.GetRequiredService<ReadHold>();
        try
        {
            hold.Fail<CoordinationQueue.Query>(_ => true, new TimeoutException("The store did not answer in time."));
            await host.SendAsAsync<SubmitReferral.Result>("referrer", new SubmitReferral.Command(TestReferrals.Form(family), Guid.NewGuid().ToString("N")));
            await Assertions.Expect(page.GetByTestId("not-up-to-date")).ToBeVisibleAsync();
            await Assertions.Expect(page.GetByTestId("live-badge")).Not.ToContainTextAsync("Live");
            await Assertions.Expect(row).ToHaveCountAsync(0);
            Assert.Contains(host.Logs.GetSnapshot(), log => log.Level == Microsoft.Extensions.Logging.LogLevel.Error
                && log.Exception?.Message == "The store did not answer in time." && log.Category == typeof(CareCoordination.Components.LiveBadge).FullName);
            await AssertNoSeriousFaultsAsync(page);
        }
        finally
        {
            hold.Disarm();
        }

        await page.GetByTestId("load-again").ClickAsync();
        await Assertions.Expect(row).ToBeVisibleAsync();
        await Assertions.Expect(page.GetByTestId("live-badge").GetByText("Live", new() { Exact = true })).ToBeVisibleAsync();
        await Assertions.Expect(page.GetByTestId("not-up-to-date")).ToHaveCountAsync(0);
    }
}
