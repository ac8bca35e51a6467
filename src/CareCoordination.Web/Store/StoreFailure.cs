using Microsoft.Data.Sqlite;
using Npgsql;

namespace CareCoordination.Store;

/// <summary>
/// Whether a failure is the store out of reach (down, cut off, busy past its wait, out of time) rather than a fault in what
/// was asked of it: only then may a page tell its user "the store did not answer".
/// </summary>
public static class StoreFailure
{
    public static bool IsUnreachable(Exception failure) => failure switch
    {
        TimeoutException => true,
        // Connection exceptions (08), insufficient resources (53), an operator's intervention such as a shutdown (57P); and any
        // error that ends the session (FATAL), which is the server refusing the connection itself (a database not taking
        // connections, or gone), never a fault in a statement, which is an ERROR.
        PostgresException postgres => postgres.InvariantSeverity is "FATAL" or "PANIC" || postgres.SqlState.StartsWith("08", StringComparison.Ordinal)
            || postgres.SqlState.StartsWith("53", StringComparison.Ordinal) || postgres.SqlState.StartsWith("57P", StringComparison.Ordinal),
        NpgsqlException npgsql => npgsql.IsTransient,
        // SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR, SQLITE_CANTOPEN.
        SqliteException sqlite => sqlite.SqliteErrorCode is 5 or 6 or 10 or 14,
        _ => false,
    };
}
