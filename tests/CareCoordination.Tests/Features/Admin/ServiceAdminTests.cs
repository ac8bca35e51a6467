using CareCoordination.Features.Admin;
using CareCoordination.Pipeline;
using CareCoordination.Tests.Support;
using Dapper;
using Mediator;

namespace CareCoordination.Tests.Features.Admin;

/// <summary>
/// Services and their capacity: adding, editing on the version it was opened at, and confirming today's free
/// capacity; each writes a change row, and each refusal writes nothing.
/// </summary>
public abstract class ServiceAdminTests(AppFactory app)
{
    private sealed record ServiceRow
    {
        public long OrganisationId { get; init; }
        public string Name { get; init; } = "";
        public string Kind { get; init; } = "";
        public string? Locality { get; init; }
        public string CapacityUnit { get; init; } = "";
        public int CapacityPerDay { get; init; }
        public int AvailableToday { get; init; }
        public DateTimeOffset ConfirmedAt { get; init; }
        public bool Active { get; init; }
        public int Version { get; init; }
    }

    private async Task<long> OrganisationAsync(string code)
    {
        await using var connection = await app.OpenAsync();
        return await connection.ExecuteScalarAsync<long>("SELECT id FROM organisation WHERE code = @code", new { code });
    }

    private async Task<ServiceRow> ServiceAsync(long serviceId)
    {
        await using var connection = await app.OpenAsync();
        return await connection.QuerySingleAsync<ServiceRow>(
            """
            SELECT organisation_id AS OrganisationId, name AS Name, kind AS Kind, locality AS Locality, capacity_unit AS CapacityUnit,
                   capacity_per_day AS CapacityPerDay, available_today AS AvailableToday, confirmed_at AS ConfirmedAt, active AS Active, version AS Version
            FROM service WHERE id = @serviceId
            """, new { serviceId });
    }

    private async Task<long> NewServiceAsync(int capacity = 10) =>
        await app.SendAsync<long>(new AddService.Command(await OrganisationAsync("PRV-HOMEFIRST"), AdminWorld.Unique("Home First - Holmedale"), "reablement", "Holmedale", "slots", capacity),
            "admin");

    private static EditService.Command EditOf(long serviceId, int version, string name, int capacity = 10, bool active = true) =>
        new(serviceId, version, name, "reablement", "Holmedale", "slots", capacity, active);

    private void AssertNow(DateTimeOffset at) => Assert.InRange(at, app.Clock.GetUtcNow().AddMilliseconds(-1), app.Clock.GetUtcNow().AddMilliseconds(1));

    [Fact]
    public async Task AddService_StartsWithAllOfTodaysCapacityFree_ConfirmedNow_AndRecordsAChange()
    {
        var provider = await OrganisationAsync("PRV-CAREWELL");
        var name = AdminWorld.Unique("Carewell Home Care - Holmedale");

        var serviceId = await app.SendAsync<long>(new AddService.Command(provider, name, "home-care", "Holmedale", "hours", 90), "admin");

        var service = await ServiceAsync(serviceId);
        AssertNow(service.ConfirmedAt);
        Assert.Equal(new ServiceRow
        {
            OrganisationId = provider, Name = name, Kind = "home-care", Locality = "Holmedale", CapacityUnit = "hours", CapacityPerDay = 90, AvailableToday = 90,
            ConfirmedAt = service.ConfirmedAt, Active = true, Version = 1,
        }, service);
        var change = Assert.Single(await app.ChangesAsync("service", serviceId));
        Assert.Equal(("service.added", "Sam Whitfield", 90), (change.Kind, change.Actor, change.Json.GetProperty("capacityPerDay").GetInt32()));
    }

    [Fact]
    public async Task AddService_IsRefused_ForABedKind_ATakenName_OrNoProvider()
    {
        var provider = await OrganisationAsync("PRV-HOMEFIRST");
        await app.RefusedAsync<ValidationFailed>(new AddService.Command(provider, AdminWorld.Unique("Beds"), "care-home", null, "slots", 4), "admin", "reablement, home care");
        await app.RefusedAsync<ValidationFailed>(new AddService.Command(provider, AdminWorld.Unique("Minutes"), "reablement", null, "minutes", 4), "admin", "slots or hours");
        await app.RefusedAsync<ValidationFailed>(new AddService.Command(provider, AdminWorld.Unique("Negative"), "reablement", null, "slots", -1), "admin", "between 0");
        await app.RefusedAsync<Conflict>(new AddService.Command(provider, "Home First Reablement - North", "reablement", "Ashbury", "slots", 4), "admin",
            "already has a service called Home First Reablement - North");
        await app.RefusedAsync<RuleBroken>(new AddService.Command(await OrganisationAsync("W99002"), AdminWorld.Unique("GP service"), "therapy", null, "slots", 4), "admin",
            "provider");
    }

