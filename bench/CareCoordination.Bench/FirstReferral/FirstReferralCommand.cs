using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using CareCoordination.Bench.Load;

namespace CareCoordination.Bench.FirstReferral;

/// <summary>
/// The first referral after a start against the ones after it (issue 16), with the start-up warm-up off and on: the
/// product on a new SQLite store with the demo seed, started, left 5 s after /health first answers (and, with the
/// warm-up on, until it logged that it ran), then one partner Bundle POSTed to /fhir and timed, then the queue's
/// question (GET /fhir/Task?status=requested) timed, then as many more of each one after the other. Rounds alternate
/// off and on, so whatever else the machine does falls on both alike.
/// </summary>
public static partial class FirstReferralCommand
{
    private const string PartnerSecret = "Bench-Partner-Secret-1";

    public static async Task<int> RunAsync(Options options)
    {
        var rounds = options.Int("rounds", options.Short ? 1 : 3);
        var later = options.Int("later", options.Short ? 3 : 20);
        var folder = Directory.CreateTempSubdirectory("cc-bench-first-").FullName;
        var results = new Dictionary<bool, List<Run>> { [false] = [], [true] = [] };
        try
        {
            for (var round = 0; round < rounds; round++)
            {
                foreach (var warm in new[] { false, true })
                {
                    results[warm].Add(await RunOnceAsync(folder, $"first-{round}-{(warm ? "warm" : "cold")}", warm, later));
                }
            }
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
        Console.WriteLine();
        Console.WriteLine($"First referral after a start (SQLite, {rounds} starts each, {later} later referrals per start; medians)");
        Console.WriteLine();
        Console.WriteLine("| warm-up | /health first 200 | warm-up took (writer held) | first POST | later POSTs (p50) | first queue read | later queue reads (p50) |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        foreach (var (warm, runs) in results)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {(warm ? "on" : "off")} | {Median(runs.Select(r => r.Health)):F0} ms | {(warm ? $"{Median(runs.Select(r => r.WarmUp)):F0} ms ({Median(runs.Select(r => r.Held)):F0} ms)" : "")} " +
                $"| {Median(runs.Select(r => r.FirstPost)):F0} ms | {Median(runs.Select(r => r.LaterPost)):F0} ms " +
                $"| {Median(runs.Select(r => r.FirstRead)):F0} ms | {Median(runs.Select(r => r.LaterRead)):F0} ms |"));
        }
        foreach (var (warm, runs) in results)
        {
            Report.Current.Add("first referral", $"first POST, warm-up {(warm ? "on" : "off")}", Median(runs.Select(r => r.FirstPost)), "ms");
        }
        return 0;
    }

    private sealed record Run(double Health, double WarmUp, double Held, double FirstPost, double LaterPost, double FirstRead, double LaterRead);

    private static async Task<Run> RunOnceAsync(string folder, string name, bool warm, int later)
    {
        var store = StoreUnderTest.Sqlite(folder, name);
        var settings = store.ProductSettings();
        settings["Demo__Seed"] = "true";
        settings["Demo__Password"] = "Bench-Demo-Password-1";
        settings["Demo__PartnerSecret"] = PartnerSecret;
        settings["DataProtection__KeysPath"] = Path.Combine(folder, "keys-" + name);
        settings["Logging__LogLevel__Default"] = "Warning";
        settings["Logging__LogLevel__CareCoordination.Features.Referrals.SubmissionWarmUp"] = "Information";
        settings["WarmUp__Enabled"] = warm ? "true" : "false";
        await using var server = await Server.StartProductAsync(name, settings);
        var idle = Stopwatch.StartNew();
        double warmUp = 0, held = 0;
        while (warm && WarmedIn(server.LastLines()) is null)
        {
            if (idle.Elapsed > TimeSpan.FromSeconds(60))
            {
                throw new TimeoutException($"{name}: the warm-up did not log within 60 s:\n{server.LastLines()}");
            }
            await Task.Delay(50);
        }
        if (warm)
        {
            warmUp = WarmedIn(server.LastLines())!.Value;
            held = HeldWriter(server.LastLines());
        }
        if (idle.Elapsed < TimeSpan.FromSeconds(5))
        {
            await Task.Delay(TimeSpan.FromSeconds(5) - idle.Elapsed);
        }

        using var http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromSeconds(60) };
        using (var token = await http.PostAsync("/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials", ["client_id"] = "demo-acute-trust", ["client_secret"] = PartnerSecret,
        })))
        {
            token.EnsureSuccessStatusCode();
            http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer",
                (await token.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("access_token").GetString());
        }
        var submissions = new Submissions();
        var posts = new List<double>();
        var reads = new List<double>();
        for (var i = 0; i <= later; i++)
        {
            var clock = Stopwatch.StartNew();
            using (var posted = await http.PostAsync("/fhir", submissions.NextContent()))
            {
                Report.Current.Check(posted.IsSuccessStatusCode, $"{name}: a referral was answered {(int)posted.StatusCode}");
            }
            posts.Add(clock.Elapsed.TotalMilliseconds);
            clock.Restart();
            using (var read = await http.GetAsync("/fhir/Task?status=requested&_count=20"))
            {
                Report.Current.Check(read.IsSuccessStatusCode, $"{name}: the queue's read was answered {(int)read.StatusCode}");
            }
            reads.Add(clock.Elapsed.TotalMilliseconds);
        }
        return new Run(server.StartedIn.TotalMilliseconds, warmUp, held, posts[0], Median(posts.Skip(1)), reads[0], Median(reads.Skip(1)));
    }

    private static double? WarmedIn(string lines) =>
        WarmUpLine().Match(lines) is { Success: true } match ? double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture) : null;

    private static double HeldWriter(string lines) =>
        WarmUpLine().Match(lines) is { Success: true } match ? double.Parse(match.Groups[2].Value, CultureInfo.InvariantCulture) : 0;

    private static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToList();
        return sorted.Count == 0 ? 0 : sorted[sorted.Count / 2];
    }

    [GeneratedRegex(@"Warm-up: began \d+ ms after the app served; the submission path ran once and was rolled back \(\d+ changes\) in (\d+) ms, the store's writer held (\d+) ms")]
    private static partial Regex WarmUpLine();
}
