using CareCoordination.Features.Admin;
using CareCoordination.Pipeline;
using CareCoordination.Tests.Support;
using Dapper;

namespace CareCoordination.Tests.Features.Admin;

/// <summary>A partner's standing lawful basis for sharing: only an administrator sets it, always with the agreement it comes from, audited.</summary>
public abstract class PartnerAdminTests(AppFactory app)
{
    [Fact]
    public async Task AnAdministrator_RecordsAPartnersLawfulBasis_WithItsAgreement_Audited_AndNobodyElseMay()
    {
        var clientId = await app.NewPartnerClientAsync("RWM", prefix: "dsa");
        var partner = (await app.SendAsync<IReadOnlyList<PartnerClients.Row>>(new PartnerClients.Query(), await app.StaffAsync("admin"))).Single(p => p.ClientId == clientId);
        Assert.Null(partner.DefaultLawfulBasis);

        foreach (var user in new[] { "coordinator", "manager", "referrer" })
        {
            await Assert.ThrowsAsync<AccessDenied>(() => app.SendAsync(new SetPartnerLawfulBasis.Command(partner.Id, "Article 6(1)(e)", "DSA-1"), user));
            await Assert.ThrowsAsync<AccessDenied>(() => app.SendAsync(new PartnerClients.Query(), user));
        }
        var withoutAgreement = await Assert.ThrowsAsync<ValidationFailed>(() => app.SendAsync(new SetPartnerLawfulBasis.Command(partner.Id, "Article 6(1)(e)", " "), "admin"));
        Assert.Contains("data-sharing agreement", withoutAgreement.Message, StringComparison.Ordinal);

        await app.SendAsync(new SetPartnerLawfulBasis.Command(partner.Id, " UK GDPR Article 6(1)(e) and 9(2)(h) ", "DSA-2026-007"), "admin");

        var after = (await app.SendAsync<IReadOnlyList<PartnerClients.Row>>(new PartnerClients.Query(), await app.StaffAsync("admin"))).Single(p => p.ClientId == clientId);
        Assert.Equal(("UK GDPR Article 6(1)(e) and 9(2)(h)", "DSA-2026-007"), (after.DefaultLawfulBasis, after.DataSharingAgreement));
        await using (var connection = await app.OpenAsync())
        {
            var audited = await connection.QueryAsync<string>(
                "SELECT detail FROM audit_event WHERE action LIKE '%SetPartnerLawfulBasis%' AND outcome = 'success' AND detail LIKE @client", new { client = clientId + "%" });
            Assert.Equal([$"{clientId}: lawful basis from DSA-2026-007"], audited);
        }

        await app.SendAsync(new SetPartnerLawfulBasis.Command(partner.Id, "", ""), "admin");
        var cleared = (await app.SendAsync<IReadOnlyList<PartnerClients.Row>>(new PartnerClients.Query(), await app.StaffAsync("admin"))).Single(p => p.ClientId == clientId);
        Assert.Equal((null, null), (cleared.DefaultLawfulBasis, cleared.DataSharingAgreement));
    }
}

public sealed class PartnerAdminOnSqliteTests(AppFactory app) : PartnerAdminTests(app), IClassFixture<AppFactory>;

public sealed class PartnerAdminOnPostgresTests(PostgresAppFactory app) : PartnerAdminTests(app), IClassFixture<PostgresAppFactory>;
