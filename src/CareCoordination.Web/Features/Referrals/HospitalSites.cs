using CareCoordination.Auth;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Mediator;

namespace CareCoordination.Features.Referrals;

/// <summary>
/// The hospital sites of a referring trust (migration 0036), and which one a referral's person is in: the discharge sitrep
/// is returned by trust and site. A site is known by its ODS site code, as a partner's message names it (docs/fhir.md).
/// </summary>
public static class HospitalSites
{
    public sealed record Site(string Code, string Name);

    /// <summary>The signed-in referrer's organisation's active sites, for the form to offer.</summary>
    [AllowRoles(Roles.Referrer)]
    public sealed record Query : IQuery<IReadOnlyList<Site>>;

    public sealed class Handler(Database database, Work work) : IQueryHandler<Query, IReadOnlyList<Site>>
    {
        public async ValueTask<IReadOnlyList<Site>> Handle(Query query, CancellationToken cancellationToken)
        {
            if (work.Scope.Actor.OrganisationId is not { } organisationId)
            {
                return [];
            }
            await using var connection = await database.OpenAsync(cancellationToken);
            return (await connection.QueryAsync<Site>(new CommandDefinition(
                "SELECT code AS Code, name AS Name FROM hospital_site WHERE organisation_id = @organisationId AND active ORDER BY name",
                new { organisationId }, cancellationToken: cancellationToken))).ToList();
        }
    }

    /// <summary>
    /// The site a hospital referral names, as one of the referring organisation's active sites: the one whose code it gives,
    /// or with none given the organisation's only site, if it has one. A code of a closed site of its own, or of another
    /// organisation's site, is an error on the form's field; a code no site here has (a trust whose sites an administrator
    /// has not yet added) is not recorded, and the sitrep counts the referral under "site not recorded". Chosen among the
    /// <paramref name="candidates"/> that <see cref="CandidatesSql"/> read for the same code.
    /// </summary>
    internal static long? Resolve(IReadOnlyList<Candidate> candidates, long organisationId, string? code)
    {
        if (CodeOf(code) is not { } trimmed)
        {
            return candidates.Count == 1 ? candidates[0].Id : null;
        }
        if (candidates.Count == 0)
        {
            return null;
        }
        var named = candidates[0];
        var problem = named.OrganisationId != organisationId ? $"'{trimmed}' is a hospital site of another organisation. Choose the site the person is in."
            : !named.Active ? $"{named.Name} ({trimmed}) is closed. Choose the site the person is in."
            : null;
        return problem is null ? named.Id : throw new ValidationFailed(new Dictionary<string, string[]>
        {
            [$"{nameof(SubmitReferral.Command.Form)}.{nameof(ReferralForm.HospitalSite)}"] = [problem],
        });
    }

    /// <summary>
    /// The sites <see cref="Resolve"/> chooses among, as one query (parameters @organisationId and @HospitalSiteCode, the code
    /// as <see cref="CodeOf"/> gives it): the site with the code, or with none given the organisation's active sites. A
    /// submission reads it with its locks, in its first round trip on PostgreSQL (issue 14), before it knows it needs it.
    /// </summary>
    internal static string CandidatesSql(string? code) => CodeOf(code) is null
        ? $"{SelectCandidate} WHERE organisation_id = @organisationId AND active"
        : $"{SelectCandidate} WHERE code = @HospitalSiteCode";

    /// <summary>A site code as sites are kept: trimmed and upper case; null for none.</summary>
    internal static string? CodeOf(string? code) => string.IsNullOrWhiteSpace(code) ? null : code.Trim().ToUpperInvariant();

    private const string SelectCandidate = "SELECT id AS Id, organisation_id AS OrganisationId, name AS Name, active AS Active FROM hospital_site";

    internal sealed record Candidate
    {
        public long Id { get; init; }
        public long OrganisationId { get; init; }
        public string Name { get; init; } = "";
        public bool Active { get; init; }
    }
}
