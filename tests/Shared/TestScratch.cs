using System.Diagnostics;
using System.Text.RegularExpressions;
using Dapper;
using Npgsql;

namespace CareCoordination.Testing;

/// <summary>
/// Where a test process keeps the stores it makes: a folder of its own, removed when the process ends, and PostgreSQL
/// databases named for the process. A process that is killed leaves both behind, so each test process first removes what
/// processes no longer running left. Before this every run left its stores for good: after a few days a developer's machine
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

    /// <summary>A new database name, marked with this process (<paramref name="kind"/> is empty or ends in an underscore).</summary>
    public static string DatabaseName(string kind = "") => $"cc_{kind}p{Environment.ProcessId}_{Guid.NewGuid():N}";

    /// <summary>Once a process, before its first database: drops what test processes no longer running left on the server.</summary>
    public static Task SweepDatabasesOnceAsync(string server)
    {
        lock (Sweeping)
        {
            return _databasesSwept ??= SweepDatabasesAsync(server);
        }
    }

    /// <summary>Drops the databases named (<see cref="DatabaseName"/>) for a process that is not running.</summary>
    internal static async Task SweepDatabasesAsync(string server)
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
                    await connection.ExecuteAsync($"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                }
                catch (PostgresException)
                {
                    // Another test process sweeping at the same time got there first, or it is in use after all: left for the next.
                }
            }
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
        DatabaseNamePattern().Match(databaseName) is { Success: true } match ? int.Parse(match.Groups[1].ValueSpan, System.Globalization.CultureInfo.InvariantCulture) : null;

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
