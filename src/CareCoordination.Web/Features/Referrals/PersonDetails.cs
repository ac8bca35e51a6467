namespace CareCoordination.Features.Referrals;

/// <summary>
/// A person's details as a form states them, tidied as the store keeps them (blanks as nulls, the postcode normalised
/// with its district, carer details only with a carer): the parameters of a person row, whose locality each statement that
/// writes one looks up from the district (<see cref="LocalityOfDistrict"/>). A referral
/// (SubmitReferral) and a FHIR registration (RegisterPerson) write the person from the same values.
/// </summary>
public sealed record PersonDetails(
    string NhsNumber, string GivenName, string FamilyName, DateOnly? DateOfBirth, string? Sex, string? AddressLine, string? Postcode,
    string? District, string? Ethnicity, string? InterpreterLanguage, bool EasyRead, bool Bsl, bool LivesAlone, string? CarerName,
    string? CarerRelationship, string? CarerContact, bool CarerWantsAssessment, string? GpPracticeCode, string? Names,
    string? OtherIdentifiers, DateTimeOffset Now)
{
    /// <summary>
    /// The person's locality, from their postcode's district, inside the statement that writes it: a lookup of its own was a
    /// round trip of every PostgreSQL submission (issue 14).
    /// </summary>
    public const string LocalityOfDistrict = "(SELECT locality FROM postcode_district WHERE district = @District)";

    /// <summary>A new person row from these details, answering its id.</summary>
    public const string InsertPerson = $"""
        INSERT INTO person (nhs_number, given_name, family_name, date_of_birth, sex, address_line, postcode, locality, ethnicity,
            interpreter_language, easy_read, bsl, lives_alone, carer_name, carer_relationship, carer_contact,
            carer_wants_assessment, gp_practice_code, names, other_identifiers, version, created_at, updated_at)
        VALUES (@NhsNumber, @GivenName, @FamilyName, @DateOfBirth, @Sex, @AddressLine, @Postcode, {LocalityOfDistrict}, @Ethnicity,
            @InterpreterLanguage, @EasyRead, @Bsl, @LivesAlone, @CarerName, @CarerRelationship, @CarerContact,
            @CarerWantsAssessment, @GpPracticeCode, @Names, @OtherIdentifiers, 1, @Now, @Now)
        RETURNING id
        """;

    public static PersonDetails From(string nhsNumber, ReferralForm form, DateTimeOffset now)
    {
        var postcode = Domain.Postcode.Normalise(form.Postcode);
        var carerName = Blank(form.CarerName);
        return new PersonDetails(
            nhsNumber, form.GivenName!.Trim(), form.FamilyName!.Trim(), form.DateOfBirth, form.Sex, Blank(form.AddressLine), postcode,
            Domain.Postcode.District(postcode), form.Ethnicity, form.InterpreterNeeded ? Blank(form.InterpreterLanguage) : null, form.EasyRead, form.Bsl,
            form.LivesAlone, carerName, carerName is null ? null : Blank(form.CarerRelationship),
            carerName is null ? null : Blank(form.CarerContact), form.CarerWantsAssessment && carerName is not null,
            Blank(form.GpPracticeCode)?.ToUpperInvariant(), PersonName.ToJson(form), PersonIdentifier.ToJson(form.OtherIdentifiers), now);
    }

    private static string? Blank(string? text) => string.IsNullOrWhiteSpace(text) ? null : text.Trim();
}
