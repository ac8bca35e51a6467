using CareCoordination.Auth;
using CareCoordination.Pipeline;
using Dapper;
using Mediator;

namespace CareCoordination.Features.Admin;

/// <summary>
/// Takes a "you said, we did" item out of the decision pack (Retire true), or puts it back. Nothing is deleted: what
/// people told us stays on record, with who retired it and when in the change history and the audit trail.
/// </summary>
public static class RetireYouSaidWeDid
{
    [AllowRoles(Roles.Admin)]
    public sealed record Command(long Id, int Version, bool Retire = true) : ICommand;

    public sealed class Handler(Work work) : ICommandHandler<Command>
    {
        public async ValueTask<Unit> Handle(Command command, CancellationToken cancellationToken)
        {
            var (scope, connection, transaction) = (work.Scope, work.Connection, work.Transaction);
            var changed = await connection.ExecuteAsync(
                """
                UPDATE you_said_we_did SET retired_at = @retiredAt, updated_at = @Now, version = version + 1
                WHERE id = @Id AND version = @Version AND (retired_at IS NULL) = @Retire
                """, new { command.Id, command.Version, command.Retire, retiredAt = command.Retire ? scope.Now : (DateTimeOffset?)null, scope.Now }, transaction);
            if (changed == 0)
            {
                var exists = await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM you_said_we_did WHERE id = @Id", new { command.Id }, transaction);
                throw exists == 0
                    ? new NotFound($"\"You said, we did\" item {command.Id}")
                    : new Conflict("Someone changed this item since you opened it. Look at it again.");
            }
            scope.RecordChange(command.Retire ? "you-said-we-did.retired" : "you-said-we-did.restored", "you_said_we_did", command.Id, null,
                new { by = scope.Actor.Name });
            scope.Touch("you_said_we_did", command.Id);
            return Unit.Value;
        }
    }
}
