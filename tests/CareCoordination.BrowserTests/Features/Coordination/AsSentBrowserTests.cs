using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using CareCoordination.BrowserTests.Support;
using CareCoordination.Domain;
using Microsoft.Playwright;

namespace CareCoordination.BrowserTests.Features.Coordination;

/// <summary>A referral a partner's system sent over FHIR with an answer missing, as the coordination centre meets it: in the live queue marked information needed, then "as sent".</summary>
public sealed class AsSentBrowserTests(BrowserHost host) : IClassFixture<BrowserHost>
{
    [Fact]
    public async Task AReferralSentByFhirWithoutWhatMatters_ReachesTheLiveQueueMarkedInformationNeeded_AndItsAsSentViewShowsTheOriginalMessage()
    {
        var coordinator = await host.NewPageAsync();
        await host.SignInAsync(coordinator, "coordinator");
        await coordinator.GotoAsync("/coordination");
        await BrowserHost.WaitForCircuitAsync(coordinator);
        await Assertions.Expect(coordinator.GetByTestId("queue")).ToHaveAttributeAsync("data-live", "yes");

        var family = "Assentworth" + Random.Shared.Next(1000, 9999).ToString(CultureInfo.InvariantCulture);
        var distinctive = $"Sent by the ward's EPR {Guid.NewGuid():N}: <script>alert('not run')</script> café";
        var (bundleId, referralId) = await SendByFhirAsync(family, distinctive);

        // The queue is live: the referral appears without a reload, named with every given name.
        var row = coordinator.GetByRole(AriaRole.Row).Filter(new() { HasText = family });
        await Assertions.Expect(row).ToBeVisibleAsync();
        await Assertions.Expect(row).ToContainTextAsync($"Morwenna Jenifer {family}");
        // What matters to the person was left out of the message: taken in all the same, and marked for the coordinator.
        await Assertions.Expect(row.GetByTestId("information-needed-list")).ToHaveTextAsync("Not sent: what matters to the person");

        await row.GetByRole(AriaRole.Link, new() { Name = $"Morwenna Jenifer {family}" }).ClickAsync();
        await Assertions.Expect(coordinator).ToHaveURLAsync(new Regex($"/coordination/referrals/{referralId}$"), new() { Timeout = 15_000 });
        await Assertions.Expect(coordinator.GetByRole(AriaRole.Heading, new() { Level = 1 })).ToContainTextAsync($"Morwenna Jenifer {family}, referral {referralId}");

        await coordinator.GetByTestId("as-sent-link").ClickAsync();
        await Assertions.Expect(coordinator).ToHaveURLAsync(new Regex($"/coordination/referrals/{referralId}/as-sent$"), new() { Timeout = 15_000 });
        var message = coordinator.GetByTestId("as-sent-message");
        await Assertions.Expect(message).ToHaveCountAsync(1);
        // The original text, shown as text: the script in it is characters on the page, never an element.
        await Assertions.Expect(message.GetByTestId("as-sent-body")).ToContainTextAsync(distinctive);
        await Assertions.Expect(message.GetByTestId("as-sent-bundle-id")).ToHaveTextAsync(bundleId);
        await Assertions.Expect(message.GetByTestId("as-sent-sender")).ToContainTextAsync("demo-acute-trust");
        await Assertions.Expect(coordinator.Locator("[data-testid=as-sent-body] script")).ToHaveCountAsync(0);

        await coordinator.GetByTestId("back-to-referral").ClickAsync();
        await Assertions.Expect(coordinator.GetByTestId("status")).ToBeVisibleAsync();
    }

    /// <summary>A BaRS-style $process-message as docs/examples has it, for a new person, from the demo partner client.</summary>
    private async Task<(string BundleId, long ReferralId)> SendByFhirAsync(string family, string note)
    {
        var today = LondonTime.Today(TimeProvider.System).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
        var json = File.ReadAllText(Path.Combine(RepositoryRoot(), "docs", "examples", "referral-message.json"))
            .Replace("9434765919", TestReferrals.NewNhsNumber("9997"), StringComparison.Ordinal)
            .Replace("R-1002", "B-" + Guid.NewGuid().ToString("N"), StringComparison.Ordinal)
            .Replace("2026-11-20", today, StringComparison.Ordinal);
        var message = JsonNode.Parse(json)!.AsObject();
        var bundleId = Guid.NewGuid().ToString();
        message["id"] = bundleId;
        foreach (var entry in message["entry"]!.AsArray())
        {
            var resource = entry!["resource"]!;
            switch ((string?)resource["resourceType"])
            {
                case "ServiceRequest":
                    resource["note"] = new JsonArray(new JsonObject { ["text"] = note });
                    var extensions = resource["extension"]!.AsArray();
                    var whatMatters = extensions.Single(e => ((string?)e!["url"])!.EndsWith("/what-matters", StringComparison.Ordinal));
                    extensions.Remove(whatMatters);
                    break;
                case "Patient":
                    resource["name"] = new JsonArray(new JsonObject { ["use"] = "official", ["family"] = family, ["given"] = new JsonArray("Morwenna", "Jenifer") });
                    break;
            }
        }

        using var http = await host.PartnerClientAsync();
        var body = new StringContent(message.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }),
            Encoding.UTF8, "application/fhir+json");
        using var response = await http.PostAsync("/fhir/$process-message", body);
        var reply = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, reply);
        var focus = JsonNode.Parse(reply)!["entry"]![0]!["resource"]!["focus"]![0]!["reference"]!.GetValue<string>();
        return (bundleId, long.Parse(focus["ServiceRequest/".Length..], CultureInfo.InvariantCulture));
    }

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "CareCoordination.sln")))
            {
                return directory.FullName;
            }
        }
        throw new InvalidOperationException("The tests run outside the repository: CareCoordination.sln not found above " + AppContext.BaseDirectory);
    }
}
