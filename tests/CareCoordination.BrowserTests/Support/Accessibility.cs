using Deque.AxeCore.Playwright;
using Microsoft.Playwright;

namespace CareCoordination.BrowserTests.Support;

public static class Accessibility
{
    /// <summary>Axe over the page as it stands: no serious or critical fault, each one named with the elements it found.</summary>
    public static async Task AssertNoSeriousFaultsAsync(IPage page)
    {
        var results = await page.RunAxe();
        var serious = results.Violations.Where(v => v.Impact is "serious" or "critical").ToList();
        Assert.True(serious.Count == 0, string.Join("\n", serious.Select(v => $"{v.Id}: {v.Help} ({string.Join(", ", v.Nodes.Select(n => n.Html))})")));
    }
}
