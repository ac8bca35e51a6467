using CareCoordination.Auth;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using Dapper;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Coordination;

/// <summary>
/// Home first: a referral goes to the bed bureau only once the coordinator has written down why no
/// home-first service is right. The reason stays with the closed task for the "home despite a bed
/// request" figures.
/// </summary>
public static class RedirectToBedBureau
{
    [AllowRoles(Roles.Coordinator)]
    public sealed record Command(long TaskId, string WhyNotHomeFirst) : ICommand;

    public sealed class Validator : AbstractValidator<Command>
    {
        public Validator() => RuleFor(c => c.WhyNotHomeFirst)
            .Must(reason => reason?.Trim().Length >= 10).WithMessage("Say why a home-first service is not right for this person before asking for a bed.")
            .MaximumLength(ReferralForm.LongText);
    }

    public sealed class Handler(Work work) : ICommandHandler<Command>
    {
        public async ValueTask<Unit> Handle(Command command, CancellationToken cancellationToken)
        {
            var task = await TriageTasks.FindWorkingAsync(work, command.TaskId);
            var reason = command.WhyNotHomeFirst.Trim();
            await TriageTasks.PassToAsync(work, task, "bed-bureau", "redirected to bed bureau", reason, $"Passed to the bed bureau. Why not home first: {reason}");
            var askedFor = await work.Connection.ExecuteScalarAsync<string>("SELECT pathway FROM referral WHERE id = @ReferralId", new { task.ReferralId }, work.Transaction);
            await Discharges.Discharges.SetIntendedAsync(work, task.ReferralId, Discharges.Discharges.IntendedForBed(askedFor ?? ""));
            return Unit.Value;
        }
    }
}
