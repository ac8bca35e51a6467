using CareCoordination.Features.BedBureau;
using CareCoordination.Domain;
using CareCoordination.Features.Referrals;
using CareCoordination.Tests.Support;

namespace CareCoordination.Tests.Features.BedBureau;

/// <summary>Matching ranks beds by the stated rules: each rule on beds that differ only in it.</summary>
public sealed class MatchBedsTests(AppFactory app) : IClassFixture<AppFactory>
{
    private static readonly DateTimeOffset Now = new(2026, 11, 23, 12, 0, 0, TimeSpan.Zero);
    private static readonly BedBureauSettings Settings = new();
    private static readonly MatchBeds.Needs Rehab = new("2", "female", "Ashbury", MustBeIsolated: false, Cognition: false, Nursing: false);
    private static int _ids;

    private static BedRow Bed(string type = "rehabilitation", string locality = "Ashbury", string sex = "any", bool singleRoom = false,
        string caution = "none", double hoursSinceConfirmed = 1, string status = "available", long ward = 1) => new()
    {
        Id = Interlocked.Increment(ref _ids), Label = $"B{_ids:D2}", BedType = type, AllowedSex = sex, Status = status, SingleRoom = singleRoom,
        ConfirmedAt = Now.AddHours(-hoursSinceConfirmed), WardId = ward, WardName = "Ward", SiteName = "Site " + locality, Locality = locality,
        Provider = "Provider", Caution = caution,
    };

    private static IReadOnlyList<MatchBeds.Match> Rank(MatchBeds.Needs person, params BedRow[] beds) =>
        MatchBeds.Rank(person, beds, new HashSet<long>(), Now, Settings).Matches;

    [Fact]
    public void TheBestTypeForThePathway_ComesFirst_AndTypesThatDoNotMeetItAreLeftOut()
    {
        var stepDown = Bed("step-down-nursing");
        var rehab = Bed("rehabilitation");
        var residential = Bed("residential");

        var (matches, excluded) = MatchBeds.Rank(Rehab, [stepDown, rehab, residential], new HashSet<long>(), Now, Settings);

        Assert.Equal([rehab.Id, stepDown.Id], matches.Select(m => m.Bed.Id));
        Assert.Equal(1, excluded);
        Assert.Contains("the best fit", matches[0].Why[0], StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(true, false, "dementia")]
    [InlineData(false, true, "nursing")]
    [InlineData(false, false, "residential")]
    public void PathwayThree_PrefersDementiaForCognition_NursingForCare_ElseResidential(bool cognition, bool nursing, string best)
    {
        var person = Rehab with { Pathway = "3", Cognition = cognition, Nursing = nursing };

        var matches = Rank(person, Bed("residential"), Bed("nursing"), Bed("dementia"));

        Assert.Equal(best, matches[0].Bed.BedType);
    }

    [Fact]
    public void NearThePersonsHome_BeatsFarther_ForTheSameType()
    {
        var far = Bed(locality: "Saltmouth");
        var near = Bed(locality: "Ashbury");

        var matches = Rank(Rehab, far, near);

        Assert.Equal([near.Id, far.Id], matches.Select(m => m.Bed.Id));
        Assert.Equal(MatchBeds.SameLocality, matches[0].Score - matches[1].Score);
        Assert.Contains(matches[0].Why, w => w.Contains("where the person lives", StringComparison.Ordinal));
    }

    [Fact]
    public void AStaleBed_AnAmberProvider_AndAWardWithAnOutbreak_RankLower_AndSayWhy()
    {
        var confirmed = Bed();
        var stale = Bed(hoursSinceConfirmed: 30);
        var amber = Bed(caution: "amber");
        var outbreak = Bed(ward: 99);

        var matches = MatchBeds.Rank(Rehab, [stale, amber, outbreak, confirmed], new HashSet<long> { 99 }, Now, Settings).Matches;

        Assert.Equal(confirmed.Id, matches[0].Bed.Id);
        Assert.Equal([confirmed.Id, amber.Id, outbreak.Id, stale.Id], matches.Select(m => m.Bed.Id));
        Assert.Contains(matches.Single(m => m.Bed.Id == stale.Id).Why, w => w.Contains("not confirmed for 30 h", StringComparison.Ordinal));
        Assert.Contains(matches.Single(m => m.Bed.Id == amber.Id).Why, w => w.Contains("amber caution", StringComparison.Ordinal));
    }

    [Fact]
    public void TheWrongBay_ARedProvider_ABayForSomeoneIsolated_AndUnavailableBeds_AreLeftOut()
    {
        var maleBay = Bed(sex: "male");
        var red = Bed(caution: "red");
        var occupied = Bed(status: "occupied");
        var bay = Bed();
        var sideRoom = Bed(singleRoom: true);

        Assert.Equal([bay.Id, sideRoom.Id], Rank(Rehab, maleBay, red, occupied, bay, sideRoom).Select(m => m.Bed.Id).Order());
        Assert.Equal([sideRoom.Id], Rank(Rehab with { MustBeIsolated = true }, maleBay, red, occupied, bay, sideRoom).Select(m => m.Bed.Id));
    }

    [Fact]
    public async Task OnTheDemoCounty_EveryMatchIsAvailable_FitsThePerson_AndTheListIsBestFirst()
    {
        var form = ReferralForms.Discharge(LondonTime.Today(app.Clock), await app.NewNhsNumberAsync());
        form.Pathway = "2";
        var sent = await app.SendAsync<SubmitReferral.Result>(new SubmitReferral.Command(form, Guid.NewGuid().ToString("N")), await app.StaffAsync("referrer"));

        var result = await app.SendAsync<MatchBeds.Result>(new MatchBeds.Query(sent.ReferralId!.Value, 50), await app.StaffAsync("bedbureau"));

        Assert.NotEmpty(result.Matches);
        Assert.All(result.Matches, m =>
        {
            Assert.Equal("available", m.Bed.Status);
            Assert.Contains(m.Bed.AllowedSex, new[] { "any", "female" });
            Assert.NotEqual("red", m.Bed.Caution);
            Assert.Contains(m.Bed.BedType, new[] { "rehabilitation", "step-down-nursing" });
        });
        Assert.Equal(result.Matches.OrderByDescending(m => m.Score).Select(m => m.Score), result.Matches.Select(m => m.Score));
        Assert.Equal("Ashbury", result.Person.Locality);
    }
}
