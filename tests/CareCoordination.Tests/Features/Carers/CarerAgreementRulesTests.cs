using CareCoordination.Features.Carers;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using CareCoordination.Tests.Support;
using Microsoft.Extensions.Time.Testing;

namespace CareCoordination.Tests.Features.Carers;

/// <summary>The form's rules for telling the carer: an agreement needs a named carer and an e-mail that is one.</summary>
public sealed class CarerAgreementRulesTests
{
    private static readonly FakeTimeProvider Clock = new(new DateTimeOffset(2026, 11, 23, 12, 0, 0, TimeSpan.Zero));
    private static readonly ReferralForm.SubmissionRules Rules = new(Clock);

    private static Dictionary<string, string[]> ErrorsFor(Action<ReferralForm> change)
    {
        var form = ReferralForms.Discharge(new DateOnly(2026, 11, 23), "9434765919");
        change(form);
        return Rules.Validate(form).Errors.GroupBy(e => e.PropertyName).ToDictionary(g => g.Key, g => g.Select(e => e.ErrorMessage).ToArray());
    }

    public static TheoryData<string, string, Action<ReferralForm>, Action<ReferralForm>> Cases => new()
    {
        { "CarerEmail", "Give the carer's e-mail", f => { f.CarerMayBeTold = true; f.CarerEmail = "susan@example.org"; }, f => f.CarerMayBeTold = true },
        { "CarerEmail", "like name@example.org", f => { f.CarerMayBeTold = true; f.CarerEmail = " susan.t+mum@mail.example.co.uk "; }, f => { f.CarerMayBeTold = true; f.CarerEmail = "susan at example.org"; } },
        { "CarerEmail", "like name@example.org", f => f.CarerEmail = "susan@example.org", f => f.CarerEmail = "Susan <susan@example.org>" },
        { "CarerEmail", "like name@example.org", f => { f.CarerMayBeTold = false; f.CarerEmail = null; }, f => { f.CarerMayBeTold = false; f.CarerEmail = "susan@localhost"; } },
        { "CarerName", "Name the carer", f => { f.CarerMayBeTold = true; f.CarerEmail = "susan@example.org"; }, f => { f.CarerName = null; f.CarerContact = null; f.CarerMayBeTold = true; f.CarerEmail = "susan@example.org"; } },
        // An e-mail is a way to reach the carer: the phone number is then not also needed.
        { "CarerContact", "phone number or email", f => { f.CarerContact = null; f.CarerEmail = "susan@example.org"; }, f => { f.CarerContact = null; f.CarerEmail = null; } },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Rule_PassesTheGoodCase_AndRefusesTheBadOne(string field, string messageSays, Action<ReferralForm> good, Action<ReferralForm> bad)
    {
        Assert.Empty(ErrorsFor(good));
        var errors = ErrorsFor(bad);
        Assert.Equal([field], errors.Keys);
        Assert.Contains(errors[field], m => m.Contains(messageSays, StringComparison.Ordinal));
    }

    [Fact]
    public void NotAsked_IsAllowed_AndMeansNobodyIsTold() =>
        Assert.Empty(ErrorsFor(f => { f.CarerMayBeTold = null; f.CarerEmail = null; }));

    [Theory]
    [InlineData("a@b.co", true)]
    [InlineData("first.last@nhs.net", true)]
    [InlineData("", false)]
    [InlineData("no-at-sign.example.org", false)]
    [InlineData("two@@example.org", false)]
    [InlineData("a@b@example.org", false)]
    [InlineData("someone@example.org, other@example.org", false)]
    [InlineData("someone@.example.org", false)]
    public void CarerEmail_IsOnePlainAddress(string address, bool valid) => Assert.Equal(valid, CarerEmail.IsValid(address));
}
