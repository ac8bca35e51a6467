using System.Data.Common;
using System.Threading.Channels;
using Dapper;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace CareCoordination.Bench.BareApp;

/// <summary>
/// The bare references' store: the five rows the product writes for a referral (person, referral, referral_person,
/// triage_task, change) in plain tables, one transaction each, on SQLite (WAL, synchronous=NORMAL) or PostgreSQL.
/// No migrations, no audit, no FHIR versions, no as-sent copy: what the rows cost and nothing else.
/// </summary>
public sealed class BareStore : IAsyncDisposable
{
    private readonly Channel<DbConnection> _connections;
    private readonly List<DbConnection> _all = [];
    private readonly NpgsqlDataSource? _postgres;

    /// <summary>SQLite takes one writer at a time: writers wait here, asynchronously, rather than in SQLite's busy handler.</summary>
    private readonly SemaphoreSlim? _sqliteWriter;

    public bool IsPostgres => _postgres is not null;

    /// <summary>Where the rows are: the SQLite file, or the PostgreSQL database's name.</summary>
    public string Location { get; }

    private BareStore(string location, NpgsqlDataSource? postgres, int connections)
    {
        Location = location;
        _postgres = postgres;
        _sqliteWriter = postgres is null ? new SemaphoreSlim(1, 1) : null;
        _connections = Channel.CreateBounded<DbConnection>(connections);
    }

    /// <summary>A SQLite file, with the schema when it is new, and <paramref name="connections"/> connections kept open with their pragmas set once.</summary>
    public static async Task<BareStore> OpenSqliteAsync(string path, int connections)
    {
        var store = new BareStore(path, null, connections);
        var isNew = !File.Exists(path);
        var connectionString = new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString();
        for (var i = 0; i < connections; i++)
        {
            var connection = new SqliteConnection(connectionString);
            await connection.OpenAsync();
            await connection.ExecuteAsync("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 10000;");
            if (i == 0 && isNew)
            {
                await connection.ExecuteAsync(Schema(postgres: false));
            }
            store._all.Add(connection);
            store._connections.Writer.TryWrite(connection);
        }
        return store;
    }

    /// <summary>A PostgreSQL database of its own on this server, named <paramref name="database"/>: made new with the schema, unless it is to be reopened.</summary>
    public static async Task<BareStore> OpenPostgresAsync(string serverConnectionString, string database, int connections, bool create = true)
    {
        if (create)
        {
            await Postgres.CreateDatabaseAsync(serverConnectionString, database);
        }
        var builder = new NpgsqlConnectionStringBuilder(serverConnectionString) { Database = database, MaxPoolSize = Math.Max(connections, 4) };
        var dataSource = NpgsqlDataSource.Create(builder.ToString());
        var store = new BareStore(database, dataSource, connections);
        for (var i = 0; i < connections; i++)
        {
            var connection = await dataSource.OpenConnectionAsync();
            if (i == 0 && create)
            {
                await connection.ExecuteAsync(Schema(postgres: true));
            }
            store._all.Add(connection);
            store._connections.Writer.TryWrite(connection);
        }
        return store;
    }

    /// <summary>Writes the referral's five rows in one transaction, committed (durable) when this returns; answers the change's seq, the referral's id and its triage task's.</summary>
    public async Task<(long Seq, long ReferralId, long TaskId)> WriteAsync(BareReferral referral, DateTimeOffset now, CancellationToken cancellation = default)
    {
        var connection = await _connections.Reader.ReadAsync(cancellation);
        if (_sqliteWriter is not null)
        {
            await _sqliteWriter.WaitAsync(cancellation);
        }
        try
        {
            await using var transaction = await connection.BeginTransactionAsync(cancellation);
            var at = now.UtcDateTime.ToString("O");
            var personId = await connection.ExecuteScalarAsync<long>(
                """
                INSERT INTO person (nhs_number, given_name, family_name, date_of_birth, sex, address_line, postcode, gp_practice_code,
                    carer_name, carer_relationship, carer_contact, easy_read, lives_alone, version, created_at, updated_at)
                VALUES (@NhsNumber, @GivenName, @FamilyName, @BirthDate, @Sex, @AddressLine, @Postcode, @GpPractice,
                    @CarerName, @CarerRelationship, @CarerContact, @EasyRead, @LivesAlone, 1, @at, @at)
                RETURNING id
                """, new { referral.NhsNumber, referral.GivenName, referral.FamilyName, referral.BirthDate, referral.Sex, referral.AddressLine,
                    referral.Postcode, referral.GpPractice, referral.CarerName, referral.CarerRelationship, referral.CarerContact,
                    referral.EasyRead, referral.LivesAlone, at }, transaction);
            var referralId = await connection.ExecuteScalarAsync<long>(
                """
                INSERT INTO referral (person_id, sender_system, sender_value, requester, status, pathway, urgency, ward, bed_label,
                    medically_optimised_on, needs, risks, consent_to_share, consent_given_by, lawful_reason, person_wishes,
                    family_expectations, staff_expectations, strengths, goals, summary, version, created_at, submitted_at, updated_at)
                VALUES (@personId, @SenderSystem, @SenderValue, @Requester, 'submitted', @Pathway, @Urgency, @Ward, @Bed,
                    @MedicallyOptimised, @Needs, @Risks, @ConsentToShare, @ConsentGivenBy, @LawfulReason, @PersonWishes,
                    @FamilyExpectations, @StaffExpectations, @Strengths, @Goals, @Summary, 1, @at, @at, @at)
                RETURNING id
                """, new { personId, referral.SenderSystem, referral.SenderValue, referral.Requester, referral.Pathway, referral.Urgency,
                    referral.Ward, referral.Bed, referral.MedicallyOptimised, referral.Needs, referral.Risks, referral.ConsentToShare,
                    referral.ConsentGivenBy, referral.LawfulReason, referral.PersonWishes, referral.FamilyExpectations,
                    referral.StaffExpectations, referral.Strengths, referral.Goals, referral.Summary, at }, transaction);
            await connection.ExecuteAsync(
                """
                INSERT INTO referral_person (referral_id, person_id, person_version, nhs_number, given_name, family_name, date_of_birth, sex,
                    address_line, postcode, gp_practice_code, carer_name, carer_relationship, carer_contact, easy_read, lives_alone, recorded_at)
                SELECT @referralId, p.id, p.version, p.nhs_number, p.given_name, p.family_name, p.date_of_birth, p.sex,
                    p.address_line, p.postcode, p.gp_practice_code, p.carer_name, p.carer_relationship, p.carer_contact, p.easy_read, p.lives_alone, @at
                FROM person p WHERE p.id = @personId
                """, new { referralId, personId, at }, transaction);
            var taskId = await connection.ExecuteScalarAsync<long>(
                """
                INSERT INTO triage_task (referral_id, queue, status, version, created_at, updated_at)
                VALUES (@referralId, 'coordination', 'requested', 1, @at, @at) RETURNING id
                """, new { referralId, at }, transaction);
            var seq = await connection.ExecuteScalarAsync<long>(
                """
                INSERT INTO change (at, kind, entity_type, entity_id, actor, data)
                VALUES (@at, 'task.created', 'triage_task', @taskId, 'bare', @data) RETURNING seq
                """, new { at, taskId, data = $$"""{"referralId":{{referralId}},"queue":"coordination","status":"requested","pathway":"{{referral.Pathway}}","urgency":"{{referral.Urgency}}"}""" },
                transaction);
            await transaction.CommitAsync(cancellation);
            return (seq, referralId, taskId);
        }
        finally
        {
            _sqliteWriter?.Release();
            _connections.Writer.TryWrite(connection);
        }
    }

