using CareCoordination.Features.Referrals;
using CareCoordination.Store;
using CareCoordination.Tests.Support;
using Dapper;

namespace CareCoordination.Tests.Store;

/// <summary>
/// The referral's timeline (TrackReferral, the referrer's page) reads only its own records' changes, each found by the
/// record's id: written as one OR of "entity_id IN (subquery)" terms, PostgreSQL read ix_change_entity by kind alone, every
/// task's and placement's change in the store.
/// </summary>
public abstract class ReferralTimelinePlanTests(ITestStore store) : IAsyncLifetime
{
    private Database _database = null!;

    public async Task InitializeAsync() => _database = await store.MigratedAsync();

    public async Task DisposeAsync() => await _database.DisposeAsync();

    [Fact]
    public async Task Timeline_SeeksEachOfItsRecordsChanges_NeverEveryChangeOfAKind()
    {
        await using var connection = await _database.OpenAsync();
        var world = await StoreWorld.CreateAsync(connection);
        var ours = await world.AddReferralAsync(connection, "9434765919");
        var at = new DateTimeOffset(2026, 12, 1, 9, 0, 0, TimeSpan.Zero);
        // Our referral: its own change, a task and a placement with two changes each, in this order.
        var task = await connection.ExecuteScalarAsync<long>(
            "INSERT INTO triage_task (referral_id, queue, status, created_at, updated_at) VALUES (@ours, 'coordination', 'completed', @at, @at) RETURNING id", new { ours, at });
        var placement = await world.PlaceInBedAsync(connection, ours, "active");
        var expected = new List<string>();
        async Task Change(string kind, string type, long id)
        {
            await connection.ExecuteAsync("INSERT INTO change (at, kind, entity_type, entity_id) VALUES (@at, @kind, @type, @id)", new { at, kind, type, id });
            expected.Add(kind);
        }
        await Change("referral.submitted", "referral", ours);
        await Change("task.created", "triage_task", task);
        await Change("task.completed", "triage_task", task);
        await Change("placement.reserved", "placement", placement);
        await Change("placement.started", "placement", placement);
        // Everyone else's: 2,000 changes of each kind, and a bed that happens to share our task's id.
        await connection.ExecuteAsync(
            """
            INSERT INTO change (at, kind, entity_type, entity_id)
            SELECT @at, 'task.created', 'triage_task', @task + n FROM (SELECT value AS n FROM generate_series(1, 2000)) g
            """.Replace("SELECT value AS n FROM generate_series(1, 2000)",
                _database.Provider == StoreProvider.PostgreSQL ? "SELECT n FROM generate_series(1, 2000) AS s (n)" : "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 2000) SELECT n FROM s",
                StringComparison.Ordinal), new { at, task });
        foreach (var (kind, type) in new[] { ("placement.started", "placement"), ("approval.requested", "caution_approval"), ("carer.told", "carer_message") })
        {
            await connection.ExecuteAsync("INSERT INTO change (at, kind, entity_type, entity_id) SELECT at, @kind, @type, entity_id FROM change WHERE entity_id > @task AND entity_type = 'triage_task'",
                new { kind, type, task });
        }
        await connection.ExecuteAsync("INSERT INTO change (at, kind, entity_type, entity_id) VALUES (@at, 'bed.moved', 'bed', @task)", new { at, task });
        if (_database.Provider == StoreProvider.PostgreSQL)
        {
            await connection.ExecuteAsync("ANALYZE change; ANALYZE triage_task; ANALYZE placement; ANALYZE caution_approval; ANALYZE carer_message");
        }

        var timeline = await connection.QueryAsync<string>($"SELECT Kind FROM ({TrackReferral.Timeline}) t", new { ReferralId = ours });
        Assert.Equal(expected, timeline);

        if (_database.Provider == StoreProvider.PostgreSQL)
        {
            var plan = string.Join('\n', await connection.QueryAsync<string>("EXPLAIN " + TrackReferral.Timeline.Replace("@ReferralId", ours.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal)));
            Assert.DoesNotContain("Seq Scan on change", plan, StringComparison.Ordinal);
            var changeSeeks = plan.Split('\n').Where(line => line.Contains("Index Cond: ((entity_type", StringComparison.Ordinal)).ToList();
            Assert.Equal(5, changeSeeks.Count);
            Assert.All(changeSeeks, seek => Assert.Contains("entity_id =", seek, StringComparison.Ordinal));
        }
        else
        {
            var plan = (await connection.QueryAsync<(long, long, long, string Detail)>("EXPLAIN QUERY PLAN " + TrackReferral.Timeline, new { ReferralId = ours })).Select(p => p.Detail).ToList();
            Assert.DoesNotContain(plan, d => d.StartsWith("SCAN c", StringComparison.Ordinal));
            Assert.Equal(5, plan.Count(d => d.StartsWith("SEARCH c USING INDEX ix_change_entity (entity_type=? AND entity_id=?)", StringComparison.Ordinal)));
        }
    }
}

public sealed class SqliteReferralTimelinePlanTests() : ReferralTimelinePlanTests(new SqliteTestStore());

public sealed class PostgresReferralTimelinePlanTests() : ReferralTimelinePlanTests(new PostgresTestStore());
