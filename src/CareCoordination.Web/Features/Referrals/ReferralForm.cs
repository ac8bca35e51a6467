using CareCoordination.Domain;
using FluentValidation;

namespace CareCoordination.Features.Referrals;

/// <summary>
/// The one referral form: what a referrer fills in, what a draft keeps, and what a submission (from the
/// page or, later, FHIR) is checked against. Settable, because the page binds to it field by field.
/// </summary>
public sealed class ReferralForm
{
    // The person
    public string? NhsNumber { get; set; }
    public string? GivenName { get; set; }
    public string? FamilyName { get; set; }
    public DateOnly? DateOfBirth { get; set; }
    public string? Sex { get; set; }
    public string? AddressLine { get; set; }
    public string? Postcode { get; set; }
    public string? Ethnicity { get; set; }
    public bool InterpreterNeeded { get; set; }
    public string? InterpreterLanguage { get; set; }
    public bool EasyRead { get; set; }
    public bool Bsl { get; set; }
    public bool LivesAlone { get; set; }
    public string? CarerName { get; set; }
    public string? CarerRelationship { get; set; }
    public string? CarerContact { get; set; }
    public bool CarerWantsAssessment { get; set; }

    // Keeping the carer informed (Features/Carers): the carer's e-mail, and whether the person agrees they are told.
    public string? CarerEmail { get; set; }
    public bool? CarerMayBeTold { get; set; }
    public string? GpPracticeCode { get; set; }

    // What a partner system sends beside the form's one name (FHIR Patient.name, Patient.identifier): kept, not asked for.
    public IReadOnlyList<PersonName> Names { get; set; } = [];
    public IReadOnlyList<PersonIdentifier> OtherIdentifiers { get; set; } = [];

    // The referral
    public string? Source { get; set; }
    public string? Pathway { get; set; }
    public string? Urgency { get; set; } = "routine";
    /// <summary>The ODS site code of the hospital site the person is in (HospitalSites); none: the trust's only site, if it has one.</summary>
    public string? HospitalSite { get; set; }
    public string? Ward { get; set; }
    public string? BedLabel { get; set; }
    /// <summary>The day the person was admitted to hospital (optional): the discharge sitrep's length of stay counts from it.</summary>
    public DateOnly? AdmittedOn { get; set; }
    public DateOnly? MedicallyOptimisedOn { get; set; }
    public DateOnly? ExpectedDischargeOn { get; set; }
    public IEnumerable<string> Needs { get; set; } = [];
    public string? Strengths { get; set; }
    public string? Goals { get; set; }

    // Risks
    public bool SafeguardingConcern { get; set; }
    public string? InfectionStatus { get; set; }
    public bool FallsRisk { get; set; }
    public bool SelfNeglect { get; set; }
    public bool CognitionConcern { get; set; }
    public bool MentalCapacityConcern { get; set; }
    public string? BestInterestsDecision { get; set; }

    public bool SelfFunding { get; set; }
    public bool? ConsentToShare { get; set; }
    public string? ConsentGivenBy { get; set; }
    public string? LawfulReason { get; set; }

    // "No decision about me without me": the three views side by side.
    public string? PersonWishes { get; set; }
    public string? FamilyExpectations { get; set; }
    public string? StaffExpectations { get; set; }
    public string? Summary { get; set; }

    public string PersonLabel()
    {
        var name = $"{GivenName} {FamilyName}".Trim();
        var nhs = Domain.NhsNumber.Normalise(NhsNumber);
        return (name.Length, nhs) switch
        {
            (0, null) => "Person not yet named",
            (0, _) => Domain.NhsNumber.Format(nhs),
            (_, null) => name,
            _ => $"{name} ({Domain.NhsNumber.Format(nhs)})",
        };
    }

    /// <summary>A discharge referral sent before the person is medically optimised: allowed, but flagged to triage.</summary>
    public bool IsEarlyRequest(DateOnly today) => ReferralCodes.IsHospital(Source) && MedicallyOptimisedOn > today;

    public const int ShortText = 200;
    public const int LongText = 4000;