    [Fact]
    public async Task EditService_OnTheVersionItWasOpenedAt_ChangesIt_AndLoweringCapacityLowersTodaysFreeCapacity()
    {
        var serviceId = await NewServiceAsync(capacity: 10);
        var opened = await ServiceAsync(serviceId);

        await app.SendAsync(EditOf(serviceId, opened.Version, opened.Name + " (weekdays)", capacity: 6), "admin");

        var edited = await ServiceAsync(serviceId);
        Assert.Equal(opened with { Name = opened.Name + " (weekdays)", CapacityPerDay = 6, AvailableToday = 6, Version = opened.Version + 1 }, edited);
        var change = (await app.ChangesAsync("service", serviceId))[^1];
        Assert.Equal(("service.changed", 6, 10), (change.Kind, change.Json.GetProperty("availableToday").GetInt32(),
            change.Json.GetProperty("from").GetProperty("capacityPerDay").GetInt32()));

        // The first version is now stale: the second edit made on it is refused and overwrites nothing.
        await app.RefusedAsync<Conflict>(EditOf(serviceId, opened.Version, opened.Name, capacity: 20), "admin", "Sam Whitfield changed");
        await app.RefusedAsync<RuleBroken>(EditOf(serviceId, edited.Version, edited.Name, capacity: 6), "admin", "nothing to change");
        await app.RefusedAsync<RuleBroken>(EditOf(serviceId, edited.Version, edited.Name, capacity: 6) with { Kind = "care-home" }, "admin", "bed-based");
        await app.RefusedAsync<NotFound>(EditOf(long.MaxValue, 1, "Nobody"), "admin", "not found");
    }

    [Fact]
    public async Task EditService_OpenedBeforeACoordinatorConfirmedCapacity_IsRefused_NamingWhoChangedIt()
    {
        var serviceId = await NewServiceAsync(capacity: 10);
        var opened = await ServiceAsync(serviceId);
        await app.SendAsync(new ConfirmServiceCapacity.Command(serviceId, 3), "coordinator");

        await app.RefusedAsync<Conflict>(EditOf(serviceId, opened.Version, opened.Name, capacity: 12), "admin", "Tom Okafor changed");

        Assert.Equal((10, 3), ((await ServiceAsync(serviceId)).CapacityPerDay, (await ServiceAsync(serviceId)).AvailableToday));
    }

    [Fact]
    public async Task ConfirmCapacity_ByTheCoordinationCentreOrTheBedBureau_SetsTodaysFigureAndWhen_WithinTheDailyCapacity()
    {
        var serviceId = await NewServiceAsync(capacity: 8);
        app.Clock.Advance(TimeSpan.FromMinutes(5));

        await app.SendAsync(new ConfirmServiceCapacity.Command(serviceId, 5), "coordinator");

        var confirmed = await ServiceAsync(serviceId);
        Assert.Equal((5, 2), (confirmed.AvailableToday, confirmed.Version));
        AssertNow(confirmed.ConfirmedAt);
        var change = (await app.ChangesAsync("service", serviceId))[^1];
        Assert.Equal(("service.capacity-confirmed", "Tom Okafor", 5, 8), (change.Kind, change.Actor, change.Json.GetProperty("availableToday").GetInt32(),
            change.Json.GetProperty("from").GetInt32()));

        await app.SendAsync(new ConfirmServiceCapacity.Command(serviceId, 8), "bedbureau");
        await app.SendAsync(new ConfirmServiceCapacity.Command(serviceId, 0), "admin");
        Assert.Equal(0, (await ServiceAsync(serviceId)).AvailableToday);

        await app.RefusedAsync<RuleBroken>(new ConfirmServiceCapacity.Command(serviceId, 9), "coordinator", "at most 8 slots a day");
        await app.RefusedAsync<ValidationFailed>(new ConfirmServiceCapacity.Command(serviceId, -1), "coordinator", "below 0");
        var current = await ServiceAsync(serviceId);
        await app.SendAsync(EditOf(serviceId, current.Version, current.Name, capacity: 8, active: false), "admin");
        await app.RefusedAsync<RuleBroken>(new ConfirmServiceCapacity.Command(serviceId, 1), "coordinator", "not taking people");
    }

    [Fact]
    public async Task OnlyAnAdministrator_AddsOrEditsServices_AndOnlyTheyAndTheTeams_ConfirmCapacity()
    {
        var serviceId = await NewServiceAsync();
        var opened = await ServiceAsync(serviceId);
        IMessage[] adminOnly =
        [
            new AddService.Command(opened.OrganisationId, AdminWorld.Unique("Sneaky"), "therapy", null, "slots", 3),
            EditOf(serviceId, opened.Version, opened.Name, capacity: 30),
        ];
        foreach (var user in new[] { "referrer", "coordinator", "bedbureau", "manager" })
        {
            foreach (var command in adminOnly)
            {
                await app.RefusedAsync<AccessDenied>(command, user, "may not");
            }
        }
        foreach (var user in new[] { "referrer", "manager" })
        {
            await app.RefusedAsync<AccessDenied>(new ConfirmServiceCapacity.Command(serviceId, 1), user, "may not");
        }
        var list = await app.SendAsync<ServiceCapacity.Result>(new ServiceCapacity.Query(), "manager");
        Assert.Contains(list.Services, s => s.Id == serviceId);
        await Assert.ThrowsAsync<AccessDenied>(() => app.SendAsync(new ServiceCapacity.Query(), "referrer"));
    }
}

public sealed class ServiceAdminOnSqliteTests(AppFactory app) : ServiceAdminTests(app), IClassFixture<AppFactory>;

public sealed class ServiceAdminOnPostgresTests(PostgresAppFactory app) : ServiceAdminTests(app), IClassFixture<PostgresAppFactory>;
