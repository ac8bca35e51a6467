using System.Globalization;
using CareCoordination.Changes;
using CareCoordination.Store;
using Dapper;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using Npgsql;

namespace CareCoordination.Features.Health;

public sealed class HealthSettings
{
    /// <summary>A write probe that takes longer than this is Degraded: the store is still taking writes, slowly.</summary>
    public int SlowWriteMilliseconds { get; set; } = 1000;

    /// <summary>A write probe that cannot be made within this is Unhealthy: every command would wait as long.</summary>
    public int WriteTimeoutSeconds { get; set; } = 5;

    /// <summary>SQLite's integrity probe (PRAGMA quick_check) reads the whole file: run at most this often. 0: on every probe.</summary>
    public int IntegrityCheckMinutes { get; set; } = 60;

    /// <summary>Live screens are Degraded when a committed change has waited longer than this to be pushed to them.</summary>
    public int ChangeFeedBehindSeconds { get; set; } = 30;
}

/// <summary>
/// /health: 200 while this node can do its work, 503 when it cannot, with a JSON body listing each check. A load balancer
/// takes a node out of service on 503; a Degraded check still answers 200, for monitoring to see.
/// <list type="bullet">
/// <item>store-write: a committed write through the path every command takes (on PostgreSQL the change writers' lock and the
/// change table's write lock), so a store that answers reads but takes no writes is Unhealthy; a slow one is Degraded.</item>
/// <item>store-integrity: on SQLite, PRAGMA quick_check, at most once per Health:IntegrityCheckMinutes; a corrupt file is Unhealthy.</item>
/// <item>change-feed: Degraded when live screens are behind the store.</item>
/// </list>
/// </summary>
public static class StoreHealth
{
    public static IServiceCollection AddStoreHealth(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<HealthSettings>().Bind(configuration.GetSection("Health"))
            .Validate(h => h.SlowWriteMilliseconds > 0 && h.WriteTimeoutSeconds > 0 && h.IntegrityCheckMinutes >= 0 && h.ChangeFeedBehindSeconds > 0,
                "Health: SlowWriteMilliseconds, WriteTimeoutSeconds and ChangeFeedBehindSeconds must be positive, IntegrityCheckMinutes not negative.")
            .ValidateOnStart();
        // One instance, so that the integrity result is kept between probes.
        services.AddSingleton<StoreIntegrity>();
        services.AddSingleton<FirstHealthAnswer>();
        services.AddHealthChecks()
            .AddCheck<StoreWrite>("store-write")
            .AddCheck<StoreIntegrity>("store-integrity")
            .AddCheck<ChangeFeedLag>("change-feed");
        services.Configure<HealthCheckOptions>(options => options.ResponseWriter = WriteAsync);
        return services;
    }

