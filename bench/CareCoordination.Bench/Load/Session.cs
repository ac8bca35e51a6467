using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;

namespace CareCoordination.Bench.Load;

/// <summary>
/// One server under test through a run: cold-started on a new store, stopped so that the store can be measured, started
/// again with a client (the partner's token on the product) and one live capacity board; at the end stopped, its store
/// measured and counted (every acknowledged referral stored, every new triage task heard on the board) and restarted on
/// the store it left.
/// </summary>
public sealed class Session
{
    private const string PartnerClient = "demo-acute-trust";

    private readonly Func<bool, Task<Server>> _start;
    private readonly string? _partnerSecret;
    private Server? _server;
    private LiveBoard? _board;
    private long _acknowledged;
    private long _bytesBefore;
    private long _referralsBefore;

    public string Name { get; }

    public StoreUnderTest Store { get; }

    public HttpClient Http { get; private set; } = null!;

    public TimeSpan ColdStart { get; private set; }

    /// <summary>The median of its restarts on the store it left.</summary>
    public TimeSpan Restart => _restarts.Order().ElementAt(_restarts.Count / 2);

    private readonly List<TimeSpan> _restarts = [];

    public double BytesPerReferral { get; private set; }

    public long Referrals { get; private set; }

    public long StoreBytes { get; private set; }

    private Dictionary<string, long> _tablesBefore = [];

    /// <param name="start">Starts the server; true: on the store a previous start left.</param>
    /// <param name="partnerSecret">The demo partner's secret, for a server that wants a token (the product).</param>
    private Session(string name, StoreUnderTest store, Func<bool, Task<Server>> start, string? partnerSecret)
    {
        Name = name;
        Store = store;
        _start = start;
        _partnerSecret = partnerSecret;
    }

    public static async Task<Session> OpenAsync(string name, StoreUnderTest store, Func<bool, Task<Server>> start, string? partnerSecret, int connections)
    {
        var session = new Session(name, store, start, partnerSecret);
        await store.CreateAsync();
        Console.WriteLine($"-- {name}: cold start");
        var server = await start(false);
        session.ColdStart = server.StartedIn;
        await server.DisposeAsync();
        session._bytesBefore = await store.SizeAsync();
        session._referralsBefore = await store.CountAsync("referral");
        session._tablesBefore = await store.BytesByTableAsync();
        session._server = await start(true);
        try
        {
            var token = await session.ConnectAsync(connections);
            session._board = await LiveBoard.ConnectAsync(session._server.BaseAddress, token);
            return session;
        }
        catch
        {
            // Never leave a server running behind a failed run.
            await session.StopAsync();
            throw;
        }
    }

    /// <summary>
    /// One new referral, POSTed as a partner would; null when it was acknowledged 2xx, else what came back. Minimal: with
    /// Prefer: return=minimal, answered with each entry's status and location only, as the bare app answers.
    /// </summary>
    public Func<CancellationToken, Task<string?>> Submit(Submissions submissions, bool minimal = false) => async cancellation =>
    {
        using var post = new HttpRequestMessage(HttpMethod.Post, "/fhir") { Content = new StringContent(submissions.Next().Json, Encoding.UTF8, "application/fhir+json") };
        if (minimal)
        {
            post.Headers.Add("Prefer", "return=minimal");
        }
        using var response = await Http.SendAsync(post, cancellation);
        if (!response.IsSuccessStatusCode)
        {
            var body = await response.Content.ReadAsStringAsync(cancellation);
            return $"{(int)response.StatusCode} {body[..Math.Min(body.Length, 300)]}";
        }
        Interlocked.Increment(ref _acknowledged);
        return null;
    };

    public Func<CancellationToken, Task<string?>> Read(string path) => async cancellation =>
    {
        using var response = await Http.GetAsync(path, HttpCompletionOption.ResponseContentRead, cancellation);
        return response.IsSuccessStatusCode ? null : $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync(cancellation)}";
    };

    /// <summary>Checks the board and the store against what was acknowledged, measures the store, and restarts on it.</summary>
    public async Task CloseAsync()
    {
        var report = Report.Current;
        var acknowledged = Interlocked.Read(ref _acknowledged);
        var heard = await _board!.AwaitAsync(acknowledged);
        Console.WriteLine($"-- {Name}: a capacity board on /hubs/live heard of {heard:N0} of the {acknowledged:N0} new triage tasks");
        report.Check(heard == acknowledged, $"{Store.Kind} {Name}: a capacity board on /hubs/live heard of {heard} of {acknowledged} new triage tasks");
        await _board.DisposeAsync();
        Http.Dispose();
        await _server!.DisposeAsync();

        StoreBytes = await Store.SizeAsync();
        Referrals = await Store.CountAsync("referral");
        report.Check(Referrals - _referralsBefore == acknowledged,
            $"{Store.Kind} {Name}: {acknowledged} submissions acknowledged but {Referrals - _referralsBefore} referrals stored");
        BytesPerReferral = (StoreBytes - _bytesBefore) / (double)Math.Max(1, Referrals - _referralsBefore);
        // Where the growth went, table by table (SQLite's dbstat): what to look at to make it smaller.
        var grown = (await Store.BytesByTableAsync())
            .Select(t => (t.Key, Bytes: (t.Value - _tablesBefore.GetValueOrDefault(t.Key)) / (double)Math.Max(1, Referrals - _referralsBefore)))
            .Where(t => t.Bytes >= 16).OrderByDescending(t => t.Bytes).ToList();
        if (grown.Count > 0)
        {
            Console.WriteLine($"-- {Name}: growth per referral by table and index: " + string.Join(", ", grown.Select(t => $"{t.Key} {t.Bytes:N0} B")));
        }

        await RestartAsync();
    }

    /// <summary>One more restart on the store it left, timed to its first healthy /health, then stopped.</summary>
    public async Task RestartAsync()
    {
        Console.WriteLine($"-- {Name}: restart on the store it left ({Referrals:N0} referrals)");
        _server = await _start(true);
        _restarts.Add(_server.StartedIn);
        await _server.DisposeAsync();
    }

    /// <summary>CPU time the server has used so far.</summary>
    public TimeSpan ServerCpu() => _server!.CpuTime();

    /// <summary>Stops the server if a failure left it running.</summary>
    public async Task StopAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
    }

    /// <summary>A client with room for the submitting connections and the readers; for the product, with the partner's token.</summary>
    private async Task<string?> ConnectAsync(int connections)
    {
        var handler = new SocketsHttpHandler { MaxConnectionsPerServer = connections + 4, PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5) };
        Http = new HttpClient(handler) { BaseAddress = _server!.BaseAddress, Timeout = TimeSpan.FromSeconds(100) };
        if (_partnerSecret is null)
        {
            return null;
        }
        var response = await Http.PostAsync("/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials", ["client_id"] = PartnerClient, ["client_secret"] = _partnerSecret,
        }));
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"{Name} refused the demo partner's token request: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        }
        var token = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("access_token").GetString();
        Http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return token;
    }
}
