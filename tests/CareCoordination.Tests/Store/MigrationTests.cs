using System.Text;
using CareCoordination.Features.Fhir;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using CareCoordination.Tests.Support;
using Dapper;
using Hl7.Fhir.Model;
using Microsoft.Extensions.Logging.Abstractions;
using Task = System.Threading.Tasks.Task;

namespace CareCoordination.Tests.Store;

/// <summary>Written once, run against every store (see the one-line subclasses below).</summary>
public abstract class MigrationTests(ITestStore store)
{
    private static readonly string[] DomainTables =
    [
        "organisation", "staff_user", "partner_client", "person", "service", "site", "ward", "bed", "referral",
        "referral_note", "triage_task", "placement", "change", "audit_event", "app_setting", "referral_person", "caution_approval",
    ];

    private async Task<Database> EmptyStoreAsync()
    {
        TypeHandlers.Register();
        return new Database(store.Provider, await store.CreateEmptyAsync());
    }

    [Fact]
    public async Task Migrations_OnAnEmptyStore_CreateTheWholeDomain()
    {
        await using var database = await EmptyStoreAsync();

        var applied = await new Migrator(database, NullLogger<Migrator>.Instance).ApplyAsync();

        Assert.Equal(Migrator.Scripts.Select(s => s.Version), applied);
        await using var connection = await database.OpenAsync();
        foreach (var table in DomainTables)
        {
            Assert.Equal(0, await connection.ExecuteScalarAsync<long>($"SELECT COUNT(*) FROM {table}"));
        }
    }

    /// <summary>A store as an older release left it: the migrations before <paramref name="script"/>, and their rows.</summary>
    private async Task<Database> StoreBeforeAsync(string script)
    {
        var database = await EmptyStoreAsync();
        var version = Migrator.Scripts.Single(s => s.Name == script).Version;
        await using var connection = await database.OpenAsync();
        await connection.ExecuteAsync("CREATE TABLE schema_migration (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)");
        foreach (var earlier in Migrator.Scripts.Where(s => s.Version < version))
        {
            // Each in a transaction of its own, as an older release ran them: 0037 locks the table it copies, which PostgreSQL allows only in one.
            await using var transaction = await connection.BeginTransactionAsync();
            await Migrator.RunScriptAsync(connection, transaction, database.Dialect(earlier.Sql));
            await connection.ExecuteAsync("INSERT INTO schema_migration (version, name, applied_at) VALUES (@Version, @Name, @At)",
                new { earlier.Version, earlier.Name, At = DateTimeOffset.UtcNow }, transaction);
            await transaction.CommitAsync();
        }
        return database;
    }

    [Fact]
    public async Task NeedToKnow_OnAStoreWithHistory_KeepsWithEachReferralOnlyWhatItCanBeKnownToHaveSaid_AndSplitsClosures()
    {
        await using var database = await StoreBeforeAsync("need_to_know");
        long earlier, latest, infection, other;
        await using (var connection = await database.OpenAsync())
        {
            var world = await StoreWorld.CreateAsync(connection);
            // Two referrals of one person: the latest wrote the record as it stands (another trust's address).
            earlier = await world.AddReferralAsync(connection, "9990000018");
            var person = await connection.ExecuteScalarAsync<long>("SELECT person_id FROM referral WHERE id = @earlier", new { earlier });
            latest = await connection.ExecuteScalarAsync<long>(
                """
                INSERT INTO referral (person_id, organisation_id, status, source, pathway, urgency, consent_to_share, created_at, submitted_at, updated_at)
                VALUES (@person, @OrganisationId, 'submitted', 'gp', '1', 'routine', TRUE, @now, @now, @now) RETURNING id
                """, new { person, world.OrganisationId, now = DateTimeOffset.UtcNow });
            await connection.ExecuteAsync(
                "UPDATE person SET address_line = '3 Harbour View', carer_contact = '07700 900456', ethnicity = 'H', version = 2 WHERE id = @person", new { person });
            infection = world.BedId;
            await connection.ExecuteAsync("UPDATE bed SET status = 'closed', closed_reason = 'infection: Mrs Edna Pascoe has C. difficile' WHERE id = @infection", new { infection });
            var ward = await connection.ExecuteScalarAsync<long>("SELECT ward_id FROM bed WHERE id = @infection", new { infection });
            other = await connection.ExecuteScalarAsync<long>(
                "INSERT INTO bed (ward_id, label, bed_type, allowed_sex, status, closed_reason, confirmed_at) VALUES (@ward, 'B2', 'rehabilitation', 'any', 'closed', 'Mr Jago''s family asked', @now) RETURNING id",
                new { ward, now = DateTimeOffset.UtcNow });
        }

        await new Migrator(database, NullLogger<Migrator>.Instance).ApplyAsync();

        await using var migrated = await database.OpenAsync();
        var said = (await migrated.QueryAsync<(long Referral, int? Version, string Name, string? Address, string? Carer, string? Ethnicity)>(
            "SELECT referral_id, person_version, given_name, address_line, carer_contact, ethnicity FROM referral_person ORDER BY referral_id")).ToList();
        Assert.Equal([(earlier, null, "Test", null, null, null), (latest, 2, "Test", "3 Harbour View", "07700 900456", "H")], said);
        var beds = (await migrated.QueryAsync<(long Id, string Reason, string Detail)>("SELECT id, closed_reason, closed_detail FROM bed ORDER BY id")).ToList();
        Assert.Equal([(infection, "infection", "Mrs Edna Pascoe has C. difficile"), (other, "other", "Mr Jago's family asked")], beds);
    }

    [Fact]
    public async Task CompactStore_OnAStoreWithKeptMessagesAndVersions_GivesEachBackAsItWas()
    {
        await using var database = await StoreBeforeAsync("compact_store");
        var body = Encoding.UTF8.GetBytes("\uFEFF{ \"resourceType\": \"Bundle\",\t\"type\": \"transaction\" }\r\n");
        var earlier = new Patient { Id = "41", Meta = new Meta { VersionId = "1", LastUpdated = DateTimeOffset.UtcNow }, BirthDate = "1941-03-09" };
        await using (var connection = await database.OpenAsync())
        {
            var world = await StoreWorld.CreateAsync(connection);
            await connection.ExecuteAsync(
                """
                INSERT INTO fhir_received (receipt, organisation_id, sender, interaction, content_type, body, body_bytes, received_at)
                VALUES ('r1', @OrganisationId, 'epr', 'POST /fhir', 'application/fhir+json', @body, @length, @now)
                """, new { world.OrganisationId, body, length = body.Length, now = DateTimeOffset.UtcNow });
            await connection.ExecuteAsync(
                "INSERT INTO fhir_version (resource_type, resource_id, version, last_updated, resource) VALUES ('Patient', '41', 1, @now, @json)",
                new { now = earlier.Meta.LastUpdated, json = FhirMapping.Serialize(earlier) });
        }

        await new Migrator(database, NullLogger<Migrator>.Instance).ApplyAsync();

        await using var migrated = await database.OpenAsync();
        var (stored, encoding) = await migrated.QuerySingleAsync<(byte[], string)>("SELECT body, body_encoding FROM fhir_received WHERE receipt = 'r1'");
        Assert.Equal(body, Packing.Unpack(stored, encoding));
        var current = new Patient { Id = "41", Meta = new Meta { VersionId = "2", LastUpdated = DateTimeOffset.UtcNow } };
        var vread = await FhirVersions.ReadAsync(database, current, PatientIdSpace.Store, 1, 10, 0, CancellationToken.None);
        Assert.True(earlier.IsExactly(Assert.Single(vread.Items)));
    }

