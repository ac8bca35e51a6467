using System.Diagnostics;
using System.Text.RegularExpressions;
using Dapper;
using Npgsql;

namespace CareCoordination.Testing;

/// <summary>
/// Where a test process keeps the stores it makes: a folder of its own, removed when the process ends (as far as the test
/// runner lets it finish), and PostgreSQL databases named for the process, which it leaves (./test.sh throws its whole server
/// away). Each test process first removes what test processes no longer running left. A process id says whether its process
/// runs on this machine only: a server or temp folder shared with test processes elsewhere (another machine, a container)
/// is outside what this can tell. Before this every run left its stores for good: after a few days a developer's machine
/// held 20 GB of SQLite files and a PostgreSQL server 1,766 databases, whose autovacuum alone took a quarter of two cores.
/// </summary>
/// <remarks>Linked into both test projects (one file, not a copy).</remarks>
internal static partial class TestScratch
{
    private const string RunPrefix = "run-";

    /// <summary>Under the temp folder, as before; each test process has a folder of its own in it.</summary>
    internal static string Root { get; } = Path.Combine(Path.GetTempPath(), "carecoordination-tests");

    private static readonly Lazy<string> OwnFolder = new(MakeFolder);
    private static readonly Lock Sweeping = new();
    private static Task? _databasesSwept;

    /// <summary>This process's folder: anything a test writes here goes when the process ends.</summary>
    public static string Folder => OwnFolder.Value;

    /// <summary>A new path in this process's folder, nothing there yet: <paramref name="name"/>, a unique part, <paramref name="extension"/>.</summary>
    public static string NewPath(string name = "", string extension = "") => Path.Combine(Folder, $"{name}{Guid.NewGuid():N}{extension}");

    /// <summary>A new, empty folder in this process's folder.</summary>
    public static string NewFolder(string name) => Directory.CreateDirectory(NewPath(name)).FullName;

    /// <summary>
    /// A new, empty database on the server, named for this process (<paramref name="kind"/> is empty or ends in an underscore);
    /// the process's first also sweeps what test processes no longer running left there.
    /// </summary>
    public static async Task<string> NewDatabaseAsync(string server, string kind = "")
    {
        await SweepDatabasesOnceAsync(server);
        var name = DatabaseName(kind);
        await using var connection = new NpgsqlConnection(server);
        await connection.OpenAsync();
        await connection.ExecuteAsync($"CREATE DATABASE {name}");
        return name;
    }

    internal static string DatabaseName(string kind = "") => $"cc_{kind}p{Environment.ProcessId}_{Guid.NewGuid():N}";

    private static Task SweepDatabasesOnceAsync(string server)
    {
        lock (Sweeping)
        {
            return _databasesSwept ??= SweepDatabasesAsync(server);
        }
    }

    /// <summary>
    /// Drops the databases named (<see cref="DatabaseName"/>) for a process that is not running. Best effort: tidying must not
    /// fail the tests, so what cannot be dropped now is said and left for the next sweep.
    /// </summary>
    internal static async Task SweepDatabasesAsync(string server)
    {
        try
        {
            var admin = new NpgsqlConnectionStringBuilder(server) { Database = "postgres", Pooling = false }.ConnectionString;
            await using var connection = new NpgsqlConnection(admin);
            await connection.OpenAsync();
            var names = await connection.QueryAsync<string>("SELECT datname FROM pg_database WHERE datname LIKE 'cc\\_%'");
            foreach (var name in names)
            {
                if (OwnerOf(name) is { } pid && !IsRunning(pid))
                {
                    try
                    {
                        // Not WITH (FORCE): should the process be running after all (somewhere its id does not reach), its open
                        // connections make the drop fail rather than end them.
                        await connection.ExecuteAsync($"DROP DATABASE IF EXISTS \"{name}\"", commandTimeout: 120);
                    }
                    catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException)
                    {
                        Console.Error.WriteLine($"TestScratch: {name} left for the next sweep: {ex.Message}");
                    }
                }
            }
        }
        catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException or TimeoutException)
        {
            Console.Error.WriteLine($"TestScratch: the sweep of earlier runs' databases stopped: {ex.Message}");
        }
    }

    /// <summary>Removes the folders of test processes that are not running.</summary>
    internal static void SweepFolders(string root)
    {
        foreach (var folder in Directory.EnumerateDirectories(root, RunPrefix + "*"))
        {
            if (int.TryParse(Path.GetFileName(folder).AsSpan(RunPrefix.Length), out var pid) && pid != Environment.ProcessId && !IsRunning(pid))
            {
                Remove(folder);
            }
        }
    }

    internal static int? OwnerOf(string databaseName) =>
        DatabaseNamePattern().Match(databaseName) is { Success: true } match
        && int.TryParse(match.Groups[1].ValueSpan, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var pid) ? pid : null;

    [GeneratedRegex("^cc_(?:[a-z]+_)?p([0-9]+)_[0-9a-f]{32}$")]
    private static partial Regex DatabaseNamePattern();

    private static string MakeFolder()
    {
        Directory.CreateDirectory(Root);
        SweepFolders(Root);
        var folder = Directory.CreateDirectory(Path.Combine(Root, RunPrefix + Environment.ProcessId)).FullName;
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Remove(folder);
        return folder;
    }

    private static bool IsRunning(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    private static void Remove(string folder)
    {
        try
        {
            Directory.Delete(folder, recursive: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Gone already (another process swept it), or still held: left for the next sweep.
        }
    }
}
