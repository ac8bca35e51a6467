using System.Data.Common;
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
    /// The site a hospital referral names, as one of the referring organisation's active sites: the one whose code it gives
    /// (a code of no such site is an error on the form's field), or with none given the organisation's only site, if it has
    /// one; otherwise none (the sitrep counts it under "site not recorded").
    /// </summary>
    internal static async Task<long?> ResolveAsync(DbConnection connection, DbTransaction transaction, long organisationId, string? code)
    {
        var sites = (await connection.QueryAsync<(long Id, string Code)>(
            "SELECT id, code FROM hospital_site WHERE organisation_id = @organisationId AND active",
            new { organisationId }, transaction)).ToList();
        if (string.IsNullOrWhiteSpace(code))
        {
            return sites.Count == 1 ? sites[0].Id : null;
        }
        var trimmed = code.Trim();
        foreach (var site in sites)
        {
            if (string.Equals(site.Code, trimmed, StringComparison.OrdinalIgnoreCase))
            {
                return site.Id;
            }
        }
        throw new ValidationFailed(new Dictionary<string, string[]>
        {
            [$"{nameof(SubmitReferral.Command.Form)}.{nameof(ReferralForm.HospitalSite)}"] = [$"'{trimmed}' is not a hospital site of your organisation. Choose the site the person is in."],
        });
    }
}
