using System.Net;
using CareCoordination.Auth;
using CareCoordination.Domain;
using CareCoordination.Features.Account;
using CareCoordination.Features.Referrals;
using CareCoordination.Store;
using CareCoordination.Tests.Support;
using Dapper;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;

namespace CareCoordination.Tests.Auth;

/// <summary>
/// A secret check is slow on purpose (PBKDF2). Issue 15: 200 wrong-secret token requests held a referral submission
/// for 32 s, because each check ran inside a write transaction. Here the checks are held mid-way at a gate, so the
/// test can look at the store while they run: no transaction may be open, and a referral must go through.
/// </summary>
public abstract class CredentialCheckTests(PasswordGateApp app)
{
    private DateOnly Today => LondonTime.Today(app.Clock);

    [Fact]
    public async Task TokenRequests_WhileTheirSecretsAreChecked_HoldNoTransaction_AndAReferralGoesThrough()
    {
        await StartUpsTransactionsEndedAsync();
        using var client = app.CreateBrowserlessClient();
        Task<HttpResponseMessage>[] requests;
        using (var held = app.Gate.Hold())
        {
            requests = [.. Enumerable.Range(0, 3).Select(_ => Task.Run(() => client.PostAsync("/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["grant_type"] = "client_credentials", ["client_id"] = FhirPartner.DemoClient, ["client_secret"] = "a wrong guess",
            }))))];

            // Held inside a write transaction they could only run one at a time; outside, all at once.
            await held.ChecksStartedAsync(3);
            await AssertNoTransactionOpenAsync();
            Assert.NotNull(await SubmitReferralAsync());
        }

        Assert.All(await Task.WhenAll(requests), response => Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode));
    }

    [Fact]
    public async Task SignIns_WhileTheirPasswordsAreChecked_HoldNoTransaction_AndAReferralGoesThrough()
    {
        await StartUpsTransactionsEndedAsync();
        Task<SignIn.Result>[] attempts;
        using (var held = app.Gate.Hold())
        {
            attempts = [.. new[] { "manager", "bedbureau", "admin" }.Select(username => Task.Run(() =>
                app.SendAsync<SignIn.Result>(new SignIn.Request(username, "a wrong guess", "198.51.100.7"), null)))];

            await held.ChecksStartedAsync(3);
            await AssertNoTransactionOpenAsync();
            Assert.NotNull(await SubmitReferralAsync());
        }

        Assert.All(await Task.WhenAll(attempts), result => Assert.False(result.Succeeded));
    }

    /// <summary>
    /// Start-up's own transactions are not a secret check's: the warm-up's submission, rolled back, and the deprivation lookup's
    /// load, between whose statements its session sits idle in its transaction (CI saw each of them open here).
    /// </summary>
    private async Task StartUpsTransactionsEndedAsync()
    {
        await app.Services.GetRequiredService<SubmissionWarmUp>().Done;
        await app.Services.GetRequiredService<global::CareCoordination.Features.Reports.DeprivationLookup>().WhenLoadedAsync(CancellationToken.None);
    }

    private async Task<long?> SubmitReferralAsync() =>
        (await app.SendAsync<SubmitReferral.Result>(
            new SubmitReferral.Command(ReferralForms.Discharge(Today, await app.NewNhsNumberAsync()), Guid.NewGuid().ToString("N")),
            await app.StaffAsync("referrer"))).ReferralId;

    /// <summary>SQLite: the one writer's lock is free. PostgreSQL: no session on this database is inside a transaction.</summary>
    private async Task AssertNoTransactionOpenAsync()
    {
        if (app.Services.GetRequiredService<Database>().Provider == StoreProvider.Sqlite)
        {
            await using var probe = new SqliteConnection(app.ConnectionString);
            await probe.OpenAsync();
            await using var begin = probe.CreateCommand();
            // Held, the lock would stay held until the gate opens: a second is not a race, only a bound on the wait.
            begin.CommandTimeout = 1;
            begin.CommandText = "PRAGMA busy_timeout = 0; BEGIN IMMEDIATE; ROLLBACK;";
            await begin.ExecuteNonQueryAsync();
            return;
        }
        await using var connection = await app.OpenAsync();
        var open = await connection.QueryAsync<string>(
            // A sign-in holding its transaction while the hasher waits at the gate sits idle in it; a background poll
            // running a query at this moment is active, and is not what this looks for.
            "SELECT COALESCE(query, '') FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'");
        Assert.Empty(open);
    }
}

