using System.Net;
using CareCoordination.Tests.Support;

namespace CareCoordination.Tests.Features.Health;

public sealed class HealthTests
{
    [Fact]
    public async Task Health_WhileTheStoreAnswers_Is200()
    {
        await using var app = new AppFactory();
        using var client = app.CreateBrowserlessClient();

        var response = await client.GetAsync("/health");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Health_WhenTheStoreIsGone_Is503()
    {
        await using var app = new AppFactory();
        using var client = app.CreateBrowserlessClient();
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/health")).StatusCode);

        // Pooling is off in tests, so the next connection opens the path afresh and finds a folder, not a store.
        var file = new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder(app.ConnectionString).DataSource;
        File.Delete(file);
        File.Delete(file + "-wal");
        File.Delete(file + "-shm");
        Directory.CreateDirectory(file);
        try
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, (await client.GetAsync("/health")).StatusCode);
        }
        finally
        {
            Directory.Delete(file);
        }
    }
}
