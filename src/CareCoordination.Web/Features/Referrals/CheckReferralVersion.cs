using CareCoordination.Auth;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Mediator;

namespace CareCoordination.Features.Referrals;

/// <summary>
/// An update's precondition (FHIR If-Match, a message's meta.versionId), checked before anything the update sends, as
/// FHIR servers check it: a referral changed since the caller read it is 412, whatever else is wrong with the update.
/// The update's own command checks the version again in its transaction, where a change made in between is caught.
/// Only a referral the caller may see has a version to compare: anyone else's is not found.
/// </summary>
public static class CheckReferralVersion
{
    [AllowRoles(Roles.Referrer, Roles.Coordinator, Roles.BedBureau)]
    [AllowPartnerScope("system/ServiceRequest.u")]
    public sealed record Query(long ReferralId, int ExpectedVersion) : IQuery<Unit>;

    public static PreconditionFailed Stale(int current, int expected) =>
        new($"The referral is at version {current}, not {expected}: it changed after you read it. Read it again, then decide.");

    /// <summary>A command's own check, on the referral as its transaction read it: 412 unless it is at the version named, if one was.</summary>
    public static void Require(ReferralRow referral, int? expected)
    {
        if (expected is { } version && version != referral.Version)
        {
            throw Stale(referral.Version, version);
        }
    }

    public sealed class Handler(Database database, Work work) : IQueryHandler<Query, Unit>
    {
        public async ValueTask<Unit> Handle(Query query, CancellationToken cancellationToken)
        {
            var scope = work.Scope;
            // Inside a transaction Bundle or a message, the command's own transaction sees what its earlier entries did.
            var referral = scope.Transaction is { } transaction
                ? await ReferralAccess.FindAsync(scope.Connection!, transaction, query.ReferralId, scope.Actor)
                : await FindAsync(query.ReferralId, scope.Actor, cancellationToken);
            Require(referral, query.ExpectedVersion);
            return Unit.Value;
        }

        private async Task<ReferralRow> FindAsync(long referralId, Actor actor, CancellationToken cancellationToken)
        {
            await using var connection = await database.OpenAsync(cancellationToken);
            return await ReferralAccess.FindAsync(connection, null, referralId, actor);
        }
    }
}
