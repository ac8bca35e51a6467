using CareCoordination.Auth;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Mediator;

namespace CareCoordination.Features.Admin;

/// <summary>
/// Every partner system registered to send referrals over FHIR, with its organisation and the standing lawful basis
/// for sharing recorded from its data-sharing agreement (used for a referral that carries no consent of its own).
/// </summary>
public static class PartnerClients
{
    [AllowRoles(Roles.Admin)]
    public sealed record Query : IQuery<IReadOnlyList<Row>>;

    public sealed record Row
    {
        public long Id { get; init; }
        public string ClientId { get; init; } = "";
        public string Name { get; init; } = "";
        public string Organisation { get; init; } = "";
        public string OrganisationCode { get; init; } = "";
        public bool Active { get; init; }
        public string? DefaultLawfulBasis { get; init; }
        public string? DataSharingAgreement { get; init; }
    }

    public sealed class Handler(Database database) : IQueryHandler<Query, IReadOnlyList<Row>>
    {
        public async ValueTask<IReadOnlyList<Row>> Handle(Query query, CancellationToken cancellationToken)
        {
            await using var connection = await database.OpenAsync(cancellationToken);
            var rows = await connection.QueryAsync<Row>(new CommandDefinition(
                """
                SELECT pc.id AS Id, pc.client_id AS ClientId, pc.name AS Name, o.name AS Organisation, o.code AS OrganisationCode, pc.active AS Active,
                       pc.default_lawful_basis AS DefaultLawfulBasis, pc.data_sharing_agreement AS DataSharingAgreement
                FROM partner_client pc JOIN organisation o ON o.id = pc.organisation_id
                ORDER BY o.name, pc.client_id
                """, cancellationToken: cancellationToken));
            return [.. rows];
        }
    }
}
