using System.Globalization;
using CareCoordination.Demo;
using CareCoordination.Features.Reports.CodeLists;
using CareCoordination.Store;
using CareCoordination.Tests.Support;
using Dapper;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace CareCoordination.Tests.Demo;

/// <summary>
/// PostgreSQL's seed writes each table in one statement of unnested arrays, SQLite's a row at a time: at the same moment both
/// stores must end with the same county, row for row (ids, times and change order included).
/// </summary>
public sealed partial class DemoSeedAcrossStoresTests
{
    private static readonly string[] Tables =
    [
        "organisation", "staff_user", "partner_client", "site", "ward", "bed", "service", "person", "postcode_district", "referral_draft",
        "referral", "referral_person", "triage_task", "placement", "referral_note", "change", "discharge_delay",
    ];

    // Hashed with a fresh salt each time: equal only in being there.
    private static readonly HashSet<string> Salted = ["password_hash", "secret_hash"];

    [Fact]
    public async Task Seed_OnPostgres_WritesTheSameRowsAsOnSqlite()
    {
        var now = new DateTimeOffset(2026, 11, 18, 9, 30, 0, TimeSpan.Zero);
        var sqlite = await SeededRowsAsync(new SqliteTestStore(), now);
        var postgres = await SeededRowsAsync(new PostgresTestStore(), now);

        foreach (var table in Tables)
        {
            Assert.True(sqlite[table].Count > 0, table);
            Assert.Equal(sqlite[table].Count, postgres[table].Count);
            for (var i = 0; i < sqlite[table].Count; i++)
            {
                Assert.Equal(sqlite[table][i], postgres[table][i]);
            }
        }
    }

    private static async Task<Dictionary<string, List<string>>> SeededRowsAsync(ITestStore store, DateTimeOffset now)
    {
        await using var database = await store.MigratedAsync();
        var clock = new FakeTimeProvider(now);
        // As start-up does: the delay reasons' lists first, so that the seed records delays against them.
        await new CodeListLoader(database, clock, new ConfigurationBuilder().Build(), NullLogger<CodeListLoader>.Instance).LoadAsync();
        var outcome = await new DemoSeeder(database, clock, NullLogger<DemoSeeder>.Instance)
            .SeedAsync(new DemoCredentials("Seed-Password-1", "Seed-Secret-1"));
        Assert.Equal(DemoSeedOutcome.Seeded, outcome);
        await using var connection = await database.OpenAsync();
        var rows = new Dictionary<string, List<string>>();
        foreach (var table in Tables)
        {
            var read = await connection.QueryAsync($"SELECT * FROM {table}");
            rows[table] = read.Cast<IDictionary<string, object?>>()
                .Select(row => string.Join(" | ", row.OrderBy(c => c.Key, StringComparer.Ordinal).Select(c => $"{c.Key}={Text(c.Key, c.Value)}")))
                .Order(StringComparer.Ordinal)
                .ToList();
        }
        return rows;
    }

    /// <summary>
    /// One spelling for both engines: SQLite keeps booleans as 0/1 and times and dates as ISO text (to 100 ns; PostgreSQL
    /// keeps microseconds, so both are compared to the microsecond).
    /// </summary>
    private static string Text(string column, object? value) => value switch
    {
        null or DBNull => "null",
        _ when Salted.Contains(column) => "salted",
        bool b => b ? "1" : "0",
        DateTime t => Microseconds(TypeHandlers.ToSqliteText(new DateTimeOffset(DateTime.SpecifyKind(t, DateTimeKind.Utc)))),
        DateTimeOffset t => Microseconds(TypeHandlers.ToSqliteText(t)),
        string s when SqliteTime().IsMatch(s) => Microseconds(s),
        DateOnly d => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    private static string Microseconds(string sqliteTime) => sqliteTime[..^2] + "Z";

    [System.Text.RegularExpressions.GeneratedRegex(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$")]
    private static partial System.Text.RegularExpressions.Regex SqliteTime();
}
