using CareCoordination.Auth;
using CareCoordination.Changes;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Mediator;

namespace CareCoordination.Features.Admin;

/// <summary>
/// Sign-in through the organisation's identity provider, as an administrator reviews it: the link requests
/// waiting for a decision (and those refused, which keep that identity out until approved after all), and
/// every account linked to an identity, with who linked it and when.
/// </summary>
public static class StaffSignInLinks
{
    [AllowRoles(Roles.Admin)]
    public sealed record Query : IQuery<Result>;

    public sealed record Result(IReadOnlyList<Request> Requests, IReadOnlyList<Link> Links, long AsOfSeq);

    public sealed record Request
    {
        public long Id { get; init; }
        public string Status { get; init; } = "";
        public string Issuer { get; init; } = "";
        public string Subject { get; init; } = "";
        public string Email { get; init; } = "";
        public string? Name { get; init; }
        public DateTimeOffset RequestedAt { get; init; }
        public DateTimeOffset LastAttemptAt { get; init; }
        public int Attempts { get; init; }
        public DateTimeOffset? DecidedAt { get; init; }
        public string? DecidedBy { get; init; }
        public string? DecisionReason { get; init; }
        public long StaffUserId { get; init; }
        public string Username { get; init; } = "";
        public string DisplayName { get; init; } = "";
        public string Role { get; init; } = "";
        public string Organisation { get; init; } = "";
        public bool AccountActive { get; init; }

        /// <summary>The account has been linked to an identity since (this one or another): approving would be refused.</summary>
        public bool AccountLinked { get; init; }
    }

    public sealed record Link
    {
        public long StaffUserId { get; init; }
        public string Username { get; init; } = "";
        public string DisplayName { get; init; } = "";
        public string Role { get; init; } = "";
        public string Organisation { get; init; } = "";
        public bool Active { get; init; }
        public string Issuer { get; init; } = "";
        public string Subject { get; init; } = "";
        public DateTimeOffset? LinkedAt { get; init; }
        public string? LinkedBy { get; init; }
    }

    public sealed class Handler(Database database, ChangeFeed feed) : IQueryHandler<Query, Result>
    {
        public async ValueTask<Result> Handle(Query query, CancellationToken cancellationToken)
        {
            var asOf = feed.Published;
            await using var connection = await database.OpenAsync(cancellationToken);
            var requests = await connection.QueryAsync<Request>(
                """
                SELECT r.id AS Id, r.status AS Status, r.issuer AS Issuer, r.subject AS Subject, r.email AS Email, r.name AS Name,
                       r.requested_at AS RequestedAt, r.last_attempt_at AS LastAttemptAt, r.attempts AS Attempts,
                       r.decided_at AS DecidedAt, d.display_name AS DecidedBy, r.decision_reason AS DecisionReason,
                       u.id AS StaffUserId, u.username AS Username, u.display_name AS DisplayName, u.role AS Role, o.name AS Organisation,
                       u.active AS AccountActive, u.oidc_subject IS NOT NULL AS AccountLinked
                FROM sign_in_link_request r
                JOIN staff_user u ON u.id = r.staff_user_id
                JOIN organisation o ON o.id = u.organisation_id
                LEFT JOIN staff_user d ON d.id = r.decided_by
                WHERE r.status IN ('pending', 'refused')
                """);
            var links = await connection.QueryAsync<Link>(
                """
                SELECT u.id AS StaffUserId, u.username AS Username, u.display_name AS DisplayName, u.role AS Role, o.name AS Organisation,
                       u.active AS Active, u.oidc_issuer AS Issuer, u.oidc_subject AS Subject, u.oidc_linked_at AS LinkedAt, b.display_name AS LinkedBy
                FROM staff_user u
                JOIN organisation o ON o.id = u.organisation_id
                LEFT JOIN staff_user b ON b.id = u.oidc_linked_by
                WHERE u.oidc_subject IS NOT NULL
                """);
            // Waiting first, longest waiting first; then the refused, latest decision first.
            var waiting = requests.Where(r => r.Status == "pending").OrderBy(r => r.RequestedAt);
            var refused = requests.Where(r => r.Status == "refused").OrderByDescending(r => r.DecidedAt);
            return new Result(
                waiting.Concat(refused).ToList(),
                links.OrderBy(l => l.DisplayName, StringComparer.Ordinal).ToList(),
                asOf);
        }
    }
}
