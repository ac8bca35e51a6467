using CareCoordination.Auth;
using CareCoordination.Changes;
using CareCoordination.Features.Live;

namespace CareCoordination.Tests.Features.Live;

/// <summary>The pure rule behind the hub: which topics a change goes to, and who may watch which.</summary>
public sealed class LiveTopicsTests
{
    private static Change Change(string entityType, string? data = null, long? organisationId = 7) =>
        new(1, DateTimeOffset.UnixEpoch, "x", entityType, 42, organisationId, "someone", data);

    private static string[] TopicsOf(Change change) =>
        [.. LiveTopics.Of(change, LiveTopics.Parse(change.Data)).Select(t => t.Group)];

    private static Actor Staff(string role, long organisationId = 7) =>
        new(ActorKind.Staff, "1", "someone", role, organisationId, new HashSet<string>());

    [Fact]
    public void ATaskChange_GoesToCapacity_ItsQueue_AndItsReferringOrganisation()
    {
        Assert.Equal(["capacity", "queue/bed-bureau", "referrals/org:7"], TopicsOf(Change("triage_task", """{"referralId":3,"queue":"bed-bureau"}""")));
        Assert.Equal(["capacity", "queue/coordination", "referrals/org:7"], TopicsOf(Change("triage_task", """{"referralId":3,"queue":"coordination"}""")));
    }

    [Fact]
    public void CapacityAndReferralChanges_GoWhereTheirBoardsAre()
    {
        Assert.Equal(["capacity"], TopicsOf(Change("bed", """{"status":"available"}""", null)));
        Assert.Equal(["capacity"], TopicsOf(Change("service", """{"available":3}""", null)));
        Assert.Equal(["referrals/org:7"], TopicsOf(Change("referral", """{"status":"submitted"}""")));
        Assert.Equal(["referrals/org:7"], TopicsOf(Change("placement", """{"referralId":3}""")));
    }

    [Fact]
    public void PersonAndDraftChanges_GoNowhere()
    {
        Assert.Empty(TopicsOf(Change("person", null, null)));
        Assert.Empty(TopicsOf(Change("referral_draft", """{"version":1}""")));
    }

    [Fact]
    public void MyReferrals_IsAlwaysTheCallersOwnOrganisation()
    {
        Assert.Equal("referrals/org:7", LiveTopics.Grant(Staff(Roles.Referrer), "referrals/mine").Granted?.Group);
        var partner = new Actor(ActorKind.Partner, "epr", "epr", null, 9, new HashSet<string> { "system/ServiceRequest.rs" });
        Assert.Equal("referrals/org:9", LiveTopics.Grant(partner, "referrals/mine").Granted?.Group);
    }

    [Theory]
    [InlineData(Roles.Referrer, "capacity", false)]
    [InlineData(Roles.Referrer, "queue/coordination", false)]
    [InlineData(Roles.Coordinator, "queue/coordination", true)]
    [InlineData(Roles.Coordinator, "queue/bed-bureau", true)]
    [InlineData(Roles.BedBureau, "queue/coordination", true)]
    [InlineData(Roles.Manager, "capacity", true)]
    [InlineData(Roles.Admin, "capacity", true)]
    [InlineData(Roles.Coordinator, "nonsense", false)]
    public void StaffTopics_FollowTheirRole(string role, string topic, bool allowed)
    {
        var (granted, refusal) = LiveTopics.Grant(Staff(role), topic);

        Assert.Equal(allowed, granted is not null);
        Assert.Equal(allowed, refusal is null);
    }

    [Fact]
    public void Partners_ReadCapacityAndTheirReferrals_NeverAQueue_AndAnonymousNothing()
    {
        var partner = new Actor(ActorKind.Partner, "epr", "epr", null, 9, new HashSet<string> { "system/Location.rs", "system/Task.r" });

        Assert.NotNull(LiveTopics.Grant(partner, "capacity").Granted);
        Assert.NotNull(LiveTopics.Grant(partner, "referrals/mine").Granted);
        Assert.Null(LiveTopics.Grant(partner, "queue/coordination").Granted);
        Assert.Null(LiveTopics.Grant(Actor.Anonymous, "capacity").Granted);
    }

    [Fact]
    public void APartner_StreamsOnlyWhatItsTokenMayRead()
    {
        var createOnly = new Actor(ActorKind.Partner, "epr", "epr", null, 9, new HashSet<string> { "system/ServiceRequest.c" });

        Assert.Null(LiveTopics.Grant(createOnly, "capacity").Granted);
        Assert.Null(LiveTopics.Grant(createOnly, "referrals/mine").Granted);
    }

    [Fact]
    public void AnAdministrator_KeepsTheEstate_AndDoesNotWatchTheClinicalQueues()
    {
        Assert.Null(LiveTopics.Grant(Staff(Roles.Admin), "queue/coordination").Granted);
    }

    [Fact]
    public void ACapacityCopy_OfAClosureRecordedWithItsDetail_CarriesTheCodeOnly()
    {
        // As closures were recorded before the detail was kept apart: the change log keeps them so for ever.
        var legacy = Change("bed", """{"status":"closed","closedReason":"infection: Mrs Edna Pascoe has C. difficile","by":"Helen Marsh"}""", null);
        var unknown = Change("bed", """{"status":"closed","closedReason":"Mr Jago's relatives asked"}""", null);

        var copy = LiveChange.From(legacy, LiveTopics.Parse(legacy.Data), LiveTopics.Capacity);
        var other = LiveChange.From(unknown, LiveTopics.Parse(unknown.Data), LiveTopics.Capacity);

        Assert.Equal("""{"status":"closed","closedReason":"infection"}""", copy.Data?.GetRawText());
        Assert.Equal("""{"status":"closed"}""", other.Data?.GetRawText());
        Assert.Null(copy.Actor);
    }
}
