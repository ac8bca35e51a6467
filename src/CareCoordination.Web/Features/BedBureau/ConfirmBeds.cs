using CareCoordination.Auth;
using CareCoordination.Pipeline;
using Dapper;
using Mediator;

namespace CareCoordination.Features.BedBureau;

/// <summary>
/// A ward says its board is right as it stands (at each huddle). Confirming is what keeps a bed off the
/// stale list: a stale "available" bed is what makes discharge teams phone round.
/// </summary>
public static class ConfirmBeds
{
    [AllowRoles(Roles.BedBureau)]
    public sealed record Command(long WardId) : ICommand<int>;

    public sealed class Handler(Work work) : ICommandHandler<Command, int>
    {
        public async ValueTask<int> Handle(Command command, CancellationToken cancellationToken)
        {
            // Confirmed first, then read: the update holds each bed until commit (and waits for one being moved), so the read
            // after it sees every bed as it stands and the change rows say so. Read first, a bed reserved meanwhile was told to
            // every board as still available, after its reservation's own change (PostgreSQL, transactions at once).
            await work.Connection.ExecuteAsync("UPDATE bed SET confirmed_at = @Now WHERE ward_id = @WardId",
                new { work.Scope.Now, command.WardId }, work.Transaction);
            var beds = (await work.Connection.QueryAsync<BedRow>($"SELECT {Beds.Columns} {Beds.From} WHERE w.id = @WardId",
                new { command.WardId }, work.Transaction)).ToList();
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
