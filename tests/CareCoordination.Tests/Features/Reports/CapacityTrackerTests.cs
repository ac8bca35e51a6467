using System.Net;
using CareCoordination.Domain;
using CareCoordination.Features.Reports;
using CareCoordination.Tests.Support;
using CsvHelper;
using Dapper;

namespace CareCoordination.Tests.Features.Reports;

/// <summary>
/// The Capacity Tracker view over beds the test lays out in a locality of its own, with every figure counted by hand;
/// and its CSV, parsed back, equal to the page's figures.
/// </summary>
public abstract class CapacityTrackerTests(AppFactory app)
{
    private const string Locality = "Handcount";

    private static readonly SemaphoreSlim Once = new(1, 1);
    private static readonly HashSet<AppFactory> Seeded = [];

    /// <summary>
    /// HC Alpha (active), ward W1:
    ///   rehabilitation A1 occupied 1h ago, A2 occupied 2h, A3 available 30h (stale), A4 reserved 1h, A5 closed 3h, A6 cleaning 1h
    ///   nursing        A7 available 1h, A8 occupied 50h (stale)
    /// HC Beta (active): dementia B1 available 1h, B2 available 4h, B3 closed 5h
    /// HC Gamma (inactive site, same locality): two available beds, left out.
    /// HC Delta (active, locality Elsewhere): one occupied bed, filtered out.
    /// All four run by Handcount Care; HC Epsilon (active, locality Elsewhere) is Handcount Nursing's: nursing E1 reserved, E2 available.
    /// </summary>
    private async Task SeedAsync()
    {
        await Once.WaitAsync();
        try
        {
            if (!Seeded.Add(app))
            {
                return;
            }
            var now = app.Clock.GetUtcNow();
            await using var connection = await app.OpenAsync();
            var care = await connection.ExecuteScalarAsync<long>(
                "INSERT INTO organisation (code, name, kind, created_at) VALUES ('HC-P', 'Handcount Care', 'provider', @now) RETURNING id", new { now });
            var nursing = await connection.ExecuteScalarAsync<long>(
                "INSERT INTO organisation (code, name, kind, created_at) VALUES ('HC-Q', 'Handcount Nursing', 'provider', @now) RETURNING id", new { now });
            async Task<long> Ward(string site, string locality, bool active, long? runBy = null)
            {
                var provider = runBy ?? care;
                var siteId = await connection.ExecuteScalarAsync<long>(
                    "INSERT INTO site (organisation_id, name, kind, locality, postcode, active) VALUES (@provider, @site, 'care-home', @locality, 'HC1 1AA', @active) RETURNING id",
                    new { provider, site, locality, active });
                return await connection.ExecuteScalarAsync<long>("INSERT INTO ward (site_id, name) VALUES (@siteId, 'W1') RETURNING id", new { siteId });
            }
            async Task Bed(long ward, string label, string type, string status, int hoursAgo) =>
                await connection.ExecuteAsync(
                    "INSERT INTO bed (ward_id, label, bed_type, allowed_sex, status, closed_reason, confirmed_at) VALUES (@ward, @label, @type, 'any', @status, @reason, @at)",
                    new { ward, label, type, status, reason = status == "closed" ? "infection" : null, at = now.AddHours(-hoursAgo) });

            var alpha = await Ward("HC Alpha", Locality, true);
            await Bed(alpha, "A1", "rehabilitation", "occupied", 1);
            await Bed(alpha, "A2", "rehabilitation", "occupied", 2);
            await Bed(alpha, "A3", "rehabilitation", "available", 30);
            await Bed(alpha, "A4", "rehabilitation", "reserved", 1);
            await Bed(alpha, "A5", "rehabilitation", "closed", 3);
            await Bed(alpha, "A6", "rehabilitation", "cleaning", 1);
            await Bed(alpha, "A7", "nursing", "available", 1);
            await Bed(alpha, "A8", "nursing", "occupied", 50);
            var beta = await Ward("HC Beta", Locality, true);
            await Bed(beta, "B1", "dementia", "available", 1);
            await Bed(beta, "B2", "dementia", "available", 4);
            await Bed(beta, "B3", "dementia", "closed", 5);
            var gamma = await Ward("HC Gamma", Locality, false);
            await Bed(gamma, "G1", "dementia", "available", 1);
            await Bed(gamma, "G2", "dementia", "available", 1);
            var delta = await Ward("HC Delta", "Elsewhere", true);
            await Bed(delta, "D1", "nursing", "occupied", 1);
            var epsilon = await Ward("HC Epsilon", "Elsewhere", true, nursing);
            await Bed(epsilon, "E1", "nursing", "reserved", 2);
            await Bed(epsilon, "E2", "nursing", "available", 1);
        }
        finally
        {
            Once.Release();
        }
    }

