using CareCoordination.Features.Fhir;
using CareCoordination.Features.Referrals;
using CareCoordination.Store;
using CareCoordination.Tests.Support;
using Dapper;

namespace CareCoordination.Tests.Store;

/// <summary>
/// The person as an organisation said them is read by every FHIR write's answer and every partner's Patient read. On
/// PostgreSQL its plan must start from the person's own rows whatever the statistics say: taken while an organisation had
/// few referrals, they made the planner read every one of that organisation's referrals instead (0.45 ms a submission in the
/// bench, growing with the organisation's history; issue 14). A new partner sending thousands of referrals into a large
/// store meets the same statistics, since a table is analysed again only after a tenth of it has changed.
/// </summary>
public sealed class PostgresPersonReadPlanTests : IAsyncLifetime
{
    private Database _database = null!;

    public async Task InitializeAsync() => _database = await new PostgresTestStore().MigratedAsync();

    public async Task DisposeAsync() => await _database.DisposeAsync();

    public static TheoryData<string> Reads => new()
    {
        { "the latest said" },
        { "every version said" },
    };

    [Theory]
    [MemberData(nameof(Reads))]
    public async Task APersonsRead_SeeksTheirOwnRows_EvenWhenStatisticsSayTheOrganisationHasFewReferrals(string read)
    {
        await using var connection = await _database.OpenAsync();
        var world = await StoreWorld.CreateAsync(connection);
        var other = await connection.ExecuteScalarAsync<long>(
            "INSERT INTO organisation (code, name, kind, created_at) VALUES ('T2', 'Other Trust', 'acute-trust', now()) RETURNING id");
        var person = await connection.ExecuteScalarAsync<long>(
            "INSERT INTO person (nhs_number, given_name, family_name, date_of_birth, sex, created_at, updated_at) VALUES ('9000000009', 'Ada', 'Lovelace', '1940-05-01', 'female', now(), now()) RETURNING id");
        var regular = await connection.ExecuteScalarAsync<long>(
            "INSERT INTO person (nhs_number, given_name, family_name, date_of_birth, sex, created_at, updated_at) VALUES ('9000000017', 'Reg', 'Ular', '1940-05-01', 'male', now(), now()) RETURNING id");
        // Statistics taken now: the organisation has one referral; a person has many referrals (the other trust's regular).
        await AddReferralsAsync(connection, world.OrganisationId, person, 1);
        await AddReferralsAsync(connection, other, regular, 200);
        await connection.ExecuteAsync("ANALYZE referral; ANALYZE referral_person; ANALYZE person_registration");
        await connection.ExecuteAsync("ALTER TABLE referral SET (autovacuum_enabled = false); ALTER TABLE referral_person SET (autovacuum_enabled = false)");
        // Then the organisation sends thousands, which the statistics do not know of.
        await connection.ExecuteAsync(
            """
            INSERT INTO referral (person_id, organisation_id, status, source, pathway, urgency, consent_to_share, created_at, submitted_at, updated_at)
            SELECT @regular, @organisation, 'submitted', 'acute-hospital', '2', 'routine', TRUE, now(), now(), now() FROM generate_series(1, 5000)
            """, new { regular, organisation = world.OrganisationId });

        var sql = read == "the latest said"
            ? $"SELECT {PersonRecord.AsReferredColumns} FROM person p {PersonRecord.LatestAsReferredBy} WHERE p.id = @Id"
            : FhirPerson.VersionsAsReferred;
        var plan = string.Join('\n', await PlanAsync(connection, sql, person, world.OrganisationId));

        Assert.DoesNotContain("ix_referral_organisation_status", plan, StringComparison.Ordinal);
        Assert.Contains("ix_referral_person_person", plan, StringComparison.Ordinal);
        // And the answer is still the organisation's own word.
        var said = await connection.QueryAsync<long>($"SELECT q.Id FROM ({sql}) q", new { Id = person, OrganisationId = world.OrganisationId });
        Assert.Equal([person], said.Distinct());
    }

    private static async Task<string[]> PlanAsync(System.Data.Common.DbConnection connection, string sql, long person, long organisation) =>
        [.. await connection.QueryAsync<string>("EXPLAIN " + sql, new { Id = person, OrganisationId = organisation })];

    private static async Task AddReferralsAsync(System.Data.Common.DbConnection connection, long organisation, long person, int count)
    {
        for (var i = 0; i < count; i++)
        {
            var referral = await connection.ExecuteScalarAsync<long>(
                """
                INSERT INTO referral (person_id, organisation_id, status, source, pathway, urgency, consent_to_share, created_at, submitted_at, updated_at)
                VALUES (@person, @organisation, 'submitted', 'acute-hospital', '2', 'routine', TRUE, now(), now(), now()) RETURNING id
                """, new { person, organisation });
            await connection.ExecuteAsync(
                """
                INSERT INTO referral_person (referral_id, person_id, person_version, nhs_number, given_name, family_name, date_of_birth, sex, recorded_at)
                SELECT @referral, p.id, @version, p.nhs_number, p.given_name, p.family_name, p.date_of_birth, p.sex, now() FROM person p WHERE p.id = @person
                """, new { referral, person, version = i + 1 });
        }
    }
}
