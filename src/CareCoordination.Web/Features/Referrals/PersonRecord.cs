using CareCoordination.Domain;

namespace CareCoordination.Features.Referrals;

/// <summary>
/// A person: either the whole record as the store knows them now (the person row, which every referral brings up to
/// date, whoever sent it: the coordination centre's view), or what one referral said about them (referral_person: what
/// its referring organisation reads). Filled into a new form, and shown with a referral.
/// </summary>
public record PersonRecord
{
    /// <summary>The whole record: the select list for a query that names the person table <c>p</c>.</summary>
    public const string Columns = """
        p.id AS Id, p.nhs_number AS NhsNumber, p.given_name AS GivenName, p.family_name AS FamilyName, p.date_of_birth AS DateOfBirth,
        p.sex AS Sex, p.address_line AS AddressLine, p.postcode AS Postcode, p.locality AS Locality, p.ethnicity AS Ethnicity,
        p.interpreter_language AS InterpreterLanguage, p.easy_read AS EasyRead, p.bsl AS Bsl, p.lives_alone AS LivesAlone,
        p.carer_name AS CarerName, p.carer_relationship AS CarerRelationship, p.carer_contact AS CarerContact,
        p.carer_wants_assessment AS CarerWantsAssessment, p.gp_practice_code AS GpPracticeCode
        """;

    /// <summary>What one referral said: the same select list, for a query that names the referral_person table <c>rp</c>.</summary>
    public const string AsReferredColumns = """
        rp.person_id AS Id, rp.nhs_number AS NhsNumber, rp.given_name AS GivenName, rp.family_name AS FamilyName, rp.date_of_birth AS DateOfBirth,
        rp.sex AS Sex, rp.address_line AS AddressLine, rp.postcode AS Postcode, rp.locality AS Locality, rp.ethnicity AS Ethnicity,
        rp.interpreter_language AS InterpreterLanguage, rp.easy_read AS EasyRead, rp.bsl AS Bsl, rp.lives_alone AS LivesAlone,
        rp.carer_name AS CarerName, rp.carer_relationship AS CarerRelationship, rp.carer_contact AS CarerContact,
        rp.carer_wants_assessment AS CarerWantsAssessment, rp.gp_practice_code AS GpPracticeCode
        """;

    /// <summary>
    /// The latest referral_person row (<c>rp</c>) of an organisation's referrals of person <c>p</c>: what that organisation last
    /// said. A join with no row when the organisation (@OrganisationId) has never referred them, so it also decides who is visible.
    /// </summary>
    public const string LatestAsReferredBy = """
        JOIN referral_person rp ON rp.referral_id = (
            SELECT s.referral_id FROM referral_person s JOIN referral v ON v.id = s.referral_id
            WHERE s.person_id = p.id AND v.organisation_id = @OrganisationId AND v.status <> 'draft'
            ORDER BY COALESCE(s.person_version, 0) DESC, s.referral_id DESC LIMIT 1)
        """;

    public long Id { get; init; }
    public string NhsNumber { get; init; } = "";
    public string GivenName { get; init; } = "";
    public string FamilyName { get; init; } = "";
    public DateOnly DateOfBirth { get; init; }
    public string Sex { get; init; } = "";
    public string? AddressLine { get; init; }
    public string? Postcode { get; init; }
    public string? Locality { get; init; }
    public string? Ethnicity { get; init; }
    public string? InterpreterLanguage { get; init; }
    public bool EasyRead { get; init; }
    public bool Bsl { get; init; }
    public bool LivesAlone { get; init; }
    public string? CarerName { get; init; }
    public string? CarerRelationship { get; init; }
    public string? CarerContact { get; init; }
    public bool CarerWantsAssessment { get; init; }
    public string? GpPracticeCode { get; init; }

    /// <summary>Copies what the record knows into the form, leaving the referral's own answers alone.</summary>
    public void FillIn(ReferralForm form)
    {
        form.NhsNumber = Domain.NhsNumber.Format(NhsNumber);
        form.GivenName = GivenName;
        form.FamilyName = FamilyName;
        form.DateOfBirth = DateOfBirth;
        form.Sex = Sex;
        form.AddressLine = AddressLine;
        form.Postcode = Postcode;
        form.Ethnicity = Ethnicity;
        form.InterpreterNeeded = InterpreterLanguage is not null;
        form.InterpreterLanguage = InterpreterLanguage;
        form.EasyRead = EasyRead;
        form.Bsl = Bsl;
        form.LivesAlone = LivesAlone;
        form.CarerName = CarerName;
        form.CarerRelationship = CarerRelationship;
        form.CarerContact = CarerContact;
        form.CarerWantsAssessment = CarerWantsAssessment;
        form.GpPracticeCode = GpPracticeCode;
    }

    public string Name => $"{GivenName} {FamilyName}";
}
