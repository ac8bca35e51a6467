using CareCoordination.Auth;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using Dapper;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Coordination;

/// <summary>Records that someone contacted the person or referrer about the wait, and what came of it.</summary>
public static class RecordRecontact
{
    [AllowRoles(Roles.Coordinator, Roles.BedBureau)]
    public sealed record Command(long RecontactId, string Outcome) : ICommand;

    public sealed class Validator : AbstractValidator<Command>
    {
        public Validator() => RuleFor(c => c.Outcome).NotEmpty().WithMessage("Say who you spoke to and what came of it.").MaximumLength(ReferralForm.LongText);
    }

    public sealed class Handler(Work work) : ICommandHandler<Command>
    {
        public async ValueTask<Unit> Handle(Command command, CancellationToken cancellationToken)
        {
            var scope = work.Scope;
            var taskId = await work.Connection.ExecuteScalarAsync<long?>(
                "SELECT triage_task_id FROM recontact WHERE id = @RecontactId", new { command.RecontactId }, work.Transaction)
                ?? throw new Pipeline.NotFound($"Re-contact {command.RecontactId}");
            var task = await TriageTasks.FindAsync(work, taskId);
            TriageTasks.RequireQueueOfCaller(task, scope.Actor);
            var outcome = command.Outcome.Trim();
            var done = await work.Connection.ExecuteAsync(
                "UPDATE recontact SET done_at = @Now, done_by_user_id = @UserId, outcome = @outcome WHERE id = @RecontactId AND done_at IS NULL",
                new { scope.Now, scope.Actor.UserId, outcome, command.RecontactId }, work.Transaction);
            if (done == 0)
            {
                throw new Conflict("This re-contact has already been recorded.");
            }
            TriageTasks.RecordChange(work, task, "task.recontacted", task.Status, new { recontactId = command.RecontactId, outcome });
            await ReferralNotes.AddAsync(work, task.ReferralId, "note", $"Re-contacted while waiting: {outcome}");
            return Unit.Value;
        }
    }
}