    public async Task<long> CountAsync(string table)
    {
        var connection = await _connections.Reader.ReadAsync();
        try
        {
            return await connection.ExecuteScalarAsync<long>($"SELECT COUNT(*) FROM {table}");
        }
        finally
        {
            _connections.Writer.TryWrite(connection);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var connection in _all)
        {
            await connection.DisposeAsync();
        }
        if (_postgres is not null)
        {
            await _postgres.DisposeAsync();
        }
        _sqliteWriter?.Dispose();
    }

    private static string Schema(bool postgres)
    {
        var id = postgres ? "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY" : "INTEGER PRIMARY KEY";
        var boolean = postgres ? "BOOLEAN" : "INTEGER";
        return $"""
            CREATE TABLE person (id {id}, nhs_number TEXT NOT NULL UNIQUE, given_name TEXT NOT NULL, family_name TEXT NOT NULL,
                date_of_birth TEXT, sex TEXT, address_line TEXT, postcode TEXT, gp_practice_code TEXT, carer_name TEXT,
                carer_relationship TEXT, carer_contact TEXT, easy_read {boolean} NOT NULL, lives_alone {boolean} NOT NULL,
                version INTEGER NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
            CREATE TABLE referral (id {id}, person_id BIGINT NOT NULL REFERENCES person (id), sender_system TEXT NOT NULL,
                sender_value TEXT NOT NULL, requester TEXT, status TEXT NOT NULL, pathway TEXT, urgency TEXT, ward TEXT, bed_label TEXT,
                medically_optimised_on TEXT, needs TEXT NOT NULL, risks TEXT NOT NULL, consent_to_share {boolean} NOT NULL,
                consent_given_by TEXT, lawful_reason TEXT, person_wishes TEXT, family_expectations TEXT, staff_expectations TEXT,
                strengths TEXT, goals TEXT, summary TEXT, version INTEGER NOT NULL, created_at TEXT NOT NULL, submitted_at TEXT NOT NULL,
                updated_at TEXT NOT NULL, UNIQUE (sender_system, sender_value));
            CREATE TABLE referral_person (referral_id BIGINT PRIMARY KEY REFERENCES referral (id), person_id BIGINT NOT NULL,
                person_version INTEGER NOT NULL, nhs_number TEXT NOT NULL, given_name TEXT NOT NULL, family_name TEXT NOT NULL,
                date_of_birth TEXT, sex TEXT, address_line TEXT, postcode TEXT, gp_practice_code TEXT, carer_name TEXT,
                carer_relationship TEXT, carer_contact TEXT, easy_read {boolean} NOT NULL, lives_alone {boolean} NOT NULL, recorded_at TEXT NOT NULL);
            CREATE TABLE triage_task (id {id}, referral_id BIGINT NOT NULL REFERENCES referral (id), queue TEXT NOT NULL,
                status TEXT NOT NULL, version INTEGER NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
            CREATE INDEX triage_task_queue ON triage_task (queue, status);
            CREATE TABLE change (seq {id}, at TEXT NOT NULL, kind TEXT NOT NULL, entity_type TEXT NOT NULL, entity_id BIGINT NOT NULL,
                actor TEXT, data TEXT);
            """;
    }
}
