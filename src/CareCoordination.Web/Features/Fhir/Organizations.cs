using CareCoordination.Auth;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Mediator;

namespace CareCoordination.Features.Fhir;

/// <summary>An organisation as the FHIR Organization shows it: who it is, by ODS code, and what kind.</summary>
public sealed record FhirOrganisation
{
    public long Id { get; init; }
    public string Code { get; init; } = "";
    public string Name { get; init; } = "";
    public string Kind { get; init; } = "";
    public string? Locality { get; init; }
    public bool Active { get; init; }

    public const string Select = """
        SELECT o.id AS Id, o.code AS Code, o.name AS Name, o.kind AS Kind, o.locality AS Locality, o.active AS Active
        FROM organisation o
        WHERE 1 = 1
        """;
}

/// <summary>
/// GET /fhir/Organization/{id}. The directory of organisations is not personal data: every partner with the scope and
/// every member of staff sees all of it, and its reads are not audited.
/// </summary>
public static class ReadOrganization
{
    [AllowRoles(Roles.Referrer, Roles.Coordinator, Roles.BedBureau, Roles.Manager, Roles.Admin)]
    [AllowPartnerScope("system/Organization.r")]
    public sealed record Query(long Id) : IQuery<FhirOrganisation>;

    public sealed class Handler(Database database) : IQueryHandler<Query, FhirOrganisation>
    {
        public async ValueTask<FhirOrganisation> Handle(Query query, CancellationToken cancellationToken)
        {
            await using var connection = await database.OpenAsync(cancellationToken);
            return await connection.QuerySingleOrDefaultAsync<FhirOrganisation>(FhirOrganisation.Select + " AND o.id = @Id", new { query.Id })
                ?? throw new NotFound($"Organization/{query.Id}");
        }
    }
}

/// <summary>GET /fhir/Organization?identifier=…&amp;type=…&amp;name=…: the directory, in id order.</summary>
public static class SearchOrganizations
{
    [AllowRoles(Roles.Referrer, Roles.Coordinator, Roles.BedBureau, Roles.Manager, Roles.Admin)]
    [AllowPartnerScope("system/Organization.s")]
    public sealed record Query(string? OdsCode, IReadOnlyList<string> Kinds, string? NameStartsWith, int Count, int Offset) : IQuery<Page<FhirOrganisation>>, IPageRequest
    {
        public bool WithTotal { get; init; } = true;
    }

    public sealed class Handler(Database database) : IQueryHandler<Query, Page<FhirOrganisation>>
    {
        public async ValueTask<Page<FhirOrganisation>> Handle(Query query, CancellationToken cancellationToken)
        {
            var where = "";
            if (query.OdsCode is not null)
            {
                where += " AND o.code = @OdsCode";
            }
            if (query.Kinds.Count > 0)
            {
                where += $" AND o.kind IN ({Sql.Literals(query.Kinds)})";
            }
            if (query.NameStartsWith is not null)
            {
                where += " AND " + FhirText.StartsWith("o.name", "Name");
            }
            var parameters = new { query.OdsCode, Name = FhirText.Prefix(query.NameStartsWith), query.Count, query.Offset };
            await using var connection = await database.OpenAsync(cancellationToken);
            return await Page<FhirOrganisation>.ReadAsync(connection, query, FhirOrganisation.Select, where, "o.id", parameters, _ => { });
        }
    }
}
