using System.Globalization;
using CareCoordination.Domain;
using CareCoordination.Features.Referrals;

namespace CareCoordination.BrowserTests.Support;

/// <summary>A complete pathway 1 referral for Mary of the given family, with a fresh NHS number in the test range.</summary>
public static class TestReferrals
{
    /// <summary>
    /// The demo store's people's numbers (BrowserHost reads them once it has seeded): the demo draws its people from the whole
    /// 999 test range, and a made-up number that was one of theirs gave a test someone else's open referral (a paper entry
    /// stopped at "this person already has an open referral"). The same county is seeded for every host of a day.
    /// </summary>
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, bool> Seeded = new(StringComparer.Ordinal);

    public static void AvoidSeeded(IEnumerable<string> nhsNumbers)
    {
        foreach (var number in nhsNumbers)
        {
            Seeded.TryAdd(number, true);
        }
    }

    /// <summary>A valid NHS number in the test range, starting <paramref name="prefix"/> (999 and a digit), that no seeded person has.</summary>
    public static string NewNhsNumber(string prefix = "9996")
    {
        while (true)
        {
            var nine = prefix + Random.Shared.Next(0, 100_000).ToString("D5", CultureInfo.InvariantCulture);
            if (NhsNumber.CheckDigit(nine) is var check and >= 0 && !Seeded.ContainsKey(nine + check))
            {
                return nine + check;
            }
        }
    }

    public static ReferralForm Form(string family, string urgency = "urgent")
    {
        var today = LondonTime.Today(TimeProvider.System);
        return new ReferralForm
        {
            NhsNumber = NewNhsNumber(), GivenName = "Mary", FamilyName = family, DateOfBirth = new DateOnly(1940, 1, 9),
            Sex = "female", AddressLine = "2 Quay Street, Ashbury", Postcode = "WM1 2AB", Ethnicity = "A", Source = "acute-hospital",
            Pathway = "1", Urgency = urgency, Ward = "Ward 3", MedicallyOptimisedOn = today, ExpectedDischargeOn = today.AddDays(1),
            Needs = ["personal-hygiene", "mobility"], ConsentToShare = true, ConsentGivenBy = "Mary herself",
            PersonWishes = "To be home for her garden.", Summary = "Recovered from a chest infection; needs help to wash and dress for a while.",
        };
    }
}
