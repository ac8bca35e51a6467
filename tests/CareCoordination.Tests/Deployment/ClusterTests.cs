using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using CareCoordination.Features.Live;
using CareCoordination.Store;
using CareCoordination.Tests.Support;
using Dapper;
using Hl7.Fhir.Model;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR.Client;
using Xunit.Abstractions;
using Task = System.Threading.Tasks.Task;

namespace CareCoordination.Tests.Deployment;

/// <summary>
/// The several-node deployment of docs/deployment.md, started by its own script (run-cluster.sh): two nodes
/// on a fresh PostgreSQL database and the gateway in front, each its own process, from this test's build.
/// </summary>
public sealed class ClusterTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task TwoNodesBehindTheGateway_ShareChangesAndSignIns_AndTheGatewayServesOnWhenANodeIsKilled()
    {
        var database = await new PostgresTestStore().CreateEmptyAsync();
        var started = Stopwatch.StartNew();
        await using var cluster = await Cluster.StartAsync(database);
        output.WriteLine($"cluster ready in {started.Elapsed.TotalSeconds:0.0} s");
        var (nodeA, nodeB) = (cluster.Nodes[0], cluster.Nodes[1]);
        try
        {
            // A coordinator signs in on node A; their board on node B reads node A's cookie and listens to the queue.
            var coordinator = new HandCookies();
            using (var onA = coordinator.Client(nodeA.Url))
            {
                Assert.Equal(HttpStatusCode.Redirect, (await SignInForm.PostAsync(onA, "coordinator", Cluster.Password)).StatusCode);
            }
            await using var boardOnB = await Board.OpenAsync(nodeB.Url, coordinator.Value("carecoordination"));
            // Through the gateway too, over WebSockets: negotiation and socket must reach the same node, which
            // the affinity cookie ensures (round robin would otherwise send them to different nodes).
            await using var boardViaGateway = await Board.OpenAsync(cluster.GatewayUrl, coordinator.Value("carecoordination"));

            // A partner sends the documented referral transaction to node A...
            using var partnerOnA = new HttpClient { BaseAddress = new Uri(nodeA.Url) };
            var token = await FhirPartner.TokenAsync(partnerOnA, secret: Cluster.PartnerSecret);
            partnerOnA.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
            var example = await File.ReadAllTextAsync(Path.Combine(Cluster.RepositoryRoot, "docs", "examples", "referral-transaction.json"));
            var reply = await FhirPartner.ParseAsync<Bundle>(await partnerOnA.PostAsync("/fhir", new StringContent(example, Encoding.UTF8, "application/fhir+json")));
            var location = reply.Entry.Select(e => e.Response?.Location).Single(l => l?.StartsWith("ServiceRequest/", StringComparison.Ordinal) == true)!;
            var referralId = long.Parse(location.Split('/')[1], System.Globalization.CultureInfo.InvariantCulture);

            // ...and its triage task arrives on node B's board, and on the board behind the gateway.
            var sent = Stopwatch.StartNew();
            await boardOnB.TaskCreatedForAsync(referralId);
            output.WriteLine($"node B's board had the task {sent.ElapsedMilliseconds} ms after node A answered");
            await boardViaGateway.TaskCreatedForAsync(referralId);

            // Node A dies. The gateway takes it out of service...
            nodeA.Kill();
            var outage = await UntilEveryNewBrowserIsServedAsync(cluster.GatewayUrl);
            output.WriteLine($"gateway stopped sending to the killed node within {outage.TotalSeconds:0.0} s");

            // ...and node B serves through it: the session made on node A, the partner's token from node A,
            // the referral sent to node A, a new sign-in, and FHIR links naming the gateway.
            using (var viaGateway = coordinator.Client(cluster.GatewayUrl))
            {
                var me = await viaGateway.GetAsync("/api/me");
                Assert.Equal(HttpStatusCode.OK, me.StatusCode);
                Assert.Contains("coordinator", await me.Content.ReadAsStringAsync(), StringComparison.Ordinal);
            }
            using (var partnerViaGateway = new HttpClient { BaseAddress = new Uri(cluster.GatewayUrl) })
            {
                partnerViaGateway.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
                var referral = await FhirPartner.ParseAsync<ServiceRequest>(await partnerViaGateway.GetAsync($"/fhir/ServiceRequest/{referralId}"));
                Assert.Equal(referralId.ToString(System.Globalization.CultureInfo.InvariantCulture), referral.Id);
                Assert.Equal($"{cluster.GatewayUrl}/fhir", await Forwarded.FhirBaseAsync(partnerViaGateway));
            }
            using (var referrer = new HandCookies().Client(cluster.GatewayUrl))
            {
                Assert.Equal(HttpStatusCode.Redirect, (await SignInForm.PostAsync(referrer, "referrer", Cluster.Password)).StatusCode);
            }

            // Both nodes started together on an empty store, and made one key ring between them.
            await using var store = new Database(StoreProvider.PostgreSQL, database);
            await using var connection = await store.OpenAsync();
            Assert.Equal(1, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM data_protection_key"));
            output.WriteLine($"whole run {started.Elapsed.TotalSeconds:0.0} s");
        }
        catch
        {
            output.WriteLine(cluster.Log);
            throw;
        }
    }

    /// <summary>
    /// Until the gateway sends nothing to a dead node: six requests in a row from browsers it has not pinned
    /// (round robin would give the dead node every other one) all answer. How long that took.
    /// </summary>
    private static async Task<TimeSpan> UntilEveryNewBrowserIsServedAsync(string gatewayUrl)
    {
        var waited = Stopwatch.StartNew();
        var inARow = 0;
        while (inARow < 6)
        {
            Assert.True(waited.Elapsed < Patience, $"the gateway still sent requests to the killed node after {Patience.TotalSeconds} s");
            using var browser = new HttpClient(new SocketsHttpHandler { UseCookies = false }) { BaseAddress = new Uri(gatewayUrl) };
            inARow = (await browser.GetAsync("/health")).StatusCode == HttpStatusCode.OK ? inARow + 1 : 0;
            await Task.Delay(100);
        }
        return waited.Elapsed;
    }

    /// <summary>A coordination queue screen on /hubs/live, signed in with the coordinator's cookie, over WebSockets.</summary>
    private sealed class Board : IAsyncDisposable
    {
        private readonly HubConnection _connection;
        private readonly Channel<JsonElement> _changes = Channel.CreateUnbounded<JsonElement>();

        private Board(HubConnection connection)
        {
            _connection = connection;
            _connection.On<JsonElement>(LiveChange.Method, change => _changes.Writer.TryWrite(change));
        }

        public static async Task<Board> OpenAsync(string baseUrl, string session)
        {
            var cookies = new CookieContainer();
            cookies.Add(new Uri(baseUrl), new Cookie("carecoordination", session));
            var board = new Board(new HubConnectionBuilder()
                .WithUrl($"{baseUrl}/hubs/live", HttpTransportType.WebSockets, options => options.Cookies = cookies)
                .Build());
            await board._connection.StartAsync();
            await board._connection.InvokeAsync<long>("Subscribe", LiveTopics.CoordinationQueue);
            return board;
        }

        public async Task TaskCreatedForAsync(long referralId)
        {
            using var patience = new CancellationTokenSource(Patience);
            while (true)
            {
                var change = await _changes.Reader.ReadAsync(patience.Token);
                if (change.GetProperty("kind").GetString() == "task.created"
                    && change.GetProperty("data").TryGetProperty("referralId", out var id) && id.GetInt64() == referralId)
                {
                    return;
                }
            }
        }

        public ValueTask DisposeAsync() => _connection.DisposeAsync();
    }

    /// <summary>run-cluster.sh as a child process, on random free ports of 127.0.0.1; every process it started is killed on dispose.</summary>
    private sealed class Cluster : IAsyncDisposable
    {
        public const string Password = "Cluster-Demo-Password-1";
        public const string PartnerSecret = "Cluster-Partner-Secret-1";

        private readonly Process _script;
        private readonly string _state;
        private readonly StringBuilder _log = new();
        private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);

        private Cluster(Process script, string state)
        {
            _script = script;
            _state = state;
        }

        public static string RepositoryRoot { get; } = FindRepositoryRoot();

        public List<Node> Nodes { get; } = [];

        public string GatewayUrl { get; private set; } = "";

        public string Log
        {
            get
            {
                lock (_log)
                {
                    return _log.ToString();
                }
            }
        }

        public static async Task<Cluster> StartAsync(string connectionString)
        {
            var ports = FreePorts(3);
            var state = Testing.TestScratch.NewFolder("cluster-");
            var start = new ProcessStartInfo("bash", [Path.Combine(RepositoryRoot, "src", "CareCoordination.Gateway", "run-cluster.sh")])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
                Environment =
                {
                    ["CARECOORDINATION_DB"] = connectionString,
                    ["GATEWAY_PORT"] = ports[0].ToString(System.Globalization.CultureInfo.InvariantCulture),
                    ["NODE_PORTS"] = $"{ports[1]} {ports[2]}",
                    ["HEALTH_CHECK_SECONDS"] = "1",
                    // This test's build holds both apps (the test project references them): nothing to publish.
                    ["CLUSTER_BIN"] = AppContext.BaseDirectory,
                    ["CLUSTER_STATE"] = state,
                    ["STOP_WITH_PID"] = Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    ["Demo__Seed"] = "true",
                    ["Demo__Password"] = Password,
                    ["Demo__PartnerSecret"] = PartnerSecret,
                },
            };
            var cluster = new Cluster(new Process { StartInfo = start, EnableRaisingEvents = true }, state);
            cluster._script.OutputDataReceived += (_, line) => cluster.Read(line.Data);
            cluster._script.ErrorDataReceived += (_, line) => cluster.Read(line.Data);
            cluster._script.Exited += (_, _) => cluster._ready.TrySetException(new InvalidOperationException("run-cluster.sh stopped before the cluster was ready."));
            cluster._script.Start();
            cluster._script.BeginOutputReadLine();
            cluster._script.BeginErrorReadLine();
            try
            {
                await cluster._ready.Task.WaitAsync(TimeSpan.FromSeconds(90));
            }
            catch (Exception failure)
            {
                await cluster.DisposeAsync();
                throw new InvalidOperationException($"The cluster did not start: {failure.Message}\n{cluster.Log}", failure);
            }
            return cluster;
        }

        private void Read(string? line)
        {
            if (line is null)
            {
                return;
            }
            lock (_log)
            {
                _log.AppendLine(line);
                // "node-1 pid=123 url=http://127.0.0.1:5081", "gateway pid=... url=...", then "cluster ready: ...".
                var fields = line.Split(' ');
                if (fields is [var name, var pid, var url] && pid.StartsWith("pid=", StringComparison.Ordinal) && url.StartsWith("url=", StringComparison.Ordinal))
                {
                    if (name == "gateway")
                    {
                        GatewayUrl = url[4..];
                    }
                    else
                    {
                        Nodes.Add(new Node(name, int.Parse(pid[4..], System.Globalization.CultureInfo.InvariantCulture), url[4..]));
                    }
                }
                if (line.StartsWith("cluster ready: ", StringComparison.Ordinal))
                {
                    _ready.TrySetResult();
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            // The script stops its processes when it is stopped; killing its whole tree also covers a script that hangs.
            if (!_script.HasExited)
            {
                _script.Kill(entireProcessTree: true);
            }
            foreach (var node in Nodes)
            {
                node.Kill();
            }
            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await _script.WaitForExitAsync(wait.Token);
            _script.Dispose();
            Directory.Delete(_state, recursive: true);
        }

        private static List<int> FreePorts(int count)
        {
            var listeners = Enumerable.Range(0, count).Select(_ => new TcpListener(IPAddress.Loopback, 0)).ToList();
            listeners.ForEach(l => l.Start());
            var ports = listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port).ToList();
            listeners.ForEach(l => l.Stop());
            return ports;
        }

        private static string FindRepositoryRoot()
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "CareCoordination.sln")))
                {
                    return dir.FullName;
                }
            }
            throw new DirectoryNotFoundException("No CareCoordination.sln above " + AppContext.BaseDirectory);
        }
    }

    private sealed record Node(string Name, int Pid, string Url)
    {
        /// <summary>Killed outright, as a crash or a pulled plug would: no graceful shutdown.</summary>
        public void Kill()
        {
            try
            {
                using var process = Process.GetProcessById(Pid);
                // Only while it is still ours: a pid can be reused once its process has gone.
                if (process.ProcessName == "dotnet")
                {
                    process.Kill();
                    process.WaitForExit(TimeSpan.FromSeconds(10));
                }
            }
            catch (ArgumentException)
            {
                // Already gone.
            }
        }
    }
}