    /// <summary>What a submitted referral must satisfy. Messages say what to do, in the referrer's words.</summary>
    public sealed class SubmissionRules : AbstractValidator<ReferralForm>
    {
        public SubmissionRules(TimeProvider clock)
        {
            DateOnly Today() => LondonTime.Today(clock);

            RuleFor(f => f.NhsNumber).Cascade(CascadeMode.Stop)
                .NotEmpty().WithMessage("Enter the NHS number.")
                .Must(n => Domain.NhsNumber.Normalise(n) is not null).WithMessage("An NHS number is 10 digits, like 943 476 5919.")
                .Must(Domain.NhsNumber.IsValid).WithMessage("This is not a valid NHS number: its check digit does not match. Check it against the person's record.");
            RuleFor(f => f.GivenName).NotEmpty().WithMessage("Enter the person's given name.").MaximumLength(100);
            RuleFor(f => f.FamilyName).NotEmpty().WithMessage("Enter the person's family name.").MaximumLength(100);
            RuleFor(f => f.DateOfBirth).Cascade(CascadeMode.Stop)
                .NotNull().WithMessage("Enter the date of birth.")
                .Must(d => d <= Today()).WithMessage("The date of birth cannot be in the future.")
                .Must(d => d > Today().AddYears(-120)).WithMessage("The date of birth is more than 120 years ago: check the year.");
            RuleFor(f => f.Sex).Must(ReferralCodes.Sexes.Has).WithMessage("Choose the person's sex, or 'Not known'.");
            RuleFor(f => f.AddressLine).NotEmpty().WithMessage("Enter the first line of the address the person will go to.").MaximumLength(ShortText);
            RuleFor(f => f.Postcode).Cascade(CascadeMode.Stop)
                .NotEmpty().WithMessage("Enter the postcode.")
                .Must(Domain.Postcode.IsValid).WithMessage("Enter a UK postcode, like WM1 4QT.");
            RuleFor(f => f.Ethnicity).Must(ReferralCodes.Ethnicities.Has).WithMessage("Choose an ethnic category, or 'Not stated'.");
            RuleFor(f => f.InterpreterLanguage).NotEmpty().When(f => f.InterpreterNeeded)
                .WithMessage("Say which language the interpreter is needed for.").MaximumLength(100);
            RuleFor(f => f.CarerName).NotEmpty().When(f => f.CarerWantsAssessment)
                .WithMessage("Name the carer who wants their own carer's assessment.").MaximumLength(ShortText);
            RuleFor(f => f.CarerContact).NotEmpty().When(f => !string.IsNullOrWhiteSpace(f.CarerName) && string.IsNullOrWhiteSpace(f.CarerEmail))
                .WithMessage("Give a phone number or email address for the carer or next of kin.").MaximumLength(ShortText);
            RuleFor(f => f.CarerRelationship).MaximumLength(100);
            Include(new Carers.CarerAgreementRules());
            RuleFor(f => f.GpPracticeCode).Matches("^[A-Za-z][0-9]{5}$").When(f => !string.IsNullOrWhiteSpace(f.GpPracticeCode))
                .WithMessage("A GP practice code is a letter and five digits, like W99001.");

            RuleFor(f => f.Source).Must(ReferralCodes.Sources.Has).WithMessage("Choose where the referral comes from.");
            RuleFor(f => f.Pathway).Cascade(CascadeMode.Stop)
                .Must(ReferralCodes.Pathways.Has).WithMessage("Choose the pathway asked for.")
                .Must((f, p) => p != "step-up" || !ReferralCodes.IsHospital(f.Source))
                    .WithMessage("Step-up is for people at home. A hospital discharge asks for pathway 0, 1, 2 or 3.")
                .Must((f, p) => p == "step-up" || !ReferralCodes.Sources.Has(f.Source) || ReferralCodes.IsHospital(f.Source))
                    .WithMessage("A referral from a GP or community team is step-up: pathways 0 to 3 are for hospital discharge.");
            RuleFor(f => f.Urgency).Must(ReferralCodes.Urgencies.Has).WithMessage("Choose how urgent this is.");
            When(f => ReferralCodes.IsHospital(f.Source), () =>
            {
                RuleFor(f => f.Ward).NotEmpty().WithMessage("Give the ward the person is on.");
                RuleFor(f => f.MedicallyOptimisedOn).Cascade(CascadeMode.Stop)
                    .NotNull().WithMessage("Give the date the person is, or is expected to be, medically optimised for discharge.")
                    .Must(d => d <= Today().AddDays(28)).WithMessage("That is more than four weeks away: send the referral nearer the time.");
                RuleFor(f => f.AdmittedOn).Cascade(CascadeMode.Stop)
                    .Must(d => d <= Today()).When(f => f.AdmittedOn is not null, ApplyConditionTo.CurrentValidator)
                        .WithMessage("The date of admission cannot be in the future.")
                    .Must((f, d) => d <= f.MedicallyOptimisedOn).When(f => f.AdmittedOn is not null && f.MedicallyOptimisedOn is not null, ApplyConditionTo.CurrentValidator)
                        .WithMessage("The date of admission cannot be after the medically optimised date.");
            });
            RuleFor(f => f.Ward).MaximumLength(100);
            RuleFor(f => f.HospitalSite).MaximumLength(20);
            RuleFor(f => f.BedLabel).MaximumLength(50);
            RuleFor(f => f.ExpectedDischargeOn)
                .Must(d => d >= Today()).When(f => f.ExpectedDischargeOn is not null)
                    .WithMessage("The expected discharge date cannot be in the past.")
                .Must((f, d) => d >= f.MedicallyOptimisedOn).When(f => f.ExpectedDischargeOn is not null && f.MedicallyOptimisedOn is not null)
                    .WithMessage("The expected discharge date cannot be before the medically optimised date.");
            RuleFor(f => f.Needs).NotEmpty().When(f => f.Pathway != "0")
                .WithMessage("Choose at least one need the person has support with.");
            RuleForEach(f => f.Needs).Must(ReferralCodes.Needs.Has).WithMessage("'{PropertyValue}' is not a need this form knows.");
            RuleFor(f => f.BestInterestsDecision).NotEmpty().When(f => f.MentalCapacityConcern)
                .WithMessage("Where capacity is in doubt, record the best-interests decision and who made it.");
            RuleFor(f => f.ConsentToShare).NotNull().WithMessage("Say whether the person consents to share their information with partners.");
            RuleFor(f => f.ConsentGivenBy).NotEmpty().When(f => f.ConsentToShare == true)
                .WithMessage("Say who gave consent: the person, or who holds lasting power of attorney.").MaximumLength(ShortText);
            RuleFor(f => f.LawfulReason).NotEmpty().When(f => f.ConsentToShare == false)
                .WithMessage("Without consent, record the lawful reason for sharing (for example, vital interests or a best-interests decision).");
            RuleFor(f => f.PersonWishes).NotEmpty()
                .WithMessage("Record where the person wants to go and what matters to them: no decision about me without me.");
            RuleFor(f => f.Summary).NotEmpty().WithMessage("Write a short summary for the coordinator.");
            Include(new TextLimits());
        }
    }

