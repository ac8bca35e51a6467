using CareCoordination.Auth;
using CareCoordination.Pipeline;
using Mediator;

namespace CareCoordination.Tests.Pipeline;

public sealed class AccessPolicyTests
{
    public static TheoryData<Type> Messages()
    {
        var data = new TheoryData<Type>();
        foreach (var type in typeof(Program).Assembly.GetTypes().Where(t => !t.IsAbstract && typeof(IMessage).IsAssignableFrom(t)))
        {
            data.Add(type);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Messages))]
    public void EveryMessage_StatesWhoMaySendIt(Type message)
    {
        var policy = AccessPolicy.For(message);

        Assert.True(policy.Anonymous || policy.Roles.Count > 0 || policy.PartnerScope is not null);
    }

    [Fact]
    public void AMessageWithoutAnAccessAttribute_IsAMistakeCaughtAtOnce() =>
        Assert.Throws<InvalidOperationException>(() => AccessPolicy.For(typeof(Unstated)));

    [Theory]
    [InlineData("system/ServiceRequest.cru", "system/ServiceRequest.c", true)]
    [InlineData("system/ServiceRequest.cru", "system/ServiceRequest.cr", true)]
    [InlineData("system/ServiceRequest.r", "system/ServiceRequest.c", false)]
    [InlineData("system/Location.rs", "system/ServiceRequest.r", false)]
    [InlineData("system/*.rs", "system/Location.rs", true)]
    [InlineData("system/*.rs", "system/Location.u", false)]
    public void PartnerScope_GrantsOnlyWhatItNames(string granted, string needed, bool grants) =>
        Assert.Equal(grants, AccessPolicy.ScopeGrants(granted, needed));

    [Fact]
    public void StaffRole_IsAllowedOnlyWhereNamed()
    {
        var policy = AccessPolicy.For(typeof(CoordinatorsOnly));
        var coordinator = new Actor(ActorKind.Staff, "1", "c", Roles.Coordinator, 1, new HashSet<string>());
        var referrer = coordinator with { Role = Roles.Referrer };
        var partner = new Actor(ActorKind.Partner, "p", "p", null, 1, new HashSet<string> { "system/*.cruds" });

        Assert.True(policy.Allows(coordinator));
        Assert.False(policy.Allows(referrer));
        Assert.False(policy.Allows(partner));
        Assert.False(policy.Allows(Actor.Anonymous));
    }

    private sealed record Unstated : IQuery<int>;

    [AllowRoles(Roles.Coordinator)]
    private sealed record CoordinatorsOnly : IQuery<int>;
}
