using System.Collections.Concurrent;
using System.Globalization;
using System.Reflection;
using System.Text.RegularExpressions;
using CareCoordination.BrowserTests.Support;
using CareCoordination.Domain;
using CareCoordination.Features.Coordination;
using CareCoordination.Features.Referrals;
using CareCoordination.Store;
using Dapper;
using Microsoft.AspNetCore.Components;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace CareCoordination.BrowserTests.Features.Screens;

/// <summary>
/// Walks every page as every role that may open it, once per host, and reads what a screen reader hears and what a
/// person reads there. Axe passes a Radzen drop-down named only on its hidden input, so the names are read from
/// Playwright's own accessibility tree (an ARIA snapshot), the way assistive technology meets them.
/// </summary>
public sealed partial class EveryPageBrowserTests(BrowserHost host) : IClassFixture<BrowserHost>
{
    private const string Anyone = "";

    /// <summary>Every page and who may open it (as the access matrix has it); a new page must be added here.</summary>
    private static readonly string[] Staff = ["referrer", "coordinator", "bedbureau", "manager", "admin"];
    private static readonly string[] CountyWide = ["coordinator", "bedbureau", "manager"];
    private static readonly string[] CapacityReaders = ["coordinator", "bedbureau", "manager", "admin"];
    private static readonly string[] Managers = ["manager", "admin"];

    /// <summary>Every page and who may open it (the access matrix's table); a new page must be added here.</summary>
    private static readonly Dictionary<string, string[]> Pages = new(StringComparer.Ordinal)
    {
        ["/signin"] = [Anyone],
        ["/not-found"] = [Anyone],
        ["/error"] = [Anyone],
        ["/"] = Staff,
        ["/denied"] = Staff,
        ["/referrals"] = ["referrer"],
        ["/referrals/new"] = ["referrer"],
        ["/referrals/blank-form"] = Staff,
        ["/referrals/drafts/{DraftId:long}"] = ["referrer"],
        ["/referrals/{Id:long}"] = ["referrer", .. CountyWide],
        ["/referrals/{Id:long}/summary"] = ["referrer", .. CountyWide],
        ["/coordination"] = CountyWide,
        ["/coordination/paper-referrals"] = ["coordinator"],
        ["/bed-bureau/queue"] = CountyWide,
        ["/coordination/referrals/{Id:long}"] = CountyWide,
        ["/coordination/referrals/{Id:long}/as-sent"] = ["coordinator", "bedbureau"],
        ["/bed-bureau/beds"] = CapacityReaders,
        ["/boards/capacity"] = CapacityReaders,
        ["/boards/wall"] = CapacityReaders,
        ["/admin/beds"] = ["admin"],
        ["/admin/hospital-sites"] = ["admin"],
        ["/admin/providers"] = Managers,
        ["/admin/services"] = ["admin", .. CountyWide],
        ["/admin/sign-in-links"] = ["admin"],
        ["/admin/partners"] = ["admin"],
        ["/admin/you-said-we-did"] = ["admin"],
        ["/approvals"] = ["manager"],
        ["/reports"] = Managers,
        ["/reports/capacity-tracker"] = Managers,
        ["/reports/waiting-lists"] = Managers,
        ["/reports/decision-pack"] = Managers,
        ["/reports/discharge-sitrep"] = Managers,
        ["/reports/discharge-delays"] = Managers,
        ["/reports/client-level-events"] = Managers,
        ["/reports/data-quality"] = Managers,
        ["/reports/equity"] = Managers,
    };

    /// <summary>Roles whose control must carry the words of its visible label: those Radzen names from a hidden input or its Name.</summary>
    private static readonly HashSet<string> LabelledByTheirLabel = ["combobox", "listbox", "radiogroup", "group"];

    private static readonly HashSet<string> Controls =
        ["button", "link", "textbox", "searchbox", "combobox", "listbox", "checkbox", "radio", "radiogroup", "spinbutton", "switch", "slider", "tab", "menuitem"];

    /// <summary>Names that say nothing: Radzen's default for an empty drop-down, and the like.</summary>
    private static readonly HashSet<string> Generic = new(StringComparer.OrdinalIgnoreCase) { "Empty", "Select", "Select...", "Choose", "combobox", "dropdown" };

    private static readonly ConcurrentDictionary<BrowserHost, Lazy<Task<Walk>>> Walks = new();

    [Fact]
    public void ThePageList_HasEveryRoutedPage()
    {
        var routes = typeof(Program).Assembly.GetTypes()
            .SelectMany(t => t.GetCustomAttributes<RouteAttribute>().Select(r => r.Template))
            .Order(StringComparer.Ordinal).ToList();
        Assert.Empty(routes.Except(Pages.Keys));
    }

