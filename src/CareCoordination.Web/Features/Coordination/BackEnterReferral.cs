using CareCoordination.Auth;
using CareCoordination.Domain;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Coordination;

/// <summary>
/// After downtime, the coordination centre types in the paper referrals that came while the system was down. Each
/// keeps the time it was really made (the queue's clock, its order and every report count from then), records who
/// typed it and when, says on its timeline that it came from paper, and is triaged like any other. Only what the
/// paper must carry is required; whatever else it lacks is marked "information needed", as for a partner's message.
/// </summary>
public static class BackEnterReferral
{
    /// <summary>How far back a paper referral may be dated without the coordinator confirming it: downtime is hours, not weeks.</summary>
    public static readonly TimeSpan UsualReach = TimeSpan.FromDays(7);

    /// <summary>IdempotencyKey is made with the page's form, so pressing Enter twice enters one referral.</summary>
    [AllowRoles(Roles.Coordinator)]
    public sealed record Command(ReferralForm Form, long? OrganisationId, DateTimeOffset? ReceivedAt, string IdempotencyKey,
        bool OlderConfirmed = false, string? DuplicateAnswer = null) : ICommand<SubmitReferral.Result>;

    /// <summary>The organisations a paper referral can come from, for the page's list.</summary>
    [AllowRoles(Roles.Coordinator)]
    public sealed record Choices : IQuery<IReadOnlyList<Code>>;

    /// <summary>Every open hospital site, for the page to offer those of the organisation on the paper (Referrals.HospitalSites).</summary>
    [AllowRoles(Roles.Coordinator)]
    public sealed record Sites : IQuery<IReadOnlyList<Site>>;

    public sealed record Site(long OrganisationId, string Code, string Name);

    public sealed class Validator : AbstractValidator<Command>
    {
        public Validator(ReferralForm.SubmissionRules rules, TimeProvider clock)
        {
            RuleFor(c => c.OrganisationId).NotNull().WithMessage("Choose the organisation that sent the paper referral.");
            RuleFor(c => c.ReceivedAt).Cascade(CascadeMode.Stop)
                .NotNull().WithMessage("Enter when the referral was made: the date and time on the paper form.")
                .Must(at => at <= clock.GetUtcNow()).WithMessage("That time is in the future. Enter the time written on the paper form.")
                .Must((c, at) => c.OlderConfirmed || at >= clock.GetUtcNow() - UsualReach)
                    .WithMessage("That is more than 7 days ago. Check the date on the paper; if it is right, tick \"The date is right\".");
            RuleFor(c => c.IdempotencyKey).NotEmpty().MaximumLength(100);
            RuleFor(c => c.DuplicateAnswer).Must(a => a is null or "new-need" or "update")
                .WithMessage("Say whether this is a new need or an update to the open referral.");
            // The form's own rules, less what the paper may lack (marked "information needed" instead), and with dates
            // judged from the day the referral was made: an expected discharge on that day was not in the past then.
            RuleFor(c => c.Form).Custom((form, context) =>
            {
                var needed = InformationNeeded.Of(form).Select(i => i.Property).ToHashSet(StringComparer.Ordinal);
                var madeOn = context.InstanceToValidate.ReceivedAt is { } at ? DateOnly.FromDateTime(LondonTime.ToLocal(at).DateTime) : LondonTime.Today(clock);
                foreach (var failure in rules.Validate(form).Errors.Where(f => !needed.Contains(f.PropertyName)))
                {
                    if (failure.PropertyName == nameof(ReferralForm.ExpectedDischargeOn) && form.ExpectedDischargeOn >= madeOn
                        && !(form.ExpectedDischargeOn < form.MedicallyOptimisedOn))
                    {
                        continue;
                    }
                    context.AddFailure(new FluentValidation.Results.ValidationFailure($"{context.PropertyPath}.{failure.PropertyName}", failure.ErrorMessage));
                }
            });
        }
    }

    public sealed class Handler(SubmitReferral.Handler submit, Work work) : ICommandHandler<Command, SubmitReferral.Result>
    {
        public async ValueTask<SubmitReferral.Result> Handle(Command command, CancellationToken cancellationToken)
        {
            var organisationId = command.OrganisationId!.Value;
            var referring = await work.Connection.ExecuteScalarAsync<long>(
                $"SELECT COUNT(*) FROM organisation WHERE id = @organisationId AND active AND kind IN ({ReferringKinds})", new { organisationId }, work.Transaction);
            if (referring == 0)
            {
                throw new RuleBroken("That organisation does not send referrals. Choose the one named on the paper form.");
            }
            var receivedAt = command.ReceivedAt!.Value;
            work.Scope.AuditDetail = "entered from a paper referral made "
                + receivedAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture);
            var needed = InformationNeeded.Of(command.Form).Select(i => i.Property).ToList();
            // The same path as the form, so the paper referral is checked, queued and announced as any other.
            return await submit.SubmitAsync(
                new SubmitReferral.Command(command.Form, command.IdempotencyKey, DuplicateAnswer: command.DuplicateAnswer, InformationNeeded: needed),
                new SubmitReferral.PaperReferral(organisationId, receivedAt), cancellationToken);
        }
    }

    private static readonly string ReferringKinds = Sql.Literals(["acute-trust", "community-trust", "community-hospital", "gp-practice"]);

    public sealed class SitesHandler(Database database) : IQueryHandler<Sites, IReadOnlyList<Site>>
    {
        public async ValueTask<IReadOnlyList<Site>> Handle(Sites query, CancellationToken cancellationToken)
        {
            await using var connection = await database.OpenAsync(cancellationToken);
            return [.. await connection.QueryAsync<Site>(new CommandDefinition(
                "SELECT organisation_id AS OrganisationId, code AS Code, name AS Name FROM hospital_site WHERE active ORDER BY name",
                cancellationToken: cancellationToken))];
        }
    }

    public sealed class ChoicesHandler(Database database) : IQueryHandler<Choices, IReadOnlyList<Code>>
    {
        public async ValueTask<IReadOnlyList<Code>> Handle(Choices query, CancellationToken cancellationToken)
        {
            await using var connection = await database.OpenAsync(cancellationToken);
            var organisations = await connection.QueryAsync<(long Id, string Name)>(new CommandDefinition(
                $"SELECT id, name FROM organisation WHERE active AND kind IN ({ReferringKinds}) ORDER BY name", cancellationToken: cancellationToken));
            return [.. organisations.Select(o => new Code(o.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), o.Name))];
        }
    }
}
