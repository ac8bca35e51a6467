using CareCoordination.Domain;
using CareCoordination.Features.Referrals;

namespace CareCoordination.Tests.Support;

/// <summary>Referral forms for tests: complete and valid unless a test changes one thing.</summary>
public static class ReferralForms
{
    /// <summary>A valid NHS number in the 999 test range that nobody in this store has yet.</summary>
    public static async Task<string> NewNhsNumberAsync(this AppFactory app)
    {
        await using var connection = await app.OpenAsync();
        while (true)
        {
            var candidate = NewNhsNumber();
            if (await Dapper.SqlMapper.ExecuteScalarAsync<long>(connection, "SELECT COUNT(*) FROM person WHERE nhs_number = @candidate", new { candidate }) == 0)
            {
                return candidate;
            }
        }
    }

    public static string NewNhsNumber()
    {
        while (true)
        {
            var nine = "9998" + Random.Shared.Next(0, 100_000).ToString("D5", System.Globalization.CultureInfo.InvariantCulture);
            var check = NhsNumber.CheckDigit(nine);
            if (check >= 0)
            {
                return nine + check;
            }
        }
    }

    public static ReferralForm Discharge(DateOnly today, string? nhsNumber = null) => new()
    {
        NhsNumber = NhsNumber.Format(nhsNumber ?? NewNhsNumber()),
        GivenName = "Edith",
        FamilyName = "Trelawny",
        DateOfBirth = new DateOnly(1938, 5, 2),
        Sex = "female",
        AddressLine = "4 Chapel Row, Ashbury",
        Postcode = "wm1 4qt",
        Ethnicity = "A",
        LivesAlone = true,
        CarerName = "Susan Trelawny",
        CarerRelationship = "daughter",
        CarerContact = "07700 900123",
        Source = "acute-hospital",
        Pathway = "1",
        Urgency = "urgent",
        Ward = "Ward 7",
        BedLabel = "12",
        MedicallyOptimisedOn = today,
        ExpectedDischargeOn = today.AddDays(1),
        Needs = ["personal-hygiene", "dressing", "mobility"],
        Strengths = "Determined; daughter visits daily.",
        Goals = "To manage her own washing and dressing again.",
        FallsRisk = true,
        ConsentToShare = true,
        ConsentGivenBy = "Edith Trelawny",
        PersonWishes = "To go home to her cat.",
        FamilyExpectations = "Daughter worries she cannot manage alone.",
        StaffExpectations = "Reablement twice a day for two weeks.",
        Summary = "Fall at home, no fracture. Mobile with a frame, needs help washing and dressing.",
    };
}
