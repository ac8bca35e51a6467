using SQLitePCL;

namespace CareCoordination.Store;

/// <summary>
/// SQLite's threading mode for this process: multi-thread, not serialized. Serialized (the library's default) takes the
/// connection's mutex in every call, each column read included; every connection here is used by one thread at a time (an
/// ADO.NET connection is: each read that runs beside others opens its own, and Microsoft.Data.Sqlite calls no SQLite function
/// that works across threads, such as sqlite3_interrupt), which is all multi-thread mode asks. A command or reader must still
/// be disposed, not left to the finalizer thread. PERF: a year's client-level events file reads about 7 million columns, and the mutex was 7-8% of its CPU
/// (perf, issue 13). SQLite also stops counting memory (its status counters, which take a global mutex on every
/// allocation); nothing here reads them. Both must be set before SQLite's first connection in the process: once one is open
/// SQLite refuses the change and keeps its defaults, which are as safe, only slower.
/// </summary>
internal static class SqliteThreading
{
    /// <summary>Whether this process runs SQLite in multi-thread mode (false if a connection was opened first).</summary>
    internal static bool MultiThread { get; private set; }

    private static readonly Lock Once = new();
    private static bool _configured;

    /// <summary>Called by the app (Database's first use) and by the bench before its own first connection; the first call sets it.</summary>
    internal static void Configure()
    {
        lock (Once)
        {
            if (_configured)
            {
                return;
            }
            _configured = true;
            Batteries_V2.Init();
            MultiThread = raw.sqlite3_config(raw.SQLITE_CONFIG_MULTITHREAD) == raw.SQLITE_OK;
            raw.sqlite3_config(raw.SQLITE_CONFIG_MEMSTATUS, 0);
        }
    }
}
