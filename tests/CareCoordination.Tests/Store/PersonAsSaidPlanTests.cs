using CareCoordination.Features.Fhir;
using CareCoordination.Store;
using CareCoordination.Tests.Support;
using Dapper;

namespace CareCoordination.Tests.Store;

/// <summary>
/// A Patient as an organisation said it, and its version as that organisation reads it (PersonRecord.VersionAsSaid), are
/// read from the person's own rows. The version counted over the union of referrals and registrations made SQLite read every
/// referral_person row in the store for each answer (the bench's partner referral answered in full: 12 ms of CPU, growing
/// with the store; issue 14). SQLite only: PostgreSQL pushed the person into the union.
/// </summary>
public sealed class PersonAsSaidPlanTests : IAsyncLifetime
{
    private readonly SqliteTestStore _store = new();
    private Database _database = null!;

    public async Task InitializeAsync() => _database = await _store.MigratedAsync();

    public async Task DisposeAsync() => await _database.DisposeAsync();

    /// <summary>What referral <paramref name="referral"/> said of its person, at the record's <paramref name="version"/>.</summary>
    private static Task SaidAsync(System.Data.Common.DbConnection connection, long referral, int version) => connection.ExecuteAsync(
        """
        INSERT INTO referral_person (referral_id, person_id, person_version, nhs_number, given_name, family_name, date_of_birth, sex, recorded_at)
        SELECT r.id, p.id, @version, p.nhs_number, p.given_name, p.family_name, '1941-03-02', 'female', r.created_at
        FROM referral r JOIN person p ON p.id = r.person_id WHERE r.id = @referral
        """, new { referral, version });

    [Fact]
    public async Task APatientsVersionAsSaid_IsCountedFromThePersonsOwnRows_NeverEveryRowInTheStore()
    {
        await using var connection = await _database.OpenAsync();
        var world = await StoreWorld.CreateAsync(connection);
        // Others the organisation has referred: what a scan would read.
        for (var i = 0; i < 40; i++)
        {
            await SaidAsync(connection, await world.AddReferralAsync(connection, ReferralForms.NewNhsNumber()), 1);
        }
        // Ours: registered by the organisation at version 1, referred by it at 2, by another organisation at 3, by it again at 4.
        var nhs = ReferralForms.NewNhsNumber();
        var first = await world.AddReferralAsync(connection, nhs);
        var person = await connection.ExecuteScalarAsync<long>("SELECT person_id FROM referral WHERE id = @first", new { first });
        await connection.ExecuteAsync(
            """
            INSERT INTO person_registration (organisation_id, person_id, person_version, nhs_number, given_name, family_name, date_of_birth, sex, recorded_at)
            SELECT @OrganisationId, p.id, 1, p.nhs_number, p.given_name, p.family_name, '1941-03-02', 'female', @at FROM person p WHERE p.id = @person
            """, new { world.OrganisationId, person, at = DateTimeOffset.UtcNow });
        await SaidAsync(connection, first, 2);
        var other = await connection.ExecuteScalarAsync<long>(
            "INSERT INTO organisation (code, name, kind, created_at) VALUES ('RSM', 'Saltmouth', 'acute-trust', @at) RETURNING id", new { at = DateTimeOffset.UtcNow });
        var theirs = await connection.ExecuteScalarAsync<long>(
            """
            INSERT INTO referral (person_id, organisation_id, status, source, pathway, urgency, consent_to_share, created_at, submitted_at, updated_at)
            SELECT person_id, @other, status, source, pathway, urgency, consent_to_share, created_at, submitted_at, updated_at FROM referral WHERE id = @first
            RETURNING id
            """, new { other, first });
        await SaidAsync(connection, theirs, 3);
        var again = await connection.ExecuteScalarAsync<long>(
            """
            INSERT INTO referral (person_id, organisation_id, status, source, pathway, urgency, consent_to_share, created_at, submitted_at, updated_at)
            SELECT person_id, organisation_id, status, source, pathway, urgency, consent_to_share, created_at, submitted_at, updated_at FROM referral WHERE id = @first
            RETURNING id
            """, new { first });
        await SaidAsync(connection, again, 4);

        var read = FhirPerson.SelectAsReferred + " AND p.id = @Id";
        var parameters = new { Id = person, world.OrganisationId };
        // Its own numbering: the registration 1, its referrals 2 and 3; the other organisation's row is not counted.
        Assert.Equal(3, (await connection.QuerySingleAsync<FhirPerson>(read, parameters)).Version);
        Assert.Equal([1, 2, 3], (await connection.QueryAsync<FhirPerson>(FhirPerson.VersionsAsReferred, parameters)).Select(v => v.Version).Order());

        foreach (var sql in new[] { read, FhirPerson.VersionsAsReferred })
        {
            var plan = (await connection.QueryAsync<(long, long, long, string Detail)>("EXPLAIN QUERY PLAN " + sql, parameters)).Select(p => p.Detail).ToList();
            // s is referral_person and g person_registration wherever they are read; a SCAN of either reads the whole table.
            Assert.DoesNotContain(plan, d => d is "SCAN s" or "SCAN g" || d.StartsWith("SCAN s ", StringComparison.Ordinal) || d.StartsWith("SCAN g ", StringComparison.Ordinal));
        }
    }
}
