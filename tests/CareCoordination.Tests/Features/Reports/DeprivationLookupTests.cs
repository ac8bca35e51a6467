using Microsoft.Extensions.DependencyInjection;
using CareCoordination.Features.Reports;
using CareCoordination.Store;
using CareCoordination.Tests.Support;
using Dapper;
using Microsoft.Extensions.Logging.Abstractions;

namespace CareCoordination.Tests.Features.Reports;

/// <summary>
/// The deprivation lookup: the demo county's illustrative files loaded at start-up, and the loader over files laid out as
/// the published ones, each test on a store of its own (the host's lookup is the demo's and stays so).
/// </summary>
public abstract class DeprivationLookupTests(AppFactory app, ITestStore store)
{
    private const string PostcodeHeader = "pcd7,pcd8,pcds,dointr,doterm,usertype,oa11cd,lsoa11cd,msoa11cd,ladcd,lsoa11nm,msoa11nm,ladnm,ladnmw";

    private const string IndexHeader =
        "\"LSOA code (2011)\",\"LSOA name (2011)\",\"Local Authority District code (2019)\",\"Local Authority District name (2019)\","
        + "\"Index of Multiple Deprivation (IMD) Score\",\"Index of Multiple Deprivation (IMD) Rank (where 1 is most deprived)\","
        + "\"Index of Multiple Deprivation (IMD) Decile (where 1 is most deprived 10% of LSOAs)\"";

    private sealed record Source
    {
        public string PostcodeFile { get; init; } = "";
        public long Postcodes { get; init; }
        public long Areas { get; init; }
    }

    [Fact]
    public async Task StartUp_LoadsTheDemoCountysIllustrativeLookup_AndEveryDemoPostcodeHasADecile()
    {
        // Start-up loads it beside serving; what reads it waits for this.
        await app.Services.GetRequiredService<DeprivationLookup>().WhenLoadedAsync(CancellationToken.None);
        await using var connection = await app.OpenAsync();
        var source = await connection.QuerySingleAsync<Source>(
            "SELECT postcode_file AS PostcodeFile, postcodes AS Postcodes, areas AS Areas FROM deprivation_source");
        Assert.EndsWith(DeprivationSettings.DemoPostcodeLookupFile, source.PostcodeFile, StringComparison.Ordinal);
        // Every WM postcode the demo can make (12 districts x 9 sectors x 20 x 20 unit letters), in 4 LSOAs a sector.
        Assert.Equal((43_200L, 432L), (source.Postcodes, source.Areas));
        var people = await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM person WHERE postcode IS NOT NULL");
        var placed = await connection.ExecuteScalarAsync<long>(
            """
            SELECT COUNT(*) FROM person p JOIN deprivation_postcode dp ON dp.postcode = p.postcode
            JOIN deprivation_area da ON da.lsoa_code = dp.lsoa_code
            """);
        Assert.True(people > 0);
        Assert.Equal(people, placed);
    }

    [Fact]
    public void Settings_OneFileWithoutTheOther_IsRefused()
    {
        Assert.Throws<InvalidOperationException>(() => DeprivationLookup.FilesFrom(new DeprivationSettings { IndexFile = "x.csv" }, demoSeeded: true));
        Assert.Null(DeprivationLookup.FilesFrom(new DeprivationSettings(), demoSeeded: false));
        Assert.EndsWith(DeprivationSettings.DemoIndexFile, DeprivationLookup.FilesFrom(new DeprivationSettings(), demoSeeded: true)!.Value.Index,
            StringComparison.Ordinal);
    }

