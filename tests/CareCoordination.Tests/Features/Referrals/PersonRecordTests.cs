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

    /// <summary>A person as their organisation's last referral described them: every part the form fills in has an answer.</summary>
    private static readonly PersonRecord Mary = new()
    {
        NhsNumber = "9434765919", GivenName = "Mary", FamilyName = "Tregear", DateOfBirth = new DateOnly(1941, 3, 14), Sex = "female",
        AddressLine = "1 Old Road, Ashbury", Postcode = "WM1 4QT", Ethnicity = "A", CarerName = "John Tregear", CarerRelationship = "Son",
        CarerContact = "07700 900123", CarerWantsAssessment = true, LivesAlone = true, Bsl = true, GpPracticeCode = "M85001",
    };

    /// <summary>
    /// What the referrer typed before the NHS number is theirs (the person has moved, or has a new carer): the lookup fills in
    /// only what was not answered, keeps an address or a carer whole (never the old one's postcode or contact under the new),
    /// and names each part it kept that the record says otherwise, with what the record says.
    /// </summary>
    [Fact]
    public void FillingInAround_KeepsWhatWasTyped_PartByPart_AndNamesWhereTheRecordDiffers()
    {
        var record = Mary;
        var form = new ReferralForm
        {
            NhsNumber = "943 476 5919", FamilyName = " tregear ", AddressLine = "Flat 2, New Court, Ashbury",
            CarerName = "Susan Tregear", CarerEmail = "susan@example.org", CarerMayBeTold = true, Bsl = true,
        };

        var kept = record.FillInAround(form);

        // Not answered: filled from the record.
        Assert.Equal(("Mary", new DateOnly(1941, 3, 14), "female", "A", "M85001"), (form.GivenName, form.DateOfBirth, form.Sex, form.Ethnicity, form.GpPracticeCode));
        Assert.True(form.LivesAlone);
        // Answered: kept, each part whole.
        Assert.Equal(" tregear ", form.FamilyName);
        Assert.Equal(("Flat 2, New Court, Ashbury", (string?)null), (form.AddressLine, form.Postcode));
        Assert.Equal(("Susan Tregear", (string?)null, (string?)null, false), (form.CarerName, form.CarerRelationship, form.CarerContact, form.CarerWantsAssessment));
        Assert.Equal(("susan@example.org", (bool?)true), (form.CarerEmail, form.CarerMayBeTold));
        Assert.True(form.Bsl);
        // Named where the record differs (a name differing only in case and spaces does not).
        Assert.Equal([new PersonRecord.Kept("Address", "1 Old Road, Ashbury WM1 4QT"), new PersonRecord.Kept("Carer or next of kin", "John Tregear")], kept);
    }

    /// <summary>A form with nothing typed is filled in exactly as FillIn fills it, and nothing is named.</summary>
    [Fact]
    public void FillingInAround_ABlankForm_IsFillingIn()
    {
        var record = new PersonRecord { NhsNumber = "9434765919", GivenName = "Mary", FamilyName = "Tregear", AddressLine = "1 Old Road", Postcode = "WM1 4QT", CarerName = "John", CarerContact = "0770" };
        var around = new ReferralForm();
        var filled = new ReferralForm();
        Assert.Empty(record.FillInAround(around));
        record.FillIn(filled);
        Assert.Equal(System.Text.Json.JsonSerializer.Serialize(filled), System.Text.Json.JsonSerializer.Serialize(around));
    }

    /// <summary>
    /// The number changed after a lookup: what the record filled in, unchanged, goes with its person; what the referrer typed
    /// before the lookup, or changed after it, stays. Nothing of the first person is left under the next number unless the
    /// referrer put it there.
    /// </summary>
    [Fact]
    public void TakingBack_AfterTheNumberChanged_LeavesOnlyWhatTheReferrerTypedOrChanged()
    {
        var record = Mary;
        var typed = new ReferralForm { AddressLine = "Flat 2, New Court, Ashbury", EasyRead = true };
        record.FillInAround(typed);
        typed.CarerContact = "07700 900999";
        record.TakeBackFrom(typed);
        Assert.Equal(((string?)null, (string?)null, (DateOnly?)null, (string?)null, (string?)null, (string?)null),
            (typed.GivenName, typed.FamilyName, typed.DateOfBirth, typed.Sex, typed.Ethnicity, typed.GpPracticeCode));
        Assert.False(typed.LivesAlone || typed.Bsl);
        Assert.True(typed.EasyRead);
        Assert.Equal(("Flat 2, New Court, Ashbury", (string?)null), (typed.AddressLine, typed.Postcode));
        Assert.Equal(("John Tregear", "07700 900999"), (typed.CarerName, typed.CarerContact));

        // All of it as the record filled it: an empty form again, a carer without a relationship included.
        var filled = new ReferralForm();
        var withoutRelationship = record with { CarerRelationship = null };
        withoutRelationship.FillInAround(filled);
        withoutRelationship.TakeBackFrom(filled);
        filled.NhsNumber = null;
        Assert.Equal(System.Text.Json.JsonSerializer.Serialize(new ReferralForm()), System.Text.Json.JsonSerializer.Serialize(filled));
    }

    /// <summary>
    /// A carer typed by the name the record has is the same carer: what was typed of them stays (their e-mail and agreement
    /// too), the record fills the rest. Named otherwise, even by case alone, nothing of the record's carer is added.
    /// </summary>
    [Fact]
    public void FillingInAround_TheSameCarerTyped_FillsTheirOtherDetails()
    {
        var record = new PersonRecord { NhsNumber = "9434765919", CarerName = "John Tregear", CarerRelationship = "Son", CarerContact = "07700 900123" };
        var form = new ReferralForm { CarerName = "John Tregear ", CarerContact = "07700 900999", CarerEmail = "john@example.org", CarerMayBeTold = true };
        Assert.Empty(record.FillInAround(form));
        Assert.Equal(("John Tregear ", "Son", "07700 900999"), (form.CarerName, form.CarerRelationship, form.CarerContact));
        Assert.Equal(("john@example.org", (bool?)true), (form.CarerEmail, form.CarerMayBeTold));

        // Named otherwise (by case alone, so not listed as differing): kept as typed, nothing of the record's carer added, which
        // a corrected number could not take back.
        var other = new ReferralForm { CarerName = "john tregear" };
        Assert.Empty(record.FillInAround(other));
        Assert.Equal(("john tregear", (string?)null, (string?)null), (other.CarerName, other.CarerRelationship, other.CarerContact));
        var another = new ReferralForm { CarerName = "Susan Tregear" };
        Assert.Equal([new PersonRecord.Kept("Carer or next of kin", "John Tregear")], record.FillInAround(another));
        Assert.Equal(((string?)null, (string?)null), (another.CarerRelationship, another.CarerContact));
    }
}
