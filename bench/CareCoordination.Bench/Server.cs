using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

using System.Globalization;

namespace CareCoordination.Bench;

/// <summary>
/// A server under test in its own process (the product, or the bare app), on a free loopback port: started, waited for
/// until /health answers 200 (how long that took is the start-up figure), and stopped gracefully (SIGTERM) so that
/// SQLite checkpoints and the store's size afterwards is the store's own.
/// </summary>
public sealed partial class Server : IAsyncDisposable
{
    private readonly Process _process;
    private readonly Queue<string> _lastLines = new();
    private bool _disposed;

    /// <summary>Servers still running: killed if the bench itself is stopped (Ctrl+C, SIGTERM) or fails, so none is left behind.</summary>
    private static readonly HashSet<Process> Running = [];

    private static readonly List<PosixSignalRegistration> Signals = [];

    static Server()
    {
        AppDomain.CurrentDomain.ProcessExit += (_, _) => KillAll();
        AppDomain.CurrentDomain.UnhandledException += (_, _) => KillAll();
        // A signal ends the bench without ProcessExit: the children are stopped first, then the signal takes its course.
        foreach (var signal in new[] { PosixSignal.SIGTERM, PosixSignal.SIGINT, PosixSignal.SIGHUP })
        {
            Signals.Add(PosixSignalRegistration.Create(signal, _ => KillAll()));
        }
    }

    private static void KillAll()
    {
        lock (Running)
        {
            foreach (var process in Running.Where(p => !p.HasExited))
            {
                Console.Error.WriteLine($"bench: stopping server process {process.Id}");
                process.Kill(entireProcessTree: true);
            }
        }
    }

    public Uri BaseAddress { get; }

    /// <summary>From process start to the first 200 from /health.</summary>
    public TimeSpan StartedIn { get; private set; }

    public string Name { get; }

    private Server(string name, Process process, Uri baseAddress)
    {
        Name = name;
        _process = process;
        BaseAddress = baseAddress;
    }

    /// <summary>docs/deployment.md's DOTNET_GCgen0size: 64 MB, in the hexadecimal the runtime reads.</summary>
    public const string DeployedGen0Size = "0x4000000";

    /// <summary>
    /// The product (as published, or the Release build: <see cref="Product"/>) run as `dotnet CareCoordination.Web.dll`, with settings as environment variables; or
    /// another build of it (an older one, to measure before and after in one run).
    /// </summary>
    public static Task<Server> StartProductAsync(string name, IDictionary<string, string> settings, string? dll = null)
    {
        dll ??= Product.Dll;
        if (!File.Exists(dll))
        {
            throw new FileNotFoundException("build the product first (the bench's project reference does it): " + dll);
        }
        return StartAsync(name, dll, [], settings, Path.GetDirectoryName(dll)!);
    }

    /// <summary>The bare app: this exe again, with the bare-app subcommand.</summary>
    public static Task<Server> StartBareAppAsync(string name, IEnumerable<string> arguments) =>
        StartAsync(name, typeof(Server).Assembly.Location, ["bare-app", .. arguments], new Dictionary<string, string>(), AppContext.BaseDirectory);

    private static async Task<Server> StartAsync(string name, string dll, IEnumerable<string> arguments, IDictionary<string, string> settings, string directory)
    {
        var port = FreePort();
        var baseAddress = new Uri($"http://127.0.0.1:{port}");
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(dll);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        start.ArgumentList.Add("--urls");
        start.ArgumentList.Add(baseAddress.ToString().TrimEnd('/'));
        start.Environment["DOTNET_ENVIRONMENT"] = "Production";
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        // The runtime setting docs/deployment.md gives a node (a 64 MB young generation), given to the product and the bare app
        // alike, so that no ratio is bought by tuning one side. Set in the bench's own environment (inherited), it is left as given.
        start.Environment.TryAdd("DOTNET_GCgen0size", DeployedGen0Size);
        foreach (var (key, value) in settings)
        {
            start.Environment[key] = value;
        }
        var clock = Stopwatch.StartNew();
        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start " + dll);
        lock (Running)
        {
            Running.Add(process);
        }
        var server = new Server(name, process, baseAddress);
        // Read both pipes always: a child writing to a full pipe would stall and be measured as slow.
        process.OutputDataReceived += (_, e) => server.Keep(e.Data);
        process.ErrorDataReceived += (_, e) => server.Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        using var http = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(5) };
        while (true)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"{name} exited with {process.ExitCode} before it was healthy:\n{server.LastLines()}");
            }
            if (clock.Elapsed > TimeSpan.FromSeconds(120))
            {
                await server.DisposeAsync();
                throw new TimeoutException($"{name} was not healthy within 120 s:\n{server.LastLines()}");
            }
            try
            {
                using var response = await http.GetAsync("/health");
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    break;
                }
            }
            catch (HttpRequestException)
            {
                // not listening yet
            }
            await Task.Delay(10);
        }
        server.StartedIn = clock.Elapsed;
        // The product loads its deprivation lookup once it has answered its first /health (HostSetup): whatever is measured
        // next (a store's size before the load, memory before boards connect) is taken once that has ended, not during it.
        while (await LoadingAsync(http))
        {
            if (process.HasExited || clock.Elapsed > TimeSpan.FromSeconds(180))
            {
                await server.DisposeAsync();
                throw new TimeoutException($"{name} exited, or its start-up loads had not ended within 180 s:\n{server.LastLines()}");
            }
            await Task.Delay(20);
        }
        return server;
    }

    /// <summary>Whether /health says a start-up load is under way; an answer that is not 200 (a slow store) is asked again.</summary>
    private static async Task<bool> LoadingAsync(HttpClient http)
    {
        using var response = await http.GetAsync("/health");
        return response.StatusCode != HttpStatusCode.OK
            || (await response.Content.ReadAsStringAsync()).Contains("\"description\":\"Loading", StringComparison.Ordinal);
    }

    public int Id => _process.Id;

    /// <summary>Resident memory (VmRSS), in bytes.</summary>
    public long ResidentBytes()
    {
        foreach (var line in File.ReadLines($"/proc/{Id}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
            }
        }
        throw new InvalidOperationException("No VmRSS");
    }

    /// <summary>User plus system CPU time the process has used.</summary>
    public TimeSpan CpuTime()
    {
        // /proc/pid/stat: fields 14 and 15 (utime, stime) in clock ticks, counted after the ")" that ends the name.
        var stat = File.ReadAllText($"/proc/{Id}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        return TimeSpan.FromSeconds(ticks / 100.0);
    }

    private void Keep(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_lastLines)
        {
            _lastLines.Enqueue(line);
            while (_lastLines.Count > 60)
            {
                _lastLines.Dequeue();
            }
        }
    }

    public string LastLines()
    {
        lock (_lastLines)
        {
            return string.Join('\n', _lastLines);
        }
    }

    /// <summary>SIGTERM, as a service manager stops it, and wait; killed if it has not stopped in 30 s.</summary>
    public async Task StopAsync()
    {
        if (_process.HasExited)
        {
            return;
        }
        _ = Kill(_process.Id, 15);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            await _process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        await StopAsync();
        lock (Running)
        {
            Running.Remove(_process);
        }
        _process.Dispose();
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    [LibraryImport("libc", EntryPoint = "kill")]
    private static partial int Kill(int pid, int signal);
}
