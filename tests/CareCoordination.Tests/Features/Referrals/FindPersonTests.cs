using System.Text.Json;
using CareCoordination.Domain;
using CareCoordination.Features.Referrals;
using CareCoordination.Tests.Support;
using Dapper;

namespace CareCoordination.Tests.Features.Referrals;

/// <summary>
/// The NHS number lookup on the referral form, and the duplicate check on sending, with two trusts: a referrer learns
/// what its own organisation recorded and that an open referral exists elsewhere, never another trust's details.
/// The coordination centre and the bed bureau see the whole record.
/// </summary>
public abstract class FindPersonTests(AppFactory app)
{
    private DateOnly Today => LondonTime.Today(app.Clock);

    // Westmoor General ("referrer") and Saltmouth and Coast ("gareth.evans") say different things about one person.
    private ReferralForm AsWestmoorSaidIt(string nhs)
    {
        var form = ReferralForms.Discharge(Today, nhs);
        form.AddressLine = "4 Chapel Row, Ashbury";
        form.CarerContact = "07700 900123";
        form.Ethnicity = "A";
        return form;
    }

    private ReferralForm AsSaltmouthSaidIt(string nhs)
    {
        var form = ReferralForms.Discharge(Today, nhs);
        form.AddressLine = "3 Harbour View, Saltmouth";
        form.Postcode = "WM8 2QB";
        form.CarerContact = "07700 900456";
        form.Ethnicity = "H";
        return form;
    }

    private static readonly string[] WestmoorsDetails = ["Chapel Row", "07700 900123", "Westmoor General"];

    private async Task<SubmitReferral.Result> SubmitAsync(ReferralForm form, string user, string? duplicateAnswer = null) =>
        await app.SendAsync<SubmitReferral.Result>(new SubmitReferral.Command(form, Guid.NewGuid().ToString("N"), DuplicateAnswer: duplicateAnswer), await app.StaffAsync(user));

    private async Task<FindPerson.Result?> FindAsync(string nhs, string user) =>
        await app.SendAsync<FindPerson.Result?>(new FindPerson.Query(nhs), await app.StaffAsync(user));

