using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace CareCoordination.Bench.Load;

/// <summary>
/// A server under test in its own process (the product, or the bare app), on a free loopback port: started, waited for
/// until /health answers 200 (how long that took is the start-up figure), and stopped gracefully (SIGTERM) so that
/// SQLite checkpoints and the store's size afterwards is the store's own.
/// </summary>
public sealed partial class Server : IAsyncDisposable
{
    private readonly Process _process;
    private readonly Queue<string> _lastLines = new();

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

    /// <summary>The product, a Release build run as `dotnet CareCoordination.Web.dll`, with settings as environment variables.</summary>
    public static Task<Server> StartProductAsync(string name, IDictionary<string, string> settings)
    {
        var dll = Repository.ProductDll;
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
        foreach (var (key, value) in settings)
        {
            start.Environment[key] = value;
        }
        var clock = Stopwatch.StartNew();
        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start " + dll);
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
        return server;
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
        await StopAsync();
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
