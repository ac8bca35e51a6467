using CareCoordination.Tests.Support;
using Microsoft.Data.Sqlite;

namespace CareCoordination.Tests.Store;

/// <summary>
/// The store's start-up steps run beside the pipeline's set-up (issue 14, restart), but the node must still serve nothing
/// until they have ended: a store that cannot be migrated stops the start, it is never a node that answers.
/// </summary>
public sealed class StartUpTests
{
    [Fact]
    public async Task Start_WhenTheStoreCannotBeMigrated_FailsAndServesNothing()
    {
        await using var app = new AppFactory();
        // A folder where the store should be: the first connection, the migrations', fails.
        var file = app.ReplaceSqliteStoreWithFolder();
        try
        {
            var failure = Assert.ThrowsAny<Exception>(() => app.CreateBrowserlessClient());
            Assert.IsType<SqliteException>(failure.GetBaseException());
        }
        finally
        {
            Directory.Delete(file);
        }
    }
}