    [Fact]
    public async Task EveryPage_ForEveryRole_EveryControlIsNamedByItsVisibleLabel()
    {
        var walk = await Walks.GetOrAdd(host, h => new Lazy<Task<Walk>>(() => WalkAsync(h))).Value;
        Assert.True(walk.Visited >= Pages.Values.Sum(r => r.Length), $"Only {walk.Visited} pages were read.");
        Assert.True(walk.Unnamed.IsEmpty, "Controls a screen reader cannot name:" + Environment.NewLine + string.Join(Environment.NewLine, walk.Unnamed.Distinct().Order()));
    }

    [Fact]
    public async Task EveryPage_ForEveryRole_ShowsStatusesPathwaysAndDecisionsInWords()
    {
        var walk = await Walks.GetOrAdd(host, h => new Lazy<Task<Walk>>(() => WalkAsync(h))).Value;
        Assert.True(walk.Codes.IsEmpty, "Codes shown to people:" + Environment.NewLine + string.Join(Environment.NewLine, walk.Codes.Distinct().Order()));
    }

    private sealed record Walk(int Visited, ConcurrentBag<string> Unnamed, ConcurrentBag<string> Codes);

    private static async Task<Walk> WalkAsync(BrowserHost host)
    {
        var referrals = await ArrangeReferralsAsync(host);
        var draft = await host.SendAsAsync<SaveDraft.Result>("referrer", new SaveDraft.Command(null, null, TestReferrals.Form("Draftworth")));
        var unnamed = new ConcurrentBag<string>();
        var codes = new ConcurrentBag<string>();
        var visited = 0;
        foreach (var role in Pages.Values.SelectMany(r => r).Distinct())
        {
            var page = await host.NewPageAsync();
            if (role != Anyone)
            {
                await host.SignInAsync(page, role);
            }
            foreach (var (route, _) in Pages.Where(p => p.Value.Contains(role)))
            {
                var addresses = route.Contains("{Id:long}", StringComparison.Ordinal)
                    ? referrals.Select(id => route.Replace("{Id:long}", id.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal))
                    : [route.Replace("{DraftId:long}", draft.DraftId.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal)];
                foreach (var address in addresses)
                {
                    await OpenAsync(page, address);
                    var where = $"{address} as {(role == Anyone ? "anyone" : role)}";
                    foreach (var problem in await UnnamedControlsAsync(page))
                    {
                        unnamed.Add($"{where}: {problem}");
                    }
                    foreach (var code in CodesIn(await page.Locator("main, body").First.InnerTextAsync()))
                    {
                        codes.Add($"{where}: \"{code}\"");
                    }
                    visited++;
                }
            }
            await page.Context.CloseAsync();
        }
        return new Walk(visited, unnamed, codes);
    }

    /// <summary>An accepted referral (it has a decision), one a coordinator holds, and one the bed bureau holds.</summary>
    private static async Task<long[]> ArrangeReferralsAsync(BrowserHost host)
    {
        var suffix = Random.Shared.Next(1000, 9999).ToString(CultureInfo.InvariantCulture);
        var ids = new List<long>();
        foreach (var family in new[] { "Walkaccepted" + suffix, "Walkheld" + suffix, "Walkbureau" + suffix })
        {
            var sent = await host.SendAsAsync<SubmitReferral.Result>("referrer", new SubmitReferral.Command(TestReferrals.Form(family), Guid.NewGuid().ToString("N")));
            ids.Add(sent.ReferralId!.Value);
        }
        await using var scope = host.Services.CreateAsyncScope();
        await using var connection = await scope.ServiceProvider.GetRequiredService<Database>().OpenAsync();
        async Task<long> OpenTaskAsync(long referral) =>
            await connection.ExecuteScalarAsync<long>("SELECT id FROM triage_task WHERE referral_id = @referral AND completed_at IS NULL", new { referral });

        var reablement = await connection.ExecuteScalarAsync<long>("SELECT id FROM service WHERE name = 'Home First Reablement - North'");
        var accepted = await OpenTaskAsync(ids[0]);
        await host.SendAsAsync<Mediator.Unit>("coordinator", new TakeReferral.Command(accepted));
        await host.SendAsAsync<AcceptIntoService.Result>("coordinator", new AcceptIntoService.Command(accepted, reablement, LondonTime.Today(TimeProvider.System),
            OverrideFullService: true, OverrideReason: "Walking every page."));
        await host.SendAsAsync<Mediator.Unit>("coordinator", new TakeReferral.Command(await OpenTaskAsync(ids[1])));
        var toBureau = await OpenTaskAsync(ids[2]);
        await host.SendAsAsync<Mediator.Unit>("coordinator", new TakeReferral.Command(toBureau));
        await host.SendAsAsync<Mediator.Unit>("coordinator", new RedirectToBedBureau.Command(toBureau, "Needs a rehabilitation bed first."));
        await host.SendAsAsync<Mediator.Unit>("bedbureau", new TakeReferral.Command(await OpenTaskAsync(ids[2])));
        return [.. ids];
    }