    private async Task<CapacityTracker.Result> ReportAsync() =>
        await app.SendAsync<CapacityTracker.Result>(
            new CapacityTracker.Query(ReportFilter.LastFullWeek(LondonTime.Today(app.Clock)) with { Locality = Locality }), await app.StaffAsync("manager"));

    [Fact]
    public async Task CapacityTracker_CountsEachSiteAndBedType_AsCountedByHand()
    {
        await SeedAsync();
        var now = app.Clock.GetUtcNow();
        var report = await ReportAsync();

        // (site, type, max, occupied, reserved, accepting, not accepting, stale beds, oldest confirmation hours ago)
        // Alpha nursing: A7 available, A8 occupied (50h > 12h: stale).
        // Alpha rehabilitation: A1 A2 occupied, A4 reserved, A3 available (30h: stale), A5 closed + A6 cleaning not accepting.
        // Beta dementia: B1 B2 available, B3 closed. Gamma is inactive; Delta is in another locality.
        Assert.Equal(
            [
                ("HC Alpha", "nursing", 2, 1, 0, 1, 0, 1, 50),
                ("HC Alpha", "rehabilitation", 6, 2, 1, 1, 2, 1, 30),
                ("HC Beta", "dementia", 3, 0, 0, 2, 1, 0, 5),
            ],
            report.Rows.Select(r => (r.Site, r.BedType, r.MaximumCapacity, r.Occupied, r.VacantReserved, r.VacantAccepting, r.VacantNotAccepting, r.StaleBeds,
                (int)Math.Round((now - r.OldestConfirmation!.Value).TotalHours))));
        Assert.Equal([true, true, false], report.Rows.Select(r => r.Stale));
        Assert.Equal(new CapacityTracker.Totals(11, 3, 1, 4, 3, 2), report.Total);
        Assert.Equal(12, report.StaleAfterHours);
    }

    private async Task<long> ProviderAsync(string code)
    {
        await using var connection = await app.OpenAsync();
        return await connection.ExecuteScalarAsync<long>("SELECT id FROM organisation WHERE code = @code", new { code });
    }

    private static IEnumerable<(string Site, string BedType, int Max, int Occupied, int Reserved, int Accepting, int NotAccepting)> Counts(CapacityTracker.Result report) =>
        report.Rows.Select(r => (r.Site, r.BedType, r.MaximumCapacity, r.Occupied, r.VacantReserved, r.VacantAccepting, r.VacantNotAccepting));

    [Fact]
    public async Task CapacityTracker_ByBedProvider_CountsOnlyThatProvidersSites_SoEachCanCopyItsOwnReturn()
    {
        await SeedAsync();
        var care = await ProviderAsync("HC-P");
        var nursing = await ProviderAsync("HC-Q");
        var manager = await app.StaffAsync("manager");
        var week = ReportFilter.LastFullWeek(LondonTime.Today(app.Clock));

        // Handcount Care, every locality: Alpha's two rows and Beta's (Handcount), Delta's (Elsewhere); Gamma is inactive.
        var careReport = await app.SendAsync<CapacityTracker.Result>(new CapacityTracker.Query(week with { Provider = care }), manager);
        Assert.Equal(
            [
                ("HC Alpha", "nursing", 2, 1, 0, 1, 0),
                ("HC Alpha", "rehabilitation", 6, 2, 1, 1, 2),
                ("HC Beta", "dementia", 3, 0, 0, 2, 1),
                ("HC Delta", "nursing", 1, 1, 0, 0, 0),
            ],
            Counts(careReport));
        Assert.Equal(new CapacityTracker.Totals(12, 4, 1, 4, 3, 2), careReport.Total);

        // Handcount Nursing: its one site, and nothing of Handcount Care's in the same locality.
        var nursingReport = await app.SendAsync<CapacityTracker.Result>(new CapacityTracker.Query(week with { Provider = nursing }), manager);
        Assert.Equal([("HC Epsilon", "nursing", 2, 0, 1, 1, 0)], Counts(nursingReport));

        // Provider and locality together: Handcount Care in Elsewhere is Delta alone.
        var both = await app.SendAsync<CapacityTracker.Result>(new CapacityTracker.Query(week with { Provider = care, Locality = "Elsewhere" }), manager);
        Assert.Equal([("HC Delta", "nursing", 1, 1, 0, 0, 0)], Counts(both));

        // The filter offers both providers, and no organisation without an active site.
        var choices = await app.SendAsync<ReportChoices.Result>(new ReportChoices.Query(), manager);
        Assert.Contains(choices.Providers, p => p.Id == care && p.Name == "Handcount Care");
        Assert.Contains(choices.Providers, p => p.Id == nursing && p.Name == "Handcount Nursing");
        await using var connection = await app.OpenAsync();
        var withoutSites = (await connection.QueryAsync<long>(
            "SELECT id FROM organisation o WHERE NOT EXISTS (SELECT 1 FROM site s WHERE s.organisation_id = o.id AND s.active)")).ToHashSet();
        Assert.NotEmpty(withoutSites);
        Assert.DoesNotContain(choices.Providers, p => withoutSites.Contains(p.Id));
    }

