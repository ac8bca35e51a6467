using CareCoordination.Demo;
using CareCoordination.Domain;
using CareCoordination.Features.Reports.CodeLists;
using CareCoordination.Tests.Support;
using Dapper;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;

namespace CareCoordination.Tests.Demo;

/// <summary>The demo county has discharges, pathways, destinations and delay reasons for the returns to show, all consistent with the rules.</summary>
public abstract class DemoDischargesTests(ITestStore store)
{
    private sealed record Delay
    {
        public long ReferralId { get; init; }
        public DateOnly ReadyOn { get; init; }
        public DateTimeOffset FromAt { get; init; }
        public DateTimeOffset? ToAt { get; init; }
        public DateTimeOffset? DischargedAt { get; init; }
        public string ListVersion { get; init; } = "";
    }

    [Fact]
    public async Task TheDemo_HasDischargesWithPathwaysAndDestinations_AndDelayReasonsWithinEachWait()
    {
        await using var database = await store.MigratedAsync();
        var clock = TimeProvider.System;
        await new CodeListLoader(database, clock, new ConfigurationBuilder().Build(), NullLogger<CodeListLoader>.Instance).LoadAsync();
        await new DemoSeeder(database, clock, NullLogger<DemoSeeder>.Instance).SeedAsync(new DemoCredentials("Seed-Password-1", "Seed-Secret-1"));

        await using var connection = await database.OpenAsync();
        var discharged = (await connection.QueryAsync<(string Source, string? Pathway, string? Destination, string? CareLevel, string? From)>(
            """
            SELECT source, pathway_at_discharge, destination_at_discharge, destination_care_level, discharge_recorded_from
            FROM referral WHERE discharged_at IS NOT NULL
            """)).ToList();
        Assert.True(discharged.Count >= 20, $"only {discharged.Count} discharged referrals in the demo");
        Assert.All(discharged, d => Assert.True(ReferralCodes.IsHospital(d.Source) && d.Pathway is not null && d.Destination is not null && d.CareLevel is not null
            && d.From == "placement"));
        Assert.True(discharged.Select(d => d.Pathway).Distinct().Count() >= 3, "discharges on at least three pathways");
        Assert.True(discharged.Select(d => d.Destination).Distinct().Count() >= 3, "discharges to at least three kinds of destination");
        Assert.True(await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM referral WHERE pathway_intended IS NOT NULL") >= discharged.Count);

        var delays = (await connection.QueryAsync<Delay>(
            """
            SELECT d.referral_id AS ReferralId, r.medically_optimised_on AS ReadyOn, d.from_at AS FromAt, d.to_at AS ToAt,
                   r.discharged_at AS DischargedAt, d.list_version AS ListVersion
            FROM discharge_delay d JOIN referral r ON r.id = d.referral_id
            """)).ToList();
        Assert.True(delays.Count >= 10, $"only {delays.Count} delay reasons in the demo");
        Assert.Contains(delays, d => d.ToAt is null);
        Assert.Contains(delays, d => d.ToAt is not null);
        foreach (var d in delays)
        {
            var day = DateOnly.FromDateTime(LondonTime.ToLocal(d.FromAt).DateTime);
            Assert.True(day > d.ReadyOn, "a delay starts after the discharge ready date");
            Assert.True(d.DischargedAt is null || (d.ToAt is { } to && to <= d.DischargedAt), "a delay ends by the discharge");
            Assert.Equal((await CodeListVersions.OnAsync(connection, null, CodeListVersions.DelayReasons, day))!.Version, d.ListVersion);
        }
    }
}

public sealed class SqliteDemoDischargesTests() : DemoDischargesTests(new SqliteTestStore());

public sealed class PostgresDemoDischargesTests() : DemoDischargesTests(new PostgresTestStore());
