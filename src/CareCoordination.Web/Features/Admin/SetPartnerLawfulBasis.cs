using CareCoordination.Auth;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using Dapper;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Admin;

/// <summary>
/// Records (or clears) a partner's standing lawful basis for sharing, from its data-sharing agreement: a referral the
/// partner sends without a Consent or our consent extension is then accepted on this basis, and says so. Cleared, such
/// a referral is refused. Both the basis and the agreement it comes from are needed; the change row keeps who and why.
/// </summary>
public static class SetPartnerLawfulBasis
{
    [AllowRoles(Roles.Admin)]
    public sealed record Command(long PartnerClientId, string? LawfulBasis, string? DataSharingAgreement) : ICommand;

    public sealed class Validator : AbstractValidator<Command>
    {
        public Validator()
        {
            RuleFor(c => c.DataSharingAgreement).NotEmpty().When(c => !string.IsNullOrWhiteSpace(c.LawfulBasis))
                .WithMessage("Name the data-sharing agreement the lawful basis comes from (its reference).").MaximumLength(ReferralForm.ShortText);
            RuleFor(c => c.LawfulBasis).NotEmpty().When(c => !string.IsNullOrWhiteSpace(c.DataSharingAgreement))
                .WithMessage("Write the lawful basis the agreement gives, for example UK GDPR Article 6(1)(e) and 9(2)(h): direct care.")
                .MaximumLength(ReferralForm.LongText - ReferralForm.ShortText - 30);
        }
    }

    public sealed class Handler(Work work) : ICommandHandler<Command>
    {
        public async ValueTask<Unit> Handle(Command command, CancellationToken cancellationToken)
        {
            var basis = string.IsNullOrWhiteSpace(command.LawfulBasis) ? null : command.LawfulBasis.Trim();
            var agreement = basis is null ? null : command.DataSharingAgreement?.Trim();
            var client = await work.Connection.QuerySingleOrDefaultAsync<(string ClientId, long OrganisationId)?>(
                "SELECT client_id, organisation_id FROM partner_client WHERE id = @PartnerClientId", new { command.PartnerClientId }, work.Transaction)
                ?? throw new NotFound($"Partner client {command.PartnerClientId}");
            await work.Connection.ExecuteAsync(
                "UPDATE partner_client SET default_lawful_basis = @basis, data_sharing_agreement = @agreement WHERE id = @PartnerClientId",
                new { basis, agreement, command.PartnerClientId }, work.Transaction);
            work.Scope.AuditDetail = basis is null ? $"{client.ClientId}: lawful basis cleared" : $"{client.ClientId}: lawful basis from {agreement}";
            work.Scope.RecordChange("partner.lawful-basis-set", "partner_client", command.PartnerClientId, null,
                new { clientId = client.ClientId, lawfulBasis = basis, dataSharingAgreement = agreement, by = work.Scope.Actor.Name });
            return Unit.Value;
        }
    }
}
