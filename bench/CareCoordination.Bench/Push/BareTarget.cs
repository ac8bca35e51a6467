namespace CareCoordination.Bench.Push;

/// <summary>
/// The bare reference (bare-app: ASP.NET Core + SignalR, the same Bundle parsed and the same rows written, no sign-in)
/// as its own process from this bench's own build, on a temp SQLite store. It keeps no change history, so what it
/// published is taken to be one change per acknowledged referral, identified by what any board received.
/// </summary>
public sealed class BareTarget : IPushTarget
{
    public const string Label = "bare";

    private readonly string _store = Path.Combine(Path.GetTempPath(), "cc-push-bare-" + Guid.NewGuid().ToString("N"));
    private readonly Submissions _submissions = new();
    private Server? _server;
    private HttpClient? _client;
    private int _acknowledged;
    private int _acknowledgedAtMark;

    public string Name => Label;

    public Server Server => _server ?? throw new InvalidOperationException("Not started");

    public Uri Hub => new(Server.BaseAddress, "hubs/live");

    public string StoreFile => Path.Combine(_store, "bare.db");

    // The bare hub asks for no sign-in; the board sends a token anyway, so both clients do the same work.
    public string Token => "bare";

    public async Task StartAsync()
    {
        Directory.CreateDirectory(_store);
        _server = await Server.StartBareAppAsync("bare app", ["--store", Path.Combine(_store, "bare.db")]);
        _client = new HttpClient { BaseAddress = Server.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
    }

    public void Mark() => _acknowledgedAtMark = Volatile.Read(ref _acknowledged);

    public async Task SubmitAsync()
    {
        using var response = await _client!.PostAsync("fhir", _submissions.NextContent());
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"bare POST /fhir answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }
        Interlocked.Increment(ref _acknowledged);
    }

    public Task<IReadOnlyList<long>> PublishedAsync(IReadOnlyList<Board> boards, long after)
    {
        // What any board got, plus a placeholder below zero for each acknowledged referral that no board got at all.
        var seen = boards.SelectMany(b => b.Received()).Select(r => r.Seq).Where(s => s > after).Distinct().Order().ToList();
        var acknowledged = Volatile.Read(ref _acknowledged) - _acknowledgedAtMark;
        for (var lost = 1; lost <= acknowledged - seen.Count; lost++)
        {
            seen.Add(-lost);
        }
        return Task.FromResult<IReadOnlyList<long>>(seen);
    }

    public async ValueTask DisposeAsync()
    {
        _client?.Dispose();
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
        try
        {
            Directory.Delete(_store, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
