using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using CareCoordination.Domain;
using CareCoordination.Pipeline;

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
        p.carer_wants_assessment AS CarerWantsAssessment, p.gp_practice_code AS GpPracticeCode,
        p.names AS NamesJson, p.other_identifiers AS OtherIdentifiersJson
        """;

    /// <summary>What one referral said: the same select list, for a query that names the referral_person table <c>rp</c>.</summary>
    public const string AsReferredColumns = """
        rp.person_id AS Id, rp.nhs_number AS NhsNumber, rp.given_name AS GivenName, rp.family_name AS FamilyName, rp.date_of_birth AS DateOfBirth,
        rp.sex AS Sex, rp.address_line AS AddressLine, rp.postcode AS Postcode, rp.locality AS Locality, rp.ethnicity AS Ethnicity,
        rp.interpreter_language AS InterpreterLanguage, rp.easy_read AS EasyRead, rp.bsl AS Bsl, rp.lives_alone AS LivesAlone,
        rp.carer_name AS CarerName, rp.carer_relationship AS CarerRelationship, rp.carer_contact AS CarerContact,
        rp.carer_wants_assessment AS CarerWantsAssessment, rp.gp_practice_code AS GpPracticeCode,
        rp.names AS NamesJson, rp.other_identifiers AS OtherIdentifiersJson
        """;

    /// <summary>
    /// Everything @OrganisationId has said about each person, as rows shaped like referral_person: what each of its sent
    /// referrals said (referral_person), and each registration of the person it made (person_registration, a FHIR Patient
    /// create). said_id tells the rows apart. Every use names the person, and each store must start from that person's rows:
    /// a referral's organisation is therefore read row by row, as a scalar subquery, which neither store turns into a join. As
    /// a join, SQLite left to itself started from all the organisation's referrals, and PostgreSQL did too whenever its
    /// statistics were taken while the organisation had few (a new partner, or a store growing fast: 0.45 ms a submission's
    /// answer in the bench, growing with the organisation's history; issue 14). A draft's organisation reads as NULL, which is
    /// no one's.
    /// </summary>
    public const string SaidByOrganisation = $"""
        (SELECT 'referral/' || s.referral_id AS said_id, s.referral_id, s.person_id, s.person_version,
            s.nhs_number, s.given_name, s.family_name, s.date_of_birth, s.sex, s.address_line, s.postcode, s.locality, s.ethnicity,
            s.interpreter_language, s.easy_read, s.bsl, s.lives_alone, s.carer_name, s.carer_relationship, s.carer_contact,
            s.carer_wants_assessment, s.gp_practice_code, s.names, s.other_identifiers, s.recorded_at
         FROM referral_person s
         WHERE {SentByOrganisationS}
         UNION ALL
         SELECT 'registration/' || g.id, NULL, g.person_id, g.person_version,
            g.nhs_number, g.given_name, g.family_name, g.date_of_birth, g.sex, g.address_line, g.postcode, g.locality, g.ethnicity,
            g.interpreter_language, g.easy_read, g.bsl, g.lives_alone, g.carer_name, g.carer_relationship, g.carer_contact,
            g.carer_wants_assessment, g.gp_practice_code, g.names, g.other_identifiers, g.recorded_at
         FROM person_registration g WHERE g.organisation_id = @OrganisationId)
        """;

    /// <summary>
    /// The latest of what @OrganisationId's referrals and registrations of person <c>p</c> said (<c>rp</c>, shaped like
    /// referral_person): what that organisation last said. A join with no row when the organisation has never referred or
    /// registered them, so it also decides who is visible. Every referral moves the person's version, and a registration is
    /// version 1, before any referral of the same organisation, so the highest version is the latest; rows kept before
    /// versions were have none, and come last.
    /// </summary>
    public const string LatestAsReferredBy = $"""
        JOIN {SaidByOrganisation} rp ON rp.person_id = p.id AND rp.said_id = (
            SELECT s.said_id FROM {SaidByOrganisation} s
            WHERE s.person_id = p.id
            ORDER BY COALESCE(s.person_version, 0) DESC, COALESCE(s.referral_id, 0) DESC LIMIT 1)
        """;

    /// <summary>
    /// The version number @OrganisationId reads for what row <c>rp</c> (one of <see cref="SaidByOrganisation"/>) said: its place
    /// among that organisation's own rows of the person, oldest first, so 1, 2, 3 with no gaps. The store's own number of
    /// the record (rp.person_version) counts every organisation's referrals: a partner that read version 2 at its first
    /// referral would learn that someone else knows the person, which the read, the search and RegisterPerson are built
    /// never to tell. A row kept before versions were has none. (Migration 0009's comment on referral_person.person_version
    /// predates this: that column now orders the rows, and is not what a partner is shown.)
    /// </summary>
    /// <remarks>
    /// Counted in each of <see cref="SaidByOrganisation"/>'s two tables on its own, where each store searches the person's
    /// rows by index. Counted over the union, SQLite did not push the person into it and read every referral_person row
    /// of the store for each answer: a partner's referral answered in full took 12 ms of the server's CPU in the bench, and
    /// more as the store grew (issue 14). A registration has no referral id, which orders as 0: before every referral of the
    /// same version.
    /// </remarks>
    public const string VersionAsSaid = $"""
        CASE WHEN rp.person_version IS NULL THEN NULL ELSE (
            SELECT COUNT(*) FROM referral_person s
            WHERE s.person_id = rp.person_id AND s.person_version IS NOT NULL AND {SentByOrganisationS}
              AND (s.person_version < rp.person_version
                   OR (s.person_version = rp.person_version AND s.referral_id <= COALESCE(rp.referral_id, 0))))
          + (SELECT COUNT(*) FROM person_registration g
            WHERE g.person_id = rp.person_id AND g.person_version IS NOT NULL AND g.organisation_id = @OrganisationId
              AND g.person_version <= rp.person_version) END
        """;

    /// <summary>Row <c>s</c> of referral_person was said by a sent referral of @OrganisationId's (a draft's is no one's).</summary>
    private const string SentByOrganisationS =
        "(SELECT v.organisation_id FROM referral v WHERE v.id = s.referral_id AND v.status <> 'draft') = @OrganisationId";

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

    /// <summary>Every name as a partner sent it (JSON); null when only the form's one name is known.</summary>
    public string? NamesJson { get; init; }

    /// <summary>Identifiers other than the NHS number, as a partner sent them (JSON).</summary>
    public string? OtherIdentifiersJson { get; init; }

    public IReadOnlyList<PersonName> Names => PersonName.FromJson(NamesJson);

    public IReadOnlyList<PersonIdentifier> OtherIdentifiers => PersonIdentifier.FromJson(OtherIdentifiersJson);

    /// <summary>Copies what the record knows into the form, leaving the referral's own answers alone.</summary>
    public void FillIn(ReferralForm form)
    {
        // The carer's address and the person's agreement were about the carer named before: another carer is not agreed to.
        if (!string.Equals(form.CarerName?.Trim(), CarerName?.Trim(), StringComparison.Ordinal))
        {
            (form.CarerEmail, form.CarerMayBeTold) = (null, null);
        }
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
        form.Names = Names;
        form.OtherIdentifiers = OtherIdentifiers;
    }

    /// <summary>One part of the person's details the referrer had answered before the lookup, differently from the record.</summary>
    public sealed record Kept(string What, string RecordSays);

    /// <summary>
    /// The form page's fill, as the NHS number is looked up: what the referrer has not answered is filled from the record,
    /// and what they typed before the number stays (the person may have moved, or have a new carer). A part is kept whole:
    /// a typed address keeps its own postcode (none, rather than the old one's), a typed carer their own contact. Each part kept that differs from the record
    /// is returned, with what the record says, for the referrer to check with the person.
    /// </summary>
    public IReadOnlyList<Kept> FillInAround(ReferralForm form)
    {
        var typed = JsonSerializer.Deserialize<ReferralForm>(JsonSerializer.Serialize(form, JsonDefaults.Options), JsonDefaults.Options)!;
        FillIn(form);
        var kept = new List<Kept>();
        void Keep(bool answered, string what, string? typedSays, string? recordSays, Action restore)
        {
            if (!answered)
            {
                return;
            }
            restore();
            if (!string.Equals(Tidy(typedSays), Tidy(recordSays), StringComparison.OrdinalIgnoreCase))
            {
                kept.Add(new Kept(what, string.IsNullOrWhiteSpace(recordSays) ? "nothing" : recordSays.Trim()));
            }
        }
        Keep(Answered(typed.GivenName), "Given name", typed.GivenName, GivenName, () => form.GivenName = typed.GivenName);
        Keep(Answered(typed.FamilyName), "Family name", typed.FamilyName, FamilyName, () => form.FamilyName = typed.FamilyName);
        Keep(typed.DateOfBirth is not null, "Date of birth", typed.DateOfBirth?.ToString("dd/MM/yyyy", CultureInfo.InvariantCulture),
            DateOfBirth.ToString("dd/MM/yyyy", CultureInfo.InvariantCulture), () => form.DateOfBirth = typed.DateOfBirth);
        Keep(Answered(typed.Sex), "Sex", Label(ReferralCodes.Sexes, typed.Sex), Label(ReferralCodes.Sexes, Sex), () => form.Sex = typed.Sex);
        Keep(Answered(typed.AddressLine) || Answered(typed.Postcode), "Address", $"{typed.AddressLine} {typed.Postcode}", $"{AddressLine} {Postcode}",
            () => (form.AddressLine, form.Postcode) = (typed.AddressLine, typed.Postcode));
        Keep(Answered(typed.Ethnicity), "Ethnic category", Label(ReferralCodes.Ethnicities, typed.Ethnicity), Label(ReferralCodes.Ethnicities, Ethnicity),
            () => form.Ethnicity = typed.Ethnicity);
        Keep(typed.InterpreterNeeded, "Interpreter", typed.InterpreterLanguage, InterpreterLanguage,
            () => (form.InterpreterNeeded, form.InterpreterLanguage) = (true, typed.InterpreterLanguage));
        // A tick is an answer only when ticked: unticked, the record's word stands.
        (form.EasyRead, form.Bsl, form.LivesAlone) = (form.EasyRead || typed.EasyRead, form.Bsl || typed.Bsl, form.LivesAlone || typed.LivesAlone);
        if (Answered(typed.CarerName) && string.Equals(typed.CarerName!.Trim(), CarerName?.Trim(), StringComparison.Ordinal))
        {
            // The same carer, named as the record names them (as FillIn and TakeBackFrom match them): what the referrer typed of
            // them stays, their e-mail and agreement included, and the record fills the rest.
            (form.CarerName, form.CarerEmail, form.CarerMayBeTold) = (typed.CarerName, typed.CarerEmail, typed.CarerMayBeTold);
            form.CarerRelationship = Answered(typed.CarerRelationship) ? typed.CarerRelationship : CarerRelationship;
            form.CarerContact = Answered(typed.CarerContact) ? typed.CarerContact : CarerContact;
            form.CarerWantsAssessment = typed.CarerWantsAssessment || CarerWantsAssessment;
        }
        else
        {
            Keep(Answered(typed.CarerName), "Carer or next of kin", typed.CarerName, CarerName, () =>
            {
                (form.CarerName, form.CarerRelationship, form.CarerContact) = (typed.CarerName, typed.CarerRelationship, typed.CarerContact);
                (form.CarerWantsAssessment, form.CarerEmail, form.CarerMayBeTold) = (typed.CarerWantsAssessment, typed.CarerEmail, typed.CarerMayBeTold);
            });
        }
        Keep(Answered(typed.GpPracticeCode), "GP practice", typed.GpPracticeCode, GpPracticeCode, () => form.GpPracticeCode = typed.GpPracticeCode);
        return kept;

        static bool Answered(string? value) => !string.IsNullOrWhiteSpace(value);
        static string? Label(IReadOnlyList<Code> codes, string? code) => code is null ? null : codes.LabelOf(code);
        static string Tidy(string? value) => string.Join(' ', (value ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries));
    }

    /// <summary>
    /// The NHS number changed after this record filled the form in: each part still as the record filled it goes (it is this
    /// person's, not the next number's), each part the referrer typed or changed stays. Parts as FillInAround keeps them: an
    /// address with its postcode, a carer with their contact, e-mail and agreement.
    /// </summary>
    public void TakeBackFrom(ReferralForm form)
    {
        if (Same(form.GivenName, GivenName))
        {
            form.GivenName = null;
        }
        if (Same(form.FamilyName, FamilyName))
        {
            form.FamilyName = null;
        }
        if (form.DateOfBirth == DateOfBirth)
        {
            form.DateOfBirth = null;
        }
        if (Same(form.Sex, Sex))
        {
            form.Sex = null;
        }
        if (Same(form.AddressLine, AddressLine) && Equal(form.Postcode, Postcode))
        {
            (form.AddressLine, form.Postcode) = (null, null);
        }
        if (Same(form.Ethnicity, Ethnicity))
        {
            form.Ethnicity = null;
        }
        if (InterpreterLanguage is not null && form.InterpreterNeeded && Same(form.InterpreterLanguage, InterpreterLanguage))
        {
            (form.InterpreterNeeded, form.InterpreterLanguage) = (false, null);
        }
        // A tick the record put there goes with it; one it did not is the referrer's.
        form.EasyRead &= !EasyRead;
        form.Bsl &= !Bsl;
        form.LivesAlone &= !LivesAlone;
        if (Same(form.CarerName, CarerName) && Equal(form.CarerRelationship, CarerRelationship) && Equal(form.CarerContact, CarerContact)
            && form.CarerWantsAssessment == CarerWantsAssessment)
        {
            (form.CarerName, form.CarerRelationship, form.CarerContact, form.CarerWantsAssessment) = (null, null, null, false);
            (form.CarerEmail, form.CarerMayBeTold) = (null, null);
        }
        if (Same(form.GpPracticeCode, GpPracticeCode))
        {
            form.GpPracticeCode = null;
        }

        // Same: there, and as the record has it. Equal: as the record has it, blank included (a part's other fields).
        static bool Same(string? onForm, string? recorded) => !string.IsNullOrWhiteSpace(onForm) && string.Equals(onForm, recorded, StringComparison.Ordinal);
        static bool Equal(string? onForm, string? recorded) => string.IsNullOrWhiteSpace(onForm) ? string.IsNullOrWhiteSpace(recorded) : Same(onForm, recorded);
    }

    /// <summary>
    /// Whether the form still holds, unchanged, what <see cref="FillIn"/> put there (the NHS number aside): filled in again, it
    /// would not change. Worked out by filling in a copy, so that the fields compared are always the ones filled in.
    /// </summary>
    public bool StillIn(ReferralForm form)
    {
        var asItIs = JsonSerializer.Serialize(form, JsonDefaults.Options);
        var again = JsonSerializer.Deserialize<ReferralForm>(asItIs, JsonDefaults.Options)!;
        FillIn(again);
        again.NhsNumber = form.NhsNumber;
        return JsonSerializer.Serialize(again, JsonDefaults.Options) == asItIs;
    }

    /// <summary>
    /// Empties what <see cref="FillIn"/> sets that the form does not show (other names, other identifiers): the referrer can
    /// neither see nor check them, so they never stay with a number they were not filled in for.
    /// </summary>
    public static void ClearHiddenDetails(ReferralForm form) => (form.Names, form.OtherIdentifiers) = ([], []);

    /// <summary>The main name with every given name (GivenName holds them all, space-separated).</summary>
    public string Name => $"{GivenName} {FamilyName}";

    /// <summary>The other names the person is known by (a maiden name, a usual name), for staff pages.</summary>
    public IReadOnlyList<string> AlsoKnownAs
    {
        get
        {
            var names = Names;
            var main = PersonName.MainOf(names);
            return [.. names.Where(n => n != main).Select(n => n.Display).Where(n => n.Length > 0 && n != Name).Distinct()];
        }
    }
}

/// <summary>
/// One name of a person as FHIR HumanName carries it: a use (official, usual, maiden, ...), every given name in order,
/// the family name, prefixes and suffixes. The form knows one name; a partner may send several.
/// </summary>
public sealed record PersonName(string? Use, string? Text, string? Family, IReadOnlyList<string> Given, IReadOnlyList<string> Prefix, IReadOnlyList<string> Suffix)
{
    // Stored without its empty parts (see ToJson): a name read back without them has none.
    public IReadOnlyList<string> Given { get; init; } = Given ?? [];
    public IReadOnlyList<string> Prefix { get; init; } = Prefix ?? [];
    public IReadOnlyList<string> Suffix { get; init; } = Suffix ?? [];

    /// <summary>The given names as one field of the form: every one of them, in order.</summary>
    [JsonIgnore]
    public string? GivenNames => Given.Count == 0 ? null : string.Join(' ', Given);

    [JsonIgnore]
    public string Display => Text ?? string.Join(' ', Prefix.Concat(Given).Append(Family ?? "").Concat(Suffix).Where(p => p.Length > 0));

    /// <summary>The name the form shows: the official one, else the usual one, else the first.</summary>
    public static PersonName? MainOf(IReadOnlyList<PersonName> names) =>
        names.FirstOrDefault(n => n.Use == "official") ?? names.FirstOrDefault(n => n.Use == "usual") ?? names.FirstOrDefault();

    /// <summary>
    /// The names to store for a form: as sent, with the form's name as the main one. A referrer who corrected the name on
    /// the page corrected the main name; the other names stay.
    /// </summary>
    public static string? ToJson(ReferralForm form)
    {
        var names = form.Names;
        var main = MainOf(names);
        if (main is null)
        {
            return null;
        }
        var (given, family) = (form.GivenName?.Trim(), form.FamilyName?.Trim());
        if (main.GivenNames != given || main.Family != family)
        {
            var corrected = main with { Text = null, Given = given is null ? [] : [given], Family = family };
            names = [.. names.Select(n => ReferenceEquals(n, main) ? corrected : n)];
        }
        return JsonSerializer.Serialize(names, Stored);
    }

    /// <summary>
    /// Names are kept in the person row and again in each referral's copy of it: only what was sent is stored, not the
    /// derived GivenNames and Display, nor nulls and empty lists (issue 14, store growth: 141 bytes a name became 62).
    /// Rows written before keep their longer form and read the same.
    /// </summary>
    private static readonly JsonSerializerOptions Stored = new(JsonDefaults.Options)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        TypeInfoResolver = new DefaultJsonTypeInfoResolver
        {
            Modifiers =
            {
                info =>
                {
                    foreach (var property in info.Properties.Where(p => typeof(IReadOnlyList<string>).IsAssignableFrom(p.PropertyType)))
                    {
                        property.ShouldSerialize = (_, value) => value is IReadOnlyList<string> { Count: > 0 };
                    }
                },
            },
        },
    };

    public static IReadOnlyList<PersonName> FromJson(string? json) =>
        json is null ? [] : JsonSerializer.Deserialize<List<PersonName>>(json, JsonDefaults.Options) ?? [];
}

/// <summary>An identifier of the person other than the NHS number: a hospital number, a council's own reference.</summary>
public sealed record PersonIdentifier(string? System, string Value, string? Use)
{
    public static string? ToJson(IReadOnlyList<PersonIdentifier> identifiers) =>
        identifiers.Count == 0 ? null : JsonSerializer.Serialize(identifiers, JsonDefaults.Options);

    public static IReadOnlyList<PersonIdentifier> FromJson(string? json) =>
        json is null ? [] : JsonSerializer.Deserialize<List<PersonIdentifier>>(json, JsonDefaults.Options) ?? [];
}
