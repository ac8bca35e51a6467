using System.Text.RegularExpressions;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using Dapper;
using FluentValidation;

namespace CareCoordination.Features.Carers;

/// <summary>
/// The person's agreement, given on the referral form, that their named carer is told by e-mail when a decision is made
/// and when support starts. Nothing is ever sent to a carer without it (CarerMessages checks it, and so does the sender).
/// </summary>
public static partial class CarerEmail
{
    public const int MaxLength = 254;

    /// <summary>One plain address (name@example.org): no display name, no list, no spaces.</summary>
    public static bool IsValid(string? address) =>
        address is not null && address.Trim().Length <= MaxLength && Shape().IsMatch(address.Trim());

    [GeneratedRegex(@"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")]
    private static partial Regex Shape();
}

/// <summary>The form's rules for the carer's e-mail and the agreement: part of the submission rules.</summary>
public sealed class CarerAgreementRules : AbstractValidator<ReferralForm>
{
    public CarerAgreementRules()
    {
        RuleFor(f => f.CarerName).NotEmpty().When(f => f.CarerMayBeTold == true)
            .WithMessage("Name the carer the person agrees should be told.");
        RuleFor(f => f.CarerEmail).NotEmpty().When(f => f.CarerMayBeTold == true)
            .WithMessage("Give the carer's e-mail address, so they can be told.");
        RuleFor(f => f.CarerEmail).Must(CarerEmail.IsValid).When(f => !string.IsNullOrWhiteSpace(f.CarerEmail))
            .WithMessage("Enter the carer's e-mail address like name@example.org.");
    }
}

public static class CarerAgreement
{
    /// <summary>
    /// Keeps the carer the referral names, with the person's answer, who recorded it and when: the referrer (or partner
    /// system) who sent the referral, at the moment it was sent. No carer named: nothing to keep, and nobody is told. A
    /// carer named with no answer and no address adds nothing to what the referral keeps of the person (their carer's name
    /// and relationship): no row, which every reader takes as "not asked" (a partner's Patient.contact, issue 14's growth).
    /// </summary>
    public static async Task RecordAsync(Work work, long referralId, ReferralForm form)
    {
        var name = Blank(form.CarerName);
        if (name is null || (form.CarerMayBeTold is null && Blank(form.CarerEmail) is null))
        {
            return;
        }
        var scope = work.Scope;
        var answered = form.CarerMayBeTold is not null;
        await work.Connection.ExecuteAsync(
            """
            INSERT INTO referral_carer (referral_id, name, relationship, email, agreed, recorded_by, recorded_at)
            VALUES (@referralId, @name, @relationship, @email, @agreed, @recordedBy, @recordedAt)
            """,
            new
            {
                referralId, name, relationship = Blank(form.CarerRelationship), email = Blank(form.CarerEmail), agreed = form.CarerMayBeTold,
                recordedBy = answered ? scope.Actor.Name : null, recordedAt = answered ? scope.Now : (DateTimeOffset?)null,
            }, work.Transaction);
    }

    /// <summary>The agreement as the referral's pages show it: the answer, the address, who recorded it and when.</summary>
    public static string Describe(bool? agreed, string? email, string? recordedBy, DateTimeOffset? recordedAt)
    {
        var recorded = recordedBy is null || recordedAt is null ? "" : $" (recorded by {recordedBy}, {ReferralText.Time(recordedAt.Value)})";
        return agreed switch
        {
            true => $"Yes: the person agrees the carer is e-mailed at {email} when a decision is made and when support starts{recorded}.",
            false => $"No: the person does not agree the carer is told; nothing is sent{recorded}.",
            null => "Not asked: nothing is sent to the carer.",
        };
    }

    private static string? Blank(string? text) => string.IsNullOrWhiteSpace(text) ? null : text.Trim();
}
