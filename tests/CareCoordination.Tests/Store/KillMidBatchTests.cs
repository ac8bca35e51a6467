using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using CareCoordination.Store;
using CareCoordination.Tests.Support;
using Dapper;
using Xunit.Abstractions;

namespace CareCoordination.Tests.Store;

/// <summary>
/// Nothing acknowledged is lost: the app runs as its own process on a SQLite store, partners send referrals over many
/// connections at once (so commands are committed in groups), the process is killed (SIGKILL) in the middle, and the
/// reopened store holds every referral that was answered 2xx whole, nothing half-written, and no gap in the change seq.
/// </summary>
public sealed class KillMidBatchTests(ITestOutputHelper output)
{
    private const string Password = "Kill-Test-Password-1";
    private const string PartnerSecret = "Kill-Test-Partner-1";

    [Fact]
    public async Task TheAppKilledWhileSubmissionsAreInFlight_KeepsEveryAnsweredReferralWhole_AndNothingHalfWritten()
    {
        var connectionString = await new SqliteTestStore().CreateEmptyAsync();
        var port = FreePort();
        var log = new StringBuilder();
        using var app = StartApp(connectionString, port, log);
        var answered = new ConcurrentBag<string>();
        var sent = new ConcurrentBag<string>();
        var drawn = new ConcurrentDictionary<string, byte>();
        try
        {
            using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = TimeSpan.FromSeconds(30) };
            await UntilHealthyAsync(client, app);
            // Nor anyone the demo seed made: the documented transaction's conditional create would take a seeded person of
            // the partner's trust as theirs, and that person's seeded referral would be counted beside the new one (CI).
            await using (var seeded = new Database(StoreProvider.Sqlite, connectionString))
            await using (var reader = await seeded.OpenAsync())
            {
                foreach (var nhs in await reader.QueryAsync<string>("SELECT nhs_number FROM person WHERE nhs_number IS NOT NULL"))
                {
                    drawn.TryAdd(nhs, 0);
                }
            }
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", await FhirPartner.TokenAsync(client, secret: PartnerSecret));

            using var stop = new CancellationTokenSource();
            var partners = Enumerable.Range(0, 16).Select(_ => Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    // Each partner sends a person no one else sent: numbers drawn from the test range repeat (some 90,000
                    // of them, a few hundred draws), and a repeat is the same person, not the referral this test counts.
                    var nhs = ReferralForms.NewNhsNumber();
                    if (!drawn.TryAdd(nhs, 0))
                    {
                        continue;
                    }
                    sent.Add(nhs);
                    try
                    {
                        var bundle = FhirPayloads.Example("referral-transaction.json", nhs).ToJsonString();
                        // Not cancelled by the test: a request in flight runs until the kill answers it.
                        using var response = await client.PostAsync("/fhir", FhirPayloads.Body(bundle));
                        if (response.IsSuccessStatusCode)
                        {
                            answered.Add(nhs);
                        }
                    }
                    catch (Exception) when (stop.IsCancellationRequested)
                    {
                        return;
                    }
                }
            })).ToList();

            // Kill it mid-batch: once a good number have been answered, while the rest are still in flight.
            var waited = Stopwatch.StartNew();
            while (answered.Count < 60)
            {
                Assert.True(waited.Elapsed < TimeSpan.FromSeconds(120), $"only {answered.Count} answered in 2 minutes:\n{log}");
                Assert.False(app.HasExited, $"the app stopped by itself:\n{log}");
                await Task.Delay(20);
            }
            // Told first, so that a partner's broken connection reads as the kill, not as a failure.
            await stop.CancelAsync();
            app.Kill();
            await app.WaitForExitAsync();
            await Task.WhenAll(partners);
        }
        finally
        {
            if (!app.HasExited)
            {
                app.Kill();
            }
        }
        output.WriteLine($"{answered.Count} answered of {sent.Count} sent before the kill");

        await using var database = new Database(StoreProvider.Sqlite, connectionString);
        await using var connection = await database.OpenAsync();
        foreach (var nhs in answered)
        {
            var referrals = (await connection.QueryAsync<long>(
                "SELECT r.id FROM referral r JOIN person p ON p.id = r.person_id WHERE p.nhs_number = @nhs", new { nhs })).ToList();
            if (referrals.Count != 1)
            {
                var people = await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM person WHERE nhs_number = @nhs", new { nhs });
                var stored = await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM referral");
                Assert.Fail($"referral for {nhs}, answered 2xx, is missing after the kill: {referrals.Count} referrals, {people} people with that number; {stored} referrals in the store, {answered.Count} answered\n{log}");
            }
        }
        // Whole, for every referral the partners sent that the store holds (answered or not): its task, its change rows, its audit row.
        var sentPeople = sent.ToHashSet();
        var incomplete = (await connection.QueryAsync<(long Id, string Nhs)>(
            """
            SELECT r.id, p.nhs_number FROM referral r JOIN person p ON p.id = r.person_id
            WHERE NOT EXISTS (SELECT 1 FROM triage_task t WHERE t.referral_id = r.id)
               OR NOT EXISTS (SELECT 1 FROM change c WHERE c.kind = 'referral.submitted' AND c.entity_id = r.id)
               OR NOT EXISTS (SELECT 1 FROM change c JOIN triage_task t ON c.entity_type = 'triage_task' AND c.entity_id = t.id WHERE t.referral_id = r.id)
               OR NOT EXISTS (SELECT 1 FROM audit_event a WHERE a.outcome = 'success' AND a.entity_type = 'referral' AND a.entity_id = r.id)
            """)).Where(r => sentPeople.Contains(r.Nhs));
        Assert.Empty(incomplete);
        // Nobody the partners sent is in the store without the referral that brought them.
        var alone = (await connection.QueryAsync<string>(
            "SELECT p.nhs_number FROM person p WHERE NOT EXISTS (SELECT 1 FROM referral r WHERE r.person_id = p.id)")).Where(sentPeople.Contains);
        Assert.Empty(alone);
        var seqs = (await connection.QueryAsync<long>("SELECT seq FROM change ORDER BY seq")).ToList();
        Assert.Equal(Enumerable.Range(0, seqs.Count).Select(i => seqs[0] + i), seqs);
    }

    private static Process StartApp(string connectionString, int port, StringBuilder log)
    {
        var folder = AppContext.BaseDirectory;
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = folder,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            ArgumentList =
            {
                Path.Combine(folder, "CareCoordination.Web.dll"),
                "--urls", $"http://127.0.0.1:{port}",
                "--Database:Provider=Sqlite",
                $"--ConnectionStrings:CareCoordination={connectionString}",
                "--Demo:Seed=true",
                $"--Demo:Password={Password}",
                $"--Demo:PartnerSecret={PartnerSecret}",
                "--Auth:TokenRequestsPerAddressPerMinute=100000",
                "--Logging:LogLevel:Default=Warning",
            },
        };
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => Append(log, e.Data);
        process.ErrorDataReceived += (_, e) => Append(log, e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static void Append(StringBuilder log, string? line)
    {
        lock (log)
        {
            log.AppendLine(line);
        }
    }

    private static async Task UntilHealthyAsync(HttpClient client, Process app)
    {
        var waited = Stopwatch.StartNew();
        while (true)
        {
            Assert.False(app.HasExited, "the app exited before it was healthy");
            Assert.True(waited.Elapsed < TimeSpan.FromSeconds(60), "the app was not healthy within a minute");
            try
            {
                if ((await client.GetAsync("/health")).StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
                // Not listening yet.
            }
            await Task.Delay(100);
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
