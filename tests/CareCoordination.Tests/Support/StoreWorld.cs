using System.Data.Common;
using Dapper;

namespace CareCoordination.Tests.Support;

/// <summary>The least of the domain a store test needs: one organisation, one bed, persons and referrals.</summary>
public sealed class StoreWorld
{
    private StoreWorld(long organisationId, long bedId)
    {
        OrganisationId = organisationId;
        BedId = bedId;
    }

    public long OrganisationId { get; }

    public long BedId { get; }

    private static DateTimeOffset Now => DateTimeOffset.UtcNow;

    public static async Task<StoreWorld> CreateAsync(DbConnection connection)
    {
        var organisation = await connection.ExecuteScalarAsync<long>(
            "INSERT INTO organisation (code, name, kind, created_at) VALUES ('T1', 'Test Trust', 'acute-trust', @Now) RETURNING id", new { Now });
        var site = await connection.ExecuteScalarAsync<long>(
            "INSERT INTO site (organisation_id, name, kind, locality, postcode) VALUES (@organisation, 'Test Site', 'community-hospital', 'Test', 'TR1 1AA') RETURNING id", new { organisation });
        var ward = await connection.ExecuteScalarAsync<long>("INSERT INTO ward (site_id, name) VALUES (@site, 'Ward 1') RETURNING id", new { site });
        var bed = await connection.ExecuteScalarAsync<long>(
            "INSERT INTO bed (ward_id, label, bed_type, allowed_sex, status, confirmed_at) VALUES (@ward, 'B1', 'rehabilitation', 'any', 'available', @Now) RETURNING id", new { ward, Now });
        return new StoreWorld(organisation, bed);
    }

    public Task<long> AddPersonAsync(DbConnection connection, string nhsNumber) =>
        connection.ExecuteScalarAsync<long>(
            """
            INSERT INTO person (nhs_number, given_name, family_name, date_of_birth, sex, created_at, updated_at)
            VALUES (@nhsNumber, 'Test', 'Person', @born, 'female', @Now, @Now) RETURNING id
            """, new { nhsNumber, born = new DateOnly(1940, 5, 1), Now });

    public async Task<long> AddReferralAsync(DbConnection connection, string nhsNumber, bool consent = true)
    {
        var person = await AddPersonAsync(connection, nhsNumber);
        return await connection.ExecuteScalarAsync<long>(
            """
            INSERT INTO referral (person_id, organisation_id, status, source, pathway, urgency, consent_to_share, created_at, submitted_at, updated_at)
            VALUES (@person, @OrganisationId, 'accepted', 'acute-hospital', '2', 'routine', @consent, @Now, @Now, @Now) RETURNING id
            """, new { person, OrganisationId, consent, Now });
    }

    public Task<long> PlaceInBedAsync(DbConnection connection, long referral, string status) =>
        connection.ExecuteScalarAsync<long>(
            "INSERT INTO placement (referral_id, bed_id, status, start_on, created_at) VALUES (@referral, @BedId, @status, @today, @Now) RETURNING id",
            new { referral, BedId, status, today = DateOnly.FromDateTime(DateTime.UtcNow), Now });
}