    [Fact]
    public async Task Load_TheSameFilesAgain_IsLeftAlone_AndAChangedFileReplacesTheLookup()
    {
        await using var database = await store.MigratedAsync();
        var lookup = new DeprivationLookup(database, TimeProvider.System, NullLogger<DeprivationLookup>.Instance);
        var (postcodes, index) = Files(
            [
                "\"AB1 2CD\",\"AB1  2CD\",\"AB1 2CD\",\"198001\",\"\",\"0\",\"E00000001\",\"E01000001\",\"E02000001\",\"E06000001\",\"A 001A\",\"A 001\",\"A\",\"\"",
                // A postcode written with no space: read as the store keeps it.
                "\"AB1 3EF\",\"AB1  3EF\",\"ab13ef\",\"198001\",\"\",\"0\",\"E00000002\",\"E01000002\",\"E02000001\",\"E06000001\",\"A 001B\",\"A 001\",\"A\",\"\"",
            ],
            ["E01000001,A 001A,E06000001,A,50.1,300,1", "E01000002,A 001B,E06000001,A,5.2,30000,10"]);

        Assert.Equal(DeprivationLoadOutcome.Loaded, await lookup.LoadAsync(postcodes, index, []));
        Assert.Equal(DeprivationLoadOutcome.Unchanged, await lookup.LoadAsync(postcodes, index, []));
        Assert.Equal([("AB1 2CD", 1), ("AB1 3EF", 10)], await DecilesAsync(database));

        await File.WriteAllLinesAsync(index, [IndexHeader, "E01000001,A 001A,E06000001,A,50.1,300,2", "E01000002,A 001B,E06000001,A,5.2,30000,9"]);
        Assert.Equal(DeprivationLoadOutcome.Loaded, await lookup.LoadAsync(postcodes, index, []));
        Assert.Equal([("AB1 2CD", 2), ("AB1 3EF", 9)], await DecilesAsync(database));

        // A narrower set of local authorities is a change too, though no file changed.
        Assert.Equal(DeprivationLoadOutcome.Loaded, await lookup.LoadAsync(postcodes, index, ["E06000999"]));
        Assert.Empty(await DecilesAsync(database));
    }

    [Fact]
    public async Task Load_AskedForWhileStartUpsLoadRuns_WaitsForIt_AndIsTheLookupLeft()
    {
        await using var database = await store.MigratedAsync();
        var lookup = new DeprivationLookup(database, TimeProvider.System, NullLogger<DeprivationLookup>.Instance);
        const string Postcode = "\"AB1 2CD\",\"AB1  2CD\",\"AB1 2CD\",\"198001\",\"\",\"0\",\"E00000001\",\"E01000001\",\"E02000001\",\"E06000001\",\"A 001A\",\"A 001\",\"A\",\"\"";
        var (postcodes, index) = Files([Postcode], ["E01000001,A 001A,E06000001,A,50.1,300,3"]);
        // Start-up's files say decile 7, and its postcode file is a pipe: its load stays at the first read until the test writes.
        var (startupPostcodes, startupIndex) = Files([Postcode], ["E01000001,A 001A,E06000001,A,50.1,300,7"]);
        var held = startupPostcodes + ".pipe";
        using (var mkfifo = System.Diagnostics.Process.Start("mkfifo", held))
        {
            await mkfifo.WaitForExitAsync();
            Assert.Equal(0, mkfifo.ExitCode);
        }
        lookup.StartLoading(held, startupIndex, [], CancellationToken.None);

        var load = lookup.LoadAsync(postcodes, index, []);
        // Loaded beside it, the one-postcode load would commit in milliseconds (seconds, with start-up's read holding a pool
        // thread in a blocking open), and start-up's would undo it once the pipe is written.
        await Task.WhenAny(load, Task.Delay(TimeSpan.FromSeconds(3)));
        Assert.False(load.IsCompleted);

        // The file is read twice (its hash, then its rows). Once start-up's first read has the pipe open, the plain file takes
        // the pipe's name, so the second read opens that; then the pipe is written and closed, and the first read ends.
        await Task.Run(() =>
        {
            using var pipe = new FileStream(held, FileMode.Open, FileAccess.Write);
            File.Copy(startupPostcodes, held + ".plain");
            File.Move(held + ".plain", held, overwrite: true);
            pipe.Write(File.ReadAllBytes(startupPostcodes));
        }).WaitAsync(TimeSpan.FromSeconds(30));
        await lookup.WhenLoadedAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(DeprivationLoadOutcome.Loaded, await load.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal([("AB1 2CD", 3)], await DecilesAsync(database));
    }

    [Fact]
    public async Task Load_AFileWithoutTheDecileColumn_IsRefused_AndTheLookupLoadedBeforeStays()
    {
        await using var database = await store.MigratedAsync();
        var lookup = new DeprivationLookup(database, TimeProvider.System, NullLogger<DeprivationLookup>.Instance);
        var (postcodes, index) = Files(
            ["\"AB1 2CD\",\"AB1  2CD\",\"AB1 2CD\",\"198001\",\"\",\"0\",\"E00000001\",\"E01000001\",\"E02000001\",\"E06000001\",\"A 001A\",\"A 001\",\"A\",\"\""],
            ["E01000001,A 001A,E06000001,A,50.1,300,4"]);
        await lookup.LoadAsync(postcodes, index, []);

        await File.WriteAllLinesAsync(index, ["\"LSOA code (2011)\",\"Index of Multiple Deprivation (IMD) Score\"", "E01000001,50.1"]);
        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => lookup.LoadAsync(postcodes, index, []));
        Assert.Contains("Index of Multiple Deprivation (IMD) Decile", refused.Message, StringComparison.Ordinal);
        Assert.Equal([("AB1 2CD", 4)], await DecilesAsync(database));
    }