    private static void SaysNothingOf(object? answer, string[] words)
    {
        var json = JsonSerializer.Serialize(answer);
        foreach (var word in words)
        {
            Assert.DoesNotContain(word, json, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task AReferrer_LooksUpAPersonAnotherTrustReferred_AndLearnsOnlyThatAnOpenReferralExists()
    {
        var nhs = await app.NewNhsNumberAsync();
        var westmoors = (await SubmitAsync(AsWestmoorSaidIt(nhs), "referrer")).ReferralId!.Value;

        var found = await FindAsync(nhs, "gareth.evans");

        SaysNothingOf(found, WestmoorsDetails);
        Assert.NotNull(found);
        Assert.Null(found.Person);
        Assert.Empty(found.Open.Visible);
        Assert.True(found.Open.Elsewhere);
        Assert.DoesNotContain(westmoors.ToString(System.Globalization.CultureInfo.InvariantCulture), JsonSerializer.Serialize(found), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AReferrer_LooksUpAPersonBothTrustsReferred_AndIsShownWhatTheirOwnTrustSaid()
    {
        var nhs = await app.NewNhsNumberAsync();
        await SubmitAsync(AsWestmoorSaidIt(nhs), "referrer");
        var saltmouths = (await SubmitAsync(AsSaltmouthSaidIt(nhs), "gareth.evans", "new-need")).ReferralId!.Value;
        // Westmoor writes last: the shared record is now Westmoor's words.
        await SubmitAsync(AsWestmoorSaidIt(nhs), "aisha.begum", "new-need");

        var found = await FindAsync(nhs, "ngozi.eze");

        SaysNothingOf(found, WestmoorsDetails);
        Assert.NotNull(found);
        Assert.Equal(("3 Harbour View, Saltmouth", "07700 900456", "H"), (found.Person?.AddressLine, found.Person?.CarerContact, found.Person?.Ethnicity));
        Assert.Equal([saltmouths], found.Open.Visible.Select(o => o.Id));
        Assert.True(found.Open.Elsewhere);
        // And Westmoor's own referrer sees Westmoor's words, not Saltmouth's.
        var ours = await FindAsync(nhs, "referrer");
        Assert.Equal("4 Chapel Row, Ashbury", ours?.Person?.AddressLine);
        SaysNothingOf(ours, ["Harbour View", "07700 900456", "Saltmouth"]);
        Assert.Equal(2, ours!.Open.Visible.Count);
    }

    /// <summary>
    /// A referral for someone another trust has referred is marked a possible duplicate, and its change (pushed to the sender's
    /// own staff and partner system) says so without the other trust's referral's id.
    /// </summary>
    [Fact]
    public async Task AReferralForSomeoneAnotherTrustReferred_ItsChangeSaysPossibleDuplicate_NotWhichReferral()
    {
        var nhs = await app.NewNhsNumberAsync();
        var westmoors = (await SubmitAsync(AsWestmoorSaidIt(nhs), "referrer")).ReferralId!.Value;

        var saltmouths = (await SubmitAsync(AsSaltmouthSaidIt(nhs), "gareth.evans", "new-need")).ReferralId!.Value;

        await using var connection = await app.OpenAsync();
        Assert.Equal(westmoors, await connection.ExecuteScalarAsync<long?>("SELECT duplicate_of_referral_id FROM referral WHERE id = @saltmouths", new { saltmouths }));
        var told = JsonDocument.Parse(await connection.ExecuteScalarAsync<string>(
            "SELECT data FROM change WHERE kind = 'referral.submitted' AND entity_id = @saltmouths", new { saltmouths }) ?? "{}").RootElement;
        Assert.True(told.GetProperty("possibleDuplicate").GetBoolean());
        Assert.DoesNotContain(westmoors.ToString(System.Globalization.CultureInfo.InvariantCulture), told.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AReferrer_LooksUpAPersonAnotherTrustReferredLongAgo_AndLearnsNothing()
    {
        var nhs = await app.NewNhsNumberAsync();
        var westmoors = (await SubmitAsync(AsWestmoorSaidIt(nhs), "referrer")).ReferralId!.Value;
        await app.SendAsync(new CancelReferral.Command(westmoors, "Went home with family."), await app.StaffAsync("referrer"));

        Assert.Null(await FindAsync(nhs, "gareth.evans"));
    }

    [Fact]
    public async Task TheCoordinationCentre_LooksUpThePerson_AndSeesTheWholeRecordAndEveryOpenReferral()
    {
        var nhs = await app.NewNhsNumberAsync();
        await SubmitAsync(AsWestmoorSaidIt(nhs), "referrer");
        await SubmitAsync(AsSaltmouthSaidIt(nhs), "gareth.evans", "new-need");

        foreach (var user in new[] { "coordinator", "bedbureau" })
        {
            var found = await FindAsync(nhs, user);

            Assert.Equal("3 Harbour View, Saltmouth", found?.Person?.AddressLine);
            Assert.Equal(["Westmoor General Hospital NHS Trust", "Saltmouth and Coast Hospitals NHS Foundation Trust"], found!.Open.Visible.Select(o => o.Organisation));
            Assert.False(found.Open.Elsewhere);
        }
    }

    [Fact]
    public async Task AReferrer_SendingForAPersonWithAnotherTrustsOpenReferral_IsAskedWithoutItsDetails_AndTheLinkIsRecorded()
    {
        var nhs = await app.NewNhsNumberAsync();
        var westmoors = (await SubmitAsync(AsWestmoorSaidIt(nhs), "referrer")).ReferralId!.Value;

        var asked = await SubmitAsync(AsSaltmouthSaidIt(nhs), "gareth.evans");

        Assert.Null(asked.ReferralId);
        SaysNothingOf(asked, WestmoorsDetails);
        Assert.Empty(asked.PossibleDuplicates.Visible);
        Assert.True(asked.PossibleDuplicates.Elsewhere);

        var answered = await SubmitAsync(AsSaltmouthSaidIt(nhs), "gareth.evans", "update");

        await using var connection = await app.OpenAsync();
        var recorded = await Dapper.SqlMapper.QuerySingleAsync<(long DuplicateOf, string Answer)>(connection,
            "SELECT duplicate_of_referral_id, duplicate_answer FROM referral WHERE id = @ReferralId", new { answered.ReferralId });
        Assert.Equal((westmoors, "update"), recorded);
    }
}

public sealed class FindPersonOnSqliteTests(AppFactory app) : FindPersonTests(app), IClassFixture<AppFactory>;

public sealed class FindPersonOnPostgresTests(PostgresAppFactory app) : FindPersonTests(app), IClassFixture<PostgresAppFactory>;
