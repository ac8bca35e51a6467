using CareCoordination.Features.Admin;
using CareCoordination.Features.BedBureau;
using CareCoordination.Pipeline;
using CareCoordination.Tests.Support;
using Dapper;
using Mediator;

namespace CareCoordination.Tests.Features.Admin;

/// <summary>
/// Sites, wards and beds through the administration commands: each writes its row and its change row, and
/// each refusal (a bad postcode, a taken name or label, a closed site, a bed in use, the wrong role) writes nothing.
/// </summary>
public abstract class BedEstateAdminTests(AppFactory app)
{
    private sealed record SiteRow
    {
        public string Name { get; init; } = "";
        public string Kind { get; init; } = "";
        public string Locality { get; init; } = "";
        public string Postcode { get; init; } = "";
        public long OrganisationId { get; init; }
        public bool Active { get; init; }
    }

    private sealed record BedDetails
    {
        public string Label { get; init; } = "";
        public string BedType { get; init; } = "";
        public string AllowedSex { get; init; } = "";
        public bool SingleRoom { get; init; }
        public string Status { get; init; } = "";
        public int Version { get; init; }
    }

    private async Task<long> OrganisationAsync(string code)
    {
        await using var connection = await app.OpenAsync();
        return await connection.ExecuteScalarAsync<long>("SELECT id FROM organisation WHERE code = @code", new { code });
    }

    private async Task<long> NewSiteAsync(string? name = null) =>
        await app.SendAsync<long>(new AddSite.Command(name ?? AdminWorld.Unique("Penrose House"), "care-home", "Ashbury", "wm2 6xy", await OrganisationAsync("PRV-HEARTH")), "admin");

    private async Task<long> NewWardAsync(long siteId) => await app.SendAsync<long>(new AddWard.Command(siteId, "Gorse Wing"), "admin");

    private async Task<BedDetails> BedAsync(long bedId)
    {
        await using var connection = await app.OpenAsync();
        return await connection.QuerySingleAsync<BedDetails>(
            """
            SELECT label AS Label, bed_type AS BedType, allowed_sex AS AllowedSex, single_room AS SingleRoom, status AS Status, version AS Version
            FROM bed WHERE id = @bedId
            """, new { bedId });
    }

    private async Task<long> SeededBedAsync(string status)
    {
        await using var connection = await app.OpenAsync();
        return await connection.ExecuteScalarAsync<long>(
            """
            SELECT b.id FROM bed b JOIN ward w ON w.id = b.ward_id JOIN site s ON s.id = w.site_id
            WHERE b.status = @status AND s.active ORDER BY b.id LIMIT 1
            """, new { status });
    }

    [Fact]
    public async Task AddSite_WritesTheSiteWithItsPostcodeTidied_AndAChange()
    {
        var provider = await OrganisationAsync("PRV-HEARTH");
        var name = AdminWorld.Unique("Penrose House");

        var siteId = await app.SendAsync<long>(new AddSite.Command($"  {name} ", "care-home", "Ashbury", "wm2 6xy", provider), "admin");

        await using var connection = await app.OpenAsync();
        var site = await connection.QuerySingleAsync<SiteRow>(
            "SELECT name AS Name, kind AS Kind, locality AS Locality, postcode AS Postcode, organisation_id AS OrganisationId, active AS Active FROM site WHERE id = @siteId",
            new { siteId });
        Assert.Equal(new SiteRow { Name = name, Kind = "care-home", Locality = "Ashbury", Postcode = "WM2 6XY", OrganisationId = provider, Active = true }, site);
        var change = Assert.Single(await app.ChangesAsync("site", siteId));
        Assert.Equal(("site.added", "Sam Whitfield"), (change.Kind, change.Actor));
        Assert.Equal(name, change.Json.GetProperty("name").GetString());
    }

    [Fact]
    public async Task AddSite_IsRefused_ForABadPostcode_ATakenName_OrAnOwnerThatIsNotAProvider()
    {
        var provider = await OrganisationAsync("PRV-HEARTH");
        await app.RefusedAsync<ValidationFailed>(new AddSite.Command(AdminWorld.Unique("Tor House"), "care-home", "Ashbury", "WM2 6X", provider), "admin", "postcode");
        await app.RefusedAsync<ValidationFailed>(new AddSite.Command(AdminWorld.Unique("Tor House"), "hospice", "Ashbury", "WM2 6XY", provider), "admin", "care home");
        await app.RefusedAsync<Conflict>(new AddSite.Command("Orchard Lodge", "care-home", "Kelworth", "WM5 1AG", provider), "admin", "already a site called Orchard Lodge");
        await app.RefusedAsync<RuleBroken>(new AddSite.Command(AdminWorld.Unique("Tor House"), "care-home", "Ashbury", "WM2 6XY", await OrganisationAsync("W99001")),
            "admin", "provider");
    }

