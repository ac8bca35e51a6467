using CareCoordination.Store;
using CareCoordination.Tests.Support;
using Dapper;
using Microsoft.Data.Sqlite;

namespace CareCoordination.Tests.Store;

/// <summary>
/// SQLite's writer keeps each statement it compiled and runs the next command with the same text on it. What a write
/// binds must never reach another: each runs with its own values, a value it does not give is refused rather than taken
/// from the last write, and a statement that failed is whole again for the next.
/// </summary>
public sealed class ReusedStatementsTests : IAsyncLifetime
{
    private Database _database = null!;

    public async Task InitializeAsync()
    {
        var migrated = await new SqliteTestStore().MigratedAsync();
        var connectionString = migrated.ConnectionString;
        await migrated.DisposeAsync();
        _database = new Database(StoreProvider.Sqlite, connectionString);
    }

    public async Task DisposeAsync() => await _database.DisposeAsync();

    private Task Insert(string key, string value) => _database.WriteAsync((connection, transaction) =>
        connection.ExecuteAsync("INSERT INTO app_setting (key, value) VALUES (@key, @value)", new { key, value }, transaction));

    private async Task<string?> ValueAsync(string key)
    {
        await using var reader = await _database.OpenAsync();
        return await reader.QuerySingleOrDefaultAsync<string>("SELECT value FROM app_setting WHERE key = @key", new { key });
    }

    [Fact]
    public async Task ARepeatedWrite_CompilesNothingAgain_AndKeepsItsOwnValues()
    {
        await Insert("reused-1", "first");
        var compiled = _database.WriterStatementsCompiled;

        await Insert("reused-2", "second");
        await Insert("reused-3", "third");

        Assert.Equal(compiled, _database.WriterStatementsCompiled);
        Assert.Equal("first", await ValueAsync("reused-1"));
        Assert.Equal("second", await ValueAsync("reused-2"));
        Assert.Equal("third", await ValueAsync("reused-3"));
    }

    [Fact]
    public async Task AReusedStatement_GivenNoValueForAParameter_IsRefused_NotRunWithTheLastWritesValue()
    {
        const string Text = "INSERT INTO app_setting (key, value) VALUES (@key, @value)";
        await _database.WriteAsync((connection, transaction) => connection.ExecuteAsync(Text, new { key = "bound-once", value = "secret" }, transaction));

        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => _database.WriteAsync((connection, transaction) =>
            connection.ExecuteAsync(Text, new { key = "bound-twice" }, transaction)));

        Assert.Contains("@value", refused.Message, StringComparison.Ordinal);
        Assert.Null(await ValueAsync("bound-twice"));
    }

    [Fact]
    public async Task AStatementThatFailed_RunsWholeNextTime()
    {
        await Insert("unique-key", "kept");

        var duplicate = await Assert.ThrowsAsync<SqliteException>(() => Insert("unique-key", "second"));
        Assert.True(_database.IsUniqueViolation(duplicate));
        await Insert("another-key", "after the failure");

        Assert.Equal("kept", await ValueAsync("unique-key"));
        Assert.Equal("after the failure", await ValueAsync("another-key"));
    }

    [Fact]
    public async Task AListDapperExpands_KeepsItsValues_WhateverItsLength()
    {
        await Insert("list-a", "a");
        await Insert("list-b", "b");
        await Insert("list-c", "c");

        Task<long> Count(string[] keys) => _database.WriteAsync((connection, transaction) =>
            connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM app_setting WHERE key IN @keys AND value <> @not", new { keys, not = "b" }, transaction));

        Assert.Equal(2, await Count(["list-a", "list-b", "list-c"]));
        Assert.Equal(1, await Count(["list-c"]));
        Assert.Equal(2, await Count(["list-a", "list-b", "list-c"]));
    }

    [Fact]
    public async Task RowsReadInAWrite_AreTheRowsOfThatWrite_EachTime()
    {
        foreach (var i in Enumerable.Range(0, 3))
        {
            await Insert($"read-{i}", $"value-{i}");
            var read = await _database.WriteAsync(async (connection, transaction) =>
                (await connection.QueryAsync<string>("SELECT value FROM app_setting WHERE key LIKE 'read-%' ORDER BY key", transaction: transaction)).ToList());
            Assert.Equal(Enumerable.Range(0, i + 1).Select(n => $"value-{n}"), read);
        }
    }

    [Fact]
    public void PostgreSQL_PreparesRepeatedStatements_UnlessTheConnectionStringSaysOtherwise()
    {
        var prepared = new Npgsql.NpgsqlConnectionStringBuilder(Database.WithConnectionDefaults("Host=db;Username=app"));
        var asked = new Npgsql.NpgsqlConnectionStringBuilder(Database.WithConnectionDefaults("Host=db;Username=app;Max Auto Prepare=0"));

        Assert.True(prepared.MaxAutoPrepare > 0);
        Assert.Equal(0, asked.MaxAutoPrepare);
    }

    [Fact]
    public void PostgreSQL_SessionsRunWithoutJit_KeepingTheOperatorsOwnOptions_UnlessTheySayHowJitIsToBe()
    {
        string? Options(string connectionString) => new Npgsql.NpgsqlConnectionStringBuilder(Database.WithConnectionDefaults(connectionString)).Options;

        Assert.Equal("-c jit=off", Options("Host=db;Username=app"));
        Assert.Equal("-c statement_timeout=30s -c jit=off", Options("Host=db;Username=app;Options=-c statement_timeout=30s"));
        Assert.Equal("-c jit=on -c work_mem=64MB", Options("Host=db;Username=app;Options=-c jit=on -c work_mem=64MB"));
    }
}
