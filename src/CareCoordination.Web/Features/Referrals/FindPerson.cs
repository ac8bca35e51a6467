using CareCoordination.Auth;
using CareCoordination.Domain;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Referrals;

/// <summary>
/// Looks the NHS number up as it is typed: a person already known fills the form in, and their open
/// referrals show before a second one is started. Reading a person's record is audited.
/// </summary>
public static class FindPerson
{
    [AllowRoles(Roles.Referrer, Roles.Coordinator, Roles.BedBureau)]
    public sealed record Query(string NhsNumber) : IQuery<Result?>, IAudited;

    public sealed record Result(PersonRecord Person, IReadOnlyList<OpenReferral> OpenReferrals);

    public sealed class Validator : AbstractValidator<Query>
    {
        public Validator() => RuleFor(q => q.NhsNumber).Must(Domain.NhsNumber.IsValid).WithMessage("This is not a valid NHS number.");
    }

    public sealed class Handler(Database database, Work work) : IQueryHandler<Query, Result?>
    {
        public async ValueTask<Result?> Handle(Query query, CancellationToken cancellationToken)
        {
            await using var connection = await database.OpenAsync(cancellationToken);
            var person = await connection.QuerySingleOrDefaultAsync<PersonRecord>(
                $"SELECT {PersonRecord.Columns} FROM person p WHERE p.nhs_number = @nhsNumber", new { nhsNumber = Domain.NhsNumber.Normalise(query.NhsNumber) });
            if (person is null)
            {
                return null;
            }
            work.Scope.Touch("person", person.Id, person.Id);
            return new Result(person, await ReferralAccess.OpenReferralsAsync(connection, null, person.Id));
        }
    }
}
