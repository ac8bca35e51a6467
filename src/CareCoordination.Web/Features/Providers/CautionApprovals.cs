using CareCoordination.Auth;
using CareCoordination.Changes;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Mediator;

namespace CareCoordination.Features.Providers;

/// <summary>
/// The managers' Approvals list: every placement waiting for a decision under a provider's amber caution (while its
/// referral is still being worked), oldest first, and what was decided in the last fortnight. The page keeps it
/// current from the change feed.
/// </summary>
public static class CautionApprovals
{
    [AllowRoles(Roles.Manager)]
    public sealed record Query : IQuery<Result>;

    public sealed record Result(IReadOnlyList<Row> Waiting, IReadOnlyList<Row> Decided, long AsOfSeq);

    public sealed record Row
    {
        public long Id { get; init; }
        public long ReferralId { get; init; }
        public string PersonName { get; init; } = "";
        public string Organisation { get; init; } = "";
        public string Provider { get; init; } = "";
        public string Caution { get; init; } = "";
        public string? CautionNote { get; init; }

        /// <summary>Null: the provider's beds.</summary>
        public string? ServiceName { get; init; }
        public string Reason { get; init; } = "";
        public string RequestedBy { get; init; } = "";
        public DateTimeOffset RequestedAt { get; init; }
        public string Status { get; init; } = "";
        public string? DecidedBy { get; init; }
        public DateTimeOffset? DecidedAt { get; init; }
        public string? DecisionNote { get; init; }
    }

    private static readonly TimeSpan Recent = TimeSpan.FromDays(14);

    public sealed class Handler(Database database, ChangeFeed feed, Work work) : IQueryHandler<Query, Result>
    {
        public async ValueTask<Result> Handle(Query query, CancellationToken cancellationToken)
        {
            var asOf = feed.Published;
            await using var connection = await database.OpenAsync(cancellationToken);
            var rows = (await connection.QueryAsync<Row>(
                $"""
                SELECT a.id AS Id, a.referral_id AS ReferralId, p.given_name || ' ' || p.family_name AS PersonName, ro.name AS Organisation,
                       o.name AS Provider, o.caution AS Caution, o.caution_note AS CautionNote, s.name AS ServiceName, a.reason AS Reason,
                       a.requested_by_name AS RequestedBy, a.requested_at AS RequestedAt, a.status AS Status,
                       a.decided_by_name AS DecidedBy, a.decided_at AS DecidedAt, a.decision_note AS DecisionNote
                FROM caution_approval a
                JOIN referral r ON r.id = a.referral_id
                JOIN person p ON p.id = r.person_id
                JOIN organisation ro ON ro.id = r.organisation_id
                JOIN organisation o ON o.id = a.provider_id
                LEFT JOIN service s ON s.id = a.service_id
                WHERE (a.status = 'requested' AND r.status IN ({Sql.Literals(ReferralAccess.Open)})) OR a.decided_at >= @since
                ORDER BY a.requested_at, a.id
                """, new { since = work.Scope.Now - Recent })).ToList();
            return new Result(
                [.. rows.Where(r => r.Status == "requested")],
                [.. rows.Where(r => r.Status != "requested").OrderByDescending(r => r.DecidedAt)],
                asOf);
        }
    }
}
