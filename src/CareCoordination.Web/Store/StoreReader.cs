using System.Data.Common;
using Dapper;

namespace CareCoordination.Store;

/// <summary>
/// A reader of Dapper's that takes its command with it however it is disposed. Dapper's ExecuteReaderAsync hands back a reader
/// whose DisposeAsync disposes the reader only (its DbWrappedReader, 2.1.86; disposed synchronously it disposes both), so every
/// <c>await using</c> of one left the command, and on SQLite its compiled statements, to the finalizer thread. That thread
/// finalized them on a native connection another thread had taken from the pool meanwhile: in multi-thread mode
/// (SqliteThreading) SQLite's memory for that connection was corrupted and the process crashed (a segfault in
/// libe_sqlite3, found running the capacity board's fortnight under forced collections, issue 14). Every reader the app reads
/// row by row through Dapper asynchronously comes from here; the build refuses Dapper's ExecuteReaderAsync (BannedSymbols.txt).
/// (Dapper's QueryAsync, QueryMultipleAsync and the scalar calls dispose their commands themselves: StoreReaderTests.)
/// </summary>
public sealed class StoreReader : IAsyncDisposable
{
    private StoreReader(DbDataReader reader) => Reader = reader;

    public DbDataReader Reader { get; }

    public static async Task<StoreReader> ExecuteAsync(DbConnection connection, CommandDefinition command) =>
#pragma warning disable RS0030 // The one place Dapper's reader is made: its command is disposed below.
        new(await connection.ExecuteReaderAsync(command));
#pragma warning restore RS0030

    public async ValueTask DisposeAsync()
    {
        var command = (Reader as IWrappedDataReader)?.Command;
        try
        {
            await Reader.DisposeAsync();
        }
        finally
        {
            if (command is DbCommand owned)
            {
                await owned.DisposeAsync();
            }
            else
            {
                command?.Dispose();
            }
        }
    }
}

public static class StoreReaderExtensions
{
    /// <summary>Dapper's ExecuteReaderAsync, with the command disposed when the reader is (<see cref="StoreReader"/>).</summary>
    public static Task<StoreReader> ReadRowsAsync(this DbConnection connection, CommandDefinition command) => StoreReader.ExecuteAsync(connection, command);
}