    /// <summary>A draft may be incomplete, but it may not be unbounded.</summary>
    public sealed class TextLimits : AbstractValidator<ReferralForm>
    {
        public TextLimits()
        {
            RuleFor(f => f.NhsNumber).MaximumLength(20);
            RuleFor(f => f.GivenName).MaximumLength(100);
            RuleFor(f => f.FamilyName).MaximumLength(100);
            RuleFor(f => f.Postcode).MaximumLength(10);
            RuleFor(f => f.CarerEmail).MaximumLength(Carers.CarerEmail.MaxLength);
            RuleFor(f => f.Needs).Must(n => n.Count() <= ReferralCodes.Needs.Count).WithMessage("Too many needs.");
            RuleFor(f => f.Strengths).MaximumLength(LongText);
            RuleFor(f => f.Goals).MaximumLength(LongText);
            RuleFor(f => f.InfectionStatus).MaximumLength(ShortText);
            RuleFor(f => f.BestInterestsDecision).MaximumLength(LongText);
            RuleFor(f => f.LawfulReason).MaximumLength(LongText);
            RuleFor(f => f.PersonWishes).MaximumLength(LongText);
            RuleFor(f => f.FamilyExpectations).MaximumLength(LongText);
            RuleFor(f => f.StaffExpectations).MaximumLength(LongText);
            RuleFor(f => f.Summary).MaximumLength(LongText);
        }
    }
}
