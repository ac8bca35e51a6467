// Firely's model marks every element nullable; here a missing element fails the test just as an assert would.
#pragma warning disable CS8600, CS8602, CS8604

using System.Net;
using System.Text.Json;
using CareCoordination.Features.Boards;
using CareCoordination.Features.Fhir;
using CareCoordination.Tests.Support;
using Dapper;
using Hl7.Fhir.Model;
using Task = System.Threading.Tasks.Task;

namespace CareCoordination.Tests.Features.Fhir;

/// <summary>
/// Capacity through /fhir: sites, wards and beds as Location, as any partner with the scope sees them.
/// </summary>
public abstract class FhirCapacityTests(AppFactory app)
{
    private sealed record BedFacts
    {
        public long Id { get; init; }
        public long WardId { get; init; }
        public long SiteId { get; init; }
        public string BedType { get; init; } = "";
        public int Version { get; init; }
    }

    private async Task<BedFacts> BedAsync(string status, string? closedReason = null)
    {
        await using var connection = await app.OpenAsync();
        var id = await connection.ExecuteScalarAsync<long>("SELECT MIN(b.id) FROM bed b JOIN ward w ON w.id = b.ward_id JOIN site s ON s.id = w.site_id WHERE s.active");
        await connection.ExecuteAsync("UPDATE bed SET status = @status, closed_reason = @closedReason, version = version + 1 WHERE id = @id", new { status, closedReason, id });
        return await connection.QuerySingleAsync<BedFacts>(
            """
            SELECT b.id AS Id, b.ward_id AS WardId, w.site_id AS SiteId, b.bed_type AS BedType, b.version AS Version
            FROM bed b JOIN ward w ON w.id = b.ward_id WHERE b.id = @id
            """, new { id });
    }

