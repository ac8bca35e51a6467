using System.Globalization;
using CareCoordination.Domain;
using CareCoordination.Features.Referrals;

namespace CareCoordination.BrowserTests.Support;

/// <summary>A complete pathway 1 referral for Mary of the given family, with a fresh NHS number in the test range.</summary>
public static class TestReferrals
{
    public static ReferralForm Form(string family, string urgency = "urgent")
    {
        var nine = "9996" + Random.Shared.Next(0, 100_000).ToString("D5", CultureInfo.InvariantCulture);
        while (NhsNumber.CheckDigit(nine) < 0)
        {
            nine = "9996" + Random.Shared.Next(0, 100_000).ToString("D5", CultureInfo.InvariantCulture);
        }
        var today = LondonTime.Today(TimeProvider.System);
        return new ReferralForm
        {
            NhsNumber = nine + NhsNumber.CheckDigit(nine), GivenName = "Mary", FamilyName = family, DateOfBirth = new DateOnly(1940, 1, 9),
            Sex = "female", AddressLine = "2 Quay Street, Ashbury", Postcode = "WM1 2AB", Ethnicity = "A", Source = "acute-hospital",
            Pathway = "1", Urgency = urgency, Ward = "Ward 3", MedicallyOptimisedOn = today, ExpectedDischargeOn = today.AddDays(1),
            Needs = ["personal-hygiene", "mobility"], ConsentToShare = true, ConsentGivenBy = "Mary herself",
            PersonWishes = "To be home for her garden.", Summary = "Recovered from a chest infection; needs help to wash and dress for a while.",
        };
    }
}
