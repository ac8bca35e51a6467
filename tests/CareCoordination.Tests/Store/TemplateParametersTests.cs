using System.Data;
using CareCoordination.Store;
using CareCoordination.Tests.Support;
using Dapper;

namespace CareCoordination.Tests.Store;

/// <summary>
/// A write's shared values (TemplateParameters): each command is given only the properties its text names, every value
/// reaches the store as Dapper would have written it (type handlers, nulls, a later object's value for a name two share),
/// and named values are given as set.
/// </summary>
public abstract class TemplateParametersTests(ITestStore store) : IAsyncLifetime
{
    private Database _database = null!;

    public async Task InitializeAsync()
    {
        TypeHandlers.Register();
        _database = new Database(store.Provider, await store.CreateEmptyAsync());
    }

    public async Task DisposeAsync() => await _database.DisposeAsync();

    /// <summary>A template whose other property must never be read: a command that does not name it is not given it.</summary>
    private sealed class OneNamed
    {
        public string Named => "given";

        public string NotNamed => throw new InvalidOperationException("A property the command's text does not name was read.");
    }

    [Fact]
    public async Task ACommand_IsGivenOnlyWhatItsTextNames()
    {
        await using var connection = await _database.OpenAsync();

        var value = await connection.QuerySingleAsync<string>("SELECT @Named", new TemplateParameters(new OneNamed()));

        Assert.Equal("given", value);
    }

    [Fact]
    public async Task EveryValue_ReachesTheStoreAsWritten()
    {
        await using var connection = await _database.OpenAsync();
        await connection.ExecuteAsync(
            "CREATE TEMPORARY TABLE shared_values (text_value TEXT, number_value BIGINT, day_value DATE, at_value TIMESTAMPTZ, extra_value BIGINT, nothing_value TEXT)");
        var parameters = new TemplateParameters(new
        {
            Text = "first",
            Number = 7L,
            Day = (DateOnly?)null,
            At = new DateTimeOffset(2026, 12, 5, 22, 0, 0, TimeSpan.FromHours(1)),
            Unused = "not given",
        });
        parameters.AddDynamicParams(new { Text = "second", Later = new DateOnly(2026, 12, 6) });
        parameters.Add("Extra", 42L, DbType.Int64);
        parameters.Add("Nothing", null);

        await connection.ExecuteAsync(
            "INSERT INTO shared_values VALUES (@Text, @Number, @Day, @At, @Extra, @Nothing)", parameters);
        var row = await connection.QuerySingleAsync<(string Text, long Number, DateOnly? Day, DateTimeOffset At, long Extra, string? Nothing)>(
            "SELECT text_value, number_value, day_value, at_value, extra_value, nothing_value FROM shared_values");

        Assert.Equal("second", row.Text);
        Assert.Equal(7L, row.Number);
        Assert.Null(row.Day);
        Assert.Equal(new DateTimeOffset(2026, 12, 5, 21, 0, 0, TimeSpan.Zero), row.At);
        Assert.Equal(TimeSpan.Zero, row.At.Offset);
        Assert.Equal(42L, row.Extra);
        Assert.Null(row.Nothing);
    }

    [Fact]
    public async Task OneSetOfValues_ServesCommandsThatNameDifferentOnes()
    {
        await using var connection = await _database.OpenAsync();
        var parameters = new TemplateParameters(new { First = "one", Second = 2L, When = new DateOnly(2026, 12, 5) });

        Assert.Equal("one", await connection.QuerySingleAsync<string>("SELECT @First", parameters));
        Assert.Equal(2L, await connection.QuerySingleAsync<long>("SELECT @Second", parameters));
        Assert.Equal(new DateOnly(2026, 12, 5), await connection.QuerySingleAsync<DateOnly>("SELECT @When", parameters));
    }
}

public sealed class TemplateParametersOnSqliteTests() : TemplateParametersTests(new SqliteTestStore());

public sealed class TemplateParametersOnPostgresTests() : TemplateParametersTests(new PostgresTestStore());
