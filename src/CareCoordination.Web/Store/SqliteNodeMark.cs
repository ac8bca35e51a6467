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
        store => new BackupFailure($"CareCoordination is still running on this store ({store}): stop every node of the app, then restore."));

    private static SqliteNodeMark? Take(string connectionString, FileShare share, Func<string, Exception> refused)
    {
        if (PathOf(connectionString) is not { } mark)
        {
            return null;
        }
        try
        {
            return new SqliteNodeMark(new FileStream(mark, FileMode.OpenOrCreate, FileAccess.ReadWrite, share));
        }
        // The lock held elsewhere (a sharing violation is a bare IOException; a missing folder or no permission is not).
        catch (IOException taken) when (taken.GetType() == typeof(IOException))
        {
            throw refused(mark[..^".node".Length]);
        }
    }

    public void Dispose() => _held.Dispose();
}

/// <summary>This node's <see cref="SqliteNodeMark"/>, taken as it prepares the store and let go as the host is disposed.</summary>
public sealed class NodeMark(Database database) : IDisposable
{
    private SqliteNodeMark? _held;

    public void Take()
    {
        if (database.Provider == StoreProvider.Sqlite && _held is null)
        {
            _held = SqliteNodeMark.ForNode(database.ConnectionString);
        }
    }

    public void Dispose() => _held?.Dispose();
}
