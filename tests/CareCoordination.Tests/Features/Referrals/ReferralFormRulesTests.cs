using CareCoordination.Domain;
using CareCoordination.Features.Referrals;
using CareCoordination.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace CareCoordination.Tests.Features.Referrals;

/// <summary>Each submission rule with a form that passes it and one that breaks it, and nothing else.</summary>
public sealed class ReferralFormRulesTests
{
    // Noon in London on a fixed day, so "today" does not move under the test.
    private static readonly FakeTimeProvider Clock = new(new DateTimeOffset(2026, 11, 23, 12, 0, 0, TimeSpan.Zero));
    private static readonly DateOnly Today = new(2026, 11, 23);
    private static readonly ReferralForm.SubmissionRules Rules = new(Clock);

    private static Dictionary<string, string[]> ErrorsFor(Action<ReferralForm> change)
    {
        var form = ReferralForms.Discharge(Today, "9434765919");
        change(form);
        return Rules.Validate(form).Errors.GroupBy(e => e.PropertyName).ToDictionary(g => g.Key, g => g.Select(e => e.ErrorMessage).ToArray());
    }

    [Fact]
    public void CompleteForm_Passes() => Assert.Empty(ErrorsFor(_ => { }));

    public static TheoryData<string, string, Action<ReferralForm>, Action<ReferralForm>> Cases => new()
    {
        { "NhsNumber", "check digit", f => f.NhsNumber = "943 476 5919", f => f.NhsNumber = "943 476 5918" },
        { "NhsNumber", "10 digits", f => f.NhsNumber = "9434765919", f => f.NhsNumber = "943 476 591" },
        { "NhsNumber", "Enter the NHS number", f => f.NhsNumber = "943-476-5919", f => f.NhsNumber = " " },
        { "DateOfBirth", "future", f => f.DateOfBirth = Today, f => f.DateOfBirth = Today.AddDays(1) },
        { "DateOfBirth", "120 years", f => f.DateOfBirth = Today.AddYears(-119), f => f.DateOfBirth = Today.AddYears(-121) },
        { "Postcode", "UK postcode", f => f.Postcode = "wm10 2ab", f => f.Postcode = "WM1 4Q" },
        { "Postcode", "UK postcode", f => f.Postcode = "EC1A1BB", f => f.Postcode = "12345" },
        { "Ethnicity", "Not stated", f => f.Ethnicity = "Z", f => f.Ethnicity = "X" },
        { "Sex", "sex", f => f.Sex = "unknown", f => f.Sex = null },
        { "Pathway", "Step-up is for people at home", f => { f.Source = "gp"; f.Pathway = "step-up"; }, f => f.Pathway = "step-up" },
        { "Pathway", "hospital discharge", f => { f.Source = "community-step-up"; f.Pathway = "step-up"; }, f => { f.Source = "gp"; f.Pathway = "2"; } },
        { "Ward", "ward", f => f.Ward = "Ward 3", f => f.Ward = "" },
        { "MedicallyOptimisedOn", "medically optimised", f => { f.MedicallyOptimisedOn = Today.AddDays(3); f.ExpectedDischargeOn = null; }, f => f.MedicallyOptimisedOn = null },
        { "MedicallyOptimisedOn", "four weeks", f => { f.MedicallyOptimisedOn = Today.AddDays(28); f.ExpectedDischargeOn = null; }, f => { f.MedicallyOptimisedOn = Today.AddDays(29); f.ExpectedDischargeOn = null; } },
        { "AdmittedOn", "in the future", f => { f.AdmittedOn = Today; f.MedicallyOptimisedOn = Today.AddDays(2); f.ExpectedDischargeOn = null; }, f => { f.AdmittedOn = Today.AddDays(1); f.MedicallyOptimisedOn = Today.AddDays(2); f.ExpectedDischargeOn = null; } },
        { "AdmittedOn", "after the medically optimised", f => { f.AdmittedOn = Today.AddDays(-3); f.MedicallyOptimisedOn = Today.AddDays(-3); }, f => { f.AdmittedOn = Today.AddDays(-2); f.MedicallyOptimisedOn = Today.AddDays(-3); } },
        { "ExpectedDischargeOn", "before the medically optimised", f => f.ExpectedDischargeOn = Today, f => { f.MedicallyOptimisedOn = Today.AddDays(2); f.ExpectedDischargeOn = Today.AddDays(1); } },
        { "ExpectedDischargeOn", "in the past", f => f.ExpectedDischargeOn = null, f => { f.MedicallyOptimisedOn = Today.AddDays(-5); f.ExpectedDischargeOn = Today.AddDays(-1); } },
        { "Needs", "at least one need", f => { f.Pathway = "0"; f.Needs = []; }, f => f.Needs = [] },
        { "Needs[0]", "not a need", f => f.Needs = ["nutrition"], f => f.Needs = ["flying"] },
        { "ConsentGivenBy", "who gave consent", f => f.ConsentGivenBy = "Daughter (LPA health and welfare)", f => f.ConsentGivenBy = null },
        { "LawfulReason", "lawful reason", f => { f.ConsentToShare = false; f.LawfulReason = "Vital interests: lacks capacity, at risk at home."; }, f => f.ConsentToShare = false },
        { "ConsentToShare", "consents", f => f.ConsentToShare = true, f => f.ConsentToShare = null },
        { "BestInterestsDecision", "best-interests", f => { f.MentalCapacityConcern = true; f.BestInterestsDecision = "MDT 20/11: home with reablement."; }, f => f.MentalCapacityConcern = true },
        { "InterpreterLanguage", "language", f => { f.InterpreterNeeded = true; f.InterpreterLanguage = "Polish"; }, f => f.InterpreterNeeded = true },
        { "CarerContact", "phone number or email", f => f.CarerContact = "susan@example.org", f => f.CarerContact = "" },
        { "CarerName", "carer's assessment", f => f.CarerWantsAssessment = true, f => { f.CarerName = null; f.CarerWantsAssessment = true; } },
        { "GpPracticeCode", "letter and five digits", f => f.GpPracticeCode = "w99001", f => f.GpPracticeCode = "99001" },
        { "PersonWishes", "no decision about me without me", f => f.PersonWishes = "Home.", f => f.PersonWishes = " " },
        { "Summary", "4000 characters", f => f.Summary = "Short.", f => f.Summary = new string('x', ReferralForm.LongText + 1) },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Rule_PassesTheGoodCase_AndRefusesTheBadOneWithAMessageThatSaysWhatToDo(string field, string messageSays, Action<ReferralForm> good, Action<ReferralForm> bad)
    {
        Assert.Empty(ErrorsFor(good));

        var errors = ErrorsFor(bad);

        Assert.True(errors.ContainsKey(field), $"Expected an error on {field}; got {string.Join(", ", errors.Keys)}");
        Assert.Contains(errors[field], m => m.Contains(messageSays, StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public void DraftLimits_AcceptAnEmptyForm() => Assert.True(new ReferralForm.TextLimits().Validate(new ReferralForm()).IsValid);

    [Fact]
    public void EarlyRequest_IsAHospitalReferralBeforeTheMedicallyOptimisedDate()
    {
        var form = ReferralForms.Discharge(Today);
        Assert.False(form.IsEarlyRequest(Today));
        form.MedicallyOptimisedOn = Today.AddDays(2);
        Assert.True(form.IsEarlyRequest(Today));
        form.Source = "gp";
        Assert.False(form.IsEarlyRequest(Today));
    }

    [Theory]
    [InlineData("9434765919", "943 476 5919")]
    [InlineData("94347", "943 47")]
    [InlineData("943-476-5919", "943 476 5919")]
    public void NhsNumber_IsShownThreeThreeFour(string typed, string shown) => Assert.Equal(shown, NhsNumber.Format(typed));

    [Theory]
    [InlineData("wm1 4qt", "WM1 4QT", "WM1")]
    [InlineData("EC1A1BB", "EC1A 1BB", "EC1A")]
    [InlineData(" m1  1ae ", "M1 1AE", "M1")]
    public void Postcode_IsNormalisedAndGivesItsDistrict(string typed, string normal, string district)
    {
        Assert.Equal(normal, Postcode.Normalise(typed));
        Assert.Equal(district, Postcode.District(typed));
    }
}
