using System.Text.Json;
using CareCoordination.Auth;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Mediator;

namespace CareCoordination.Features.Referrals;

/// <summary>Loads a draft back into the form, for its own organisation only.</summary>
public static class OpenDraft
{
    [AllowRoles(Roles.Referrer)]
    public sealed record Query(long DraftId) : IQuery<Result>;

    public sealed record Result(long DraftId, int Version, ReferralForm Form, string AuthorName, DateTimeOffset UpdatedAt);

    private sealed record Row
    {
        public int Version { get; init; }
        public string Form { get; init; } = "";
        public string AuthorName { get; init; } = "";
        public DateTimeOffset UpdatedAt { get; init; }
    }

    public sealed class Handler(Database database, Work work) : IQueryHandler<Query, Result>
    {
        public async ValueTask<Result> Handle(Query query, CancellationToken cancellationToken)
        {
            await using var connection = await database.OpenAsync(cancellationToken);
            var row = await connection.QuerySingleOrDefaultAsync<Row>(
                """
                SELECT version AS Version, form AS Form, author_name AS AuthorName, updated_at AS UpdatedAt
                FROM referral_draft WHERE id = @DraftId AND organisation_id = @organisationId
                """, new { query.DraftId, organisationId = work.Scope.Actor.OrganisationId })
                ?? throw new NotFound($"Draft {query.DraftId}");
            var form = JsonSerializer.Deserialize<ReferralForm>(row.Form, JsonDefaults.Options) ?? new ReferralForm();
            return new Result(query.DraftId, row.Version, form, row.AuthorName, row.UpdatedAt);
        }
    }
}
