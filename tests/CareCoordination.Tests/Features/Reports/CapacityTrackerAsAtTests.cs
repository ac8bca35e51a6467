using CareCoordination.Domain;
using CareCoordination.Features.Admin;
using CareCoordination.Features.BedBureau;
using CareCoordination.Features.Reports;
using CareCoordination.Pipeline;
using CareCoordination.Tests.Features.Admin;
using CareCoordination.Tests.Support;
using Dapper;

namespace CareCoordination.Tests.Features.Reports;

/// <summary>
/// The Capacity Tracker as at the end of a past day: each bed in the state it held then, as the bed commands recorded it.
/// Its own host, because the test moves the clock on by days.
/// </summary>
public abstract class CapacityTrackerAsAtTests(AppFactory app)
{
    private const string Locality = "Asat";

    /// <summary>Moves the clock to noon of the next London day, whatever the length of the day it leaves (the clocks change twice a year).</summary>
    private DateOnly NextDay()
    {
        var next = LondonTime.Today(app.Clock).AddDays(1);
        app.Clock.Advance(LondonTime.StartOf(next).AddHours(12) - app.Clock.GetUtcNow());
        return next;
    }

    private Task<CapacityTracker.Result> ReportAsync(DateOnly? asAt, long? provider = null) =>
        app.SendAsync<CapacityTracker.Result>(
            new CapacityTracker.Query(ReportFilter.LastFullWeek(LondonTime.Today(app.Clock)) with { Locality = Locality, AsAt = asAt, Provider = provider }), "manager");

    private static IEnumerable<(string Site, string BedType, int Max, int Occupied, int Reserved, int Accepting, int NotAccepting)> Counts(CapacityTracker.Result report) =>
        report.Rows.Select(r => (r.Site, r.BedType, r.MaximumCapacity, r.Occupied, r.VacantReserved, r.VacantAccepting, r.VacantNotAccepting));

