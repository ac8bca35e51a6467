using Microsoft.Data.Sqlite;

namespace CareCoordination.Store;

/// <summary>
/// Who is running on a SQLite store: a file beside it (the store's path and ".node") that every node holds open with a shared
/// lock for as long as it runs, and that a restore takes alone. PostgreSQL's restore asks the server who is connected;
/// SQLite has no server to ask, and a restore under a running node replaced the store beneath it, whose change numbers,
/// caches and live screens then went on from a store that was no longer there. The operating system lets go of a lock when
/// its process ends, however it ends: a node that crashed leaves nothing that blocks a restore, and the file itself is only a
/// name to lock (it stays empty; deleting it while a node runs would let a restore past).
/// </summary>
public sealed class SqliteNodeMark : IDisposable
{
    private readonly FileStream _held;

    private SqliteNodeMark(FileStream held) => _held = held;

    /// <summary>The mark of the store a connection string names, or null for one with no file (in memory).</summary>
    public static string? PathOf(string connectionString)
    {
        var store = new SqliteConnectionStringBuilder(connectionString);
        return store.Mode == SqliteOpenMode.Memory || string.IsNullOrEmpty(store.DataSource) || store.DataSource == ":memory:"
            ? null
            : Path.GetFullPath(store.DataSource) + ".node";
    }

    /// <summary>A node's mark, held until it stops: beside other nodes', refused while a restore runs.</summary>
    public static SqliteNodeMark? ForNode(string connectionString) => Take(connectionString, FileShare.ReadWrite | FileShare.Delete,
        store => new InvalidOperationException($"A restore is running on the store {store}: start the app once it has finished."));

    /// <summary>A restore's mark, held while it writes: refused while any node runs on the store, and keeping nodes from starting.</summary>
    public static SqliteNodeMark? ForRestore(string connectionString) => Take(connectionString, FileShare.None,
        store => new BackupFailure($"CareCoordination is still running on this store ({store}): stop every node of the app, then restore. Nothing was restored."));

    private static SqliteNodeMark? Take(string connectionString, FileShare share, Func<string, Exception> refused)
    {
        if (PathOf(connectionString) is not { } mark)
        {
            return null;
        }
        try
        {
            // Opened to read: the lock is all it is for, so a mark another user made (a restore run as root) is no bar to a
            // node, and .NET takes the shared lock on every file system (for a handle opened to write it skips network ones).
            return new SqliteNodeMark(new FileStream(mark, FileMode.OpenOrCreate, FileAccess.Read, share));
        }
        catch (IOException taken) when (IsLockHeld(taken))
        {
            throw refused(mark[..^".node".Length]);
        }
    }

    // The lock held elsewhere: EWOULDBLOCK (Linux 11, macOS 35), or Windows' sharing and lock violations. Any other failure
    // (a disk full, a folder that may not be written) is itself, not a node or a restore.
    private static bool IsLockHeld(IOException taken) =>
        taken.HResult is 11 or 35 or unchecked((int)0x80070020) or unchecked((int)0x80070021);

    public void Dispose() => _held.Dispose();
}
