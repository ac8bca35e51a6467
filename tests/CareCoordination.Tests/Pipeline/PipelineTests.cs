using CareCoordination.Auth;
using CareCoordination.Features.Account;
using CareCoordination.Features.Home;
using CareCoordination.Pipeline;
using CareCoordination.Tests.Support;
using Dapper;
using Mediator;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.DependencyInjection;

namespace CareCoordination.Tests.Pipeline;

/// <summary>The behaviours, through the real host's mediator.</summary>
public sealed class PipelineTests(AppFactory app) : IClassFixture<AppFactory>
{
    private static System.Security.Claims.ClaimsPrincipal Staff(string role) => new StaffAccount
    {
        Id = 1, Username = "someone", DisplayName = "Someone", Role = role, OrganisationId = 1, OrganisationName = "Org", Active = true,
    }.ToPrincipal("test");

    [Fact]
    public async Task AnonymousCaller_IsRefusedAMessageForStaff_AndTheRefusalIsAudited()
    {
        var refused = await Assert.ThrowsAsync<AccessDenied>(() => app.SendAsync<Landing.Result>(new Landing.Query(), null));

        Assert.Contains("anonymous", refused.Message, StringComparison.OrdinalIgnoreCase);
        await using var connection = new SqliteConnection(app.ConnectionString);
        Assert.True(await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM audit_event WHERE action = 'Landing' AND outcome = 'denied' AND actor_kind = 'anonymous'") >= 1);
    }

    [Fact]
    public async Task StaffCaller_GetsTheLandingForTheirRole()
    {
        var landing = await app.SendAsync<Landing.Result>(new Landing.Query(), Staff(Roles.BedBureau));

        Assert.Equal("Bed bureau", landing.Title);
        Assert.Contains(landing.Tiles, t => t.Label == "Beds available" && t.Value > 0);
    }

    [Fact]
    public async Task InvalidCommand_IsRefusedBeforeItsHandlerRuns_WithEveryError()
    {
        var refused = await Assert.ThrowsAsync<ValidationFailed>(() => app.SendAsync<SignIn.Result>(new SignIn.Request("", "", null), null));

        Assert.Equal(["Enter your username."], refused.Errors["Username"]);
        Assert.Equal(["Enter your password."], refused.Errors["Password"]);
    }

    [Fact]
    public async Task ManagerLanding_FiguresMatchTheStore()
    {
        var landing = await app.SendAsync<Landing.Result>(new Landing.Query(), Staff(Roles.Manager));

        await using var connection = new SqliteConnection(app.ConnectionString);
        var available = await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM bed WHERE status = 'available'");
        var occupied = await connection.ExecuteScalarAsync<double>("SELECT COUNT(*) FROM bed WHERE status = 'occupied'");
        var open = await connection.ExecuteScalarAsync<double>("SELECT COUNT(*) FROM bed WHERE status <> 'closed'");
        Assert.Equal(available, landing.Tiles.Single(t => t.Label == "Beds available").Value);
        Assert.Equal((long)Math.Round(100 * occupied / open), landing.Tiles.Single(t => t.Label == "Bed occupancy %").Value);
    }
}