/// <summary>A burst of guesses must not take every core: with one slot, a second check waits for the first without running.</summary>
public sealed class SecretCheckSlotsTests(SecretCheckSlotsTests.OneSlotApp app) : IClassFixture<SecretCheckSlotsTests.OneSlotApp>
{
    public sealed class OneSlotApp : PasswordGateApp
    {
        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            base.ConfigureWebHost(builder);
            builder.UseSetting("Auth:ConcurrentSecretChecks", "1");
        }
    }

    [Fact]
    public async Task SecondSecretCheck_WhileTheOnlySlotIsTaken_WaitsWithoutStarting()
    {
        var secrets = app.Services.GetRequiredService<SecretChecks>();
        Task<SignIn.Result> first, second;
        using (var held = app.Gate.Hold())
        {
            first = Task.Run(() => app.SendAsync<SignIn.Result>(new SignIn.Request("manager", "a wrong guess", "198.51.100.8"), null));
            await held.ChecksStartedAsync(1);

            second = Task.Run(() => app.SendAsync<SignIn.Result>(new SignIn.Request("bedbureau", "another wrong guess", "198.51.100.8"), null));

            using var patience = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            while (secrets.Waiting == 0)
            {
                Assert.Equal(1, held.Started);
                await Task.Delay(10, patience.Token);
            }
            Assert.Equal(1, held.Started);
        }

        Assert.False((await first).Succeeded);
        Assert.False((await second).Succeeded);
    }

    /// <summary>
    /// Twelve wrong passwords for one name sent at once, each let in on arrival (none has failed yet), then the right one
    /// queued behind them: only the five the lockout allows are checked, and the right one is refused, as it would be had the
    /// guesses come one after another. Before, all twelve were checked and the right one signed in.
    /// </summary>
    [Fact]
    public async Task ABurstOfGuesses_IsCheckedNoMoreThanTheLockoutAllows_AndTheRightPasswordBehindItIsRefused()
    {
        var username = await NewStaffAsync();
        var secrets = app.Services.GetRequiredService<SecretChecks>();
        Task<SignIn.Result>[] guesses;
        Task<SignIn.Result> right;
        using (var held = app.Gate.Hold())
        {
            guesses = [.. Enumerable.Range(0, 12).Select(i => Task.Run(() =>
                app.SendAsync<SignIn.Result>(new SignIn.Request(username, $"wrong guess {i}", "198.51.100.20"), null)))];
            // One in the only slot, held at the gate; the other eleven waiting for it, each past the lockout's check on arrival.
            await held.ChecksStartedAsync(1);
            await UntilWaitingAsync(secrets, 11);
            right = Task.Run(() => app.SendAsync<SignIn.Result>(new SignIn.Request(username, AppFactory.Password, "198.51.100.20"), null));
            await UntilWaitingAsync(secrets, 12);
        }
        var answers = await Task.WhenAll(guesses);

        Assert.All(answers, answer => Assert.False(answer.Succeeded));
        Assert.Equal(5, answers.Count(a => a.Refusal!.StartsWith("The username or password is not right", StringComparison.Ordinal)));
        Assert.Equal(7, answers.Count(a => a.Refusal!.StartsWith("Too many failed sign-ins", StringComparison.Ordinal)));
        var refused = await right;
        Assert.False(refused.Succeeded);
        Assert.StartsWith("Too many failed sign-ins", refused.Refusal, StringComparison.Ordinal);
    }

    /// <summary>A name no account has is checked against a decoy, as slowly as a wrong password: a quick answer would say it is no one's.</summary>
    [Fact]
    public async Task ANameNoAccountHas_IsCheckedAsSlowlyAsAWrongPassword()
    {
        Task<SignIn.Result> attempt;
        using (var held = app.Gate.Hold())
        {
            attempt = Task.Run(() => app.SendAsync<SignIn.Result>(new SignIn.Request("nobody-" + Guid.NewGuid().ToString("N")[..8], "a guess", "198.51.100.21"), null));
            await held.ChecksStartedAsync(1);
            Assert.False(attempt.IsCompleted);
        }
        Assert.Equal("The username or password is not right. Check them and try again.", (await attempt).Refusal);
    }

    private static async Task UntilWaitingAsync(SecretChecks secrets, int waiting)
    {
        using var patience = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        while (secrets.Waiting < waiting)
        {
            await Task.Delay(10, patience.Token);
        }
    }

    /// <summary>A member of staff of this test's own, with the demo password: a lockout of their name touches no other test.</summary>
    private async Task<string> NewStaffAsync()
    {
        var username = "burst-" + Guid.NewGuid().ToString("N")[..8];
        await using var connection = await app.OpenAsync();
        await connection.ExecuteAsync(
            """
            INSERT INTO staff_user (username, display_name, password_hash, role, organisation_id, active, created_at)
            SELECT @username, 'Burst Tester', password_hash, role, organisation_id, TRUE, created_at FROM staff_user WHERE username = 'coordinator'
            """, new { username });
        return username;
    }
}