    [Fact]
    public async Task StoreGrowth_DropsTheStoredCopiesOfCurrentVersions_KeepsTheSupersededOnes_AndReadsBrotliRowsAsBefore()
    {
        await using var database = await StoreBeforeAsync("store_growth");
        var at = DateTimeOffset.UtcNow;
        var message = Encoding.UTF8.GetBytes(FhirPayloads.ProfileExamplesTransaction("9990000018").ToJsonString());
        long referral, task, person, bed;
        var superseded = new ServiceRequest
        {
            Meta = new Meta { VersionId = "1", LastUpdated = at.AddHours(-1) }, Status = RequestStatus.Active, Intent = RequestIntent.Order,
            Subject = new ResourceReference("Patient/1"),
        };
        await using (var connection = await database.OpenAsync())
        {
            var world = await StoreWorld.CreateAsync(connection);
            referral = await world.AddReferralAsync(connection, "9990000018");
            superseded.Id = referral.ToString(System.Globalization.CultureInfo.InvariantCulture);
            await connection.ExecuteAsync("UPDATE referral SET version = 2 WHERE id = @referral", new { referral });
            person = await connection.ExecuteScalarAsync<long>("SELECT person_id FROM referral WHERE id = @referral", new { referral });
            task = await connection.ExecuteScalarAsync<long>(
                "INSERT INTO triage_task (referral_id, queue, status, created_at, updated_at) VALUES (@referral, 'coordination', 'requested', @at, @at) RETURNING id",
                new { referral, at });
            bed = world.BedId;
            // What an earlier release kept: every version a command made, the current ones included.
            foreach (var (type, id, version, resource) in new (string, string, int, Resource)[]
            {
                ("ServiceRequest", superseded.Id, 1, superseded),
                ("ServiceRequest", superseded.Id, 2, new ServiceRequest { Id = superseded.Id, Meta = new Meta { VersionId = "2", LastUpdated = at } }),
                ("Task", task.ToString(System.Globalization.CultureInfo.InvariantCulture), 1, new Hl7.Fhir.Model.Task { Meta = new Meta { VersionId = "1", LastUpdated = at } }),
                ("Patient", person.ToString(System.Globalization.CultureInfo.InvariantCulture), 1, new Patient { Meta = new Meta { VersionId = "1", LastUpdated = at } }),
                ("Location", FhirPlace.BedId(bed), 1, new Location { Meta = new Meta { VersionId = "1", LastUpdated = at } }),
                // A referral's version 3 that its row never reached (the row says 2): not current, so it stays.
                ("ServiceRequest", superseded.Id, 3, new ServiceRequest { Meta = new Meta { VersionId = "3", LastUpdated = at } }),
            })
            {
                await connection.ExecuteAsync(
                    "INSERT INTO fhir_version (resource_type, resource_id, version, last_updated, packed) VALUES (@type, @id, @version, @at, @packed)",
                    new { type, id, version, at = resource.Meta!.LastUpdated, packed = BrotliAsBefore(Encoding.UTF8.GetBytes(FhirMapping.Serialize(resource))) });
            }
            await connection.ExecuteAsync(
                """
                INSERT INTO fhir_received (receipt, organisation_id, sender, interaction, content_type, body, body_encoding, body_bytes, received_at)
                VALUES ('r1', @OrganisationId, 'epr', 'POST /fhir', 'application/fhir+json', @packed, 'br', @length, @at)
                """, new { world.OrganisationId, packed = BrotliAsBefore(message), length = message.Length, at });
        }

        await new Migrator(database, NullLogger<Migrator>.Instance).ApplyAsync();

        await using var migrated = await database.OpenAsync();
        Assert.Equal([("ServiceRequest", superseded.Id, 1), ("ServiceRequest", superseded.Id, 3)],
            (await migrated.QueryAsync<(string, string, int)>("SELECT resource_type, resource_id, version FROM fhir_version ORDER BY resource_type, version")).ToList());
        // History reads as before: the current version from the live row, the superseded one from its stored row.
        var current = new ServiceRequest { Id = superseded.Id, Meta = new Meta { VersionId = "2", LastUpdated = at } };
        var history = await FhirVersions.ReadAsync(database, current, PatientIdSpace.Store, null, 10, 0, CancellationToken.None);
        Assert.Equal(2, history.Total);
        Assert.Same(current, history.Items[0]);
        Assert.True(superseded.IsExactly(history.Items[1]));
        // The message packed with Brotli before keeps its encoding and unpacks as it did; a message packed now says zstd.
        var (stored, encoding) = await migrated.QuerySingleAsync<(byte[], string)>("SELECT body, body_encoding FROM fhir_received WHERE receipt = 'r1'");
        Assert.Equal("br", encoding);
        Assert.Equal(message, Packing.Unpack(stored, encoding));
        var organisation = await migrated.ExecuteScalarAsync<long>("SELECT organisation_id FROM fhir_received WHERE receipt = 'r1'");
        await migrated.ExecuteAsync(
            """
            INSERT INTO fhir_received (receipt, organisation_id, sender, interaction, content_type, body, body_encoding, body_bytes, received_at)
            VALUES ('r2', @organisation, 'epr', 'POST /fhir', 'application/fhir+json', @packed, 'zstd', @length, @at)
            """, new { organisation, packed = Packing.Pack(message), length = message.Length, at });
        (stored, encoding) = await migrated.QuerySingleAsync<(byte[], string)>("SELECT body, body_encoding FROM fhir_received WHERE receipt = 'r2'");
        Assert.Equal(message, Packing.Unpack(stored, encoding));
    }

    /// <summary>How releases before 0023 packed: Brotli, quality 5, a 22-bit window.</summary>
    private static byte[] BrotliAsBefore(byte[] data)
    {
        var buffer = new byte[System.IO.Compression.BrotliEncoder.GetMaxCompressedLength(data.Length)];
        Assert.True(System.IO.Compression.BrotliEncoder.TryCompress(data, buffer, out var written, 5, 22));
        return buffer[..written];
    }

    /// <summary>
    /// "Who has seen this person's record", as docs/reports-client-level-data.md gives it: the audit rows naming the person,
    /// the page reads that named them in audit_read_person (0033, by its person index), and each bulk read (found by
    /// audit_person's key, one seek per read) that named them in audit_person. On PostgreSQL the page reads' people are one
    /// array per read (0040), and the middle part is ReadPeople's, as the document gives it.
    /// </summary>
    private string WhoHasSeen => store.Provider == StoreProvider.PostgreSQL
        ? WhoHasSeenOnSqlite.Replace("SELECT rp.audit_id FROM audit_read_person rp WHERE rp.person_id = @person",
            "SELECT rp.audit_id FROM audit_read_people rp WHERE rp.person_ids @> ARRAY[CAST(@person AS BIGINT)]", StringComparison.Ordinal)
        : WhoHasSeenOnSqlite;

    private const string WhoHasSeenOnSqlite = """
        WITH RECURSIVE bulk_read (audit_id) AS (
            SELECT MIN(audit_id) FROM audit_person
            UNION ALL
            SELECT (SELECT MIN(ap.audit_id) FROM audit_person ap WHERE ap.audit_id > b.audit_id) FROM bulk_read b WHERE b.audit_id IS NOT NULL
        )
        SELECT a.id FROM audit_event a WHERE a.person_id = @person
        UNION
        SELECT rp.audit_id FROM audit_read_person rp WHERE rp.person_id = @person
        UNION
        SELECT a.id FROM bulk_read b
        JOIN audit_person ap ON ap.audit_id = b.audit_id AND ap.person_id = @person
        JOIN audit_event a ON a.id = ap.audit_id
        """;