    [Fact]
    public async Task AddWardAndBeds_WriteTheRows_NumberTheLabels_AndRecordAChangeForEach()
    {
        var siteId = await NewSiteAsync();

        var wardId = await app.SendAsync<long>(new AddWard.Command(siteId, " Gorse Wing "), "admin");
        var bedIds = await app.SendAsync<IReadOnlyList<long>>(new AddBeds.Command(wardId, 3, "G", "nursing", "female", SingleRoom: true), "admin");

        Assert.Equal("ward.added", Assert.Single(await app.ChangesAsync("ward", wardId)).Kind);
        Assert.Equal(3, bedIds.Count);
        var beds = new List<BedDetails>();
        foreach (var bedId in bedIds)
        {
            beds.Add(await BedAsync(bedId));
            var change = Assert.Single(await app.ChangesAsync("bed", bedId));
            Assert.Equal("bed.added", change.Kind);
            Assert.Equal(siteId, change.Json.GetProperty("siteId").GetInt64());
            Assert.Equal("available", change.Json.GetProperty("status").GetString());
        }
        Assert.Equal(["G01", "G02", "G03"], beds.Select(b => b.Label));
        Assert.All(beds, b => Assert.Equal(("nursing", "female", true, "available", 1), (b.BedType, b.AllowedSex, b.SingleRoom, b.Status, b.Version)));

        var estate = await app.SendAsync<BedEstate.Result>(new BedEstate.Query(), "admin");
        var ward = Assert.Single(Assert.Single(estate.Sites, s => s.Row.Id == siteId).Wards);
        Assert.Equal(("Gorse Wing", 3, 4), (ward.Name, ward.Beds.Count, ward.NextNumber("G")));
    }

    [Fact]
    public async Task AddWard_WithANameTheSiteHas_AndAddBeds_WithALabelTheWardHas_AreRefused_AndAddNothing()
    {
        var siteId = await NewSiteAsync();
        var wardId = await NewWardAsync(siteId);
        await app.SendAsync(new AddBeds.Command(wardId, 2, "G", "residential", "any", SingleRoom: false), "admin");

        await app.RefusedAsync<Conflict>(new AddWard.Command(siteId, "Gorse Wing"), "admin", "already has a ward called Gorse Wing");
        // G03 would be new, G02 is not: the whole request is refused, so G03 is not left behind either.
        await app.RefusedAsync<Conflict>(new AddBeds.Command(wardId, 2, "G", "residential", "any", SingleRoom: false, FirstNumber: 2), "admin",
            "already has a bed labelled G02");
        await app.RefusedAsync<ValidationFailed>(new AddBeds.Command(wardId, 0, "G", "residential", "any", SingleRoom: false), "admin", "between 1 and");
        await app.RefusedAsync<ValidationFailed>(new AddBeds.Command(wardId, 1, "G", "hammock", "any", SingleRoom: false), "admin", "type of bed");
    }

    [Fact]
    public async Task EditBed_ChangesTypeSexAndRoom_NeverTheStatus_AndNotTypeOrSexUnderAPerson()
    {
        var bedId = await SeededBedAsync("available");
        var before = await BedAsync(bedId);
        var type = before.BedType == "dementia" ? "nursing" : "dementia";

        await app.SendAsync(new EditBed.Command(bedId, type, "male", !before.SingleRoom), "admin");

        var after = await BedAsync(bedId);
        Assert.Equal(before with { BedType = type, AllowedSex = "male", SingleRoom = !before.SingleRoom, Version = before.Version + 1 }, after);
        var change = (await app.ChangesAsync("bed", bedId))[^1];
        Assert.Equal("bed.changed", change.Kind);
        Assert.Equal(("available", type), (change.Json.GetProperty("status").GetString(), change.Json.GetProperty("bedType").GetString()));
        Assert.Equal(before.BedType, change.Json.GetProperty("detail").GetProperty("from").GetProperty("bedType").GetString());

        await app.RefusedAsync<RuleBroken>(new EditBed.Command(bedId, type, "male", !before.SingleRoom), "admin", "nothing to change");
        var occupied = await SeededBedAsync("occupied");
        var inUse = await BedAsync(occupied);
        await app.RefusedAsync<RuleBroken>(new EditBed.Command(occupied, inUse.BedType, inUse.AllowedSex == "any" ? "female" : "any", inUse.SingleRoom), "admin",
            "once it is free");
        // A single room with someone in it stays one: they may need to be isolated.
        await using (var connection = await app.OpenAsync())
        {
            await connection.ExecuteAsync("UPDATE bed SET single_room = TRUE WHERE id = @occupied", new { occupied });
        }
        await app.RefusedAsync<RuleBroken>(new EditBed.Command(occupied, inUse.BedType, inUse.AllowedSex, SingleRoom: false), "admin", "once it is free");
        await app.RefusedAsync<ValidationFailed>(new EditBed.Command(bedId, type, "anyone", false), "admin", "who the bed is for");
        await app.RefusedAsync<NotFound>(new EditBed.Command(long.MaxValue, type, "any", false), "admin", "not found");
    }

