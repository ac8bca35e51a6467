using System.Text.Json.Nodes;
using CareCoordination.Features.Reports.CodeLists;
using CareCoordination.Store;
using CareCoordination.Tests.Support;
using Dapper;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace CareCoordination.Tests.Features.Reports;

/// <summary>
/// National code lists load from files, once per version: a restart changes nothing, a new version is a new file that takes
/// over from its valid_from, and a file changed after its version was loaded is reported and not reloaded.
/// </summary>
public abstract class CodeListLoaderTests(ITestStore store) : IAsyncLifetime
{
    private static readonly string Shipped = Path.Combine(AppContext.BaseDirectory, CodeListLoader.DefaultFolder);

    private readonly string _folder = Testing.TestScratch.NewFolder("code-lists-");
    private Database _database = null!;

    public async Task InitializeAsync() => _database = await store.MigratedAsync();

    public async Task DisposeAsync()
    {
        await _database.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }

    private CodeListLoader Loader() => new(_database, new FakeTimeProvider(new DateTimeOffset(2026, 12, 3, 9, 0, 0, TimeSpan.Zero)),
        new ConfigurationBuilder().Build(), NullLogger<CodeListLoader>.Instance);

    private void Ship(string file) => File.Copy(Path.Combine(Shipped, file), Path.Combine(_folder, file));

    private async Task<string?> VersionOnAsync(DateOnly day)
    {
        await using var connection = await _database.OpenAsync();
        return (await CodeListVersions.OnAsync(connection, null, CodeListVersions.DelayReasons, day))?.Version;
    }

    private async Task<long> CountAsync(string table)
    {
        await using var connection = await _database.OpenAsync();
        return await connection.ExecuteScalarAsync<long>($"SELECT COUNT(*) FROM {table}");
    }

    [Fact]
    public async Task TheShippedLists_Load_Once_AndEachDayHasTheListThatAppliedThen()
    {
        Ship("discharge-delay-reason-2023-04.json");
        Ship("discharge-delay-reason-2024-05.json");

        var first = await Loader().LoadAsync(_folder, CancellationToken.None);
        var again = await Loader().LoadAsync(_folder, CancellationToken.None);

        Assert.Equal(["discharge-delay-reason 2023-04", "discharge-delay-reason 2024-05"], first.Loaded);
        Assert.Equal((0, 2, 0), (again.Loaded.Count, again.Unchanged.Count, again.Changed.Count));
        // 14 items in the 2023 list, 31 in the 2024 list, each loaded once.
        Assert.Equal((2, 45), (await CountAsync("code_list"), await CountAsync("code_list_item")));
        Assert.Null(await VersionOnAsync(new DateOnly(2023, 3, 31)));
        Assert.Equal("2023-04", await VersionOnAsync(new DateOnly(2023, 4, 1)));
        Assert.Equal("2023-04", await VersionOnAsync(new DateOnly(2024, 4, 30)));
        Assert.Equal("2024-05", await VersionOnAsync(new DateOnly(2024, 5, 1)));
        Assert.Equal("2024-05", await VersionOnAsync(new DateOnly(2026, 12, 3)));
        await using var connection = await _database.OpenAsync();
        var list = await CodeListVersions.OnAsync(connection, null, CodeListVersions.DelayReasons, new DateOnly(2026, 12, 3));
        Assert.Equal(["Hospital process", "Care transfer hub process", "Interface process", "Capacity", "Wellbeing concerns"],
            list!.Items.Select(i => i.FamilyLabel).Distinct().ToArray());
    }

    [Fact]
    public async Task NextYearsList_IsANewFile_ThatTakesOverFromItsValidFrom_WithoutEditingTheLastOne()
    {
        Ship("discharge-delay-reason-2024-05.json");
        await Loader().LoadAsync(_folder, CancellationToken.None);
        var next = JsonNode.Parse(await File.ReadAllTextAsync(Path.Combine(Shipped, "discharge-delay-reason-2024-05.json")))!.AsObject();
        (next["version"], next["valid_from"]) = ("2025-05", "2025-05-01");
        await File.WriteAllTextAsync(Path.Combine(_folder, "discharge-delay-reason-2025-05.json"), next.ToJsonString());

        var loaded = await Loader().LoadAsync(_folder, CancellationToken.None);

        Assert.Equal(["discharge-delay-reason 2025-05"], loaded.Loaded);
        Assert.Equal(["discharge-delay-reason 2024-05"], loaded.Unchanged);
        Assert.Equal("2024-05", await VersionOnAsync(new DateOnly(2025, 4, 30)));
        Assert.Equal("2025-05", await VersionOnAsync(new DateOnly(2025, 5, 1)));
    }

    [Fact]
    public async Task AFileChangedAfterItsVersionWasLoaded_IsReported_AndNotReloaded()
    {
        Ship("discharge-delay-reason-2024-05.json");
        await Loader().LoadAsync(_folder, CancellationToken.None);
        var path = Path.Combine(_folder, "discharge-delay-reason-2024-05.json");
        await File.WriteAllTextAsync(path, (await File.ReadAllTextAsync(path)).Replace("Awaiting transport", "Awaiting an ambulance", StringComparison.Ordinal));

        var loaded = await Loader().LoadAsync(_folder, CancellationToken.None);

        Assert.Empty(loaded.Loaded);
        Assert.Equal(["discharge-delay-reason 2024-05"], loaded.Changed);
        await using var connection = await _database.OpenAsync();
        Assert.Equal("Awaiting transport", await connection.ExecuteScalarAsync<string>(
            "SELECT label FROM code_list_item WHERE list_version = '2024-05' AND code = 'hp-transport'"));
    }

    [Fact]
    public async Task AListFileThatIsWrong_StopsTheLoad_NamingTheFileAndTheFault()
    {
        await File.WriteAllTextAsync(Path.Combine(_folder, "broken.json"),
            """{ "name": "discharge-delay-reason", "version": "x", "title": "t", "valid_from": "2025-05-01", "valid_to": "2025-01-01", "items": [] }""");

        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => Loader().LoadAsync(_folder, CancellationToken.None));

        Assert.Contains("broken.json", refused.Message, StringComparison.Ordinal);
        Assert.Contains("valid_to must be after valid_from", refused.Message, StringComparison.Ordinal);
        Assert.Contains("no items", refused.Message, StringComparison.Ordinal);
        Assert.Equal(0, await CountAsync("code_list"));
    }
}

public sealed class CodeListLoaderOnSqliteTests() : CodeListLoaderTests(new SqliteTestStore());

public sealed class CodeListLoaderOnPostgresTests() : CodeListLoaderTests(new PostgresTestStore());
