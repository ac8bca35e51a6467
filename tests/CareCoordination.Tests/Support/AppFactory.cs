using System.Security.Claims;
using CareCoordination.Auth;
using Dapper;
using Mediator;
using CareCoordination.Store;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace CareCoordination.Tests.Support;

/// <summary>
/// The real host on a fresh SQLite store seeded with demo data, with a clock the test can move.
/// </summary>
public partial class AppFactory : WebApplicationFactory<Program>
{
    public const string Password = "Demo-Password-1";
    public const string PartnerSecret = "Demo-Partner-Secret-1";

    private readonly string _connectionString;
    private readonly StoreProvider _provider;

    public AppFactory() : this(new SqliteTestStore())
    {
    }

    protected AppFactory(ITestStore store)
    {
        _provider = store.Provider;
        _connectionString = store.CreateEmptyAsync().GetAwaiter().GetResult();
    }

    /// <summary>
    /// The instant CARECOORDINATION_TEST_NOW names (ISO 8601), if set: every host's clock starts there instead of now, to run
    /// the suite on a day that might catch a date out (the night the clocks change, the last minutes of a year), as the
    /// demo seed and the tests' own days follow the clock.
    /// </summary>
    public static DateTimeOffset? TestNow { get; } = Environment.GetEnvironmentVariable("CARECOORDINATION_TEST_NOW") is { Length: > 0 } now
        ? DateTimeOffset.Parse(now, System.Globalization.CultureInfo.InvariantCulture)
        : null;

    public FakeTimeProvider Clock { get; } = new(TestNow ?? DateTimeOffset.UtcNow);

    public string ConnectionString => _connectionString;

    /// <summary>Demo:Seed is set to true; false leaves it unset, to the host's own default.</summary>
    protected virtual bool SeedsDemo => true;

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Testing");
        builder.UseSetting("Database:Provider", _provider.ToString());
        builder.UseSetting("ConnectionStrings:CareCoordination", _connectionString);
        // Tests that make two writers meet on PostgreSQL need two in the store at once, on a one-core machine too (its default is the cores).
        builder.UseSetting("Database:PostgresWriters", Math.Max(2, Environment.ProcessorCount).ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (SeedsDemo)
        {
            builder.UseSetting("Demo:Seed", "true");
        }
        builder.UseSetting("Demo:Password", Password);
        builder.UseSetting("Demo:PartnerSecret", PartnerSecret);
        // Tests raise re-contacts by sending the check themselves, at the time they choose.
        builder.UseSetting("Coordination:RecontactCheckSeconds", "0");
        builder.UseSetting("BedBureau:ReservationCheckSeconds", "0");
        // Every test asks for tokens from one in-memory address; the throttle's own tests set small limits.
        builder.UseSetting("Auth:TokenRequestsPerAddressPerMinute", "100000");
        builder.UseSetting("Auth:TokenRequestsPerClientPerMinute", "100000");
        // The warm-up runs at start, as tests that mind it expect (they wait for it); its wait has a test of its own.
        builder.UseSetting("WarmUp:WaitForHealthSeconds", "0");
        builder.ConfigureTestServices(services => services.AddSingleton<TimeProvider>(Clock));
    }

    /// <summary>Sends a message through the real mediator and pipeline, as the given principal (null: anonymous).</summary>
    public async Task<TResponse> SendAsync<TResponse>(IMessage message, ClaimsPrincipal? caller)
    {
        await using var scope = Services.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<ActorAccessor>().Principal = caller;
        return (TResponse)(await scope.ServiceProvider.GetRequiredService<IMediator>().Send((object)message))!;
    }

    public Task SendAsync(IMessage message, ClaimsPrincipal? caller) => SendAsync<object>(message, caller);

    /// <summary>A demo member of staff as the sign-in would make them.</summary>
    public async Task<ClaimsPrincipal> StaffAsync(string username)
    {
        await using var connection = await OpenAsync();
        var account = await connection.QuerySingleAsync<StaffAccount>(StaffAccount.Select + " WHERE u.username = @username", new { username });
        return account.ToPrincipal("test");
    }

    public Task<System.Data.Common.DbConnection> OpenAsync() => Services.GetRequiredService<Database>().OpenAsync();

    /// <summary>The people a page read (one audit row) disclosed, as its store keeps them (Pipeline.ReadPeople).</summary>
    public async Task<IEnumerable<long>> PeopleReadByAsync(long auditId)
    {
        await using var connection = await OpenAsync();
        var rows = await connection.QueryAsync<(long AuditId, long PersonId)>(
            CareCoordination.Pipeline.ReadPeople.Of(Services.GetRequiredService<Database>().Provider, "@auditId"), new { auditId });
        return rows.Select(r => r.PersonId);
    }

