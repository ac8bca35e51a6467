using System.Diagnostics;
using CareCoordination.Testing;
using CareCoordination.Tests.Support;
using Dapper;
using Npgsql;

namespace CareCoordination.Tests.Store;

/// <summary>
/// The tests' own stores do not pile up (TestScratch): what a test process that is no longer running left is removed, and
/// nothing of a running one is touched, whichever process it is.
/// </summary>
public sealed class TestScratchTests
{
    [Fact]
    public void A_FinishedRunsFolder_IsRemoved_ARunningOnesIsKept()
    {
        var root = TestScratch.NewFolder("scratch-");
        try
        {
            var finished = Directory.CreateDirectory(Path.Combine(root, $"run-{FinishedProcessId()}")).FullName;
            File.WriteAllText(Path.Combine(finished, "store.db"), "left behind");
            var running = Directory.CreateDirectory(Path.Combine(root, $"run-{Environment.ProcessId}")).FullName;
            using var other = Process.Start(new ProcessStartInfo("sleep", "30") { UseShellExecute = false })!;
            var otherRunning = Directory.CreateDirectory(Path.Combine(root, $"run-{other.Id}")).FullName;
            var notARun = Directory.CreateDirectory(Path.Combine(root, "backups-kept")).FullName;
            try
            {
                TestScratch.SweepFolders(root);

                Assert.False(Directory.Exists(finished));
                Assert.True(Directory.Exists(running));
                Assert.True(Directory.Exists(otherRunning));
                Assert.True(Directory.Exists(notARun));
            }
            finally
            {
                other.Kill();
            }
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public async Task A_FinishedRunsDatabase_IsDropped_ARunningOnesIsKept()
    {
        var server = Environment.GetEnvironmentVariable(PostgresTestStore.Variable)
            ?? throw new InvalidOperationException($"{PostgresTestStore.Variable} is not set: run the tests with ./test.sh, which starts a throwaway PostgreSQL.");
        var finished = $"cc_p{FinishedProcessId()}_{Guid.NewGuid():N}";
        var finishedBrowser = $"cc_browser_p{FinishedProcessId()}_{Guid.NewGuid():N}";
        var running = TestScratch.DatabaseName();
        var notOurs = $"cc_kept_{Guid.NewGuid():N}";
        await using var admin = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(server) { Database = "postgres", Pooling = false }.ConnectionString);
        await admin.OpenAsync();
        foreach (var name in new[] { finished, finishedBrowser, running, notOurs })
        {
            await admin.ExecuteAsync($"CREATE DATABASE \"{name}\"");
        }
        try
        {
            await TestScratch.SweepDatabasesAsync(server);

            var left = (await admin.QueryAsync<string>("SELECT datname FROM pg_database")).ToHashSet();
            Assert.DoesNotContain(finished, left);
            Assert.DoesNotContain(finishedBrowser, left);
            Assert.Contains(running, left);
            Assert.Contains(notOurs, left);
        }
        finally
        {
            foreach (var name in new[] { finished, finishedBrowser, running, notOurs })
            {
                await admin.ExecuteAsync($"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
            }
        }
    }

    [Theory]
    [InlineData("cc_p123_0123456789abcdef0123456789abcdef", 123)]
    [InlineData("cc_browser_p9_0123456789abcdef0123456789abcdef", 9)]
    [InlineData("cc_0123456789abcdef0123456789abcdef", null)]
    [InlineData("cc_p99999999999_0123456789abcdef0123456789abcdef", null)]
    [InlineData("cc_bench_123_product", null)]
    [InlineData("postgres", null)]
    public void A_DatabasesOwner_IsReadFromItsName(string name, int? owner) => Assert.Equal(owner, TestScratch.OwnerOf(name));

    /// <summary>The id of a process that has run and ended, so is not running.</summary>
    private static int FinishedProcessId()
    {
        using var process = Process.Start(new ProcessStartInfo("true") { UseShellExecute = false })!;
        process.WaitForExit();
        return process.Id;
    }
}
