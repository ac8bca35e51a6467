using System.Net;
using CareCoordination.Domain;
using CareCoordination.Features.Health;
using CareCoordination.Features.Referrals;
using CareCoordination.Features.Reports;
using CareCoordination.Store;
using CareCoordination.Tests.Support;
using Dapper;
using Microsoft.Extensions.DependencyInjection;

namespace CareCoordination.Tests.Features.Referrals;

/// <summary>The start-up warm-up sends a referral down the submission path and rolls it back: it must keep nothing.</summary>
public abstract class SubmissionWarmUpTests(AppFactory app)
{
    private SubmissionWarmUp WarmUp => app.Services.GetRequiredService<SubmissionWarmUp>();

    [Fact]
    public async Task WarmUp_AtStart_RunsTheSubmissionOnceTheAppServes()
    {
        using var client = app.CreateBrowserlessClient();
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/health")).StatusCode);
        // The warm-up's cue to begin (or a second after the app serves): the first answer puts a node back in service.
        await app.Services.GetRequiredService<FirstHealthAnswer>().Given.WaitAsync(TimeSpan.FromSeconds(10));

        var report = await WarmUp.Done.WaitAsync(TimeSpan.FromSeconds(60));

        Assert.NotNull(report);
        // The person, the referral, its triage task and their changes were all written before the rollback.
        Assert.True(report.ChangesRolledBack >= 3, $"Only {report.ChangesRolledBack} changes: the submission did not run.");
        Assert.True(report.Began >= report.ServingSince, "The warm-up began before the app served, so /health waited for it.");
        await using var connection = await app.OpenAsync();
        Assert.Equal(0, await connection.ExecuteScalarAsync<int>("SELECT COUNT(*) FROM referral WHERE summary LIKE 'Start-up warm-up%'"));
    }

    [Fact]
    public async Task WarmUp_RunAgain_LeavesEveryTableAsItWas()
    {
        await WarmUp.Done.WaitAsync(TimeSpan.FromSeconds(60));
        // The deprivation lookup loads beside serving too: its 43,200 postcodes are not the warm-up's.
        await app.Services.GetRequiredService<DeprivationLookup>().WhenLoadedAsync(CancellationToken.None);
        var before = await CountEveryTableAsync();

        var report = await WarmUp.RunAsync(DateTimeOffset.UtcNow, CancellationToken.None);

        Assert.NotNull(report);
        Assert.True(report.ChangesRolledBack >= 3, $"Only {report.ChangesRolledBack} changes: the submission did not run.");
        var after = await CountEveryTableAsync();
        Assert.Equal(before.Keys, after.Keys);
        // Named, so that a failure says which table changed.
        Assert.Empty(before.Where(table => after[table.Key] != table.Value).Select(table => $"{table.Key}: {table.Value} -> {after[table.Key]}"));
    }

    [Fact]
    public async Task WarmUp_RunAgain_LeavesNoGapInTheChangeFeed()
    {
        await WarmUp.Done.WaitAsync(TimeSpan.FromSeconds(60));
        await using var connection = await app.OpenAsync();
        var before = await connection.ExecuteScalarAsync<long>("SELECT COALESCE(MAX(seq), 0) FROM change");

        Assert.NotNull(await WarmUp.RunAsync(DateTimeOffset.UtcNow, CancellationToken.None));
        var form = ReferralForms.Discharge(LondonTime.Today(app.Clock), await app.NewNhsNumberAsync());
        await app.SendAsync<SubmitReferral.Result>(new SubmitReferral.Command(form, Guid.NewGuid().ToString("N")), await app.StaffAsync("referrer"));

        // A PostgreSQL identity used inside the rolled-back write would be lost, and the next change would skip it.
        var first = await connection.ExecuteScalarAsync<long>("SELECT MIN(seq) FROM change WHERE seq > @before", new { before });
        Assert.Equal(before + 1, first);
    }

    private async Task<Dictionary<string, long>> CountEveryTableAsync()
    {
        await using var connection = await app.OpenAsync();
        var tables = app.Services.GetRequiredService<Database>().Provider == StoreProvider.PostgreSQL
            ? await connection.QueryAsync<string>("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'")
            : await connection.QueryAsync<string>("SELECT name FROM sqlite_master WHERE type = 'table'");
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var table in tables.Order(StringComparer.Ordinal))
        {
            counts[table] = await connection.ExecuteScalarAsync<long>($"SELECT COUNT(*) FROM \"{table}\"");
        }
        Assert.Contains("referral", counts.Keys);
        return counts;
    }
}

public sealed class SubmissionWarmUpOnSqliteTests(AppFactory app) : SubmissionWarmUpTests(app), IClassFixture<AppFactory>;

public sealed class SubmissionWarmUpOnPostgresTests(PostgresAppFactory app) : SubmissionWarmUpTests(app), IClassFixture<PostgresAppFactory>;

/// <summary>
/// The warm-up leaves the CPU to the node's first /health answer, which puts it back in service (issue 14, restart). With no
/// one asking, it begins a second after the app serves. Its own app: no test here may ask for /health first.
/// </summary>
public sealed class SubmissionWarmUpWaitTests(SubmissionWarmUpWaitTests.DefaultWaitApp app) : IClassFixture<SubmissionWarmUpWaitTests.DefaultWaitApp>
{
    /// <summary>The app with the warm-up's wait as shipped, a second (the other tests' apps start it at once).</summary>
    public sealed class DefaultWaitApp() : WarmUpWaitApp("1");

    [Fact]
    public async Task WarmUp_WithNoHealthCheckAsked_BeginsASecondAfterTheAppServes()
    {
        var report = await app.Services.GetRequiredService<SubmissionWarmUp>().Done.WaitAsync(TimeSpan.FromSeconds(60));

        Assert.NotNull(report);
        Assert.False(app.Services.GetRequiredService<FirstHealthAnswer>().Given.IsCompleted);
        Assert.True(report.WaitedAfterServing >= TimeSpan.FromSeconds(0.95),
            $"The warm-up began {report.WaitedAfterServing.TotalMilliseconds:F0} ms after the app served: it did not wait.");
    }
}

/// <summary>The first 200 from /health is the warm-up's cue: it begins then, not when its wait (here 30 s) is over.</summary>
public sealed class SubmissionWarmUpHealthCueTests(SubmissionWarmUpHealthCueTests.LongWaitApp app) : IClassFixture<SubmissionWarmUpHealthCueTests.LongWaitApp>
{
    public sealed class LongWaitApp() : WarmUpWaitApp("30");

    [Fact]
    public async Task WarmUp_BeginsOnTheFirstHealthyAnswer()
    {
        using var client = app.CreateBrowserlessClient();
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/health")).StatusCode);

        var report = await app.Services.GetRequiredService<SubmissionWarmUp>().Done.WaitAsync(TimeSpan.FromSeconds(25));

        Assert.NotNull(report);
        Assert.True(report.WaitedAfterServing < TimeSpan.FromSeconds(25), $"It waited {report.WaitedAfterServing.TotalSeconds:F1} s.");
    }
}

/// <summary>An app whose warm-up waits this many seconds for the first healthy /health (WarmUp:WaitForHealthSeconds).</summary>
public abstract class WarmUpWaitApp(string seconds) : AppFactory
{
    protected override void ConfigureWebHost(Microsoft.AspNetCore.Hosting.IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.UseSetting("WarmUp:WaitForHealthSeconds", seconds);
    }
}