    /// <summary>The referral's task still open (waiting, held or on hold), as a test finds it to act on next.</summary>
    public async Task<long> OpenTaskAsync(long referralId)
    {
        await using var connection = await OpenAsync();
        return await connection.ExecuteScalarAsync<long>(
            "SELECT id FROM triage_task WHERE referral_id = @referralId AND status IN ('requested', 'in-progress', 'on-hold')", new { referralId });
    }

    /// <summary>A bed any person fits, of a provider under no caution, held for no one, made available for the test.</summary>
    public async Task<long> FreeBedAsync()
    {
        await using var connection = await OpenAsync();
        var bedId = await connection.ExecuteScalarAsync<long>(
            """
            SELECT b.id FROM bed b JOIN ward w ON w.id = b.ward_id JOIN site s ON s.id = w.site_id JOIN organisation o ON o.id = s.organisation_id
            WHERE o.caution = 'none' AND s.active AND b.status IN ('closed', 'cleaning', 'available')
              AND b.id NOT IN (SELECT bed_id FROM placement WHERE bed_id IS NOT NULL AND status IN ('reserved', 'active'))
            ORDER BY b.id LIMIT 1
            """);
        await connection.ExecuteAsync(
            "UPDATE bed SET status = 'available', closed_reason = NULL, single_room = FALSE, allowed_sex = 'any', bed_type = 'rehabilitation' WHERE id = @bedId",
            new { bedId });
        return bedId;
    }

    /// <summary>SQLite: a folder where the store's file was, so that the next connection fails. Returns its path, to delete after.</summary>
    public string ReplaceSqliteStoreWithFolder()
    {
        var file = new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder(ConnectionString).DataSource;
        File.Delete(file);
        File.Delete(file + "-wal");
        File.Delete(file + "-shm");
        Directory.CreateDirectory(file);
        return file;
    }

    public HttpClient CreateBrowserlessClient() =>
        CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = true });

    /// <summary>Signs in through the real sign-in page, as a browser would: GET the form, POST it back with its antiforgery token.</summary>
    public Task<HttpResponseMessage> SignInAsync(HttpClient client, string username, string password, string returnUrl = "/") =>
        SignInForm.PostAsync(client, username, password, returnUrl);
}

/// <summary>The same host on PostgreSQL, from the throwaway server that ./test.sh starts.</summary>
public sealed class PostgresAppFactory() : AppFactory(new PostgresTestStore())
{
    /// <summary>Another writer's statement, run and held uncommitted: the locks it took stay until <see cref="HeldChange.CommitAsync"/>.</summary>
    public async Task<HeldChange> HoldAsync(string sql, object? parameters = null)
    {
        var connection = await OpenAsync();
        var transaction = await connection.BeginTransactionAsync();
        await connection.ExecuteAsync(sql, parameters, transaction);
        return new HeldChange(connection, transaction, await connection.ExecuteScalarAsync<int>("SELECT pg_backend_pid()", transaction: transaction));
    }

    /// <summary>
    /// Until a session waits on a lock the held change took (and <paramref name="andAlso"/> holds), watched from a connection of
    /// its own: within a transaction PostgreSQL answers pg_stat_activity from one snapshot, and the app's own background work
    /// may wait on other locks. Fails if one of the requests is answered first, or after 20 s with every session's state.
    /// With <paramref name="waiting"/>, until that many sessions wait on it.
    /// </summary>
    public async Task UntilBlockedByAsync(HeldChange held, Task[] asked, string what, Func<bool>? andAlso = null, int waiting = 1)
    {
        await using var watch = await OpenAsync();
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (!(andAlso?.Invoke() ?? true)
            || await watch.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM pg_stat_activity WHERE @holder = ANY(pg_blocking_pids(pid))", new { holder = held.Pid }) < waiting)
        {
            if (asked.FirstOrDefault(a => a.IsCompleted) is { } early)
            {
                var answer = early is Task<HttpResponseMessage> { IsCompletedSuccessfully: true } response
                    ? $": {(int)response.Result.StatusCode} {await response.Result.Content.ReadAsStringAsync()}"
                    : "";
                Assert.Fail($"{what} was answered before it waited{answer}");
            }
            if (waited.Elapsed > TimeSpan.FromSeconds(20))
            {
                var sessions = await watch.QueryAsync<string>(
                    "SELECT concat_ws(' | ', state, wait_event_type, wait_event, query) FROM pg_stat_activity WHERE datname = current_database()");
                Assert.Fail($"{what} never waited:\n{string.Join('\n', sessions)}");
            }
            await Task.Delay(20);
        }
    }
}

/// <summary>A change held uncommitted on a connection of its own (PostgresAppFactory.HoldAsync).</summary>
public sealed class HeldChange(System.Data.Common.DbConnection connection, System.Data.Common.DbTransaction transaction, int pid) : IAsyncDisposable
{
    public int Pid => pid;

    public Task CommitAsync() => transaction.CommitAsync();

    public async ValueTask DisposeAsync()
    {
        await transaction.DisposeAsync();
        await connection.DisposeAsync();
    }
}
