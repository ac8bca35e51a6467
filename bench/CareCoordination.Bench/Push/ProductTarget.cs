using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;

namespace CareCoordination.Bench.Push;

/// <summary>
/// CareCoordination itself: the Release build of src/CareCoordination.Web on a temp SQLite store with the demo county.
/// A board connects as the demo partner system with one client-credentials token (as a board screen's own
/// service would), and referrals arrive as a partner sends them: a FHIR transaction Bundle of the profiles'
/// Patient and ServiceRequest examples, POST /fhir. Each one's triage task is one capacity change.
/// </summary>
public sealed class ProductTarget(string? dll = null, string name = ProductTarget.Label) : IPushTarget
{
    private const string PartnerSecret = "Bench-Partner-Secret-1";
    private readonly string _store = Path.Combine(Path.GetTempPath(), "cc-push-" + Guid.NewGuid().ToString("N"));
    private Server? _server;
    private HttpClient? _partner;
    private string? _token;
    private readonly Submissions _submissions = new();

    public const string Label = "CareCoordination";

    public string Name => name;

    public Server Server => _server ?? throw new InvalidOperationException("Not started");

    public Uri Hub => new(Server.BaseAddress, "hubs/live");

    public string StoreFile => Path.Combine(_store, "cc.db");

    public string Token => _token ?? throw new InvalidOperationException("Not started");

    public async Task StartAsync()
    {
        Directory.CreateDirectory(_store);
        _server = await Server.StartProductAsync("CareCoordination", new Dictionary<string, string>
        {
            ["ConnectionStrings__CareCoordination"] = "Data Source=" + Path.Combine(_store, "cc.db"),
            ["Database__Provider"] = "Sqlite",
            ["Demo__Seed"] = "true",
            ["Demo__Password"] = "Bench-Password-1",
            ["Demo__PartnerSecret"] = PartnerSecret,
            ["DataProtection__KeysPath"] = Path.Combine(_store, "keys"),
            ["Logging__LogLevel__Default"] = "Warning",
        }, dll);
        _partner = new HttpClient { BaseAddress = Server.BaseAddress, Timeout = TimeSpan.FromSeconds(30) };
        using var form = new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials",
            ["client_id"] = "demo-acute-trust",
            ["client_secret"] = PartnerSecret,
        });
        var response = await _partner.PostAsync("oauth/token", form);
        response.EnsureSuccessStatusCode();
        _token = (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("access_token").GetString()!;
        _partner.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", _token);
    }

    public async Task SubmitAsync()
    {
        using var content = _submissions.NextContent();
        using var response = await _partner!.PostAsync("fhir", content);
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"POST /fhir answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        }
    }

    /// <summary>The server's own list of capacity changes after seq: what every board must have had.</summary>
    public void Mark()
    {
    }

    public async Task<IReadOnlyList<long>> PublishedAsync(IReadOnlyList<Board> boards, long after)
    {
        var board = boards[0];
        var seqs = new List<long>();
        while (true)
        {
            var page = await board.InvokeAsync<PushedChange[]>("GetChangesSince", after);
            seqs.AddRange(page.Where(c => c.Topic == "capacity").Select(c => c.Seq));
            if (page.Length < 1000)
            {
                return seqs.Distinct().Order().ToList();
            }
            after = page[^1].Seq;
        }
    }

    public async ValueTask DisposeAsync()
    {
        _partner?.Dispose();
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
