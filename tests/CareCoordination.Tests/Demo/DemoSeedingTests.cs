using CareCoordination.Demo;
using CareCoordination.Domain;
using CareCoordination.Features.Coordination;
using CareCoordination.Features.Referrals;
using CareCoordination.Store;
using CareCoordination.Tests.Support;
using Dapper;
using Microsoft.Extensions.Logging.Abstractions;

namespace CareCoordination.Tests.Demo;

public abstract class DemoSeedingTests(ITestStore store)
{
    private static readonly DemoCredentials Credentials = new("Seed-Password-1", "Seed-Secret-1");

    private static DemoSeeder Seeder(Database database) => new(database, TimeProvider.System, NullLogger<DemoSeeder>.Instance);

    private static async Task<Dictionary<string, long>> CountsAsync(Database database)
    {
        await using var connection = await database.OpenAsync();
        var counts = new Dictionary<string, long>();
        foreach (var table in new[] { "organisation", "staff_user", "partner_client", "person", "service", "site", "ward", "bed", "referral", "triage_task", "placement", "change" })
        {
            counts[table] = await connection.ExecuteScalarAsync<long>($"SELECT COUNT(*) FROM {table}");
        }
        return counts;
    }

    [Fact]
    public async Task Seed_OnAnEmptyStore_MakesAPlausibleCounty()
    {
        await using var database = await store.MigratedAsync();

        var outcome = await Seeder(database).SeedAsync(Credentials);

        Assert.Equal(DemoSeedOutcome.Seeded, outcome);
        await using var connection = await database.OpenAsync();
        Assert.Equal(3, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM organisation WHERE kind = 'coordination-centre'"));
        Assert.Equal(1, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM organisation WHERE kind = 'bed-bureau'"));
        Assert.InRange(await connection.ExecuteScalarAsync<long>(
            "SELECT COUNT(*) FROM organisation WHERE kind IN ('acute-trust', 'community-trust', 'community-hospital', 'gp-practice')"), 8, 14);
        Assert.True(await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM site") >= 12);
        Assert.True(await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM bed") >= 300);
        Assert.Equal(5, await connection.ExecuteScalarAsync<long>("SELECT COUNT(DISTINCT bed_type) FROM bed"));
        Assert.Equal(5, await connection.ExecuteScalarAsync<long>("SELECT COUNT(DISTINCT status) FROM bed"));
        Assert.Equal(6, await connection.ExecuteScalarAsync<long>("SELECT COUNT(DISTINCT kind) FROM service"));

        var statuses = (await connection.QueryAsync<string>("SELECT DISTINCT status FROM referral")).ToHashSet();
        Assert.DoesNotContain("draft", statuses);
        var drafts = (await connection.QueryAsync<string>("SELECT form FROM referral_draft")).ToList();
        Assert.True(drafts.Count >= 3, "Drafts are kept apart from referrals until sent");
        Assert.All(drafts, json => Assert.True(NhsNumber.IsValid(System.Text.Json.JsonSerializer.Deserialize<CareCoordination.Features.Referrals.ReferralForm>(json,
            CareCoordination.Pipeline.JsonDefaults.Options)!.NhsNumber)));
        Assert.True(await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM postcode_district") >= 12);
        Assert.Superset(new HashSet<string> { "submitted", "in-triage", "awaiting-information", "accepted", "placed", "completed", "declined", "cancelled" }, statuses);

        // Every referral keeps what it said about its person, with the version of the record it made: the last is the record's.
        Assert.Equal(0, await connection.ExecuteScalarAsync<long>(
            "SELECT COUNT(*) FROM referral r LEFT JOIN referral_person rp ON rp.referral_id = r.id WHERE rp.person_version IS NULL"));
        Assert.Equal(0, await connection.ExecuteScalarAsync<long>(
            "SELECT COUNT(*) FROM person p WHERE p.version <> (SELECT MAX(rp.person_version) FROM referral_person rp WHERE rp.person_id = p.id)"));

        var nhsNumbers = (await connection.QueryAsync<string>("SELECT nhs_number FROM person")).ToList();
        Assert.NotEmpty(nhsNumbers);
        Assert.All(nhsNumbers, n => Assert.True(n.StartsWith("999", StringComparison.Ordinal) && NhsNumber.IsValid(n), n));

        foreach (var (username, role) in new[] { ("referrer", "referrer"), ("coordinator", "coordinator"), ("bedbureau", "bed-bureau"), ("manager", "manager"), ("admin", "admin") })
        {
            var hash = await connection.ExecuteScalarAsync<string>("SELECT password_hash FROM staff_user WHERE username = @username AND role = @role", new { username, role });
            Assert.True(CareCoordination.Auth.Passwords.Verify(hash, Credentials.Password), username);
        }
        var secret = await connection.ExecuteScalarAsync<string>("SELECT secret_hash FROM partner_client WHERE client_id = 'demo-acute-trust'");
        Assert.True(CareCoordination.Auth.Passwords.Verify(secret, Credentials.PartnerSecret));

        // History is in time order, so live screens can replay it by sequence number.
        var times = (await connection.QueryAsync<DateTimeOffset>("SELECT at FROM change ORDER BY seq")).ToList();
        Assert.NotEmpty(times);
        Assert.Equal(times.Order(), times);
    }

    [Fact]
    public async Task Seed_Twice_ChangesNothingTheSecondTime()
    {
        await using var database = await store.MigratedAsync();
        await Seeder(database).SeedAsync(Credentials);
        var before = await CountsAsync(database);

        var outcome = await Seeder(database).SeedAsync(Credentials);

        Assert.Equal(DemoSeedOutcome.AlreadySeeded, outcome);
        Assert.Equal(before, await CountsAsync(database));
    }

    [Fact]
    public async Task Seed_KeepsEachTasksOwnerAndEachReferralsFirstDecision_ByTheRulesEveryCommandKeepsThem()
    {
        await using var database = await store.MigratedAsync();
        await Seeder(database).SeedAsync(Credentials);
        await using var connection = await database.OpenAsync();
        var organisations = (await connection.QueryAsync<(long Id, string Kind, string? Locality)>("SELECT id, kind, locality FROM organisation")).ToList();
        var staff = (await connection.QueryAsync<(long Id, long? Organisation)>("SELECT id, organisation_id FROM staff_user")).ToDictionary(u => u.Id, u => u.Organisation);
        var referrals = (await connection.QueryAsync<(long Id, string? Locality, DateTimeOffset? TriagedAt)>(
            "SELECT r.id, p.locality, r.triaged_at FROM referral r JOIN person p ON p.id = r.person_id")).ToList();
        var locality = referrals.ToDictionary(r => r.Id, r => r.Locality);
        var tasks = (await connection.QueryAsync<(long Id, long Referral, string Queue, string Status, long? Holder, DateTimeOffset? CompletedAt, long? Owner)>(
            "SELECT id, referral_id, queue, status, owner_user_id, completed_at, owner_organisation_id FROM triage_task")).ToList();
        Assert.Contains(tasks, t => t.Holder is not null);
        Assert.Contains(tasks, t => t.Holder is null && t.Queue == "coordination");
        Assert.Contains(tasks, t => t.Holder is null && t.Queue == "bed-bureau");

        // Task.owner: the organisation of whoever holds it; else the bed bureau, or the coordination centre where the person lives.
        foreach (var task in tasks)
        {
            var expected = task.Holder is { } holder ? staff[holder]
                : task.Queue == "bed-bureau" ? organisations.Where(o => o.Kind == "bed-bureau").Min(o => o.Id)
                : organisations.Where(o => o.Kind == "coordination-centre" && o.Locality == locality[task.Referral]).Select(o => (long?)o.Id).Min();
            Assert.True(expected == task.Owner, $"task {task.Id}: owner {task.Owner}, expected {expected}");
        }
        // Triage ends with the coordination centre's first decision: the earliest coordination task completed or rejected.
        Assert.Contains(referrals, r => r.TriagedAt is not null);
        Assert.Contains(referrals, r => r.TriagedAt is null);
        foreach (var referral in referrals)
        {
            var expected = tasks.Where(t => t.Referral == referral.Id && t.Queue == "coordination" && t.Status is "completed" or "rejected")
                .Select(t => t.CompletedAt).Min();
            Assert.True(expected == referral.TriagedAt, $"referral {referral.Id}: triaged at {referral.TriagedAt}, expected {expected}");
        }
    }

    /// <summary>
    /// The seed writes each referral, task and person whole, with what the commands keep beside their writes worked out in
    /// memory: the commands' own rules, run over the seeded store, must change nothing.
    /// </summary>
    [Fact]
    public async Task Seed_WritesWhatTheCommandsKeep_AsTheCommandsOwnRulesWorkItOut()
    {
        await using var database = await store.MigratedAsync();
        await Seeder(database).SeedAsync(Credentials);
        await using var connection = await database.OpenAsync();
        const string ReadReferrals = """
            SELECT id, triaged_at, first_decided_at, first_decision, first_decision_queue, first_started_at FROM referral ORDER BY id
            """;
        const string ReadTasks = "SELECT id, referring_organisation_id, owner_organisation_id FROM triage_task ORDER BY id";
        var referrals = (await connection.QueryAsync<(long Id, DateTimeOffset? TriagedAt, DateTimeOffset? FirstDecidedAt, string? FirstDecision,
            string? FirstDecisionQueue, DateTimeOffset? FirstStartedAt)>(ReadReferrals)).ToList();
        var tasks = (await connection.QueryAsync<(long Id, long? Referring, long? Owner)>(ReadTasks)).ToList();
        // Enough of each kind that a value left out would show.
        Assert.True(referrals.Count(r => r.TriagedAt is not null) > 100);
        Assert.True(referrals.Count(r => r.FirstDecision is not null && r.FirstDecisionQueue == "bed-bureau") > 10);
        Assert.True(referrals.Count(r => r.FirstDecision == "declined") > 5);
        Assert.True(referrals.Count(r => r.FirstStartedAt is not null) > 100);
        Assert.All(tasks, t => Assert.NotNull(t.Referring));

        await using (var transaction = await database.BeginWriteAsync(connection))
        {
            foreach (var referral in referrals)
            {
                await TriageTasks.KeepTriagedAsync(connection, transaction, referral.Id);
                await ReferralFirsts.KeepAsync(connection, transaction, referral.Id);
            }
            foreach (var task in tasks)
            {
                await TriageTasks.KeepOwnerAsync(connection, transaction, task.Id);
            }
            Assert.Equal(referrals, await connection.QueryAsync<(long, DateTimeOffset?, DateTimeOffset?, string?, string?, DateTimeOffset?)>(ReadReferrals, transaction: transaction));
            Assert.Equal(tasks, await connection.QueryAsync<(long, long?, long?)>(ReadTasks, transaction: transaction));
            await transaction.RollbackAsync();
        }

        // Each referral made the next version of its person, as a submission does; the record is at its last referral's.
        var people = await connection.QueryAsync<(long Id, long Version, DateTimeOffset UpdatedAt, DateTimeOffset CreatedAt)>(
            "SELECT id, version, updated_at, created_at FROM person");
        var made = (await connection.QueryAsync<(long Person, DateTimeOffset? SubmittedAt, DateTimeOffset CreatedAt)>(
            "SELECT person_id, submitted_at, created_at FROM referral")).ToLookup(r => r.Person);
        Assert.Contains(people, p => made[p.Id].Count() > 1);
        foreach (var person in people)
        {
            var theirs = made[person.Id].ToList();
            Assert.Equal(Math.Max(1, theirs.Count), person.Version);
            Assert.Equal(theirs.Count == 0 ? person.CreatedAt : theirs.Max(r => r.SubmittedAt ?? r.CreatedAt), person.UpdatedAt);
        }
    }

    [Fact]
    public async Task Seed_ThatFailsPartWay_LeavesNothing_AndASeedAfterItMakesTheWholeCounty()
    {
        await using var database = await store.MigratedAsync();
        // A postcode district the county names, already there: the seed fails on it after writing organisations, staff, sites,
        // beds and people, and before any referral.
        var district = DemoCounty.Localities[^1].Districts[^1];
        await using (var connection = await database.OpenAsync())
        {
            await connection.ExecuteAsync("INSERT INTO postcode_district (district, locality) VALUES (@district, 'Elsewhere')", new { district });
        }
        var empty = await CountsAsync(database);
        Assert.All(empty, count => Assert.Equal(0, count.Value));

        await Assert.ThrowsAnyAsync<System.Data.Common.DbException>(() => Seeder(database).SeedAsync(Credentials));

        Assert.Equal(empty, await CountsAsync(database));
        await using (var connection = await database.OpenAsync())
        {
            Assert.Null(await connection.ExecuteScalarAsync<string?>("SELECT value FROM app_setting WHERE key = @key", new { key = DemoSeeder.MarkerKey }));
            await connection.ExecuteAsync("DELETE FROM postcode_district");
        }
        Assert.Equal(DemoSeedOutcome.Seeded, await Seeder(database).SeedAsync(Credentials));
        var seeded = await CountsAsync(database);
        Assert.All(seeded, count => Assert.True(count.Value > 0, count.Key));
    }

    [Fact]
    public async Task Seed_IntoAStoreWithRealData_RefusesAndChangesNothing()
    {
        await using var database = await store.MigratedAsync();
        await using (var connection = await database.OpenAsync())
        {
            await StoreWorld.CreateAsync(connection);
        }
        var before = await CountsAsync(database);

        var outcome = await Seeder(database).SeedAsync(Credentials);

        Assert.Equal(DemoSeedOutcome.RefusedRealData, outcome);
        Assert.Equal(before, await CountsAsync(database));
    }
}

public sealed class SqliteDemoSeedingTests() : DemoSeedingTests(new SqliteTestStore());

public sealed class PostgresDemoSeedingTests() : DemoSeedingTests(new PostgresTestStore());
