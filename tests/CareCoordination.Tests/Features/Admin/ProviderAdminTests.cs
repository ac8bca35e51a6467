using CareCoordination.Features.Admin;
using CareCoordination.Pipeline;
using CareCoordination.Tests.Support;
using Dapper;

namespace CareCoordination.Tests.Features.Admin;

/// <summary>Providers' CQC ratings and commissioners' cautions: who may change them, that a caution says why, and the change row that keeps who and why.</summary>
public abstract class ProviderAdminTests(AppFactory app)
{
    private sealed record Rating
    {
        public string? CqcRating { get; init; }
        public string Caution { get; init; } = "";
        public string? CautionNote { get; init; }
    }

    private async Task<long> OrganisationAsync(string code)
    {
        await using var connection = await app.OpenAsync();
        return await connection.ExecuteScalarAsync<long>("SELECT id FROM organisation WHERE code = @code", new { code });
    }

    private async Task<Rating> RatingAsync(long organisationId)
    {
        await using var connection = await app.OpenAsync();
        return await connection.QuerySingleAsync<Rating>(
            "SELECT cqc_rating AS CqcRating, caution AS Caution, caution_note AS CautionNote FROM organisation WHERE id = @organisationId", new { organisationId });
    }

    [Fact]
    public async Task AManager_RatesAProviderAndCautionsIt_AndTheChangeKeepsWhoAndWhy()
    {
        var provider = await OrganisationAsync("PRV-CAREWELL");

        await app.SendAsync(new ChangeProviderRating.Command(provider, "requires-improvement", "amber", " Medicines audit failed; review placements with the quality team. ",
            "CQC report published 3 March."), "manager");

        Assert.Equal(new Rating { CqcRating = "requires-improvement", Caution = "amber", CautionNote = "Medicines audit failed; review placements with the quality team." },
            await RatingAsync(provider));
        var change = Assert.Single(await app.ChangesAsync("organisation", provider));
        Assert.Equal(("provider.rating-changed", "David Trelawney"), (change.Kind, change.Actor));
        Assert.Equal(("CQC report published 3 March.", "David Trelawney", "good", "requires-improvement"), (
            change.Json.GetProperty("reason").GetString(), change.Json.GetProperty("by").GetString(),
            change.Json.GetProperty("from").GetProperty("cqcRating").GetString(), change.Json.GetProperty("to").GetProperty("cqcRating").GetString()));

        // Lifting the caution clears its note, so an old warning is never read as current.
        await app.SendAsync(new ChangeProviderRating.Command(provider, "good", "none", "left over", "Re-inspected: good."), "admin");
        Assert.Equal(new Rating { CqcRating = "good", Caution = "none", CautionNote = null }, await RatingAsync(provider));

        var listed = Assert.Single((await app.SendAsync<ProviderRatings.Result>(new ProviderRatings.Query(), "manager")).Providers, p => p.Id == provider);
        Assert.Equal(("good", "none", "Sam Whitfield"), (listed.CqcRating, listed.Caution, listed.ChangedBy));
    }

    [Fact]
    public async Task AnAmberOrRedCaution_WithoutANote_OrAChangeWithoutAReason_IsRefused_AndChangesNothing()
    {
        var provider = await OrganisationAsync("PRV-ORCHARD");
        await app.RefusedAsync<ValidationFailed>(new ChangeProviderRating.Command(provider, "good", "amber", null, "Quality visit."), "manager", "Say what the caution is");
        await app.RefusedAsync<ValidationFailed>(new ChangeProviderRating.Command(provider, "good", "red", "  ", "Quality visit."), "manager", "Say what the caution is");
        await app.RefusedAsync<ValidationFailed>(new ChangeProviderRating.Command(provider, "good", "none", null, ""), "manager", "Say why");
        await app.RefusedAsync<ValidationFailed>(new ChangeProviderRating.Command(provider, "excellent", "none", null, "Why not."), "manager", "CQC rating");
        await app.RefusedAsync<RuleBroken>(new ChangeProviderRating.Command(provider, "outstanding", "none", null, "No change."), "manager", "nothing to change");
        await app.RefusedAsync<NotFound>(new ChangeProviderRating.Command(await OrganisationAsync("W99003"), "good", "none", null, "A GP is not a provider."), "manager",
            "not found");
    }

    [Fact]
    public async Task OnlyManagersAndAdministrators_ChangeRatings_OrSeeTheList()
    {
        var provider = await OrganisationAsync("PRV-HEARTH");
        foreach (var user in new[] { "referrer", "coordinator", "bedbureau" })
        {
            await app.RefusedAsync<AccessDenied>(new ChangeProviderRating.Command(provider, "inadequate", "red", "Embargo.", "Safeguarding enquiry."), user, "may not");
            await Assert.ThrowsAsync<AccessDenied>(() => app.SendAsync(new ProviderRatings.Query(), user));
        }
        var seaview = Assert.Single((await app.SendAsync<ProviderRatings.Result>(new ProviderRatings.Query(), "admin")).Providers, p => p.Name == "Seaview Residential Homes Ltd");
        Assert.Equal(("inadequate", "red", 1L), (seaview.CqcRating, seaview.Caution, seaview.Sites));
    }
}

public sealed class ProviderAdminOnSqliteTests(AppFactory app) : ProviderAdminTests(app), IClassFixture<AppFactory>;

public sealed class ProviderAdminOnPostgresTests(PostgresAppFactory app) : ProviderAdminTests(app), IClassFixture<PostgresAppFactory>;
