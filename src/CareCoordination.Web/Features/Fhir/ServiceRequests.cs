using CareCoordination.Auth;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Mediator;

namespace CareCoordination.Features.Fhir;

/// <summary>A referral as the FHIR ServiceRequest shows it: everything the referrer sent, and where it is now.</summary>
public sealed record FhirReferral : ReferralContent
{
    public long Id { get; init; }
    public string Status { get; init; } = "";
    public int Version { get; init; }
    public string? OutcomeReason { get; init; }
    public DateTimeOffset? SubmittedAt { get; init; }
    public DateTimeOffset UpdatedAt { get; init; }
    public string? SenderSystem { get; init; }
    public string? SenderValue { get; init; }
    public long OrganisationId { get; init; }
    public string OrganisationCode { get; init; } = "";
    public string OrganisationName { get; init; } = "";
    public long PersonId { get; init; }
    public string NhsNumber { get; init; } = "";
    public string PersonName { get; init; } = "";

    /// <summary>
    /// Names the referral <c>r</c>, its person <c>p</c>, what it said about them <c>rp</c> and its organisation <c>o</c>. The
    /// subject is named as the referral named them: its versions are read by its organisation. Drafts are not referrals yet.
    /// </summary>
    public const string Select = $"""
        SELECT r.id AS Id, r.status AS Status, r.version AS Version,
               r.outcome_reason AS OutcomeReason, r.submitted_at AS SubmittedAt, r.updated_at AS UpdatedAt,
               r.sender_system AS SenderSystem, r.sender_value AS SenderValue,
               r.organisation_id AS OrganisationId, o.code AS OrganisationCode, o.name AS OrganisationName,
               r.person_id AS PersonId, rp.nhs_number AS NhsNumber, rp.given_name || ' ' || rp.family_name AS PersonName,
               {ReferralContent.Columns}
        FROM referral r
        JOIN person p ON p.id = r.person_id
        JOIN referral_person rp ON rp.referral_id = r.id
        JOIN organisation o ON o.id = r.organisation_id
        WHERE r.status <> 'draft'
        """;
}

/// <summary>GET /fhir/ServiceRequest/{id}: one referral, if it is the caller's organisation's (else not found).</summary>
public static class ReadServiceRequest
{
    [AllowRoles(Roles.Referrer, Roles.Coordinator, Roles.BedBureau, Roles.Manager)]
    [AllowPartnerScope("system/ServiceRequest.r")]
    public sealed record Query(long Id) : IQuery<FhirReferral>, IAudited;

    public sealed class Handler(Database database, Work work) : IQueryHandler<Query, FhirReferral>
    {
        public async ValueTask<FhirReferral> Handle(Query query, CancellationToken cancellationToken)
        {
            await using var connection = await database.OpenAsync(cancellationToken);
            var referral = await connection.QuerySingleOrDefaultAsync<FhirReferral>(FhirReferral.Select + " AND r.id = @Id", new { query.Id });
            if (referral is null || !ReferralAccess.MaySee(work.Scope.Actor, referral.OrganisationId))
            {
                throw new NotFound($"ServiceRequest/{query.Id}");
            }
            work.Scope.Touch("referral", referral.Id, referral.PersonId);
            return referral;
        }
    }
}

/// <summary>GET /fhir/ServiceRequest?patient.identifier=…&amp;status=…: the caller's organisation's referrals, oldest first.</summary>
public static class SearchServiceRequests
{
    [AllowRoles(Roles.Referrer, Roles.Coordinator, Roles.BedBureau, Roles.Manager)]
    [AllowPartnerScope("system/ServiceRequest.s")]
    public sealed record Query(string? NhsNumber, IReadOnlyList<string> ReferralStatuses, SubmitReferral.SenderIdentifier? Identifier, long? PersonId,
        int Count, int Offset) : IQuery<Page<FhirReferral>>, IAudited, IPageRequest
    {
        public IReadOnlyList<DateBound> LastUpdated { get; init; } = [];

        public bool WithTotal { get; init; } = true;
    }

    public static readonly string[] Parameters = ["patient.identifier", "status", "identifier", "patient", "subject", "_lastUpdated"];

    /// <summary>The query a search (or a conditional create's If-None-Exist) asks for.</summary>
    public static Query From(FhirSearch search, PatientIdSpace patients)
    {
        var nhsNumber = search.Token("patient.identifier", FhirMapping.NhsNumberSystem, FhirEndpoints.IsNhsNumberShape, "an NHS number (10 digits)");
        var statuses = search.Codes("status", FhirMapping.ServiceRequestStatusCodes).SelectMany(FhirMapping.ReferralStatusesFor).ToList();
        var identifier = search.AnyToken("identifier") is { } token ? new SubmitReferral.SenderIdentifier(token.System ?? "", token.Code) : null;
        var personId = search.PatientReference("patient", patients) ?? search.PatientReference("subject", patients);
        return new Query(nhsNumber, statuses, identifier, personId, search.Count, search.Offset)
        {
            LastUpdated = search.Dates("_lastUpdated"),
            WithTotal = search.WithTotal,
        };
    }

    public sealed class Handler(Database database, Work work) : IQueryHandler<Query, Page<FhirReferral>>
    {
        public async ValueTask<Page<FhirReferral>> Handle(Query query, CancellationToken cancellationToken)
        {
            var actor = work.Scope.Actor;
            var where = "";
            if (!ReferralAccess.SeesEveryOrganisation(actor))
            {
                where += " AND r.organisation_id = @OrganisationId";
            }
            if (query.NhsNumber is not null)
            {
                where += " AND p.nhs_number = @NhsNumber";
            }
            if (query.Identifier is not null)
            {
                // A token without a system (|value or value) matches the value in any system.
                where += query.Identifier.System.Length > 0 ? " AND r.sender_system = @SenderSystem AND r.sender_value = @SenderValue" : " AND r.sender_value = @SenderValue";
            }
            if (query.PersonId is not null)
            {
                where += " AND r.person_id = @PersonId";
            }
            if (query.ReferralStatuses.Count > 0)
            {
                where += $" AND r.status IN ({Sql.Literals(query.ReferralStatuses)})";
            }
            var parameters = new DynamicParameters(new
            {
                OrganisationId = actor.OrganisationId ?? -1, query.NhsNumber, SenderSystem = query.Identifier?.System, SenderValue = query.Identifier?.Value,
                query.PersonId, query.Count, query.Offset,
            });
            where += FhirSearch.DateWhere("r.updated_at", query.LastUpdated, parameters);
            void Touch(FhirReferral referral) => work.Scope.Touch("referral", referral.Id, referral.PersonId);
            // A conditional create's search, inside the command that creates (alone or in a transaction Bundle), reads in its
            // transaction: it finds what that command has written, and, after the condition's lock (FhirWriter), what the
            // request that held the lock before it committed.
            if (Work.Current is { Connection: { } inside, Transaction: { } transaction })
            {
                return await Page<FhirReferral>.ReadAsync(inside, query, FhirReferral.Select, where, "r.id", parameters, Touch, transaction: transaction);
            }
            await using var connection = await database.OpenAsync(cancellationToken);
            return await Page<FhirReferral>.ReadAsync(connection, query, FhirReferral.Select, where, "r.id", parameters, Touch);
        }
    }
}