    [Fact]
    public async Task AuditPersonByRead_OnAStoreWithBulkReads_KeepsEveryoneFindable_AndKeysEachReadsPeopleTogether()
    {
        await using var database = await StoreBeforeAsync("audit_person_by_read");
        long Audit(System.Data.Common.DbConnection connection, long? person, string detail) => connection.ExecuteScalar<long>(
            """
            INSERT INTO audit_event (at, actor_kind, actor_name, action, outcome, person_id, detail)
            VALUES (@at, 'staff', 'David Trelawney', 'ClientLevelEvents', 'success', @person, @detail) RETURNING id
            """, new { at = DateTimeOffset.UtcNow, person, detail });
        long quarter, year, direct;
        await using (var connection = await database.OpenAsync())
        {
            // Two exports as 0027 kept them (people 41-43, then 42 and 44), and one read of person 41's own record.
            quarter = Audit(connection, null, "CLD export 2026-07-01 to 2026-09-30: 4 events");
            year = Audit(connection, null, "CLD export 2025-12-01 to 2026-11-30: 2 events");
            direct = Audit(connection, 41, "read the referral as sent");
            await connection.ExecuteAsync("INSERT INTO audit_person (person_id, audit_id) VALUES (@person, @audit)",
                new[] { (41L, quarter), (42L, quarter), (43L, quarter), (42L, year), (44L, year) }.Select(x => new { person = x.Item1, audit = x.Item2 }));
        }

        await new Migrator(database, NullLogger<Migrator>.Instance).ApplyAsync();

        await using var migrated = await database.OpenAsync();
        async Task<long[]> SeenBy(long person) => [.. (await migrated.QueryAsync<long>(WhoHasSeen, new { person })).Order()];
        Assert.Equal([quarter, direct], await SeenBy(41));
        Assert.Equal([quarter, year], await SeenBy(42));
        Assert.Equal([quarter], await SeenBy(43));
        Assert.Equal([year], await SeenBy(44));
        Assert.Empty(await SeenBy(45));
        // A page of search results (0033) that showed persons 44 and 45.
        var page = Audit(migrated, null, "a page of Task results");
        await migrated.ExecuteAsync(store.Provider == StoreProvider.PostgreSQL
            ? "INSERT INTO audit_read_people (audit_id, person_ids) VALUES (@page, ARRAY[44, 45])"
            : "INSERT INTO audit_read_person (audit_id, person_id) VALUES (@page, 44), (@page, 45)", new { page });
        Assert.Equal([year, page], await SeenBy(44));
        Assert.Equal([page], await SeenBy(45));

        // A new export's people go in after it: the read's id first in the key, then the person.
        var key = database.Provider == StoreProvider.PostgreSQL
            ? """
              SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
              WHERE i.indrelid = 'audit_person'::regclass AND i.indisprimary ORDER BY array_position(i.indkey::int2[], a.attnum)
              """
            : "SELECT name FROM pragma_table_info('audit_person') WHERE pk > 0 ORDER BY pk";
        Assert.Equal(["audit_id", "person_id"], await migrated.QueryAsync<string>(key));
        if (database.Provider == StoreProvider.Sqlite)
        {
            // One b-tree: the key is the table.
            Assert.Contains("WITHOUT ROWID", await migrated.QuerySingleAsync<string>("SELECT sql FROM sqlite_master WHERE name = 'audit_person'"), StringComparison.Ordinal);
            // Every step of "who has seen" is a seek: nothing reads the whole of audit_person or audit_event.
            var plan = (await migrated.QueryAsync<(long Id, long Parent, long NotUsed, string Detail)>("EXPLAIN QUERY PLAN " + WhoHasSeen, new { person = 42L }))
                .Select(row => row.Detail).ToList();
            Assert.All(plan.Where(d => d.Split(' ') is [("SCAN" or "SEARCH"), ("audit_person" or "ap" or "a" or "audit_event" or "rp" or "audit_read_person"), ..]),
                d => Assert.Matches("^SEARCH [a-z_]+ USING ", d));
            Assert.Contains(plan, d => d.StartsWith("SEARCH rp USING COVERING INDEX ix_audit_read_person_person", StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task Migrations_AppliedAgain_AreANoOp()
    {
        await using var database = await EmptyStoreAsync();
        var migrator = new Migrator(database, NullLogger<Migrator>.Instance);
        await migrator.ApplyAsync();

        var second = await migrator.ApplyAsync();

        Assert.Empty(second);
        await using var connection = await database.OpenAsync();
        Assert.Equal(Migrator.Scripts.Count, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM schema_migration"));
    }

    /// <summary>
    /// A store a newer version has migrated (an upgrade rolled back to the old build): this version refuses to start on it,
    /// naming both versions, rather than serve a schema its code does not know.
    /// </summary>
    [Fact]
    public async Task Migrations_OnAStoreANewerVersionMigrated_RefuseToStart_NamingBothVersions()
    {
        await using var database = await EmptyStoreAsync();
        var migrator = new Migrator(database, NullLogger<Migrator>.Instance);
        await migrator.ApplyAsync();
        await using (var connection = await database.OpenAsync())
        {
            await connection.ExecuteAsync("INSERT INTO schema_migration (version, name, applied_at) VALUES (@Version, 'from_the_future', @At)",
                new { Version = Migrator.Scripts.Count + 1, At = DateTimeOffset.UtcNow });
        }

        var refused = await Assert.ThrowsAsync<InvalidOperationException>(() => migrator.ApplyAsync());

        Assert.StartsWith($"The store was migrated by a newer version of CareCoordination (schema version {Migrator.Scripts.Count + 1}; this one knows {Migrator.Scripts.Count}).",
            refused.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// Nodes starting together on a new store: the scripts run once, in one node's one transaction, and the others find them
    /// applied once it commits.
    /// </summary>
    [Fact]
    public async Task Migrations_ThreeNodesStartingTogetherOnANewStore_ApplyEachScriptOnce()
    {
        await using var database = await EmptyStoreAsync();
        var nodes = Enumerable.Range(0, 3).Select(_ => new Migrator(database, NullLogger<Migrator>.Instance)).ToList();

        var applied = await Task.WhenAll(nodes.Select(node => Task.Run(() => node.ApplyAsync())));

        Assert.Single(applied, a => a.Count > 0);
        Assert.Equal(Migrator.Scripts.Select(s => s.Version), applied.Single(a => a.Count > 0));
        await using var connection = await database.OpenAsync();
        Assert.Equal(Migrator.Scripts.Count, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM schema_migration"));
    }

    /// <summary>One transaction for the run: a script that fails takes the scripts before it back too, and is named.</summary>
    [Fact]
    public async Task Migrations_WhenAScriptFails_NameIt_AndLeaveNothingOfTheRun()
    {
        await using var database = await EmptyStoreAsync();
        await using var connection = await database.OpenAsync();
        // In the way of script 3, which makes a table of this name.
        await connection.ExecuteAsync("CREATE TABLE recontact (id INTEGER)");

        var failure = await Assert.ThrowsAsync<InvalidOperationException>(() => new Migrator(database, NullLogger<Migrator>.Instance).ApplyAsync());

        Assert.StartsWith($"Migration 3 coordination failed, so none of this start's {Migrator.Scripts.Count} migrations was applied: ", failure.Message);
        Assert.Contains("recontact", failure.Message);
        var tables = database.Provider == StoreProvider.PostgreSQL
            ? "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            : "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'";
        Assert.Equal(["recontact"], await connection.QueryAsync<string>(tables));
    }

    [Fact]
    public async Task Migrations_OnAnUpToDateStore_DoNotWaitForAWriterOrAnotherNodesMigration()
    {
        await using var database = await EmptyStoreAsync();
        var migrator = new Migrator(database, NullLogger<Migrator>.Instance);
        await migrator.ApplyAsync();
        // Another node holds the store's writer lock (SQLite) or is migrating (PostgreSQL) while this one restarts.
        await using var other = await database.OpenAsync();
        await using var held = database.Provider == StoreProvider.Sqlite ? await database.BeginWriteAsync(other) : null;
        if (database.Provider == StoreProvider.PostgreSQL)
        {
            await other.ExecuteAsync("SELECT pg_advisory_lock(7426000)");
        }

        // Without waiting for either: a restart needs nothing written when every script is applied. The limit only stops a hang.
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var applied = await migrator.ApplyAsync(limit.Token);

        Assert.Empty(applied);
    }

    [Fact]
    public async Task Bed_WithALivePlacement_RefusesASecondOne()
    {
        await using var database = await store.MigratedAsync();
        await using var connection = await database.OpenAsync();
        var world = await StoreWorld.CreateAsync(connection);
        var first = await world.AddReferralAsync(connection, "9990000018");
        var second = await world.AddReferralAsync(connection, "9990000026");
        await world.PlaceInBedAsync(connection, first, "active");

        var refused = await Record.ExceptionAsync(() => world.PlaceInBedAsync(connection, second, "reserved"));

        Assert.NotNull(refused);
        Assert.True(database.IsUniqueViolation(refused), refused.Message);
        Assert.Equal(1, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM placement"));
    }

    [Fact]
    public async Task Bed_AfterItsPlacementEnds_TakesTheNextOne()
    {
        await using var database = await store.MigratedAsync();
        await using var connection = await database.OpenAsync();
        var world = await StoreWorld.CreateAsync(connection);
        var first = await world.AddReferralAsync(connection, "9990000018");
        var second = await world.AddReferralAsync(connection, "9990000026");
        var placement = await world.PlaceInBedAsync(connection, first, "active");
        await connection.ExecuteAsync("UPDATE placement SET status = 'ended', ended_at = @now WHERE id = @placement", new { placement, now = DateTimeOffset.UtcNow });

        await world.PlaceInBedAsync(connection, second, "active");

        Assert.Equal(2, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM placement"));
    }

    [Fact]
    public async Task Person_NhsNumber_IsUnique()
    {
        await using var database = await store.MigratedAsync();
        await using var connection = await database.OpenAsync();
        var world = await StoreWorld.CreateAsync(connection);
        await world.AddPersonAsync(connection, "9990000018");

        var refused = await Record.ExceptionAsync(() => world.AddPersonAsync(connection, "9990000018"));

        Assert.NotNull(refused);
        Assert.True(database.IsUniqueViolation(refused), refused.Message);
    }

    [Fact]
    public async Task Referral_SubmittedWithoutConsentOrLawfulReason_IsRefusedByTheStore()
    {
        await using var database = await store.MigratedAsync();
        await using var connection = await database.OpenAsync();
        var world = await StoreWorld.CreateAsync(connection);

        var refused = await Record.ExceptionAsync(() => world.AddReferralAsync(connection, "9990000018", consent: false));

        Assert.NotNull(refused);
        Assert.Equal(0, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM referral"));
    }

    [Fact]
    public async Task TaskOwner_OnAStoreWithHistory_IsFilledInByTheOwnerRule()
    {
        await using var database = await StoreBeforeAsync("history_scale");
        long centre, secondCentre, bureau, held, waiting, nowhere, atBureau;
        await using (var connection = await database.OpenAsync())
        {
            var world = await StoreWorld.CreateAsync(connection);
            async Task<long> Organisation(string code, string kind, string? locality) => await connection.ExecuteScalarAsync<long>(
                "INSERT INTO organisation (code, name, kind, locality, created_at) VALUES (@code, @code, @kind, @locality, @now) RETURNING id",
                new { code, kind, locality, now = DateTimeOffset.UtcNow });
            centre = await Organisation("CC-A", "coordination-centre", "Ashbury");
            secondCentre = await Organisation("CC-B", "coordination-centre", "Ashbury");
            bureau = await Organisation("BB", "bed-bureau", null);
            var holder = await connection.ExecuteScalarAsync<long>(
                "INSERT INTO staff_user (username, display_name, role, organisation_id, created_at) VALUES ('cc-b', 'CC-B coordinator', 'coordinator', @secondCentre, @now) RETURNING id",
                new { secondCentre, now = DateTimeOffset.UtcNow });
            async Task<long> Task(string nhs, string? locality, string queue, long? owner)
            {
                var referral = await world.AddReferralAsync(connection, nhs);
                await connection.ExecuteAsync("UPDATE person SET locality = @locality WHERE id = (SELECT person_id FROM referral WHERE id = @referral)", new { locality, referral });
                return await connection.ExecuteScalarAsync<long>(
                    """
                    INSERT INTO triage_task (referral_id, queue, status, owner_user_id, version, created_at, updated_at)
                    VALUES (@referral, @queue, 'completed', @owner, 1, @now, @now) RETURNING id
                    """, new { referral, queue, owner, now = DateTimeOffset.UtcNow });
            }
            held = await Task("9990000026", "Ashbury", "coordination", holder);
            waiting = await Task("9990000034", "Ashbury", "coordination", null);
            nowhere = await Task("9990000042", "Kelworth", "coordination", null);
            atBureau = await Task("9990000050", "Ashbury", "bed-bureau", null);
        }

        await new Migrator(database, NullLogger<Migrator>.Instance).ApplyAsync();

        await using var migrated = await database.OpenAsync();
        var owners = (await migrated.QueryAsync<(long Task, long? Owner)>("SELECT id, owner_organisation_id FROM triage_task ORDER BY id")).ToList();
        // Held: the holder's organisation (CC-B), not the locality's. Unheld: the lowest-numbered centre of the person's locality
        // (CC-A of the two in Ashbury), none for a locality no centre is in, the bed bureau for its queue.
        Assert.Equal(new (long, long?)[] { (held, secondCentre), (waiting, centre), (nowhere, null), (atBureau, bureau) }, owners);
    }

    [Fact]
    public async Task TaskReferringOrganisation_OnAStoreWithHistory_IsEachTasksReferralsOrganisation()
    {
        await using var database = await StoreBeforeAsync("task_referring_organisation");
        long first, second, third, ours, other;
        await using (var connection = await database.OpenAsync())
        {
            var world = await StoreWorld.CreateAsync(connection);
            ours = world.OrganisationId;
            other = await connection.ExecuteScalarAsync<long>(
                "INSERT INTO organisation (code, name, kind, created_at) VALUES ('RX2', 'Another trust', 'acute-trust', @now) RETURNING id",
                new { now = DateTimeOffset.UtcNow });
            async Task<long> Task(long referral, string queue, string status) => await connection.ExecuteScalarAsync<long>(
                """
                INSERT INTO triage_task (referral_id, queue, status, version, created_at, updated_at)
                VALUES (@referral, @queue, @status, 1, @now, @now) RETURNING id
                """, new { referral, queue, status, now = DateTimeOffset.UtcNow });
            var ourReferral = await world.AddReferralAsync(connection, "9990000026");
            var theirReferral = await world.AddReferralAsync(connection, "9990000034");
            await connection.ExecuteAsync("UPDATE referral SET organisation_id = @other WHERE id = @theirReferral", new { other, theirReferral });
            first = await Task(ourReferral, "coordination", "completed");
            second = await Task(ourReferral, "bed-bureau", "requested");
            third = await Task(theirReferral, "coordination", "requested");
        }

        await new Migrator(database, NullLogger<Migrator>.Instance).ApplyAsync();

        await using var migrated = await database.OpenAsync();
        var kept = (await migrated.QueryAsync<(long Task, long? Referring)>("SELECT id, referring_organisation_id FROM triage_task ORDER BY id")).ToList();
        Assert.Equal(new (long, long?)[] { (first, ours), (second, ours), (third, other) }, kept);
    }

    [Fact]
    public async Task Triaged_OnAStoreWithHistory_IsEachReferralsFirstCoordinationDecision()
    {
        await using var database = await StoreBeforeAsync("history_scale");
        var at = new DateTimeOffset(2026, 11, 2, 9, 0, 0, TimeSpan.Zero);
        long twice, byBureauOnly, cancelled;
        await using (var connection = await database.OpenAsync())
        {
            var world = await StoreWorld.CreateAsync(connection);
            async Task Task(long referral, string queue, string status, int hours) => await connection.ExecuteAsync(
                """
                INSERT INTO triage_task (referral_id, queue, status, version, created_at, updated_at, completed_at)
                VALUES (@referral, @queue, @status, 1, @at, @completedAt, @completedAt)
                """, new { referral, queue, status, at, completedAt = at.AddHours(hours) });
            // Decided twice by the coordination centre (redirected at 3 h, declined on its return at 9 h), the bureau between.
            twice = await world.AddReferralAsync(connection, "9990000026");
            await Task(twice, "coordination", "completed", 3);
            await Task(twice, "bed-bureau", "completed", 5);
            await Task(twice, "coordination", "rejected", 9);
            byBureauOnly = await world.AddReferralAsync(connection, "9990000034");
            await Task(byBureauOnly, "bed-bureau", "completed", 2);
            cancelled = await world.AddReferralAsync(connection, "9990000042");
            await Task(cancelled, "coordination", "cancelled", 1);
        }

        await new Migrator(database, NullLogger<Migrator>.Instance).ApplyAsync();

        await using var migrated = await database.OpenAsync();
        var triaged = (await migrated.QueryAsync<(long Referral, DateTimeOffset? At)>("SELECT id, triaged_at FROM referral ORDER BY id")).ToList();
        Assert.Equal(new (long, DateTimeOffset?)[] { (twice, at.AddHours(3)), (byBureauOnly, null), (cancelled, null) }, triaged);
    }

    public sealed record Firsts
    {
        public long Referral { get; init; }
        public DateTimeOffset? DecidedAt { get; init; }
        public string? Decision { get; init; }
        public string? Queue { get; init; }
        public DateTimeOffset? StartedAt { get; init; }
    }

    private const string ReadFirsts = """
        SELECT id AS Referral, first_decided_at AS DecidedAt, first_decision AS Decision, first_decision_queue AS Queue, first_started_at AS StartedAt
        FROM referral ORDER BY id
        """;

    [Fact]
    public async Task ReferralFirsts_OnAStoreWithHistory_AreTheFirstDecisionAndStart_AsTheCommandsKeepThem()
    {
        await using var database = await StoreBeforeAsync("referral_firsts");
        var at = new DateTimeOffset(2026, 11, 2, 9, 0, 0, TimeSpan.Zero);
        long passed, tie, cancelled, reserved;
        await using (var connection = await database.OpenAsync())
        {
            var world = await StoreWorld.CreateAsync(connection);
            async Task Task(long referral, string queue, string status, string? decision, int hours) => await connection.ExecuteAsync(
                """
                INSERT INTO triage_task (referral_id, queue, status, decision, version, created_at, updated_at, completed_at)
                VALUES (@referral, @queue, @status, @decision, 1, @at, @completedAt, @completedAt)
                """, new { referral, queue, status, decision, at, completedAt = at.AddHours(hours) });
            async Task Placement(long referral, string status, int? startedHours) => await connection.ExecuteAsync(
                """
                INSERT INTO placement (referral_id, bed_id, status, start_on, started_at, created_at)
                VALUES (@referral, @BedId, @status, @day, @started, @at)
                """, new { referral, world.BedId, status, day = DateOnly.FromDateTime(at.UtcDateTime), started = startedHours is { } h ? at.AddHours(h) : (DateTimeOffset?)null, at });
            // Passed to the bed bureau at 3 h (not a decision), declined there at 5 h, accepted back in coordination at 9 h
            // (written first, so the earliest time decides, not the order written); started at 30 h, and again at 10 h before it.
            passed = await world.AddReferralAsync(connection, "9990000026");
            await Task(passed, "coordination", "completed", "accepted: reablement", 9);
            await Task(passed, "coordination", "completed", "redirected to bed bureau", 3);
            await Task(passed, "bed-bureau", "rejected", "declined: needs-met", 5);
            await Placement(passed, "ended", 30);
            await Placement(passed, "ended", 10);
            // Two decisions at the same time: the task made first.
            tie = await world.AddReferralAsync(connection, "9990000034");
            await Task(tie, "bed-bureau", "completed", "accepted: rehabilitation bed, Test Site", 4);
            await Task(tie, "coordination", "completed", "accepted: home-care", 4);
            // Cancelled with its referral: no decision; a reserved placement never started.
            cancelled = await world.AddReferralAsync(connection, "9990000042");
            await Task(cancelled, "coordination", "cancelled", null, 1);
            reserved = await world.AddReferralAsync(connection, "9990000050");
            await Task(reserved, "bed-bureau", "completed", "accepted: rehabilitation bed, Test Site", 2);
            await Placement(reserved, "reserved", null);
        }

        await new Migrator(database, NullLogger<Migrator>.Instance).ApplyAsync();

        await using var migrated = await database.OpenAsync();
        var filled = (await migrated.QueryAsync<Firsts>(ReadFirsts)).ToList();
        Assert.Equal(
            [
                new Firsts { Referral = passed, DecidedAt = at.AddHours(5), Decision = "declined: needs-met", Queue = "bed-bureau", StartedAt = at.AddHours(10) },
                new Firsts { Referral = tie, DecidedAt = at.AddHours(4), Decision = "accepted: rehabilitation bed, Test Site", Queue = "bed-bureau" },
                new Firsts { Referral = cancelled },
                new Firsts { Referral = reserved, DecidedAt = at.AddHours(2), Decision = "accepted: rehabilitation bed, Test Site", Queue = "bed-bureau" },
            ], filled);
        // The same facts as the write path keeps (ReferralFirsts.KeepAsync) from the same rows.
        await migrated.ExecuteAsync("UPDATE referral SET first_decided_at = NULL, first_decision = NULL, first_decision_queue = NULL, first_started_at = NULL");
        foreach (var referral in new[] { passed, tie, cancelled, reserved })
        {
            await CareCoordination.Features.Referrals.ReferralFirsts.KeepAsync(migrated, null, referral);
        }
        Assert.Equal(filled, await migrated.QueryAsync<Firsts>(ReadFirsts));
    }

    /// <summary>
    /// A referral is sent with none of the times its later steps keep (0034): the indexes on those times hold only the
    /// referrals that have them, so a referral sent writes no entry to them (issue 14, growth). And the indexes the CLD
    /// export's first run is found by hold when each was sent or started, so the rows its filter drops are never read (issue 13).
    /// </summary>
    [Fact]
    public async Task ReferralTimeIndexes_HoldOnlyTheReferralsThatHaveTheTime_AndTheCldFirstRunsFilter()
    {
        await using var database = await EmptyStoreAsync();
        await new Migrator(database, NullLogger<Migrator>.Instance).ApplyAsync();
        await using var connection = await database.OpenAsync();
        async Task<string> Definition(string index) => await connection.QuerySingleAsync<string>(
            store.Provider == StoreProvider.Sqlite ? "SELECT sql FROM sqlite_master WHERE name = @index" : "SELECT indexdef FROM pg_indexes WHERE indexname = @index",
            new { index });

        foreach (var (index, time) in new[] { ("ix_referral_first_decided", "first_decided_at"), ("ix_referral_triaged", "triaged_at"), ("ix_referral_first_started", "first_started_at") })
        {
            Assert.Matches($@"WHERE \(?{time} IS NOT NULL\)?$", await Definition(index));
        }
        Assert.Matches(@"\(first_decided_at, submitted_at, id\)", await Definition("ix_referral_first_decided"));
        Assert.Matches(@"\(ended_at, started_at\) WHERE \(?status = 'ended'", await Definition("ix_placement_ended_by_end"));
    }

    [Fact]
    public async Task PlacementReferralSubmitted_OnAStoreWithHistory_IsEachPlacementsReferralsSubmission()
    {
        await using var database = await StoreBeforeAsync("placement_referral_submitted");
        var at = new DateTimeOffset(2026, 11, 2, 9, 0, 0, TimeSpan.Zero);
        long ended, started, other, cancelled;
        await using (var connection = await database.OpenAsync())
        {
            var world = await StoreWorld.CreateAsync(connection);
            async Task<long> Referral(string nhsNumber, int hours)
            {
                var id = await world.AddReferralAsync(connection, nhsNumber);
                await connection.ExecuteAsync("UPDATE referral SET submitted_at = @submitted WHERE id = @id", new { submitted = at.AddHours(hours), id });
                return id;
            }
            async Task<long> Placement(long referral, string status, int? startedHours) => await connection.ExecuteScalarAsync<long>(
                """
                INSERT INTO placement (referral_id, bed_id, status, start_on, started_at, created_at)
                VALUES (@referral, @BedId, @status, @day, @started, @at) RETURNING id
                """, new { referral, world.BedId, status, day = DateOnly.FromDateTime(at.UtcDateTime), started = startedHours is { } h ? at.AddHours(h) : (DateTimeOffset?)null, at });
            // Two placements of one referral (the bed holds one live placement at a time), one of a referral sent a day later, and
            // one cancelled before it started.
            var first = await Referral("9990000026", -30);
            ended = await Placement(first, "ended", 2);
            started = await Placement(first, "active", 20);
            other = await Placement(await Referral("9990000034", -6), "ended", 10);
            cancelled = await Placement(await Referral("9990000042", -1), "cancelled", null);
        }

        await new Migrator(database, NullLogger<Migrator>.Instance).ApplyAsync();

        await using var migrated = await database.OpenAsync();
        var kept = (await migrated.QueryAsync<(long Placement, DateTimeOffset? Submitted)>("SELECT id, referral_submitted_at FROM placement ORDER BY id")).ToList();
        Assert.Equal(new (long, DateTimeOffset?)[] { (ended, at.AddHours(-30)), (started, at.AddHours(-30)), (other, at.AddHours(-6)), (cancelled, at.AddHours(-1)) }, kept);
    }

    [Fact]
    public async Task CarerMessagesMadeAgainForANewKind_KeepEveryRowWithItsId_AndNewOnesNumberOnFromTheHighest()
    {
        await using var database = await StoreBeforeAsync("carer_told_of_a_lapsed_place");
        var at = new DateTimeOffset(2026, 11, 30, 9, 15, 0, TimeSpan.Zero);
        long referral, organisation;
        await using (var connection = await database.OpenAsync())
        {
            var world = await StoreWorld.CreateAsync(connection);
            organisation = world.OrganisationId;
            referral = await world.AddReferralAsync(connection, "9000000009");
            foreach (var (id, kind, status) in new[] { (3L, "accepted", "sent"), (8L, "started", "queued") })
            {
                await connection.ExecuteAsync(
                    """
                    INSERT INTO carer_message (id, referral_id, organisation_id, kind, place, status, attempts, next_attempt_at, sent_to, body, created_at, updated_at)
                    VALUES (@id, @referral, @organisation, @kind, 'Ashbury Community Hospital', @status, 1, @at, 'carer@example.org', 'Dear Susan', @at, @at)
                    """, new { id, referral, organisation, kind, status, at });
            }
        }

        await new Migrator(database, NullLogger<Migrator>.Instance).ApplyAsync();

        await using var migrated = await database.OpenAsync();
        var kept = (await migrated.QueryAsync<(long Id, string Kind, string Status, string Place, string Body, DateTimeOffset Due)>(
            "SELECT id, kind, status, place, body, next_attempt_at FROM carer_message ORDER BY id")).ToList();
        Assert.Equal([(3L, "accepted", "sent", "Ashbury Community Hospital", "Dear Susan", at), (8L, "started", "queued", "Ashbury Community Hospital", "Dear Susan", at)], kept);
        var next = await migrated.ExecuteScalarAsync<long>(
            """
            INSERT INTO carer_message (referral_id, organisation_id, kind, status, next_attempt_at, created_at, updated_at)
            VALUES (@referral, @organisation, 'place-no-longer-held', 'queued', @at, @at, @at) RETURNING id
            """, new { referral, organisation, at });
        Assert.Equal(9, next);
        await Assert.ThrowsAnyAsync<System.Data.Common.DbException>(() => migrated.ExecuteAsync(
            "INSERT INTO carer_message (referral_id, organisation_id, kind, status, next_attempt_at, created_at, updated_at) VALUES (@referral, @organisation, 'gossip', 'queued', @at, @at, @at)",
            new { referral, organisation, at }));
    }

    [Fact]
    public async Task BedStates_StartWithEachBedAlreadyThere_InItsStateSinceItWasLastConfirmed()
    {
        await using var database = await StoreBeforeAsync("bed_states");
        var confirmed = new[] { new DateTimeOffset(2026, 11, 30, 9, 15, 0, TimeSpan.Zero), new DateTimeOffset(2026, 12, 1, 17, 40, 0, TimeSpan.Zero) };
        await using (var connection = await database.OpenAsync())
        {
            var world = await StoreWorld.CreateAsync(connection);
            var site = await connection.ExecuteScalarAsync<long>(
                "INSERT INTO site (organisation_id, name, kind, locality, postcode, active) VALUES (@OrganisationId, 'Old Site', 'care-home', 'North', 'NN1 1AA', TRUE) RETURNING id", world);
            var ward = await connection.ExecuteScalarAsync<long>("INSERT INTO ward (site_id, name) VALUES (@site, 'W1') RETURNING id", new { site });
            await connection.ExecuteAsync(
                "INSERT INTO bed (ward_id, label, bed_type, allowed_sex, status, closed_reason, confirmed_at, version, single_room) VALUES (@ward, 'B1', 'nursing', 'any', 'occupied', NULL, @at, 4, FALSE)",
                new { ward, at = confirmed[0] });
            await connection.ExecuteAsync(
                "INSERT INTO bed (ward_id, label, bed_type, allowed_sex, status, closed_reason, confirmed_at, version, single_room) VALUES (@ward, 'B2', 'dementia', 'any', 'closed', 'staffing', @at, 2, FALSE)",
                new { ward, at = confirmed[1] });
        }

        await new Migrator(database, NullLogger<Migrator>.Instance).ApplyAsync();

        await using var migrated = await database.OpenAsync();
        Assert.Equal(
            [("B1", confirmed[0], 4, "occupied", "nursing"), ("B2", confirmed[1], 2, "closed", "dementia")],
            await migrated.QueryAsync<(string, DateTimeOffset, int, string, string)>(
                "SELECT b.label, s.from_at, s.version, s.status, s.bed_type FROM bed_state s JOIN bed b ON b.id = s.bed_id JOIN ward w ON w.id = b.ward_id JOIN site t ON t.id = w.site_id WHERE t.name = 'Old Site' ORDER BY b.label"));
    }

    [Fact]
    public async Task ReferralMadeByMessage_KeepsEveryEarlierLink_AndTheViewFindsBothKinds_ByItsKeys()
    {
        await using var database = await StoreBeforeAsync("referral_made_by_message");
        long made, unlinked, madeMessage, changeMessage;
        StoreWorld world;
        await using (var connection = await database.OpenAsync())
        {
            world = await StoreWorld.CreateAsync(connection);
            made = await world.AddReferralAsync(connection, "9434765919");
            unlinked = await world.AddReferralAsync(connection, "9434765870");
            madeMessage = await AddMessageAsync(connection, world, "r-made");
            changeMessage = await AddMessageAsync(connection, world, "r-cancel");
            await connection.ExecuteAsync("INSERT INTO fhir_received_referral (received_id, referral_id) VALUES (@madeMessage, @made), (@changeMessage, @made)",
                new { madeMessage, changeMessage, made });
        }

        await new Migrator(database, NullLogger<Migrator>.Instance).ApplyAsync();

        await using var migrated = await database.OpenAsync();
        var newMessage = await AddMessageAsync(migrated, world, "r-new");
        var person = await world.AddPersonAsync(migrated, "9434765889");
        var named = await migrated.ExecuteScalarAsync<long>(
            """
            INSERT INTO referral (person_id, organisation_id, status, source, pathway, urgency, consent_to_share, created_at, submitted_at, updated_at, received_id)
            VALUES (@person, @OrganisationId, 'submitted', 'acute-hospital', '1', 'routine', TRUE, @now, @now, @now, @newMessage) RETURNING id
            """, new { person, world.OrganisationId, now = DateTimeOffset.UtcNow, newMessage });
        var messagesOf = $"SELECT received_id FROM ({CareCoordination.Features.Coordination.AsSent.MessagesOf}) l ORDER BY received_id";
        Assert.Equal([madeMessage, changeMessage], await migrated.QueryAsync<long>(messagesOf, new { Id = made }));
        Assert.Equal([newMessage], await migrated.QueryAsync<long>(messagesOf, new { Id = named }));
        Assert.Empty(await migrated.QueryAsync<long>(messagesOf, new { Id = unlinked }));
        // 0043: no view stands on referral or the link table, in the way of a rebuild or a restore.
        Assert.Equal(0, await migrated.ExecuteScalarAsync<long>(store.Provider == StoreProvider.PostgreSQL
            ? "SELECT COUNT(*) FROM pg_views WHERE schemaname = current_schema()"
            : "SELECT COUNT(*) FROM sqlite_master WHERE type = 'view'"));
        await Assert.ThrowsAnyAsync<System.Data.Common.DbException>(() => migrated.ExecuteAsync(
            "UPDATE referral SET received_id = @missing WHERE id = @named", new { missing = newMessage + 100, named }));

        // One referral's messages are found through the referral's key and the link table's index, never by reading every referral.
        if (store.Provider == StoreProvider.Sqlite)
        {
            var plan = string.Join("\n", (await migrated.QueryAsync<(long, long, long, string)>("EXPLAIN QUERY PLAN " + messagesOf, new { Id = made })).Select(p => p.Item4));
            Assert.DoesNotContain("SCAN", plan);
            Assert.Contains("ix_fhir_received_referral_referral", plan);
        }
        else
        {
            await migrated.ExecuteAsync("SET enable_seqscan = off");
            var plan = string.Join("\n", await migrated.QueryAsync<string>("EXPLAIN " + messagesOf.Replace("@Id", made.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal)));
            Assert.DoesNotContain("Seq Scan", plan);
            Assert.Contains("referral_pkey", plan);
            Assert.Contains("ix_fhir_received_referral_referral", plan);
            Assert.Equal(2, plan.Split("Index Cond").Length - 1);
        }
    }

    private static Task<long> AddMessageAsync(System.Data.Common.DbConnection connection, StoreWorld world, string receipt) =>
        connection.ExecuteScalarAsync<long>(
            """
            INSERT INTO fhir_received (receipt, organisation_id, sender, interaction, content_type, body, body_encoding, body_bytes, received_at)
            VALUES (@receipt, @OrganisationId, 'epr', 'POST /fhir', 'application/fhir+json', @body, 'identity', 2, @now) RETURNING id
            """, new { receipt, world.OrganisationId, body = "{}"u8.ToArray(), now = DateTimeOffset.UtcNow });

    [Fact]
    public async Task ReceiptUnindexed_OnPostgres_LeavesNoIndexOfReceipts_AndKeepsEveryMessage()
    {
        await using var database = await StoreBeforeAsync("receipt_unindexed");
        StoreWorld world;
        await using (var connection = await database.OpenAsync())
        {
            world = await StoreWorld.CreateAsync(connection);
            await AddMessageAsync(connection, world, "r-before");
        }

        await new Migrator(database, NullLogger<Migrator>.Instance).ApplyAsync();

        await using var migrated = await database.OpenAsync();
        var kept = await AddMessageAsync(migrated, world, "r-after");
        Assert.Equal(["r-before", "r-after"], await migrated.QueryAsync<string>("SELECT receipt FROM fhir_received ORDER BY id"));
        Assert.Equal(kept, await migrated.ExecuteScalarAsync<long>("SELECT id FROM fhir_received WHERE id = @kept AND receipt = 'r-after'", new { kept }));
        var receiptIndexes = store.Provider == StoreProvider.PostgreSQL
            ? "SELECT COUNT(*) FROM pg_indexes WHERE tablename = 'fhir_received' AND indexdef LIKE '%(receipt)%'"
            : "SELECT COUNT(*) FROM pragma_index_list('fhir_received') l WHERE EXISTS (SELECT 1 FROM pragma_index_info(l.name) WHERE name = 'receipt')";
        Assert.Equal(store.Provider == StoreProvider.PostgreSQL ? 0 : 1, await migrated.ExecuteScalarAsync<long>(receiptIndexes));
    }

    [Fact]
    public async Task AuditActorPartnersOnly_APartnersSearchOfItsTrail_StillSeeksItsOwnRows_AndStaffRowsTakeNoEntry()
    {
        await using var database = await StoreBeforeAsync("audit_actor_partners_only");
        await using (var connection = await database.OpenAsync())
        {
            await connection.ExecuteAsync(
                """
                INSERT INTO audit_event (at, actor_kind, actor_id, actor_name, action, outcome)
                VALUES (@at, 'partner', 'epr', 'EPR', 'SearchTasks', 'success'), (@at, 'staff', '7', 'Tom Okafor', 'TrackReferral', 'success'),
                       (@at, 'partner', 'other', 'Other', 'SearchTasks', 'success'), (@at, 'partner', 'epr', 'EPR', 'SubmitReferral', 'success')
                """, new { at = DateTimeOffset.UtcNow });
        }

        await new Migrator(database, NullLogger<Migrator>.Instance).ApplyAsync();

        await using var migrated = await database.OpenAsync();
        var search = FhirAudit.Select + " ORDER BY a.id LIMIT 20";
        Assert.Equal(["SearchTasks", "SubmitReferral"], (await migrated.QueryAsync<FhirAudit>(search, new { ClientId = "epr" })).Select(a => a.Action));
        if (store.Provider == StoreProvider.PostgreSQL)
        {
            await migrated.ExecuteAsync("SET enable_seqscan = off");
            var plan = string.Join("\n", await migrated.QueryAsync<string>("EXPLAIN " + search.Replace("@ClientId", "'epr'", StringComparison.Ordinal)));
            Assert.Contains("ix_audit_actor", plan, StringComparison.Ordinal);
            Assert.Contains("WHERE (actor_kind = 'partner'::text)", await migrated.ExecuteScalarAsync<string>("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_audit_actor'"), StringComparison.Ordinal);
        }
        else
        {
            var plan = (await migrated.QueryAsync<(long, long, long, string Detail)>("EXPLAIN QUERY PLAN " + search, new { ClientId = "epr" })).Select(p => p.Detail);
            Assert.Contains(plan, d => d.StartsWith("SEARCH a USING INDEX ix_audit_actor (actor_id=?)", StringComparison.Ordinal));
            Assert.Contains("WHERE actor_kind = 'partner'", await migrated.ExecuteScalarAsync<string>("SELECT sql FROM sqlite_master WHERE name = 'ix_audit_actor'"), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task ReadPeopleAsOneRow_KeepsWhoEachPageReadShowed_AndFindsThemByPersonThroughAnIndex()
    {
        await using var database = await StoreBeforeAsync("read_people_as_one_row");
        long first, second;
        await using (var connection = await database.OpenAsync())
        {
            long Read(string detail) => connection.ExecuteScalar<long>(
                """
                INSERT INTO audit_event (at, actor_kind, actor_id, action, outcome, entity_type, detail)
                VALUES (@at, 'partner', 'epr', 'SearchTasks', 'success', 'triage_task', @detail) RETURNING id
                """, new { at = DateTimeOffset.UtcNow, detail });
            first = Read("a page of 2");
            second = Read("a page of 1");
            await connection.ExecuteAsync("INSERT INTO audit_read_person (audit_id, person_id) VALUES (@first, 45), (@first, 44), (@second, 45)", new { first, second });
        }

        await new Migrator(database, NullLogger<Migrator>.Instance).ApplyAsync();

        await using var migrated = await database.OpenAsync();
        var kept = await migrated.QueryAsync<(long AuditId, long PersonId)>(ReadPeople.Of(store.Provider, $"{first}, {second}"));
        Assert.Equal([(first, 44L), (first, 45L), (second, 45L)], kept);
        async Task<long[]> ReadsOf(long person) =>
            [.. (await migrated.QueryAsync<long>(ReadPeople.ReadsOf(store.Provider, "@person"), new { person })).Order()];
        Assert.Equal([first, second], await ReadsOf(45));
        Assert.Equal([first], await ReadsOf(44));
        Assert.Empty(await ReadsOf(43));
        if (store.Provider == StoreProvider.PostgreSQL)
        {
            // One row a read, and the old table gone: nothing can be written to the one no reader reads.
            Assert.Equal(2, await migrated.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM audit_read_people"));
            Assert.Null(await migrated.ExecuteScalarAsync<string?>("SELECT to_regclass('audit_read_person')::text"));
            await migrated.ExecuteAsync("SET enable_seqscan = off");
            var plan = string.Join("\n", await migrated.QueryAsync<string>("EXPLAIN " + ReadPeople.ReadsOf(store.Provider, "45")));
            Assert.Contains("ix_audit_read_people_person", plan);
        }
        else
        {
            Assert.Equal(0, await migrated.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM sqlite_master WHERE name = 'audit_read_people'"));
        }
    }

    [Fact]
    public async Task Times_RoundTrip_AsUtcAndSortAsTime()
    {
        await using var database = await store.MigratedAsync();
        await using var connection = await database.OpenAsync();
        var early = new DateTimeOffset(2026, 3, 29, 0, 59, 59, 999, TimeSpan.Zero);
        var late = new DateTimeOffset(2026, 3, 29, 1, 0, 0, TimeSpan.FromHours(1)); // the same instant as 00:00 UTC, written with an offset
        foreach (var (kind, at) in new[] { ("late", late), ("early", early) })
        {
            await connection.ExecuteAsync("INSERT INTO change (at, kind, entity_type, entity_id) VALUES (@at, @kind, 'test', 1)", new { at, kind });
        }

        var ordered = (await connection.QueryAsync<TimedRow>("SELECT kind AS Kind, at AS At FROM change ORDER BY at")).ToList();

        Assert.Equal(["late", "early"], ordered.Select(o => o.Kind));
        Assert.Equal(late.UtcDateTime, ordered[0].At.UtcDateTime);
        Assert.Equal(TimeSpan.Zero, ordered[0].At.Offset);
    }
    /// <summary>
    /// A script's COMMIT (a store-only step may hold one) ends the run's transaction: what came before it is committed, and the
    /// rest of the script runs outside the run. The run says so, naming the script, even when a statement after the COMMIT
    /// fails (the run's usual "none was applied" would be wrong), and applies nothing after it.
    /// </summary>
    [Fact]
    public async Task AScriptThatEndsItsTransaction_IsNamedInTheRunsRefusal()
    {
        await using var database = await EmptyStoreAsync();
        Migrator.Script[] scripts =
        [
            new(1, "first", "CREATE TABLE a (x INTEGER);"),
            // Its last statement fails too: the COMMIT is still what the refusal names.
            new(2, "commits_midway", "CREATE TABLE b (y INTEGER);\nCOMMIT;\nCREATE TABLE c (z INTEGER);\nCREATE TABLE a (x INTEGER);"),
            new(3, "after", "CREATE TABLE d (w INTEGER);"),
        ];

        var refused = await Assert.ThrowsAsync<InvalidOperationException>(
            () => new Migrator(database, NullLogger<Migrator>.Instance).ApplyAsync(scripts));

        Assert.StartsWith("Migration 2 commits_midway ended the transaction the run is in;", refused.Message);
        await using var connection = await database.OpenAsync();
        // Its COMMIT took script 1 and its version with it. What followed it in the script ran on its own: SQLite kept the
        // statement that succeeded; PostgreSQL ran the rest as one implicit transaction, which the failure took back.
        string[] kept = store.Provider == StoreProvider.Sqlite ? ["a", "b", "c", "schema_migration"] : ["a", "b", "schema_migration"];
        Assert.Equal(kept, await TablesAsync(connection));
        Assert.Equal([1], await connection.QueryAsync<int>("SELECT version FROM schema_migration"));
    }

    /// <summary>A script that rolls back takes the whole run with it, and the run stops there, saying so.</summary>
    [Fact]
    public async Task AScriptThatRollsBack_IsRefused_AndNothingIsApplied()
    {
        await using var database = await EmptyStoreAsync();
        Migrator.Script[] scripts =
        [
            new(1, "first", "CREATE TABLE a (x INTEGER);"),
            new(2, "rolls_back", "CREATE TABLE b (y INTEGER);\nROLLBACK;"),
            new(3, "after", "CREATE TABLE d (w INTEGER);"),
        ];

        var refused = await Assert.ThrowsAsync<InvalidOperationException>(
            () => new Migrator(database, NullLogger<Migrator>.Instance).ApplyAsync(scripts));

        Assert.StartsWith("Migration 2 rolls_back ended the transaction the run is in;", refused.Message);
        await using var connection = await database.OpenAsync();
        Assert.Empty(await TablesAsync(connection));
    }

    /// <summary>The store's tables by name (SQLite's own excepted).</summary>
    private async Task<IEnumerable<string>> TablesAsync(System.Data.Common.DbConnection connection) =>
        await connection.QueryAsync<string>(store.Provider == StoreProvider.Sqlite
            ? "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            : "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name");
}

public sealed class TimedRow
{
    public string Kind { get; init; } = "";
    public DateTimeOffset At { get; init; }
}

public sealed class SqliteMigrationTests() : MigrationTests(new SqliteTestStore())
{
    /// <summary>SQLite's scripts run outside a command (sqlite3_exec): one that ended the run's transaction is refused, not let through.</summary>
    [Fact]
    public async Task AScriptThatEndsItsTransaction_IsRefused()
    {
        TypeHandlers.Register();
        await using var database = new Database(StoreProvider.Sqlite, await new SqliteTestStore().CreateEmptyAsync());
        await using var connection = await database.OpenAsync();
        await using var transaction = await database.BeginWriteAsync(connection);

        var refused = await Assert.ThrowsAsync<Migrator.EndedItsTransaction>(
            () => Migrator.RunScriptAsync(connection, transaction, "CREATE TABLE a (x);\nCOMMIT;\nCREATE TABLE b (y);"));

        Assert.Contains("ended the transaction", refused.Message);
    }
}

public sealed class PostgresMigrationTests() : MigrationTests(new PostgresTestStore());
