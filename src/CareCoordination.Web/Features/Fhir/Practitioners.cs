using CareCoordination.Auth;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Mediator;

namespace CareCoordination.Features.Fhir;

/// <summary>
/// A member of staff as FHIR shows them: the Practitioner (the name colleagues know) and, with the same id, the
/// PractitionerRole (their role here and their organisation). Never the username, email or password hash.
/// </summary>
public sealed record FhirStaff
{
    public long Id { get; init; }
    public string Name { get; init; } = "";
    public string Role { get; init; } = "";
    public bool Active { get; init; }
    public long OrganisationId { get; init; }
    public string OrganisationCode { get; init; } = "";
    public string OrganisationName { get; init; } = "";

    public const string Select = """
        SELECT u.id AS Id, u.display_name AS Name, u.role AS Role, u.active AS Active,
               u.organisation_id AS OrganisationId, o.code AS OrganisationCode, o.name AS OrganisationName
        FROM staff_user u JOIN organisation o ON o.id = u.organisation_id
        WHERE 1 = 1
        """;

    /// <summary>
    /// A partner sees only its own organisation's staff: who works where elsewhere is not its business. Staff see
    /// everyone, as the app already shows them colleagues' names on every referral. Anyone else is "not found".
    /// </summary>
    public static string Visible(Actor actor) => actor.Kind == ActorKind.Staff || actor.Kind == ActorKind.System
        ? ""
        : " AND u.organisation_id = @OrganisationId";

    public static long Parameter(Actor actor) => actor.OrganisationId ?? -1;
}

/// <summary>The reads and searches of Practitioner and PractitionerRole share their row and their visibility.</summary>
internal static class StaffDirectory
{
    public static async Task<FhirStaff> ReadAsync(Database database, Actor actor, long id, string resourceType, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<FhirStaff>(FhirStaff.Select + FhirStaff.Visible(actor) + " AND u.id = @Id",
                new { Id = id, OrganisationId = FhirStaff.Parameter(actor) })
            ?? throw new NotFound($"{resourceType}/{id}");
    }

    public static async Task<Page<FhirStaff>> SearchAsync(Database database, Actor actor, IPageRequest page, string where, DynamicParameters parameters, CancellationToken cancellationToken)
    {
        parameters.Add("OrganisationId", FhirStaff.Parameter(actor));
        await using var connection = await database.OpenAsync(cancellationToken);
        return await Page<FhirStaff>.ReadAsync(connection, page, FhirStaff.Select, FhirStaff.Visible(actor) + where, "u.id", parameters, _ => { });
    }
}

// Staff names are not a person's record in the sense of the audit trail (DESIGN.md: the person referred), so
// these reads are not audited, like the rest of the directory.

/// <summary>GET /fhir/Practitioner/{id}.</summary>
public static class ReadPractitioner
{
    [AllowRoles(Roles.Referrer, Roles.Coordinator, Roles.BedBureau, Roles.Manager, Roles.Admin)]
    [AllowPartnerScope("system/Practitioner.r")]
    public sealed record Query(long Id) : IQuery<FhirStaff>;

    public sealed class Handler(Database database, Work work) : IQueryHandler<Query, FhirStaff>
    {
        public async ValueTask<FhirStaff> Handle(Query query, CancellationToken cancellationToken) =>
            await StaffDirectory.ReadAsync(database, work.Scope.Actor, query.Id, "Practitioner", cancellationToken);
    }
}

/// <summary>GET /fhir/Practitioner?name=…&amp;active=…: by a word of the name (starts with, any case).</summary>
public static class SearchPractitioners
{
    [AllowRoles(Roles.Referrer, Roles.Coordinator, Roles.BedBureau, Roles.Manager, Roles.Admin)]
    [AllowPartnerScope("system/Practitioner.s")]
    public sealed record Query(string? Name, bool? Active, int Count, int Offset) : IQuery<Page<FhirStaff>>, IPageRequest
    {
        public bool WithTotal { get; init; } = true;
    }

    public sealed class Handler(Database database, Work work) : IQueryHandler<Query, Page<FhirStaff>>
    {
        public async ValueTask<Page<FhirStaff>> Handle(Query query, CancellationToken cancellationToken)
        {
            var where = "";
            var parameters = new DynamicParameters(new { query.Count, query.Offset, Name = FhirText.Prefix(query.Name), query.Active });
            if (query.Name is not null)
            {
                where += " AND " + FhirText.WordStartsWith("u.display_name", "Name");
            }
            if (query.Active is not null)
            {
                where += " AND u.active = @Active";
            }
            return await StaffDirectory.SearchAsync(database, work.Scope.Actor, query, where, parameters, cancellationToken);
        }
    }
}

/// <summary>GET /fhir/PractitionerRole/{id}: the member of staff's role and organisation (same id as their Practitioner).</summary>
public static class ReadPractitionerRole
{
    [AllowRoles(Roles.Referrer, Roles.Coordinator, Roles.BedBureau, Roles.Manager, Roles.Admin)]
    [AllowPartnerScope("system/PractitionerRole.r")]
    public sealed record Query(long Id) : IQuery<FhirStaff>;

    public sealed class Handler(Database database, Work work) : IQueryHandler<Query, FhirStaff>
    {
        public async ValueTask<FhirStaff> Handle(Query query, CancellationToken cancellationToken) =>
            await StaffDirectory.ReadAsync(database, work.Scope.Actor, query.Id, "PractitionerRole", cancellationToken);
    }
}

/// <summary>GET /fhir/PractitionerRole?practitioner=…&amp;organization=…&amp;role=….</summary>
public static class SearchPractitionerRoles
{
    [AllowRoles(Roles.Referrer, Roles.Coordinator, Roles.BedBureau, Roles.Manager, Roles.Admin)]
    [AllowPartnerScope("system/PractitionerRole.s")]
    public sealed record Query(long? PractitionerId, long? OrganisationId, IReadOnlyList<string> StaffRoles, int Count, int Offset)
        : IQuery<Page<FhirStaff>>, IPageRequest
    {
        public bool WithTotal { get; init; } = true;
    }

    public sealed class Handler(Database database, Work work) : IQueryHandler<Query, Page<FhirStaff>>
    {
        public async ValueTask<Page<FhirStaff>> Handle(Query query, CancellationToken cancellationToken)
        {
            var where = "";
            var parameters = new DynamicParameters(new { query.Count, query.Offset, query.PractitionerId, OfOrganisation = query.OrganisationId });
            if (query.PractitionerId is not null)
            {
                where += " AND u.id = @PractitionerId";
            }
            if (query.OrganisationId is not null)
            {
                where += " AND u.organisation_id = @OfOrganisation";
            }
            if (query.StaffRoles.Count > 0)
            {
                where += $" AND u.role IN ({Sql.Literals(query.StaffRoles)})";
            }
            return await StaffDirectory.SearchAsync(database, work.Scope.Actor, query, where, parameters, cancellationToken);
        }
    }
}
