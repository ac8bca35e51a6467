using CareCoordination.Auth;
using CareCoordination.Domain;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using FluentValidation;
using FluentValidation.Results;
using Mediator;

namespace CareCoordination.Features.Fhir;

/// <summary>
/// POST /fhir/Patient: an organisation registers a person before it refers them, so that its referrals can name them
/// (Patient/{id}, or the NHS number alone). The registration is that organisation's own record of the person, kept as
/// it was sent (person_registration), and it is what the organisation reads back, as a referral's description of the
/// person is (see FhirPerson): what another organisation said is never shown, nor that another organisation knows them.
/// The person's row, the coordination centre's whole record, is made by a first registration and otherwise left to
/// the referrals, which bring it up to date. A registration is always its organisation's first word on the person (a
/// second is refused, or answered with the first), so it is version 1 of what that organisation reads, whoever else
/// knows the person: neither its status (201) nor its version says that anyone does.
/// </summary>
public static class RegisterPerson
{
    /// <summary>
    /// Form holds the person's answers of the referral form (the referral's are not asked). OnlyIfNew is a conditional
    /// create: a person the caller's organisation has registered or referred already is answered, not registered again.
    /// </summary>
    [AllowRoles(Roles.Referrer)]
    [AllowPartnerScope("system/Patient.c")]
    public sealed record Command(ReferralForm Form, bool OnlyIfNew) : ICommand<Result>;

    /// <summary>The person, and whether this registration made their record here (false: the caller's own was found).</summary>
    public sealed record Result(long PersonId, bool Created);

    /// <summary>The form's own rules for the person, the same a referral's person meets, reported against Form.X as a referral's are.</summary>
    public sealed class Validator : AbstractValidator<Command>
    {
        private static readonly string[] PersonAnswers =
        [
            nameof(ReferralForm.NhsNumber), nameof(ReferralForm.GivenName), nameof(ReferralForm.FamilyName), nameof(ReferralForm.DateOfBirth),
            nameof(ReferralForm.Sex), nameof(ReferralForm.AddressLine), nameof(ReferralForm.Postcode), nameof(ReferralForm.Ethnicity),
            nameof(ReferralForm.InterpreterLanguage), nameof(ReferralForm.CarerName), nameof(ReferralForm.CarerContact),
            nameof(ReferralForm.CarerRelationship), nameof(ReferralForm.GpPracticeCode),
        ];

        public Validator(ReferralForm.SubmissionRules rules) =>
            RuleFor(c => c.Form).CustomAsync(async (form, context, cancellationToken) =>
            {
                var result = await rules.ValidateAsync(form, options => options.IncludeProperties(PersonAnswers), cancellationToken);
                foreach (var error in result.Errors)
                {
                    context.AddFailure(new ValidationFailure($"{nameof(Command.Form)}.{error.PropertyName}", error.ErrorMessage));
                }
            });
    }

    public sealed class Handler(Database database, Work work, PatientIds patientIds) : ICommandHandler<Command, Result>
    {
        public async ValueTask<Result> Handle(Command command, CancellationToken cancellationToken)
        {
            var scope = work.Scope;
            var (connection, transaction) = (work.Connection, work.Transaction);
            var organisationId = scope.Actor.OrganisationId ?? throw new AccessDenied("Only a member of a referring organisation can register a person.");
            var form = command.Form;
            var nhsNumber = NhsNumber.Normalise(form.NhsNumber)!;

            // The lock SubmitReferral takes too: one person row per NHS number, and one answer to "known already?".
            await database.LockAsync(connection, transaction, $"person:{nhsNumber}");
            var personId = await connection.ExecuteScalarAsync<long?>("SELECT id FROM person WHERE nhs_number = @nhsNumber", new { nhsNumber }, transaction);
            if (personId is { } known)
            {
                var own = await connection.ExecuteScalarAsync<long?>($"SELECT p.id FROM person p {PersonRecord.LatestAsReferredBy} WHERE p.id = @known",
                    new { known, OrganisationId = organisationId }, transaction);
                if (own is not null)
                {
                    scope.Touch("person", known, known);
                    if (command.OnlyIfNew)
                    {
                        scope.AuditDetail = "conditional create: the organisation's own record of the person exists";
                        return new Result(known, Created: false);
                    }
                    throw new Conflict($"Your organisation has registered or referred this person already: {patientIds.For(scope.Actor).Reference(known)}. "
                        + $"To find them without registering them twice, send If-None-Exist: identifier={FhirMapping.NhsNumberSystem}|{nhsNumber}.", duplicate: true);
                }
                // Known to another organisation: their record is not this registration's to change, nor its version to show.
            }

            var person = PersonDetails.From(nhsNumber, form, scope.Now);
            if (personId is null)
            {
                personId = await connection.ExecuteScalarAsync<long>(PersonDetails.InsertPerson, person, transaction);
                scope.RecordChange("person.created", "person", personId.Value, null);
            }
            var registration = new DynamicParameters(person);
            registration.Add("PersonId", personId.Value);
            registration.Add("OrganisationId", organisationId);
            registration.Add("PartnerClientId", scope.Actor.Kind == ActorKind.Partner ? scope.Actor.Id : null);
            registration.Add("UserId", scope.Actor.UserId);
            await connection.ExecuteAsync(
                $"""
                INSERT INTO person_registration (organisation_id, person_id, person_version, partner_client_id, registered_by_user_id,
                    nhs_number, given_name, family_name, date_of_birth, sex, address_line, postcode, locality, ethnicity,
                    interpreter_language, easy_read, bsl, lives_alone, carer_name, carer_relationship, carer_contact,
                    carer_wants_assessment, gp_practice_code, names, other_identifiers, recorded_at)
                SELECT @OrganisationId, p.id, 1, (SELECT id FROM partner_client WHERE client_id = @PartnerClientId), @UserId,
                    @NhsNumber, @GivenName, @FamilyName, @DateOfBirth, @Sex, @AddressLine, @Postcode, {PersonDetails.LocalityOfDistrict}, @Ethnicity,
                    @InterpreterLanguage, @EasyRead, @Bsl, @LivesAlone, @CarerName, @CarerRelationship, @CarerContact,
                    @CarerWantsAssessment, @GpPracticeCode, @Names, @OtherIdentifiers, @Now
                FROM person p WHERE p.id = @PersonId
                """, registration, transaction);
            scope.Touch("person", personId.Value, personId);
            return new Result(personId.Value, Created: true);
        }
    }
}
