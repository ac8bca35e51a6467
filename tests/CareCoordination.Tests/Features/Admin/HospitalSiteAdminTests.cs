using CareCoordination.Features.Admin;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using CareCoordination.Tests.Features.Reports;
using CareCoordination.Tests.Support;
using Dapper;

namespace CareCoordination.Tests.Features.Admin;

/// <summary>
/// An administrator keeps the referring trusts' hospital sites; a trust's referrers are offered its open ones, and a
/// referral is stored on the site it names, refused for a closed or another trust's site, and left without one for a code
/// no site here has.
/// </summary>
public abstract class HospitalSiteAdminTests(AppFactory app)
{
    private static readonly DateOnly Ready = new(2026, 9, 14);

    [Fact]
    public async Task AnAdministrator_AddsAndClosesATrustsSites_WhichItsReferralsThenName()
    {
        var facts = new DischargeFacts(app);
        var trust = await facts.TrustAsync("Trust H");
        var other = await facts.TrustAsync("Trust K");
        var code = "H" + Guid.NewGuid().ToString("N")[..6].ToUpperInvariant();

        foreach (var user in new[] { "coordinator", "manager", "referrer" })
        {
            await Assert.ThrowsAsync<AccessDenied>(() => app.SendAsync(new AddHospitalSite.Command(trust.Id, code, "North"), user));
            await Assert.ThrowsAsync<AccessDenied>(() => app.SendAsync(new HospitalSitesAdmin.Query(), user));
        }
        var badCode = await Assert.ThrowsAsync<ValidationFailed>(() => app.SendAsync(new AddHospitalSite.Command(trust.Id, "R-1", "North"), "admin"));
        Assert.Contains("ODS code", badCode.Message, StringComparison.Ordinal);
        long gp;
        await using (var connection = await app.OpenAsync())
        {
            gp = await connection.ExecuteScalarAsync<long>("SELECT id FROM organisation WHERE kind = 'gp-practice' ORDER BY id LIMIT 1");
        }
        await Assert.ThrowsAsync<RuleBroken>(() => app.SendAsync(new AddHospitalSite.Command(gp, code, "Surgery"), "admin"));

        var north = await app.SendAsync<long>(new AddHospitalSite.Command(trust.Id, code.ToLowerInvariant(), " North Hospital "), "admin");
        await app.SendAsync<long>(new AddHospitalSite.Command(trust.Id, code + "S", "South Hospital"), "admin");
        await Assert.ThrowsAsync<Conflict>(() => app.SendAsync(new AddHospitalSite.Command(other.Id, code, "Elsewhere"), "admin"));

        var listed = await app.SendAsync<HospitalSitesAdmin.Result>(new HospitalSitesAdmin.Query(), "admin");
        Assert.Contains(new HospitalSitesAdmin.Site { Id = north, OrganisationId = trust.Id, Trust = trust.Name, Code = code, Name = "North Hospital", Active = true }, listed.Sites);
        Assert.Contains(listed.Trusts, t => t.Id == trust.Id);
        Assert.DoesNotContain(listed.Trusts, t => t.Id == gp);
        Assert.Equal([new HospitalSites.Site(code, "North Hospital"), new HospitalSites.Site(code + "S", "South Hospital")],
            await app.SendAsync<IReadOnlyList<HospitalSites.Site>>(new HospitalSites.Query(), trust.Referrer));

        var onNorth = await facts.ReferAsync(trust, "Ward 1", Ready, site: code);
        var unknownCode = await facts.ReferAsync(trust, "Ward 1", Ready, site: "ZZ" + code);
        var notMine = await Assert.ThrowsAsync<ValidationFailed>(() => facts.ReferAsync(other, "Ward 1", Ready, site: code));
        Assert.Contains("another organisation", notMine.Errors["Form.HospitalSite"].Single(), StringComparison.Ordinal);

        await app.SendAsync(new SetHospitalSiteActive.Command(north, Active: false), "admin");
        Assert.Equal([new HospitalSites.Site(code + "S", "South Hospital")],
            await app.SendAsync<IReadOnlyList<HospitalSites.Site>>(new HospitalSites.Query(), trust.Referrer));
        var closed = await Assert.ThrowsAsync<ValidationFailed>(() => facts.ReferAsync(trust, "Ward 1", Ready, site: code));
        Assert.Contains("is closed", closed.Errors["Form.HospitalSite"].Single(), StringComparison.Ordinal);
        // With one site open, a referral that names none is on it.
        var onTheOnlyOne = await facts.ReferAsync(trust, "Ward 1", Ready);

        await using var store = await app.OpenAsync();
        var sites = (await store.QueryAsync<(long Id, string? Code)>(
            "SELECT r.id, hs.code FROM referral r LEFT JOIN hospital_site hs ON hs.id = r.hospital_site_id WHERE r.organisation_id = @Id", new { trust.Id }))
            .ToDictionary(r => r.Id, r => r.Code);
        Assert.Equal(3, sites.Count);
        Assert.Equal((code, null, code + "S"), (sites[onNorth], sites[unknownCode], sites[onTheOnlyOne]));
    }
}

public sealed class HospitalSiteAdminOnSqliteTests(AppFactory app) : HospitalSiteAdminTests(app), IClassFixture<AppFactory>;

public sealed class HospitalSiteAdminOnPostgresTests(PostgresAppFactory app) : HospitalSiteAdminTests(app), IClassFixture<PostgresAppFactory>;
