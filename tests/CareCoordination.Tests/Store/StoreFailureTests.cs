using CareCoordination.Store;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace CareCoordination.Tests.Store;

/// <summary>Which failures a page may call "the store did not answer", and which are faults in what was asked.</summary>
public sealed class StoreFailureTests
{
    [Fact]
    public void AStoreOutOfReach_IsUnreachable()
    {
        Assert.True(StoreFailure.IsUnreachable(new TimeoutException("The store did not answer in time.")));
        Assert.True(StoreFailure.IsUnreachable(new SqliteException("database is locked", 5)));
        Assert.True(StoreFailure.IsUnreachable(new SqliteException("unable to open database file", 14)));
        Assert.True(StoreFailure.IsUnreachable(new NpgsqlException("Failed to connect", new System.Net.Sockets.SocketException())));
        Assert.True(StoreFailure.IsUnreachable(new PostgresException("the database system is shutting down", "FATAL", "FATAL", "57P03")));
        Assert.True(StoreFailure.IsUnreachable(new PostgresException("too many connections", "FATAL", "FATAL", "53300")));
        Assert.True(StoreFailure.IsUnreachable(new PostgresException("database \"cc\" is not currently accepting connections", "FATAL", "FATAL", "55000")));
    }

    [Fact]
    public void AFaultInWhatWasAsked_IsNot()
    {
        Assert.False(StoreFailure.IsUnreachable(new SqliteException("no such column: x", 1)));
        Assert.False(StoreFailure.IsUnreachable(new SqliteException("UNIQUE constraint failed", 19)));
        Assert.False(StoreFailure.IsUnreachable(new PostgresException("syntax error", "ERROR", "ERROR", "42601")));
        Assert.False(StoreFailure.IsUnreachable(new PostgresException("could not serialize access", "ERROR", "ERROR", "40001")));
        Assert.False(StoreFailure.IsUnreachable(new PostgresException("lastval is not yet defined in this session", "ERROR", "ERROR", "55000")));
        Assert.False(StoreFailure.IsUnreachable(new InvalidOperationException("A bug.")));
    }
}