    /// <summary>Opens the page and waits for its live circuit and its data: no loading indicator left.</summary>
    private static async Task OpenAsync(IPage page, string address)
    {
        await page.GotoAsync(address);
        if (address is not ("/signin" or "/error" or "/not-found" or "/referrals/blank-form") && !address.EndsWith("/summary", StringComparison.Ordinal))
        {
            await BrowserHost.WaitForCircuitAsync(page);
        }
        await Assertions.Expect(page.Locator(".rz-progressbar-circular, [aria-label='Loading'], .rz-datatable-loading")).ToHaveCountAsync(0);
        await Assertions.Expect(page.Locator("h1").First).ToBeVisibleAsync();
    }

    /// <summary>Each control in the page's ARIA snapshot whose name is missing, says nothing, or is not the words of its label.</summary>
    private static async Task<List<string>> UnnamedControlsAsync(IPage page)
    {
        var snapshot = await page.Locator("body").AriaSnapshotAsync();
        var labels = (await page.Locator("label:visible, legend:visible, [id$='-label']:visible").AllInnerTextsAsync())
            .Select(Normalise).ToHashSet(StringComparer.Ordinal);
        var problems = new List<string>();
        foreach (Match line in SnapshotLine().Matches(snapshot))
        {
            var role = line.Groups["role"].Value;
            var name = Regex.Unescape(line.Groups["name"].Value);
            if (!Controls.Contains(role) && !LabelledByTheirLabel.Contains(role))
            {
                continue;
            }
            if (role == "group" && name.Length > 0 && labels.Contains(Normalise(name)))
            {
                continue;
            }
            if (role == "group" && !GroupHoldsChoices(snapshot, line))
            {
                continue;
            }
            if (name.Trim().Length == 0 || Generic.Contains(name.Trim()))
            {
                problems.Add($"{role} named \"{name}\"");
            }
            else if (LabelledByTheirLabel.Contains(role) && !labels.Contains(Normalise(name)))
            {
                problems.Add($"{role} named \"{name}\", which no label on the page says");
            }
        }
        return problems;
    }

    /// <summary>A group of tick boxes or radio buttons: the lines indented under it hold a checkbox or radio.</summary>
    private static bool GroupHoldsChoices(string snapshot, Match group)
    {
        var indent = group.Groups["indent"].Value.Length;
        foreach (var line in snapshot[(group.Index + group.Length)..].Split('\n').Skip(1))
        {
            var depth = line.Length - line.TrimStart().Length;
            if (depth <= indent)
            {
                return false;
            }
            if (line.TrimStart().StartsWith("- checkbox", StringComparison.Ordinal) || line.TrimStart().StartsWith("- radio", StringComparison.Ordinal))
            {
                return true;
            }
        }
        return false;
    }

    private static string Normalise(string text) => Regex.Replace(text, @"\s+", " ").Trim().TrimEnd('*').Trim();

    /// <summary>The codes the store keeps, which a person should never read: hyphenated codes, bare decisions and pathways.</summary>
    private static IEnumerable<string> CodesIn(string text)
    {
        var hyphenated = new[] { ReferralCodes.Sources, ReferralCodes.DeclineReasons, ReferralCodes.ServiceKinds, ReferralCodes.Needs }
            .SelectMany(c => c).Select(c => c.Value)
            .Concat(["in-triage", "awaiting-information", "bed-bureau", "step-down-nursing"])
            .Where(v => v.Contains('-', StringComparison.Ordinal) && v != "step-up");
        foreach (var code in hyphenated)
        {
            if (Regex.IsMatch(text, $@"(?<![\w-]){Regex.Escape(code)}(?![\w-])"))
            {
                yield return code;
            }
        }
        foreach (Match m in RawDecisionOrPathway().Matches(text))
        {
            yield return m.Value;
        }
    }

    [GeneratedRegex(@"^(?<indent>\s*)- (?<role>[a-z]+)(?: ""(?<name>(?:[^""\\]|\\.)*)"")?", RegexOptions.Multiline)]
    private static partial Regex SnapshotLine();

    /// <summary>A decision as stored ("accepted: reablement", "declined: out-of-area") or a bare "pathway 1," in a sentence.</summary>
    [GeneratedRegex(@"\baccepted: [a-z][\w -]*|\bdeclined: [a-z]+-[a-z-]+|\bpathway [0-3],")]
    private static partial Regex RawDecisionOrPathway();
}
