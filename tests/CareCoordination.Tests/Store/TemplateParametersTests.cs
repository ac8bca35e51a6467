using System.Data;
using System.Data.Common;
using CareCoordination.Store;
using CareCoordination.Tests.Support;
using Dapper;
using Microsoft.Data.Sqlite;

namespace CareCoordination.Tests.Store;

/// <summary>
/// A write's shared values (TemplateParameters): every value reaches the store as Dapper's DynamicParameters would have
/// written it (type handlers, nulls, a later object's value for a name two share, both cases of a name the product writes
/// twice), each command is given only what its text names, and ids are given as set.
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
        await connection.ExecuteAsync("""
            CREATE TEMPORARY TABLE shared_values (text_value TEXT, number_value BIGINT, day_value DATE, at_value TIMESTAMPTZ,
                upper_value TIMESTAMPTZ, lower_value TIMESTAMPTZ, id_value BIGINT, no_id_value BIGINT)
            """);
        var now = new DateTimeOffset(2026, 12, 5, 22, 0, 0, TimeSpan.FromHours(1));
        var parameters = new TemplateParameters(new
        {
            Text = "first",
            Number = 7L,
            Day = (DateOnly?)null,
            At = now,
            // SubmitReferral's template names the same time in both cases (Now for its own statements, now for the task's).
            Now = now,
            now,
        });
        parameters.AddDynamicParams(new { Text = "second" });
        parameters.AddId("Kept", 42);
        parameters.AddId("NotKept", null);

        await connection.ExecuteAsync(
            "INSERT INTO shared_values VALUES (@Text, @Number, @Day, @At, @Now, @now, @Kept, @NotKept)", parameters);
        var row = await connection.QuerySingleAsync<Row>("""
            SELECT text_value AS Text, number_value AS Number, day_value AS Day, at_value AS At, upper_value AS Upper,
                lower_value AS Lower, id_value AS Id, no_id_value AS NoId
            FROM shared_values
            """);

        Assert.Equal("second", row.Text);
        Assert.Equal(7L, row.Number);
        Assert.Null(row.Day);
        var utc = new DateTimeOffset(2026, 12, 5, 21, 0, 0, TimeSpan.Zero);
        Assert.Equal(utc, row.At);
        Assert.Equal(utc, row.Upper);
        Assert.Equal(utc, row.Lower);
        Assert.Equal(42L, row.Id);
        Assert.Null(row.NoId);
        // The type handler wrote it: SQLite keeps the one fixed UTC text that sorts as time.
        if (store.Provider == StoreProvider.Sqlite)
        {
            Assert.Equal(TypeHandlers.ToSqliteText(utc), await connection.QuerySingleAsync<string>("SELECT at_value FROM shared_values"));
        }
    }

    private sealed class Row
    {
        public string Text { get; set; } = "";

        public long Number { get; set; }

        public DateOnly? Day { get; set; }

        public DateTimeOffset At { get; set; }

        public DateTimeOffset Upper { get; set; }

        public DateTimeOffset Lower { get; set; }

        public long Id { get; set; }

        public long? NoId { get; set; }
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

    [Fact]
    public void ATemplate_IsAPlainObject() =>
        Assert.Throws<ArgumentException>(() => new TemplateParameters(new DynamicParameters(new { Text = "x" })));
}

public sealed class TemplateParametersOnSqliteTests() : TemplateParametersTests(new SqliteTestStore());

public sealed class TemplateParametersOnPostgresTests() : TemplateParametersTests(new PostgresTestStore());

/// <summary>
/// What TemplateParameters is for: no parameter's type is read back once it is set. DynamicParameters reads every one, and
/// Npgsql works each out again from its value (for DBNull without caching the miss). Counted on SQLite, whose parameter
/// can be made to count; what Dapper does with a parameter does not depend on the engine.
/// </summary>
public sealed class TemplateParametersReadBackTests
{
    private sealed class CountingConnection() : SqliteConnection("Data Source=:memory:")
    {
        public int TypeReads;

        protected override DbCommand CreateDbCommand() => new CountingCommand(this);
    }

    private sealed class CountingCommand : SqliteCommand
    {
        private readonly CountingConnection _owner;

        public CountingCommand(CountingConnection owner)
        {
            _owner = owner;
            Connection = owner;
        }

        public override SqliteParameter CreateParameter() => new CountingParameter(_owner);
    }

    private sealed class CountingParameter(CountingConnection owner) : SqliteParameter
    {
        public override DbType DbType
        {
            get
            {
                owner.TypeReads++;
                return base.DbType;
            }
            set => base.DbType = value;
        }
    }

    [Fact]
    public async Task NoParameterType_IsReadBack()
    {
        TypeHandlers.Register();
        await using var connection = new CountingConnection();
        await connection.OpenAsync();
        var values = new { Text = "x", Day = (DateOnly?)null, At = DateTimeOffset.UnixEpoch };
        const string Sql = "SELECT @Text || coalesce(@Day, '') || @At";

        await connection.QuerySingleAsync<string>(Sql, new TemplateParameters(values));
        var templateReads = connection.TypeReads;
        // The count sees DynamicParameters' reads: a test that could not see them would prove nothing.
        await connection.QuerySingleAsync<string>(Sql, new DynamicParameters(values));

        Assert.Equal(0, templateReads);
        Assert.True(connection.TypeReads >= 3, $"DynamicParameters read {connection.TypeReads} types back");
    }
}
