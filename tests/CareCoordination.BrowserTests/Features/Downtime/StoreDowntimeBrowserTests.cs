using System.Text.RegularExpressions;
using CareCoordination.BrowserTests.Support;
using CareCoordination.Features.Referrals;
using CsvHelper;
using Microsoft.Playwright;
using static CareCoordination.BrowserTests.Support.Accessibility;

namespace CareCoordination.BrowserTests.Features.Downtime;

/// <summary>
/// Downtime mode when the store fails and the node does not (issue 16, point 8): the browser still reaches the node, so
/// only the node can tell the page that nothing on it can change.
/// </summary>
public sealed class StoreDowntimeBrowserTests(PostgresBrowserHost host) : IClassFixture<PostgresBrowserHost>
{
    [Fact]
    public async Task TheStoreGoes_AnOpenQueueSaysOfflineSince_KeepsItsFiguresAndDownloadsThem_AndIsLiveAgainWhenItIsBack()
    {
        var family = "StoreBefore" + Random.Shared.Next(1000, 9999).ToString(System.Globalization.CultureInfo.InvariantCulture);
        await host.SendAsAsync<SubmitReferral.Result>("referrer", new SubmitReferral.Command(TestReferrals.Form(family), Guid.NewGuid().ToString("N")));
        var queue = await host.NewPageAsync();
        await host.SignInAsync(queue, "coordinator");
        await queue.GotoAsync("/coordination");
        await BrowserHost.WaitForCircuitAsync(queue);
        await Assertions.Expect(queue.GetByTestId("queue")).ToContainTextAsync(family);
        var waiting = await queue.GetByTestId("count-waiting").Locator("strong").InnerTextAsync();
        var asOf = await queue.GetByTestId("as-of").InnerTextAsync();
        await Assertions.Expect(queue.GetByTestId("store-offline")).ToHaveCountAsync(0);

        await host.CutTheStoreAsync();
        try
        {
            var note = queue.GetByTestId("store-offline");
            await Assertions.Expect(note).ToBeVisibleAsync();
            await Assertions.Expect(note).ToContainTextAsync(new Regex(@"^Offline since \d\d:\d\d\.\s+The system cannot reach its store\."));
            await Assertions.Expect(note).ToContainTextAsync(asOf.Replace("As of change", "change", StringComparison.Ordinal));
            // The browser still has its node: this is the node's own note, not the browser's.
            await Assertions.Expect(queue.GetByTestId("offline")).ToBeHiddenAsync();
            await Assertions.Expect(queue.Locator("[data-circuit]")).ToHaveAttributeAsync("data-circuit", "live");
            await Assertions.Expect(queue.GetByTestId("queue")).ToContainTextAsync(family);
            Assert.Equal(waiting, await queue.GetByTestId("count-waiting").Locator("strong").InnerTextAsync());
            await AssertNoSeriousFaultsAsync(queue);

            var since = Regex.Match(await note.InnerTextAsync(), @"Offline since (\d\d:\d\d)").Groups[1].Value;
            var download = await queue.RunAndWaitForDownloadAsync(() => queue.GetByRole(AriaRole.Button, new() { Name = "Download CSV" }).ClickAsync());
            var records = new List<string[]>();
            using (var reader = CsvReader.Create(await File.ReadAllBytesAsync((await download.PathAsync())!), new CsvReaderOptions { HasHeader = false }))
            {
                while (reader.Read())
                {
                    records.Add([.. Enumerable.Range(0, reader.FieldCount).Select(reader.GetString)]);
                }
            }
            Assert.Contains(records, r => r is ["Offline since", var at] && at == since);
            Assert.Contains(records, r => r.Any(cell => cell.Contains(family, StringComparison.Ordinal)));
        }
        finally
        {
            await host.RestoreTheStoreAsync();
        }

        await Assertions.Expect(queue.GetByTestId("store-offline")).ToHaveCountAsync(0, new() { Timeout = 20_000 });
        // Live again: a referral sent now reaches the open page by itself.
        var after = "StoreAfter" + Random.Shared.Next(1000, 9999).ToString(System.Globalization.CultureInfo.InvariantCulture);
        await host.SendAsAsync<SubmitReferral.Result>("referrer", new SubmitReferral.Command(TestReferrals.Form(after), Guid.NewGuid().ToString("N")));
        await Assertions.Expect(queue.GetByTestId("queue")).ToContainTextAsync(after);
        Assert.NotEqual(asOf, await queue.GetByTestId("as-of").InnerTextAsync());
    }
}
