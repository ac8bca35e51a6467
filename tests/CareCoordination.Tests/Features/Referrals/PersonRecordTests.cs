using CareCoordination.Features.Referrals;

namespace CareCoordination.Tests.Features.Referrals;

/// <summary>What a known person's record fills into the form (a lookup of their NHS number).</summary>
public sealed class PersonRecordTests
{
    /// <summary>
    /// The carer's e-mail and the person's agreement that they are told are about the carer they were given for: a lookup that
    /// names another carer takes them away, rather than send news to the first carer's address under the second's name.
    /// </summary>
    [Fact]
    public void FillingInAnotherCarer_TakesAwayTheAddressAndAgreementGivenForTheOneBefore()
    {
        var form = new ReferralForm { CarerName = "Susan Tregear", CarerEmail = "susan@example.org", CarerMayBeTold = true };
        new PersonRecord { CarerName = "John Tregear" }.FillIn(form);
        Assert.Equal(("John Tregear", (string?)null, (bool?)null), (form.CarerName, form.CarerEmail, form.CarerMayBeTold));

        var same = new ReferralForm { CarerName = "John Tregear", CarerEmail = "john@example.org", CarerMayBeTold = true };
        new PersonRecord { CarerName = "John Tregear" }.FillIn(same);
        Assert.Equal(("john@example.org", (bool?)true), (same.CarerEmail, same.CarerMayBeTold));
    }
}
