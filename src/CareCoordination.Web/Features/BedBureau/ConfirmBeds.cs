using CareCoordination.Auth;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.BedBureau;

/// <summary>
/// A ward says its board is right as it stands (at each huddle). Confirming is what keeps a bed off the
/// stale list: a stale "available" bed is what makes discharge teams phone round.
/// </summary>
public static class ConfirmBeds
{
    /// <summary>
    /// BedIds are the ward's beds the board showed (a filter by type or status hides the rest): only what was looked at is
    /// confirmed. Null confirms the whole ward.
    /// </summary>
    [AllowRoles(Roles.BedBureau)]
    public sealed record Command(long WardId, IReadOnlyList<long>? BedIds = null) : ICommand<int>;

    public sealed class Validator : AbstractValidator<Command>
    {
        public Validator() => RuleFor(c => c.BedIds).Must(ids => ids!.Count is > 0 and <= 1000).When(c => c.BedIds is not null)
            .WithMessage("Name between 1 and 1,000 beds to confirm, or none for the whole ward.");
    }

    public sealed class Handler(Work work) : ICommandHandler<Command, int>
    {
        public async ValueTask<int> Handle(Command command, CancellationToken cancellationToken)
        {
            // Confirmed first, then read: the update holds each bed until commit (and waits for one being moved), so the read
            // after it sees every bed as it stands and the change rows say so. Read first, a bed reserved meanwhile was told to
            // every board as still available, after its reservation's own change (PostgreSQL, transactions at once).
            var parameters = new DynamicParameters(new { work.Scope.Now, command.WardId });
            var shown = command.BedIds is null ? null : Sql.IdList(command.BedIds, parameters);
            var (update, read) = shown is null ? ("", "") : ($" AND id IN ({shown})", $" AND b.id IN ({shown})");
            await work.Connection.ExecuteAsync($"UPDATE bed SET confirmed_at = @Now WHERE ward_id = @WardId{update}", parameters, work.Transaction);
            var beds = (await work.Connection.QueryAsync<BedRow>($"SELECT {Beds.Columns} {Beds.From} WHERE w.id = @WardId{read}", parameters, work.Transaction)).ToList();
            if (beds.Count == 0)
            {
                throw new Pipeline.NotFound($"Ward {command.WardId}");
            }
            foreach (var bed in beds)
            {
                Beds.RecordChange(work, bed, "bed.confirmed", bed.Status, bed.ClosedReason);
            }
            return beds.Count;
        }
    }
}