    [Fact]
    public async Task APastDay_CountsEachBedInTheStateItHeldAtTheEndOfThatDay_AndNowCountsTheBedsAsTheyStand()
    {
        // Day 0: at AS Alpha three rehabilitation beds added (X, Y, Z), all available; W was there before beds' states were
        // kept. At AS Beta one nursing bed added (V).
        var dayBefore = LondonTime.Today(app.Clock).AddDays(-1);
        var day0 = LondonTime.Today(app.Clock);
        long provider, alphaWard, betaSite, betaWard;
        await using (var connection = await app.OpenAsync())
        {
            provider = await connection.ExecuteScalarAsync<long>(
                "INSERT INTO organisation (code, name, kind, created_at) VALUES ('AS-P', 'Asat Care', 'provider', @now) RETURNING id", new { now = app.Clock.GetUtcNow() });
            async Task<(long Site, long Ward)> SiteAsync(string name)
            {
                var site = await connection.ExecuteScalarAsync<long>(
                    "INSERT INTO site (organisation_id, name, kind, locality, postcode, active) VALUES (@provider, @name, 'community-hospital', @Locality, 'AS1 1AA', TRUE) RETURNING id",
                    new { provider, name, Locality });
                return (site, await connection.ExecuteScalarAsync<long>("INSERT INTO ward (site_id, name) VALUES (@site, 'W1') RETURNING id", new { site }));
            }
            (_, alphaWard) = await SiteAsync("AS Alpha");
            (betaSite, betaWard) = await SiteAsync("AS Beta");
            await connection.ExecuteAsync(
                "INSERT INTO bed (ward_id, label, bed_type, allowed_sex, status, confirmed_at, version, single_room) VALUES (@alphaWard, 'W', 'rehabilitation', 'any', 'available', @now, 1, FALSE)",
                new { alphaWard, now = app.Clock.GetUtcNow() });
        }
        var beds = await app.SendAsync<IReadOnlyList<long>>(new AddBeds.Command(alphaWard, 3, "AS", "rehabilitation", "any", SingleRoom: false), "admin");
        var (x, y, z) = (beds[0], beds[1], beds[2]);
        await app.SendAsync<IReadOnlyList<long>>(new AddBeds.Command(betaWard, 1, "V", "nursing", "any", SingleRoom: false), "admin");

        // Day 1: X closed for infection control.
        var day1 = NextDay();
        await app.SendAsync(new ChangeBedState.Command(x, ChangeBedState.Move.Close, "infection"), "bedbureau");

        // Day 2: X reopened, Y closed for staffing, Z made a nursing bed, AS Beta closed as a site.
        var day2 = NextDay();
        await app.SendAsync(new ChangeBedState.Command(x, ChangeBedState.Move.Reopen), "bedbureau");
        await app.SendAsync(new ChangeBedState.Command(y, ChangeBedState.Move.Close, "staffing"), "bedbureau");
        await app.SendAsync(new EditBed.Command(z, "nursing", "any", false), "admin");
        await app.SendAsync(new DeactivateSite.Command(betaSite, "Merged into AS Alpha"), "admin");

        // (site, type, max, occupied, reserved, accepting, not accepting), counted by hand from the story above.
        var endOfDay0 = await ReportAsync(day0);
        Assert.True(endOfDay0.Past);
        Assert.Equal([("AS Alpha", "rehabilitation", 3, 0, 0, 3, 0), ("AS Beta", "nursing", 1, 0, 0, 1, 0)], Counts(endOfDay0));
        Assert.Equal(1, endOfDay0.NotYetRecorded); // W
        Assert.Equal(LondonTime.StartOf(day1), endOfDay0.AsOf);
        Assert.All(endOfDay0.Rows, r => Assert.Null(r.StaleBeds));
        Assert.All(endOfDay0.Rows, r => Assert.Null(r.OldestConfirmation));

        // AS Beta was still open at the end of day 1: it is counted, though it is closed now.
        var endOfDay1 = await ReportAsync(day1);
        Assert.Equal([("AS Alpha", "rehabilitation", 3, 0, 0, 2, 1), ("AS Beta", "nursing", 1, 0, 0, 1, 0)], Counts(endOfDay1));
        Assert.Equal(Counts(endOfDay1), Counts(await ReportAsync(day1, provider)));
        var anotherProvider = await ReportAsync(day1, provider + 1_000_000);
        Assert.Empty(anotherProvider.Rows);
        Assert.Equal(0, anotherProvider.NotYetRecorded);

        // Before anything was recorded: no beds counted, all five not yet recorded.
        var before = await ReportAsync(dayBefore);
        Assert.Empty(before.Rows);
        Assert.Equal(5, before.NotYetRecorded); // W, X, Y, Z and V: AS Beta was open then too

        // Today, asked for or not, is now: the beds as they stand, W included, AS Beta gone, with their freshness.
        foreach (var today in new DateOnly?[] { day2, null })
        {
            var now = await ReportAsync(today);
            Assert.False(now.Past);
            Assert.Equal([("AS Alpha", "nursing", 1, 0, 0, 1, 0), ("AS Alpha", "rehabilitation", 3, 0, 0, 2, 1)], Counts(now));
            // Z (made a nursing bed, which confirms nothing) and W were last confirmed on day 0: two days ago, stale.
            Assert.Equal([1, 1], now.Rows.Select(r => r.StaleBeds));
        }

        // A day not yet lived is refused with a reason.
        var refused = await Assert.ThrowsAsync<ValidationFailed>(() => ReportAsync(day2.AddDays(1)));
        Assert.Contains("a day not yet lived", string.Join(" ", refused.Errors.SelectMany(e => e.Value)), StringComparison.Ordinal);

        // The next day, day 2 is a past day: Z a nursing bed, Y closed, X open again; W still not recorded, AS Beta closed.
        NextDay();
        var endOfDay2 = await ReportAsync(day2);
        Assert.True(endOfDay2.Past);
        Assert.Equal([("AS Alpha", "nursing", 1, 0, 0, 1, 0), ("AS Alpha", "rehabilitation", 2, 0, 0, 1, 1)], Counts(endOfDay2));
        Assert.Equal(1, endOfDay2.NotYetRecorded);

        // Its CSV: named for the day, with the same figures and no freshness.
        var (response, body) = await app.ReportCsvAsync("manager", CapacityTracker.Slug, $"locality={Locality}&at={day2:yyyy-MM-dd}");
        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        Assert.Equal($"capacity-tracker-at-{day2:yyyy-MM-dd}.csv", response.Content.Headers.ContentDisposition?.FileName?.Trim('"'));
        using var reader = CsvHelper.CsvReader.Create(body);
        var rows = new List<(string, string, int, int, int, string, string)>();
        while (reader.Read())
        {
            rows.Add((reader.GetString("Site"), reader.GetString("Bed type"), int.Parse(reader.GetString("Maximum capacity")),
                int.Parse(reader.GetString("Vacant accepting admissions")), int.Parse(reader.GetString("Vacant not accepting admissions")),
                reader.GetString("Oldest confirmation"), reader.GetString("Stale beds")));
        }
        Assert.Equal([("AS Alpha", "nursing", 1, 1, 0, "", ""), ("AS Alpha", "rehabilitation", 2, 1, 1, "", "")], rows);
    }
}

public sealed class CapacityTrackerAsAtOnSqliteTests(AppFactory app) : CapacityTrackerAsAtTests(app), IClassFixture<AppFactory>;

public sealed class CapacityTrackerAsAtOnPostgresTests(PostgresAppFactory app) : CapacityTrackerAsAtTests(app), IClassFixture<PostgresAppFactory>;
