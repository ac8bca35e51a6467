using System.Text.Json;
using Microsoft.AspNetCore.SignalR;

namespace CareCoordination.Bench.BareApp;

/// <summary>
/// The bare reference app: ASP.NET Core with nothing but what a referral needs. POST /fhir takes the same transaction
/// Bundle the product takes, parses the JSON, writes the five rows (BareStore, one transaction, durable before the
/// answer) and broadcasts the change on a SignalR hub shaped as the product's /hubs/live: Subscribe(topic) answers the
/// last seq published, and each change arrives as method "change". No sign-in, no validation, no profile check, no
/// audit, no FHIR versions: what the product adds is the difference. Run as its own process:
/// <c>bare-app --urls http://127.0.0.1:5099 [--store file.db | --postgres "Host=..." --database name] [--connections 16] [--existing]</c>.
/// </summary>
public static class BareApp
{
    public static async Task<int> RunAsync(Options options)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.UseUrls(options.Get("urls", "http://127.0.0.1:5099"));
        builder.Services.AddSignalR();
        var connections = options.Int("connections", 16);
        await using var store = options.Postgres is { } postgres
            ? await BareStore.OpenPostgresAsync(postgres, options.Get("database", "cc_bench_bare_app"), connections, create: !options.Has("existing"))
            : await BareStore.OpenSqliteAsync(options.Get("store") ?? Path.Combine(Path.GetTempPath(), $"cc-bench-bare-{Environment.ProcessId}.db"), connections);
        // --existing: a restart on the store a previous run left (SQLite: the schema is made only in a new file).
        builder.Services.AddSingleton(store);
        builder.Services.AddSingleton<BarePublished>();

        var app = builder.Build();
        app.MapGet("/health", () => Results.Ok(new { status = "Healthy" }));
        app.MapPost("/fhir", SubmitAsync);
        app.MapHub<BareLiveHub>("/hubs/live");
        await app.RunAsync();
        return 0;
    }

    private static async Task<IResult> SubmitAsync(HttpRequest request, BareStore store, BarePublished published, IHubContext<BareLiveHub> hub,
        CancellationToken cancellation)
    {
        var body = new MemoryStream();
        await request.Body.CopyToAsync(body, cancellation);
        BareReferral referral;
        try
        {
            referral = BareReferral.Parse(body.GetBuffer().AsSpan(0, (int)body.Length));
        }
        catch (Exception e) when (e is FormatException or JsonException or KeyNotFoundException or InvalidOperationException)
        {
            return Results.BadRequest(new { error = e.Message });
        }
        var now = DateTimeOffset.UtcNow;
        long seq, referralId, taskId;
        try
        {
            (seq, referralId, taskId) = await store.WriteAsync(referral, now, cancellation);
        }
        catch (System.Data.Common.DbException e) when (e.SqlState == "23505" || e is Microsoft.Data.Sqlite.SqliteException { SqliteErrorCode: 19 })
        {
            // A person or referral identifier already stored: the product would match or refuse it; the bare app only says so.
            return Results.Conflict(new { error = e.Message });
        }
        published.Advance(seq);
        var data = JsonSerializer.SerializeToElement(new { referralId, queue = "coordination", status = "requested" });
        // After the commit, as the product's change feed does: the new triage task is pushed to the capacity board and the
        // coordination queue (the product's LiveTopics put a task change on both).
        foreach (var topic in BareLiveHub.ReferralTopics)
        {
            await hub.Clients.Group(topic).SendAsync(BareLiveHub.Method,
                new BareChange(seq, "task.created", "triage_task", taskId, now, null, null, data, topic), cancellation);
        }
        return Results.Json(new
        {
            resourceType = "Bundle",
            type = "transaction-response",
            entry = new object[]
            {
                new { response = new { status = "201 Created", location = $"Patient/{referralId}/_history/1" } },
                new { response = new { status = "201 Created", location = $"ServiceRequest/{referralId}/_history/1" } },
            },
        }, contentType: "application/fhir+json");
    }
}

/// <summary>The highest seq broadcast so far: what Subscribe answers, as the product's feed.Published.</summary>
public sealed class BarePublished
{
    private long _seq;

    public long Seq => Interlocked.Read(ref _seq);

    public void Advance(long seq)
    {
        var seen = Interlocked.Read(ref _seq);
        while (seq > seen && Interlocked.CompareExchange(ref _seq, seq, seen) is var was && was != seen)
        {
            seen = was;
        }
    }
}

/// <summary>A change as the product's LiveChange carries it (same field names and order), so one client reads both.</summary>
public sealed record BareChange(
    long Seq, string Kind, string EntityType, long Id, DateTimeOffset At, long? OrganisationId, string? Actor, JsonElement? Data, string Topic);

/// <summary>/hubs/live of the bare app: the product's hub's shape without its sign-in and topic grants.</summary>
public sealed class BareLiveHub(BarePublished published) : Hub
{
    public const string Method = "change";

    /// <summary>The product's topic names (LiveTopics) a new triage task is pushed on.</summary>
    public static readonly string[] ReferralTopics = ["capacity", "queue/coordination"];

    public async Task<long> Subscribe(string topic)
    {
        await Groups.AddToGroupAsync(Context.ConnectionId, topic, Context.ConnectionAborted);
        return published.Seq;
    }

    public Task Unsubscribe(string topic) => Groups.RemoveFromGroupAsync(Context.ConnectionId, topic, Context.ConnectionAborted);
}