    // PERF (issue 14, restart): written by hand rather than by serialising an anonymous type, whose reflection-built
    // serialiser cost the first /health after a start about 60 ms.
    internal static async Task WriteAsync(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "application/json; charset=utf-8";
        await using (var json = new System.Text.Json.Utf8JsonWriter(context.Response.BodyWriter))
        {
            json.WriteStartObject();
            json.WriteString("status", report.Status.ToString());
            json.WriteStartArray("checks");
            foreach (var (name, entry) in report.Entries)
            {
                json.WriteStartObject();
                json.WriteString("name", name);
                json.WriteString("status", entry.Status.ToString());
                json.WriteString("description", entry.Description);
                json.WriteNumber("milliseconds", (long)entry.Duration.TotalMilliseconds);
                json.WriteEndObject();
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        await context.Response.BodyWriter.FlushAsync(context.RequestAborted);
        if (context.Response.StatusCode == StatusCodes.Status200OK)
        {
            context.RequestServices.GetRequiredService<FirstHealthAnswer>().Record();
        }
    }

    /// <summary>What went wrong, for an anonymous caller: the engine's error code and words, never a host, path or stack.</summary>
    internal static string Reason(Exception error) => error switch
    {
        SqliteException sqlite => $"SQLite error {sqlite.SqliteErrorCode.ToString(CultureInfo.InvariantCulture)} ({sqlite.SqliteExtendedErrorCode.ToString(CultureInfo.InvariantCulture)})",
        PostgresException postgres => $"PostgreSQL {postgres.SqlState}: {postgres.MessageText}",
        OperationCanceledException or TimeoutException or NpgsqlException { InnerException: TimeoutException } => "no answer in time",
        _ => error.GetType().Name,
    };
}

/// <summary>
/// When this node first answered /health with 200: a load balancer's cue to send it work. Start-up work that may wait (the
/// submission warm-up) waits for it, so that it does not hold up the answer that puts the node back in service.
/// </summary>
public sealed class FirstHealthAnswer
{
    private readonly TaskCompletionSource _answered = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task Given => _answered.Task;

    internal void Record() => _answered.TrySetResult();

    /// <summary>
    /// Returns once the node serves and has answered its first /health with 200, or <paramref name="atMost"/> after it serves
    /// when nothing asks: when start-up work that may wait begins, so that it does not take the cores from the answer that puts
    /// the node back in service (issue 14, restart and cold start). Says when it began serving and how long it then waited.
    /// </summary>
    public async Task<(DateTimeOffset ServingSince, TimeSpan Waited)> ServingAndAnsweredAsync(
        IHostApplicationLifetime lifetime, TimeProvider clock, TimeSpan atMost, CancellationToken stopping)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using (lifetime.ApplicationStarted.Register(() => started.TrySetResult()))
        using (stopping.Register(() => started.TrySetCanceled(stopping)))
        {
            await started.Task;
        }
        var servingSince = clock.GetUtcNow();
        // Real time, not the app's clock: a test's clock that stands still must not hold start-up's work for ever.
        var waited = System.Diagnostics.Stopwatch.StartNew();
        if (atMost > TimeSpan.Zero)
        {
            await Task.WhenAny(Given, Task.Delay(atMost, stopping));
            stopping.ThrowIfCancellationRequested();
        }
        return (servingSince, waited.Elapsed);
    }
}

/// <summary>store-write: one committed write, as every command makes one, timed.</summary>
public sealed class StoreWrite(Database database, IOptionsMonitor<HealthSettings> settings, TimeProvider clock) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var limits = settings.CurrentValue;
        var started = clock.GetTimestamp();
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(limits.WriteTimeoutSeconds));
            // Through the path every command takes: a long queue of writers shows here as a slow or a failed probe. The probe
            // stops waiting at its limit; a write already under way (held up by another process's lock: SQLite's BEGIN waits
            // for it in the busy handler, on the calling thread, hence Task.Run) finishes on its own.
            await Task.Run(() => database.WriteAsync(async (connection, transaction) =>
            {
                if (database.ChangeWriterLock is { } changeWriters)
                {
                    await connection.ExecuteAsync(new CommandDefinition(
                        $"SET LOCAL lock_timeout = '{limits.WriteTimeoutSeconds.ToString(CultureInfo.InvariantCulture)}s'", transaction: transaction, cancellationToken: timeout.Token));
                    await connection.ExecuteAsync(new CommandDefinition(changeWriters, transaction: transaction, cancellationToken: timeout.Token));
                    // The lock every command's change row takes, without writing one: a table another session holds is found here.
                    await connection.ExecuteAsync(new CommandDefinition("LOCK TABLE change IN ROW EXCLUSIVE MODE", transaction: transaction, cancellationToken: timeout.Token));
                }
                await connection.ExecuteAsync(new CommandDefinition("UPDATE store_health SET checked_at = @now, checked_by = @node WHERE id = 1",
                    new { now = clock.GetUtcNow(), node = Environment.MachineName }, transaction, cancellationToken: timeout.Token));
            }, timeout.Token), timeout.Token).WaitAsync(timeout.Token);
        }
        catch (Exception error) when (error is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return HealthCheckResult.Unhealthy($"The {database.Provider} store takes no writes: {StoreHealth.Reason(error)}.", error);
        }
        var took = clock.GetElapsedTime(started);
        return took.TotalMilliseconds > limits.SlowWriteMilliseconds
            ? HealthCheckResult.Degraded($"The {database.Provider} store takes writes slowly: {took.TotalMilliseconds:F0} ms (over {limits.SlowWriteMilliseconds} ms).")
            : HealthCheckResult.Healthy($"The {database.Provider} store takes writes.");
    }
}

