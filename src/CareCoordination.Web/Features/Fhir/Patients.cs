using CareCoordination.Auth;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Mediator;

namespace CareCoordination.Features.Fhir;

/// <summary>A person as the FHIR Patient shows them: the store's record, with its version.</summary>
public sealed record FhirPerson : PersonRecord
{
    public int Version { get; init; }
    public DateTimeOffset UpdatedAt { get; init; }

    public const string Select = $"""
        SELECT {PersonRecord.Columns}, p.version AS Version, p.updated_at AS UpdatedAt
        FROM person p
        WHERE 1 = 1
        """;

    /// <summary>
    /// A caller that does not see every organisation sees a person only while its organisation has referred
    /// them: anyone else is "not found", so that a partner cannot probe who else is known here.
    /// </summary>
    public static string Visible(Actor actor) => ReferralAccess.SeesEveryOrganisation(actor)
        ? " AND EXISTS (SELECT 1 FROM referral v WHERE v.person_id = p.id AND v.status <> 'draft')"
        : " AND EXISTS (SELECT 1 FROM referral v WHERE v.person_id = p.id AND v.status <> 'draft' AND v.organisation_id = @OrganisationId)";
}

/// <summary>GET /fhir/Patient/{id}.</summary>
public static class ReadPatient
{
    [AllowRoles(Roles.Referrer, Roles.Coordinator, Roles.BedBureau, Roles.Manager)]
    [AllowPartnerScope("system/Patient.r")]
    public sealed record Query(long Id) : IQuery<FhirPerson>, IAudited;

    public sealed class Handler(Database database, Work work) : IQueryHandler<Query, FhirPerson>
    {
        public async ValueTask<FhirPerson> Handle(Query query, CancellationToken cancellationToken)
        {
            var actor = work.Scope.Actor;
            await using var connection = await database.OpenAsync(cancellationToken);
            var person = await connection.QuerySingleOrDefaultAsync<FhirPerson>(
                FhirPerson.Select + FhirPerson.Visible(actor) + " AND p.id = @Id", new { query.Id, OrganisationId = actor.OrganisationId ?? -1 })
                ?? throw new NotFound($"Patient/{query.Id}");
            work.Scope.Touch("person", person.Id, person.Id);
            return person;
        }
    }
}

/// <summary>GET /fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|…: the person by NHS number, if the caller may see them.</summary>
public static class SearchPatients
{
    [AllowRoles(Roles.Referrer, Roles.Coordinator, Roles.BedBureau, Roles.Manager)]
    [AllowPartnerScope("system/Patient.s")]
    public sealed record Query(string? NhsNumber, int Count, int Offset) : IQuery<Page<FhirPerson>>, IAudited;

    public sealed class Handler(Database database, Work work) : IQueryHandler<Query, Page<FhirPerson>>
    {
        public async ValueTask<Page<FhirPerson>> Handle(Query query, CancellationToken cancellationToken)
        {
            var actor = work.Scope.Actor;
            var where = FhirPerson.Visible(actor) + (query.NhsNumber is null ? "" : " AND p.nhs_number = @NhsNumber");
            var parameters = new { OrganisationId = actor.OrganisationId ?? -1, query.NhsNumber, query.Count, query.Offset };
            await using var connection = await database.OpenAsync(cancellationToken);
            return await Page<FhirPerson>.ReadAsync(connection, FhirPerson.Select, where, "p.id", parameters, person => work.Scope.Touch("person", person.Id, person.Id));
        }
    }
}