public sealed class CredentialCheckOnSqliteTests(PasswordGateApp app) : CredentialCheckTests(app), IClassFixture<PasswordGateApp>;

public sealed class CredentialCheckOnPostgresTests(PasswordGateOnPostgresApp app) : CredentialCheckTests(app), IClassFixture<PasswordGateOnPostgresApp>;

/// <summary>The real host, with its password hasher behind a gate the test can hold shut.</summary>
public class PasswordGateApp : AppFactory
{
    public PasswordGateApp()
    {
    }

    protected PasswordGateApp(ITestStore store) : base(store)
    {
    }

    public PasswordGate Gate { get; } = new();

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        // Room for every check a test holds at the gate at once.
        builder.UseSetting("Auth:ConcurrentSecretChecks", "3");
        builder.ConfigureTestServices(services => services.AddSingleton<IPasswordHasher<Passwords.Account>>(Gate));
    }
}

public sealed class PasswordGateOnPostgresApp() : PasswordGateApp(new PostgresTestStore());

/// <summary>The real hasher, except that while the gate is held each check waits at it, and says it has arrived.</summary>
public sealed class PasswordGate : IPasswordHasher<Passwords.Account>
{
    private volatile Held? _held;

    public Held Hold() => _held = new Held(() => _held = null);

    public string HashPassword(Passwords.Account user, string password) => Passwords.Hasher.HashPassword(user, password);

    public PasswordVerificationResult VerifyHashedPassword(Passwords.Account user, string hashedPassword, string providedPassword)
    {
        _held?.Arrive();
        return Passwords.Hasher.VerifyHashedPassword(user, hashedPassword, providedPassword);
    }

    public sealed class Held(Action closed) : IDisposable
    {
        private static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);
        private readonly SemaphoreSlim _arrived = new(0);
        private readonly ManualResetEventSlim _opened = new();
        private int _count;

        internal void Arrive()
        {
            Interlocked.Increment(ref _count);
            _arrived.Release();
            // A check blocks its thread, as PBKDF2 does; bounded so that a failed test cannot hang the run.
            _opened.Wait(TimeSpan.FromMinutes(1));
        }

        public int Started => Volatile.Read(ref _count);

        public async Task ChecksStartedAsync(int count)
        {
            for (var i = 0; i < count; i++)
            {
                Assert.True(await _arrived.WaitAsync(Patience), $"only {Volatile.Read(ref _count)} of {count} credential checks started within {Patience.TotalSeconds} s");
            }
        }

        public void Dispose()
        {
            closed();
            _opened.Set();
        }
    }
}
