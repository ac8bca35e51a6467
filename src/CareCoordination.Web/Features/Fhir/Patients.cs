using CareCoordination.Auth;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Mediator;

namespace CareCoordination.Features.Fhir;

/// <summary>
/// A person as the FHIR Patient shows them, with its version. The coordination centre reads the whole record (the person
/// row, every version whoever wrote it). A referrer or partner reads only what its own organisation's referrals and its
/// registration of the person (RegisterPerson) said: the latest of them is its current version, each earlier one a version
/// of its history, and what another organisation said is not there at all, so one trust's referral never shows another
/// trust's address, carer or ethnicity.
/// </summary>
public sealed record FhirPerson : PersonRecord
{
    /// <summary>
    /// The version: of the whole record for the coordination centre; for a referrer or partner, its own organisation's number
    /// (PersonRecord.VersionAsSaid). Null for what a referral sent before versions were kept with it said.
    /// </summary>
    public int? Version { get; init; }
    public DateTimeOffset UpdatedAt { get; init; }

    /// <summary>The whole record.</summary>
    public const string Select = $"""
        SELECT {PersonRecord.Columns}, p.version AS Version, p.updated_at AS UpdatedAt
        FROM person p
        WHERE 1 = 1
        """;

    /// <summary>What @OrganisationId last said, of a person it has referred or registered: the join finds no row for anyone else.</summary>
    public const string SelectAsReferred = $"""
        SELECT {PersonRecord.AsReferredColumns}, {PersonRecord.VersionAsSaid} AS Version, rp.recorded_at AS UpdatedAt
        FROM person p
        {PersonRecord.LatestAsReferredBy}
        WHERE 1 = 1
        """;

    /// <summary>
    /// The select for this caller. A caller that does not see every organisation sees a person only while its organisation
    /// has referred them: anyone else is "not found", so that a partner cannot probe who else is known here.
    /// </summary>
    public static string SelectFor(Actor actor) => ReferralAccess.SeesEveryOrganisation(actor)
        ? Select + " AND EXISTS (SELECT 1 FROM referral v WHERE v.person_id = p.id AND v.status <> 'draft')"
        : SelectAsReferred;

    /// <summary>
    /// The versions @OrganisationId's referrals and registrations of person @Id made, for its history, numbered as that
    /// organisation reads them (PersonRecord.VersionAsSaid). A referral sent before versions were kept with it has none to give.
    /// </summary>
    public const string VersionsAsReferred = $"""
        SELECT {PersonRecord.AsReferredColumns}, {PersonRecord.VersionAsSaid} AS Version, rp.recorded_at AS UpdatedAt
        FROM {PersonRecord.SaidByOrganisation} rp
        WHERE rp.person_id = @Id AND rp.person_version IS NOT NULL
        """;
}

/// <summary>GET /fhir/Patient/{id}: the person as this caller may see them (see FhirPerson).</summary>
public static class ReadPatient
{
    [AllowRoles(Roles.Referrer, Roles.Coordinator, Roles.BedBureau, Roles.Manager)]
    [AllowPartnerScope("system/Patient.r")]
    public sealed record Query(long Id) : IQuery<FhirPerson>, IAudited;

    public sealed class Handler(Database database, Work work, PatientIds patientIds) : IQueryHandler<Query, FhirPerson>
    {
        public async ValueTask<FhirPerson> Handle(Query query, CancellationToken cancellationToken)
        {
            var actor = work.Scope.Actor;
            await using var connection = await database.OpenAsync(cancellationToken);
            var person = await connection.QuerySingleOrDefaultAsync<FhirPerson>(
                FhirPerson.SelectFor(actor) + " AND p.id = @Id", new { query.Id, OrganisationId = actor.OrganisationId ?? -1 })
                // Named by the caller's own id for the person (the one it sent), never the store's number.
                ?? throw new NotFound(patientIds.For(actor).Reference(query.Id));
            work.Scope.Touch("person", person.Id, person.Id);
            return person;
        }
    }
}

/// <summary>
/// GET /fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|…: the person by NHS number, if the caller may see them. Only by
/// NHS number: a search of everyone would read every person of the store (issue 14, scale of history), and a partner's own
/// referrals (ServiceRequest) already name their Patients.
/// </summary>
public static class SearchPatients
{
    public const string ByNhsNumberOnly = "Search Patients by NHS number: identifier=https://fhir.nhs.uk/Id/nhs-number|{NHS number}. "
        + "There is no list of every Patient; your referrals (ServiceRequest) name theirs.";

    [AllowRoles(Roles.Referrer, Roles.Coordinator, Roles.BedBureau, Roles.Manager)]
    [AllowPartnerScope("system/Patient.s")]
    public sealed record Query(string NhsNumber, int Count, int Offset) : IQuery<Page<FhirPerson>>, IAudited, IPageRequest
    {
        public bool WithTotal { get; init; } = true;
    }

    public sealed class Handler(Database database, Work work) : IQueryHandler<Query, Page<FhirPerson>>
    {
        public async ValueTask<Page<FhirPerson>> Handle(Query query, CancellationToken cancellationToken)
        {
            var actor = work.Scope.Actor;
            await using var connection = await database.OpenAsync(cancellationToken);
            // The NHS number is unique: the person's id first, so that SQLite reads what organisations said of that one person
            // (it plans a known id into the said-rows) instead of all of them, a cost that grew with the store's history
            // on every conditional create of a Patient.
            var personId = await connection.ExecuteScalarAsync<long?>("SELECT id FROM person WHERE nhs_number = @NhsNumber", new { query.NhsNumber });
            if (personId is null)
            {
                // Answered exactly as a person only another organisation knows is (an empty page, counted or not): a
                // difference would tell a partner that someone else has referred or registered the NHS number.
                return new Page<FhirPerson>(query.WithTotal ? 0 : null, []);
            }
            var parameters = new { OrganisationId = actor.OrganisationId ?? -1, PersonId = personId, query.Count, query.Offset };
            return await Page<FhirPerson>.ReadAsync(connection, query, FhirPerson.SelectFor(actor), " AND p.id = @PersonId", "p.id", parameters,
                person => work.Scope.Touch("person", person.Id, person.Id));
        }
    }
}
