using CareCoordination.Auth;
using CareCoordination.Domain;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Referrals;

/// <summary>
/// Looks the NHS number up as it is typed, so a referrer does not start a second referral by mistake. The coordination
/// centre and the bed bureau are shown the whole record and every open referral. A referrer is shown what their own
/// organisation last said about the person (filled into the form) and their own open referrals, and of another
/// organisation's open referral only that there is one. Reading a person's record is audited.
/// </summary>
public static class FindPerson
{
    [AllowRoles(Roles.Referrer, Roles.Coordinator, Roles.BedBureau)]
    public sealed record Query(string NhsNumber) : IQuery<Result?>, IAudited;

    /// <summary>Person is null when the caller's organisation has never referred them; the whole answer is null when there is nothing the caller may learn.</summary>
    public sealed record Result(PersonRecord? Person, OpenReferrals Open);

    public sealed class Validator : AbstractValidator<Query>
    {
        public Validator() => RuleFor(q => q.NhsNumber).Must(Domain.NhsNumber.IsValid).WithMessage("This is not a valid NHS number.");
    }

    public sealed class Handler(Database database, Work work) : IQueryHandler<Query, Result?>
    {
        public async ValueTask<Result?> Handle(Query query, CancellationToken cancellationToken)
        {
            var actor = work.Scope.Actor;
            await using var connection = await database.OpenAsync(cancellationToken);
            var personId = await connection.ExecuteScalarAsync<long?>(
                "SELECT id FROM person WHERE nhs_number = @nhsNumber", new { nhsNumber = Domain.NhsNumber.Normalise(query.NhsNumber) });
            if (personId is null)
            {
                return null;
            }
            var person = await connection.QuerySingleOrDefaultAsync<PersonRecord>(ReferralAccess.SeesEveryOrganisation(actor)
                // The whole record of a person someone has referred: one only registered (FHIR Patient create) is its registrant's business.
                ? $"SELECT {PersonRecord.Columns} FROM person p WHERE p.id = @personId AND EXISTS (SELECT 1 FROM referral v WHERE v.person_id = p.id AND v.status <> 'draft')"
                : $"SELECT {PersonRecord.AsReferredColumns} FROM person p {PersonRecord.LatestAsReferredBy} WHERE p.id = @personId",
                new { personId, OrganisationId = actor.OrganisationId ?? -1 });
            var open = OpenReferrals.For(actor, await ReferralAccess.OpenReferralsAsync(connection, null, personId.Value));
            if (person is null && !open.Any)
            {
                return null;
            }
            work.Scope.Touch("person", personId.Value, personId);
            return new Result(person, open);
        }
    }
}