    private static (string Postcodes, string Index) Files(string[] postcodeRows, string[] indexRows)
    {
        var folder = Testing.TestScratch.NewPath("deprivation-");
        Directory.CreateDirectory(folder);
        var postcodes = Path.Combine(folder, "PCD_OA_LSOA_MSOA_LAD_TEST_UK_LU.csv");
        var index = Path.Combine(folder, "File_7_-_All_IoD2019_Scores__Ranks__Deciles_and_Population_Denominators_3.csv");
        File.WriteAllLines(postcodes, [PostcodeHeader, .. postcodeRows]);
        File.WriteAllLines(index, [IndexHeader, .. indexRows]);
        return (postcodes, index);
    }

    private static async Task<List<(string, int)>> DecilesAsync(Database database)
    {
        await using var connection = await database.OpenAsync();
        var rows = await connection.QueryAsync<(string Postcode, long Decile)>(
            "SELECT dp.postcode, da.imd_decile FROM deprivation_postcode dp JOIN deprivation_area da ON da.lsoa_code = dp.lsoa_code ORDER BY dp.postcode");
        return [.. rows.Select(r => (r.Postcode, (int)r.Decile))];
    }

    [Fact]
    public async Task EquityReport_AskedWhileStartUpStillLoadsTheLookup_WaitsAndCountsAgainstTheWholeLookup()
    {
        await using var database = await store.MigratedAsync();
        var lookup = new DeprivationLookup(database, TimeProvider.System, NullLogger<DeprivationLookup>.Instance);
        var (postcodes, index) = DeprivationLookup.FilesFrom(new DeprivationSettings(), demoSeeded: true)!.Value;
        long? postcodesSeenByTheReport = null;
        Task<EquityReport.Result> report;
        // Another writer holds the store while start-up's load begins, so the report is surely asked before the load ends.
        await using (var holder = await database.OpenAsync())
        await using (var write = await database.BeginWriteAsync(holder))
        {
            await database.LockAsync(holder, write, "deprivation-load");
            lookup.StartLoading(postcodes, index, [], CancellationToken.None);
            report = new EquityWaitsForDeprivation(lookup).Handle(new EquityReport.Query(null!), async (_, cancellation) =>
            {
                await using var reader = await database.OpenAsync(cancellation);
                postcodesSeenByTheReport = await reader.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM deprivation_postcode");
                return null!;
            }, CancellationToken.None).AsTask();
            await Task.Delay(200);
            Assert.True(lookup.State.Loading);
            Assert.False(report.IsCompleted);
            Assert.Null(postcodesSeenByTheReport);
            await write.RollbackAsync();
        }

        await report;

        Assert.Equal(43_200, postcodesSeenByTheReport);
        Assert.Equal((false, null), lookup.State);
    }

    [Fact]
    public async Task EquityReport_WhenStartUpsLoadFailed_RefusesSayingWhy_AndHealthIsDegraded()
    {
        await using var database = await store.MigratedAsync();
        var lookup = new DeprivationLookup(database, TimeProvider.System, NullLogger<DeprivationLookup>.Instance);
        var missing = Path.Combine(Path.GetTempPath(), Guid.NewGuid().ToString("N") + ".csv");
        lookup.StartLoading(missing, missing, [], CancellationToken.None);
        var asked = false;

        var refused = await Assert.ThrowsAsync<DeprivationLookupFailed>(() => new EquityWaitsForDeprivation(lookup).Handle(new EquityReport.Query(null!),
            (_, _) => { asked = true; return ValueTask.FromResult<EquityReport.Result>(null!); }, CancellationToken.None).AsTask());

        Assert.False(asked);
        Assert.Contains("deprivation lookup did not load", refused.Message, StringComparison.Ordinal);
        var health = await new DeprivationLookupHealth(lookup).CheckHealthAsync(null!);
        Assert.Equal(Microsoft.Extensions.Diagnostics.HealthChecks.HealthStatus.Degraded, health.Status);
    }
}

public sealed class DeprivationLookupOnSqliteTests(AppFactory app) : DeprivationLookupTests(app, new SqliteTestStore()), IClassFixture<AppFactory>;

public sealed class DeprivationLookupOnPostgresTests(PostgresAppFactory app) : DeprivationLookupTests(app, new PostgresTestStore()), IClassFixture<PostgresAppFactory>;