    [Fact]
    public async Task DeactivateSite_TakesItOffTheBoard_AndIsRefusedWhileAnyoneIsInItsBeds()
    {
        var siteId = await NewSiteAsync();
        var wardId = await NewWardAsync(siteId);
        await app.SendAsync(new AddBeds.Command(wardId, 2, "G", "residential", "any", SingleRoom: false), "admin");
        await app.RefusedAsync<ValidationFailed>(new DeactivateSite.Command(siteId, " "), "admin", "why");

        await app.SendAsync(new DeactivateSite.Command(siteId, "Provider left the framework."), "admin");

        await using (var connection = await app.OpenAsync())
        {
            Assert.False(await connection.ExecuteScalarAsync<bool>("SELECT active FROM site WHERE id = @siteId", new { siteId }));
        }
        var change = (await app.ChangesAsync("site", siteId))[^1];
        Assert.Equal(("site.deactivated", "Provider left the framework."), (change.Kind, change.Json.GetProperty("reason").GetString()));
        var board = await app.SendAsync<BedBoard.Result>(new BedBoard.Query(), "bedbureau");
        Assert.DoesNotContain(board.Sites, s => s.Id == siteId);

        await app.RefusedAsync<RuleBroken>(new DeactivateSite.Command(siteId, "Again."), "admin", "already closed");
        await app.RefusedAsync<RuleBroken>(new AddWard.Command(siteId, "Heath Wing"), "admin", "closed");
        await app.RefusedAsync<RuleBroken>(new AddBeds.Command(wardId, 1, "H", "residential", "any", SingleRoom: false), "admin", "closed");

        long busySite;
        await using (var connection = await app.OpenAsync())
        {
            busySite = await connection.ExecuteScalarAsync<long>(
                "SELECT w.site_id FROM bed b JOIN ward w ON w.id = b.ward_id WHERE b.status = 'occupied' ORDER BY b.id LIMIT 1");
        }
        await app.RefusedAsync<RuleBroken>(new DeactivateSite.Command(busySite, "Closing."), "admin", "reserved or occupied");
    }

    [Fact]
    public async Task OnlyAnAdministrator_MaintainsTheEstate()
    {
        var siteId = await NewSiteAsync();
        var wardId = await NewWardAsync(siteId);
        var bedId = Assert.Single(await app.SendAsync<IReadOnlyList<long>>(new AddBeds.Command(wardId, 1, "G", "residential", "any", SingleRoom: false), "admin"));
        var provider = await OrganisationAsync("PRV-HEARTH");
        IMessage[] commands =
        [
            new AddSite.Command(AdminWorld.Unique("Tor House"), "care-home", "Ashbury", "WM2 6XY", provider),
            new AddWard.Command(siteId, "Heath Wing"),
            new AddBeds.Command(wardId, 1, "H", "residential", "any", SingleRoom: false),
            new EditBed.Command(bedId, "nursing", "female", true),
            new DeactivateSite.Command(siteId, "Closing."),
        ];
        foreach (var user in new[] { "referrer", "coordinator", "bedbureau", "manager" })
        {
            foreach (var command in commands)
            {
                await app.RefusedAsync<AccessDenied>(command, user, "may not");
            }
        }
        await Assert.ThrowsAsync<AccessDenied>(() => app.SendAsync(new BedEstate.Query(), "coordinator"));
    }
}

public sealed class BedEstateAdminOnSqliteTests(AppFactory app) : BedEstateAdminTests(app), IClassFixture<AppFactory>;

public sealed class BedEstateAdminOnPostgresTests(PostgresAppFactory app) : BedEstateAdminTests(app), IClassFixture<PostgresAppFactory>;
