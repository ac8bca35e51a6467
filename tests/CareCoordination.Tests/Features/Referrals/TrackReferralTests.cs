using System.Text.Json;
using CareCoordination.Domain;
using CareCoordination.Features.Referrals;
using CareCoordination.Tests.Support;

namespace CareCoordination.Tests.Features.Referrals;

/// <summary>
/// A referral's own page shows its referrer the person as that referral described them, even after another trust's
/// referral has brought the shared record up to date with its own details; the coordination centre sees the record.
/// </summary>
public abstract class TrackReferralTests(AppFactory app)
{
    private DateOnly Today => LondonTime.Today(app.Clock);

    private async Task<long> SubmitAsync(string nhs, string user, Action<ReferralForm> change)
    {
        var form = ReferralForms.Discharge(Today, nhs);
        change(form);
        return (await app.SendAsync<SubmitReferral.Result>(new SubmitReferral.Command(form, Guid.NewGuid().ToString("N"), DuplicateAnswer: "new-need"),
            await app.StaffAsync(user))).ReferralId!.Value;
    }

    [Fact]
    public async Task TheReferrer_ReadsThePersonAsTheirReferralSaid_NotAsAnotherTrustWroteThemLater()
    {
        var nhs = await app.NewNhsNumberAsync();
        var westmoors = await SubmitAsync(nhs, "referrer", form => (form.AddressLine, form.CarerContact, form.Ethnicity) = ("4 Chapel Row, Ashbury", "07700 900123", "A"));
        await SubmitAsync(nhs, "gareth.evans", form =>
        {
            (form.AddressLine, form.Postcode, form.CarerContact, form.Ethnicity) = ("3 Harbour View, Saltmouth", "WM8 2QB", "07700 900456", "H");
            form.FamilyName = "Trelawny-Pascoe";
        });

        var ours = await app.SendAsync<TrackReferral.Result>(new TrackReferral.Query(westmoors), await app.StaffAsync("referrer"));

        Assert.Equal(("4 Chapel Row, Ashbury", "07700 900123", "A", "Edith Trelawny"),
            (ours.Referral.Person.AddressLine, ours.Referral.Person.CarerContact, ours.Referral.Person.Ethnicity, ours.Referral.PersonName));
        var json = JsonSerializer.Serialize(ours);
        foreach (var word in new[] { "Harbour View", "07700 900456", "Pascoe" })
        {
            Assert.DoesNotContain(word, json, StringComparison.Ordinal);
        }
        var list = await app.SendAsync<MyReferrals.Result>(new MyReferrals.Query(MyReferrals.Show.All, Search: nhs, Take: 50), await app.StaffAsync("referrer"));
        Assert.Equal("Edith Trelawny", Assert.Single(list.Referrals).PersonName);
        // The coordination centre works from the whole record, as it stands now.
        var theirs = await app.SendAsync<TrackReferral.Result>(new TrackReferral.Query(westmoors), await app.StaffAsync("coordinator"));
        Assert.Equal("3 Harbour View, Saltmouth", theirs.Referral.Person.AddressLine);
    }
}

public sealed class TrackReferralOnSqliteTests(AppFactory app) : TrackReferralTests(app), IClassFixture<AppFactory>;

public sealed class TrackReferralOnPostgresTests(PostgresAppFactory app) : TrackReferralTests(app), IClassFixture<PostgresAppFactory>;
