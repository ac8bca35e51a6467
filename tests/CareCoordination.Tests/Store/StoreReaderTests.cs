using System.ComponentModel;
using CareCoordination.Store;
using CareCoordination.Tests.Support;
using Dapper;

namespace CareCoordination.Tests.Store;

/// <summary>
/// Every command the app reads through is disposed on the thread that used it. A command left to the finalizer has its SQLite
/// statements finalized on the finalizer thread, on a native connection another thread may hold from the pool by then: in
/// multi-thread mode that corrupted SQLite's memory and crashed the process (StoreReader). Each case watches its command's
/// Disposed event.
/// </summary>
public sealed class StoreReaderTests : IAsyncLifetime
{
    private Database _database = null!;

    public async Task InitializeAsync() => _database = await new SqliteTestStore().MigratedAsync();

    public async Task DisposeAsync() => await _database.DisposeAsync();

    /// <summary>Whether the command has been disposed, from now on.</summary>
    private static Func<bool> Watch(System.Data.IDbCommand command)
    {
        var disposed = false;
        ((Component)command).Disposed += (_, _) => disposed = true;
        return () => disposed;
    }

    [Fact]
    public async Task ARowReaderDisposedAsynchronously_DisposesItsCommand()
    {
        await using var connection = await _database.OpenAsync();
        Func<bool> disposed;
        await using (var rows = await connection.ReadRowsAsync(new CommandDefinition("SELECT id FROM organisation")))
        {
            disposed = Watch(((IWrappedDataReader)rows.Reader).Command);
            while (await rows.Reader.ReadAsync())
            {
            }
        }

        Assert.True(disposed(), "the command was left to the finalizer");
    }

    [Fact]
    public async Task DappersOwnReaderDisposedAsynchronously_LeavesItsCommand_WhichIsWhyTheAppDoesNotUseIt()
    {
        await using var connection = await _database.OpenAsync();
        Func<bool> disposed;
        // The call the build refuses in the app (BannedSymbols.txt). If a Dapper upgrade disposes the command, this fails: then
        // StoreReader can go.
        await using (var reader = await connection.ExecuteReaderAsync(new CommandDefinition("SELECT id FROM organisation")))
        {
            disposed = Watch(((IWrappedDataReader)reader).Command);
        }

        Assert.False(disposed());
    }

    [Fact]
    public async Task AGridOfResultsDisposedAsynchronously_DisposesItsCommand()
    {
        // Page.ReadAsync and a transaction's answer read their grids this way.
        await using var connection = await _database.OpenAsync();
        Func<bool> disposed;
        await using (var grids = await connection.QueryMultipleAsync("SELECT COUNT(*) FROM organisation; SELECT id FROM organisation"))
        {
            disposed = Watch(grids.Command);
            await grids.ReadSingleAsync<long>();
            await grids.ReadAsync<long>();
        }

        Assert.True(disposed(), "the grid's command was left to the finalizer");
    }
}