/// <summary>
/// store-integrity: SQLite's PRAGMA quick_check, which finds a corrupt page a write would fail on. It reads the whole
/// file, so it runs at most once per Health:IntegrityCheckMinutes and probes in between answer what it found.
/// The first check after start-up runs in the background: on a store of years it takes tens of seconds (20 s for 1.6 GB,
/// issue 14), and a restarted node that takes writes (store-write) should not wait that long to be put back in service.
/// Until it ends the check says it is running; a corrupt file is Unhealthy from the probe after it ends.
/// PostgreSQL checks its own pages as it reads them; there is nothing cheap to add here.
/// </summary>
public sealed class StoreIntegrity(Database database, IOptionsMonitor<HealthSettings> settings, TimeProvider clock) : IHealthCheck
{
    private sealed record Checked(DateTimeOffset At, HealthCheckResult Result);

    private readonly SemaphoreSlim _running = new(1, 1);
    private volatile Checked? _last;
    private Task? _first;

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        if (database.Provider != StoreProvider.Sqlite)
        {
            return HealthCheckResult.Healthy("PostgreSQL checks its own pages.");
        }
        await _running.WaitAsync(cancellationToken);
        try
        {
            var now = clock.GetUtcNow();
            if (_last is null)
            {
                _first ??= Task.Run(async () => _last = new Checked(now, await QuickCheckAsync(CancellationToken.None)), CancellationToken.None);
                if (!_first.IsCompleted)
                {
                    return HealthCheckResult.Healthy($"SQLite quick_check, the first since start-up, is running (since {FhirInstant(now)}); its result is reported here when it ends.");
                }
            }
            if (_last is { } last && now - last.At < TimeSpan.FromMinutes(settings.CurrentValue.IntegrityCheckMinutes))
            {
                return last.Result;
            }
            var result = await QuickCheckAsync(cancellationToken);
            _last = new Checked(now, result);
            return result;
        }
        finally
        {
            _running.Release();
        }
    }

    private async Task<HealthCheckResult> QuickCheckAsync(CancellationToken cancellationToken)
    {
        var at = FhirInstant(clock.GetUtcNow());
        try
        {
            await using var connection = await database.OpenAsync(cancellationToken);
            // The first fault is enough to know: quick_check(1) stops there.
            var found = (await connection.QueryAsync<string>(new CommandDefinition("PRAGMA quick_check(1)", cancellationToken: cancellationToken))).ToList();
            return found is ["ok"]
                ? HealthCheckResult.Healthy($"SQLite quick_check found no fault at {at}.")
                : HealthCheckResult.Unhealthy($"SQLite quick_check found the store corrupt at {at}: {string.Join("; ", found)}. Restore it from a backup.");
        }
        catch (Exception error) when (error is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return HealthCheckResult.Unhealthy($"SQLite quick_check could not read the store at {at}: {StoreHealth.Reason(error)}.", error);
        }
    }

    private static string FhirInstant(DateTimeOffset at) => at.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
}

/// <summary>change-feed: Degraded while a committed change has waited too long to reach this node's live screens.</summary>
public sealed class ChangeFeedLag(Database database, ChangeFeed feed, IOptionsMonitor<HealthSettings> settings, TimeProvider clock) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var published = feed.Published;
        if (published < 0)
        {
            return HealthCheckResult.Healthy("The change feed is starting.");
        }
        try
        {
            await using var connection = await database.OpenAsync(cancellationToken);
            var waiting = await connection.QuerySingleAsync<(long Count, DateTimeOffset? Oldest)>(new CommandDefinition(
                "SELECT COUNT(*), MIN(at) FROM change WHERE seq > @published", new { published }, cancellationToken: cancellationToken));
            var behind = waiting.Oldest is { } oldest ? clock.GetUtcNow() - oldest : TimeSpan.Zero;
            return behind.TotalSeconds > settings.CurrentValue.ChangeFeedBehindSeconds
                ? HealthCheckResult.Degraded($"Live screens are behind: {waiting.Count} committed changes not yet pushed, the oldest {behind.TotalSeconds:F0} s ago (after change {published}).")
                : HealthCheckResult.Healthy($"Live screens are up to date (change {published}).");
        }
        catch (Exception error) when (error is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return HealthCheckResult.Unhealthy($"The change feed's position could not be read: {StoreHealth.Reason(error)}.", error);
        }
    }
}