    [Fact]
    public async Task CapacityTrackerCsv_ByBedProvider_HasOnlyThatProvidersRows()
    {
        await SeedAsync();
        var nursing = await ProviderAsync("HC-Q");
        var (response, body) = await app.ReportCsvAsync("manager", CapacityTracker.Slug, $"provider={nursing}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        using var reader = CsvReader.Create(body);
        var rows = new List<(string, string, string, int, int)>();
        while (reader.Read())
        {
            rows.Add((reader.GetString("Site"), reader.GetString("Provider"), reader.GetString("Bed type"),
                int.Parse(reader.GetString("Maximum capacity")), int.Parse(reader.GetString("Vacant reserved"))));
        }
        Assert.Equal([("HC Epsilon", "Handcount Nursing", "nursing", 2, 1)], rows);
    }

    [Fact]
    public async Task CapacityTrackerCsv_ParsesBackToThePagesFigures()
    {
        await SeedAsync();
        var report = await ReportAsync();
        using var client = app.CreateBrowserlessClient();
        (await app.SignInAsync(client, "manager", AppFactory.Password)).Dispose();

        using var response = await client.GetAsync($"/reports/capacity-tracker.csv?locality={Locality}");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/csv", response.Content.Headers.ContentType?.MediaType);
        Assert.StartsWith("capacity-tracker-", response.Content.Headers.ContentDisposition?.FileName?.Trim('"'), StringComparison.Ordinal);

        using var reader = CsvReader.Create(await response.Content.ReadAsByteArrayAsync());
        Assert.True(reader.Read());
        Assert.Equal(["Site", "Locality", "Provider", "Bed type", "Maximum capacity", "Occupied", "Vacant reserved", "Vacant accepting admissions",
            "Vacant not accepting admissions", "Oldest confirmation", "Stale beds"], reader.Headers.ToArray());
        var parsed = new List<(string, string, int, int, int, int, int, int?)>();
        do
        {
            parsed.Add((reader.GetString("Site"), reader.GetString("Bed type"), int.Parse(reader.GetString("Maximum capacity")), int.Parse(reader.GetString("Occupied")),
                int.Parse(reader.GetString("Vacant reserved")), int.Parse(reader.GetString("Vacant accepting admissions")),
                int.Parse(reader.GetString("Vacant not accepting admissions")), (int?)int.Parse(reader.GetString("Stale beds"))));
        }
        while (reader.Read());
        Assert.Equal(report.Rows.Select(r => (r.Site, r.BedType, r.MaximumCapacity, r.Occupied, r.VacantReserved, r.VacantAccepting, r.VacantNotAccepting, r.StaleBeds)), parsed);
    }

    [Fact]
    public async Task CapacityTracker_IsRefusedToACoordinator_OnThePageAndTheCsv()
    {
        var refused = await Record.ExceptionAsync(() => app.SendAsync<CapacityTracker.Result>(
            new CapacityTracker.Query(ReportFilter.LastFullWeek(LondonTime.Today(app.Clock))), app.StaffAsync("coordinator").Result));
        Assert.IsType<CareCoordination.Pipeline.AccessDenied>(refused);
        using var client = app.CreateBrowserlessClient();
        (await app.SignInAsync(client, "coordinator", AppFactory.Password)).Dispose();
        using var response = await client.GetAsync("/reports/capacity-tracker.csv");
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
    }
}

public sealed class CapacityTrackerOnSqliteTests(AppFactory app) : CapacityTrackerTests(app), IClassFixture<AppFactory>;

public sealed class CapacityTrackerOnPostgresTests(PostgresAppFactory app) : CapacityTrackerTests(app), IClassFixture<PostgresAppFactory>;