    [Theory]
    [InlineData("available", null, "U")]
    [InlineData("reserved", null, "O")]
    [InlineData("occupied", null, "O")]
    [InlineData("cleaning", null, "H")]
    [InlineData("closed", "staffing", "C")]
    [InlineData("closed", "infection", "K")]
    public async Task ABed_ReadsAsABedLocation_PartOfItsWard_WithItsStatusFromV2_0116(string status, string? closedReason, string code)
    {
        var bed = await BedAsync(status, closedReason);
        using var client = await app.PartnerAsync();

        var response = await client.GetAsync($"/fhir/Location/bed-{bed.Id}");
        var location = await FhirPartner.ParseAsync<Location>(response);

        Assert.Equal($"bed-{bed.Id}", location.Id);
        Assert.Equal(Location.LocationMode.Instance, location.Mode);
        Assert.Equal(("http://terminology.hl7.org/CodeSystem/location-physical-type", "bd"), (location.PhysicalType.Coding.Single().System, location.PhysicalType.Coding.Single().Code));
        Assert.Equal($"Location/ward-{bed.WardId}", location.PartOf.Reference);
        Assert.Equal(("http://terminology.hl7.org/CodeSystem/v2-0116", code), (location.OperationalStatus.System, location.OperationalStatus.Code));
        Assert.Equal(status, location.GetExtensionValue<Code>(FhirMapping.BedStatusExtension).Value);
        Assert.Equal((FhirMapping.BedTypeSystem, bed.BedType), (location.Type.Single().Coding.Single().System, location.Type.Single().Coding.Single().Code));
        Assert.Equal(bed.Version.ToString(), location.Meta.VersionId);
        Assert.Equal($"W/\"{bed.Version}\"", response.Headers.ETag?.ToString());

        var ward = await FhirPartner.ParseAsync<Location>(await client.GetAsync($"/fhir/{location.PartOf.Reference}"));
        Assert.Equal("wa", ward.PhysicalType.Coding.Single().Code);
        Assert.Equal($"Location/site-{bed.SiteId}", ward.PartOf.Reference);
        var site = await FhirPartner.ParseAsync<Location>(await client.GetAsync($"/fhir/{ward.PartOf.Reference}"));
        Assert.Equal("si", site.PhysicalType.Coding.Single().Code);
        Assert.Null(site.PartOf);
        Assert.False(string.IsNullOrEmpty(site.Address.PostalCode));
        Assert.Equal(FhirMapping.OdsSystem, site.ManagingOrganization.Identifier.System);

        var byStatus = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync($"/fhir/Location?partof=Location/ward-{bed.WardId}&operational-status=http://terminology.hl7.org/CodeSystem/v2-0116|{code}"));
        Assert.Contains($"bed-{bed.Id}", byStatus.Entry.Select(e => e.Resource.Id));
        Assert.All(byStatus.Entry, e => Assert.Equal(code, ((Location)e.Resource).OperationalStatus.Code));
    }

    [Fact]
    public async Task SearchByPartOf_ListsAWardsBeds_AndASitesWards()
    {
        var bed = await BedAsync("available");
        await using var connection = await app.OpenAsync();
        var bedIds = (await connection.QueryAsync<long>("SELECT id FROM bed WHERE ward_id = @WardId ORDER BY id", new { bed.WardId })).Select(id => $"bed-{id}").ToList();
        var wardIds = (await connection.QueryAsync<long>("SELECT id FROM ward WHERE site_id = @SiteId ORDER BY id", new { bed.SiteId })).Select(id => $"ward-{id}").ToList();
        using var client = await app.PartnerAsync();

        var beds = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync($"/fhir/Location?partof=Location/ward-{bed.WardId}&_count=100"));
        Assert.Equal(bedIds.Count, beds.Total);
        Assert.Equal(bedIds, beds.Entry.Select(e => e.Resource.Id));
        Assert.All(beds.Entry, e => Assert.EndsWith($"/fhir/Location/{e.Resource.Id}", e.FullUrl));

        var wards = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync($"/fhir/Location?partof=Location/site-{bed.SiteId}"));
        Assert.Equal(wardIds, wards.Entry.Select(e => e.Resource.Id));

        var byType = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync($"/fhir/Location?type={bed.BedType}&_count=1"));
        Assert.Equal(bed.BedType, ((Location)byType.Entry.Single().Resource).Type.Single().Coding.Single().Code);
        Assert.Contains(byType.Link, l => l.Relation == "next");
    }

    [Theory]
    [InlineData("/fhir/Location?partof=Location/12")]
    [InlineData("/fhir/Location?type=ward")]
    [InlineData("/fhir/Location?operational-status=reserved")]
    [InlineData("/fhir/Location?name=Ward")]
    public async Task ABadLocationSearch_Is400(string url)
    {
        using var client = await app.PartnerAsync();

        var outcome = await FhirPartner.ParseAsync<OperationOutcome>(await client.GetAsync(url), HttpStatusCode.BadRequest);

        Assert.Equal(OperationOutcome.IssueType.Invalid, outcome.Issue.Single().Code);
    }

    [Fact]
    public async Task ATokenWithoutTheLocationScope_Is403_AndAnUnknownLocation404()
    {
        var bed = await BedAsync("available");
        using var client = await app.PartnerAsync("system/Task.rs");

        var outcome = await FhirPartner.ParseAsync<OperationOutcome>(await client.GetAsync($"/fhir/Location/bed-{bed.Id}"), HttpStatusCode.Forbidden);
        Assert.Equal(OperationOutcome.IssueType.Forbidden, outcome.Issue.Single().Code);
        await FhirPartner.ParseAsync<OperationOutcome>(await client.GetAsync("/fhir/Location?type=nursing"), HttpStatusCode.Forbidden);

        using var partner = await app.PartnerAsync();
        await FhirPartner.ParseAsync<OperationOutcome>(await partner.GetAsync($"/fhir/Location/{bed.Id}"), HttpStatusCode.NotFound);
        await FhirPartner.ParseAsync<OperationOutcome>(await partner.GetAsync("/fhir/Location/bed-999999999"), HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task MeasureReports_CountEachActiveSitesBeds_AsTheCapacityBoardDoes()
    {
        var bed = await BedAsync("reserved");
        using var client = await app.PartnerAsync();

        var all = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync("/fhir/MeasureReport?_count=100"));
        // The bed was changed by hand, with no change row: the board's figures, shared per change, show it once their age has
        // passed, whatever another test of this store asked of the board before.
        app.Clock.Advance(CapacityBoard.Latest.MaxAge);
        var board = await app.SendAsync<CapacityBoard.Result>(new CapacityBoard.Query(), await app.StaffAsync("manager"));

        var reports = all.Entry.Select(e => (MeasureReport)e.Resource).ToList();
        Assert.Equal(all.Total, reports.Count);
        Assert.All(reports, r =>
        {
            Assert.Equal(MeasureReport.MeasureReportStatus.Complete, r.Status);
            Assert.Equal(MeasureReport.MeasureReportType.Summary, r.Type);
            Assert.StartsWith("Location/site-", r.Subject.Reference);
        });
        int Count(MeasureReport report, string code) => report.Group.Single().Population.Single(p => p.Code.Coding.Single().Code == code).Count!.Value;
        foreach (var site in board.Sites)
        {
            var report = reports.Single(r => r.Subject.Display == site.Site);
            Assert.Equal(
                (site.Beds.Total, site.Beds.Available, site.Beds.Reserved, site.Beds.Occupied, site.Beds.Cleaning, site.Beds.Closed),
                (Count(report, "total"), Count(report, "available"), Count(report, "reserved"), Count(report, "occupied"), Count(report, "cleaning"), Count(report, "closed")));
            Assert.Equal(site.Beds.OccupancyPercent, report.Group.Single().MeasureScore.Value);
        }
        Assert.Equal(board.Total.Total, reports.Sum(r => Count(r, "total")));

        var one = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync($"/fhir/MeasureReport?subject=Location/site-{bed.SiteId}"));
        var mine = (MeasureReport)one.Entry.Single().Resource;
        Assert.Equal($"Location/site-{bed.SiteId}", mine.Subject.Reference);
        Assert.True(Count(mine, "reserved") >= 1);
        var read = await FhirPartner.ParseAsync<MeasureReport>(await client.GetAsync($"/fhir/MeasureReport/{mine.Id}"));
        Assert.Equal(Count(mine, "total"), Count(read, "total"));

        await FhirPartner.ParseAsync<OperationOutcome>(await client.GetAsync($"/fhir/MeasureReport?subject=Location/ward-{bed.WardId}"), HttpStatusCode.BadRequest);
        using var withoutScope = await app.PartnerAsync("system/Location.rs");
        await FhirPartner.ParseAsync<OperationOutcome>(await withoutScope.GetAsync("/fhir/MeasureReport"), HttpStatusCode.Forbidden);
    }

    [Fact]
    public async Task Metadata_ListsLocationAndMeasureReport_WithTheirSearchParameters()
    {
        using var client = app.CreateClient();

        var capability = await FhirPartner.ParseAsync<CapabilityStatement>(await client.GetAsync("/fhir/metadata"));

        var rest = capability.Rest.Single();
        Assert.Equal(["type", "partof", "operational-status"], rest.Resource.Single(r => r.Type == "Location").SearchParam.Select(p => p.Name));
        Assert.Equal(["subject"], rest.Resource.Single(r => r.Type == "MeasureReport").SearchParam.Select(p => p.Name));
    }
}

public sealed class FhirCapacityOnSqliteTests(AppFactory app) : FhirCapacityTests(app), IClassFixture<AppFactory>;

public sealed class FhirCapacityOnPostgresTests(PostgresAppFactory app) : FhirCapacityTests(app), IClassFixture<PostgresAppFactory>;
