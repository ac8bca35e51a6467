using CareCoordination.Auth;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Referrals;

/// <summary>
/// The referring organisation's own referrals and drafts: where each one is, who has it, how long it
/// has waited, and what was decided. Each names the person as that referral did. The page keeps it current from the change feed.
/// </summary>
public static class MyReferrals
{
    public enum Show { Open, NeedsYou, Closed, All }

    /// <summary>Sort is a key from <see cref="Sorts"/>, never SQL: the grid's column names are mapped through it.</summary>
    [AllowRoles(Roles.Referrer)]
    public sealed record Query(Show Show = Show.Open, string? Search = null, string? Sort = null, int Skip = 0, int Take = 25) : IQuery<Result>;

    public sealed record Result(IReadOnlyList<Row> Referrals, int Total, IReadOnlyList<Draft> Drafts);

    public sealed record Row
    {
        public long Id { get; init; }
        public string PersonName { get; init; } = "";
        public string NhsNumber { get; init; } = "";
        public string Status { get; init; } = "";
        public bool EarlyRequest { get; init; }
        public string? Queue { get; init; }
        public string? HeldBy { get; init; }
        public DateTimeOffset SubmittedAt { get; init; }
        public DateTimeOffset UpdatedAt { get; init; }
        public string? Decision { get; init; }

        /// <summary>Still with the coordination centre or bed bureau: the waiting clock runs.</summary>
        public bool IsWaiting => Status is "submitted" or "in-triage" or "awaiting-information" or "redirected";
    }

    public sealed record Draft
    {
        public long Id { get; init; }
        public string PersonLabel { get; init; } = "";
        public string AuthorName { get; init; } = "";
        public DateTimeOffset UpdatedAt { get; init; }
    }

    public static IReadOnlyDictionary<string, string> Sorts { get; } = new Dictionary<string, string>
    {
        ["SubmittedAt desc"] = "r.submitted_at DESC, r.id DESC",
        ["SubmittedAt asc"] = "r.submitted_at, r.id",
        ["UpdatedAt desc"] = "r.updated_at DESC, r.id DESC",
        ["UpdatedAt asc"] = "r.updated_at, r.id",
        ["PersonName asc"] = "rp.family_name, rp.given_name, r.id",
        ["PersonName desc"] = "rp.family_name DESC, rp.given_name DESC, r.id",
        ["Status asc"] = "r.status, r.id",
        ["Status desc"] = "r.status DESC, r.id",
    };

    public sealed class Validator : AbstractValidator<Query>
    {
        public Validator()
        {
            RuleFor(q => q.Sort).Must(s => s is null || Sorts.ContainsKey(s)).WithMessage("Sort by one of the columns shown.");
            RuleFor(q => q.Skip).GreaterThanOrEqualTo(0);
            RuleFor(q => q.Take).InclusiveBetween(1, 200);
            RuleFor(q => q.Search).MaximumLength(100);
        }
    }

    public sealed class Handler(Database database, Work work) : IQueryHandler<Query, Result>
    {
        public async ValueTask<Result> Handle(Query query, CancellationToken cancellationToken)
        {
            var organisationId = work.Scope.Actor.OrganisationId;
            var statuses = query.Show switch
            {
                Show.Open => ReferralAccess.Open,
                Show.NeedsYou => ["awaiting-information"],
                Show.Closed => ["placed", "completed", "declined", "cancelled"],
                _ => null,
            };
            var search = string.IsNullOrWhiteSpace(query.Search) ? null : query.Search.Trim();
            var digits = search is null ? null : new string(search.Where(char.IsAsciiDigit).ToArray());
            var where = $"""
                WHERE r.organisation_id = @organisationId
                {(statuses is null ? "" : $"AND r.status IN ({Sql.Literals(statuses)})")}
                {(search is null ? "" : "AND (lower(rp.family_name) LIKE @name OR lower(rp.given_name) LIKE @name OR (@digits <> '' AND rp.nhs_number LIKE @nhs))")}
                """;
            var parameters = new
            {
                organisationId, name = $"{search?.ToLowerInvariant()}%", digits, nhs = $"{digits}%",
                query.Skip, query.Take,
            };
            await using var connection = await database.OpenAsync(cancellationToken);
            var total = await connection.ExecuteScalarAsync<int>($"SELECT COUNT(*) FROM referral r JOIN referral_person rp ON rp.referral_id = r.id {where}", parameters);
            // The latest task says where it is now; a closed task's decision says what happened.
            var rows = await connection.QueryAsync<Row>(
                $"""
                SELECT r.id AS Id, rp.given_name || ' ' || rp.family_name AS PersonName, rp.nhs_number AS NhsNumber, r.status AS Status,
                       r.early_request AS EarlyRequest,
                       t.queue AS Queue, u.display_name AS HeldBy, COALESCE(r.submitted_at, r.created_at) AS SubmittedAt, r.updated_at AS UpdatedAt,
                       CASE WHEN r.status IN ('declined', 'cancelled') THEN r.outcome_reason ELSE t.decision END AS Decision
                FROM referral r
                JOIN referral_person rp ON rp.referral_id = r.id
                LEFT JOIN triage_task t ON t.id = (SELECT MAX(id) FROM triage_task WHERE referral_id = r.id)
                LEFT JOIN staff_user u ON u.id = t.owner_user_id AND t.status IN ('in-progress', 'on-hold')
                {where}
                ORDER BY {Sorts[query.Sort ?? "SubmittedAt desc"]}
                LIMIT @Take OFFSET @Skip
                """, parameters);
            var drafts = await connection.QueryAsync<Draft>(
                """
                SELECT id AS Id, person_label AS PersonLabel, author_name AS AuthorName, updated_at AS UpdatedAt
                FROM referral_draft WHERE organisation_id = @organisationId ORDER BY updated_at DESC
                """, new { organisationId });
            return new Result(rows.ToList(), total, drafts.ToList());
        }
    }
}
