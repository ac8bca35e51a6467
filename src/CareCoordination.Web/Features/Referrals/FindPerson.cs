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

    public sealed record Result(Person Person, IReadOnlyList<OpenReferral> OpenReferrals);

    public sealed record Person
    {
        public long Id { get; init; }
        public string NhsNumber { get; init; } = "";
        public string GivenName { get; init; } = "";
        public string FamilyName { get; init; } = "";
        public DateOnly DateOfBirth { get; init; }
        public string Sex { get; init; } = "";
        public string? AddressLine { get; init; }
        public string? Postcode { get; init; }
        public string? Ethnicity { get; init; }
        public string? InterpreterLanguage { get; init; }
        public bool EasyRead { get; init; }
        public bool Bsl { get; init; }
        public bool LivesAlone { get; init; }
        public string? CarerName { get; init; }
        public string? CarerRelationship { get; init; }
        public string? CarerContact { get; init; }
        public bool CarerWantsAssessment { get; init; }
        public string? GpPracticeCode { get; init; }

        /// <summary>Copies what the record knows into the form, leaving the referral's own answers alone.</summary>
        public void FillIn(ReferralForm form)
        {
            form.NhsNumber = Domain.NhsNumber.Format(NhsNumber);
            form.GivenName = GivenName;
            form.FamilyName = FamilyName;
            form.DateOfBirth = DateOfBirth;
            form.Sex = Sex;
            form.AddressLine = AddressLine;
            form.Postcode = Postcode;
            form.Ethnicity = Ethnicity;
            form.InterpreterNeeded = InterpreterLanguage is not null;
            form.InterpreterLanguage = InterpreterLanguage;
            form.EasyRead = EasyRead;
            form.Bsl = Bsl;
            form.LivesAlone = LivesAlone;
            form.CarerName = CarerName;
            form.CarerRelationship = CarerRelationship;
            form.CarerContact = CarerContact;
            form.CarerWantsAssessment = CarerWantsAssessment;
            form.GpPracticeCode = GpPracticeCode;
        }
    }

    public sealed class Validator : AbstractValidator<Query>
    {
        public Validator() => RuleFor(q => q.NhsNumber).Must(Domain.NhsNumber.IsValid).WithMessage("This is not a valid NHS number.");
    }

    public sealed class Handler(Database database, Work work) : IQueryHandler<Query, Result?>
    {
        public async ValueTask<Result?> Handle(Query query, CancellationToken cancellationToken)
        {
            await using var connection = await database.OpenAsync(cancellationToken);
            var person = await connection.QuerySingleOrDefaultAsync<Person>(
                """
                SELECT id AS Id, nhs_number AS NhsNumber, given_name AS GivenName, family_name AS FamilyName, date_of_birth AS DateOfBirth,
                       sex AS Sex, address_line AS AddressLine, postcode AS Postcode, ethnicity AS Ethnicity,
                       interpreter_language AS InterpreterLanguage, easy_read AS EasyRead, bsl AS Bsl, lives_alone AS LivesAlone,
                       carer_name AS CarerName, carer_relationship AS CarerRelationship, carer_contact AS CarerContact,
                       carer_wants_assessment AS CarerWantsAssessment, gp_practice_code AS GpPracticeCode
                FROM person WHERE nhs_number = @nhsNumber
                """, new { nhsNumber = Domain.NhsNumber.Normalise(query.NhsNumber) });
            if (person is null)
            {
                return null;
            }
            work.Scope.Touch("person", person.Id, person.Id);
            return new Result(person, await ReferralAccess.OpenReferralsAsync(connection, null, person.Id));
        }
    }
}
