using CareCoordination.Auth;
using CareCoordination.Features.Reports;
using CareCoordination.Pipeline;
using Dapper;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Admin;

/// <summary>
/// Adds a "you said, we did" item to a quarter (Id null) or changes one. An edit carries the version it was opened at,
/// so a colleague's change made meanwhile is not quietly overwritten.
/// </summary>
public static class SaveYouSaidWeDid
{
    public const int TextLength = 1000;

    [AllowRoles(Roles.Admin)]
    public sealed record Command(long? Id, int Version, DateOnly QuarterStart, string YouSaid, string WeDid, string? HeardFrom) : ICommand<long>;

    public sealed class Validator : AbstractValidator<Command>
    {
        public Validator()
        {
            RuleFor(c => c.QuarterStart).Must(Quarter.IsFirstDay).WithMessage("Choose the quarter the item belongs to.")
                .InclusiveBetween(new DateOnly(2000, 1, 1), new DateOnly(2100, 10, 1)).WithMessage("Choose a quarter between 2000 and 2100.");
            RuleFor(c => c.YouSaid).NotEmpty().WithMessage("Say what people told us.").MaximumLength(TextLength);
            RuleFor(c => c.WeDid).NotEmpty().WithMessage("Say what we did about it.").MaximumLength(TextLength);
            RuleFor(c => c.HeardFrom).MaximumLength(AdminCodes.NameLength);
        }
    }

    public sealed class Handler(Work work) : ICommandHandler<Command, long>
    {
        public async ValueTask<long> Handle(Command command, CancellationToken cancellationToken)
        {
            var (scope, connection, transaction) = (work.Scope, work.Connection, work.Transaction);
            var values = new
            {
                command.Id, command.Version, command.QuarterStart, YouSaid = command.YouSaid.Trim(), WeDid = command.WeDid.Trim(),
                HeardFrom = string.IsNullOrWhiteSpace(command.HeardFrom) ? null : command.HeardFrom.Trim(), scope.Now,
            };
            long id;
            if (command.Id is null)
            {
                id = await connection.ExecuteScalarAsync<long>(
                    """
                    INSERT INTO you_said_we_did (quarter_start, you_said, we_did, heard_from, created_at, updated_at)
                    VALUES (@QuarterStart, @YouSaid, @WeDid, @HeardFrom, @Now, @Now) RETURNING id
                    """, values, transaction);
                scope.RecordChange("you-said-we-did.added", "you_said_we_did", id, null,
                    new { quarter = values.QuarterStart, values.YouSaid, values.WeDid, values.HeardFrom, by = scope.Actor.Name });
            }
            else
            {
                id = command.Id.Value;
                var changed = await connection.ExecuteAsync(
                    """
                    UPDATE you_said_we_did SET quarter_start = @QuarterStart, you_said = @YouSaid, we_did = @WeDid, heard_from = @HeardFrom,
                           updated_at = @Now, version = version + 1
                    WHERE id = @Id AND version = @Version
                    """, values, transaction);
                if (changed == 0)
                {
                    var exists = await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM you_said_we_did WHERE id = @Id", values, transaction);
                    throw exists == 0
                        ? new NotFound($"\"You said, we did\" item {id}")
                        : new Conflict($"{await AdminLookups.LastActorAsync(work, "you_said_we_did", id) ?? "Someone"} changed this item since you opened it. Look at it again and make your change on what is there now.");
                }
                scope.RecordChange("you-said-we-did.changed", "you_said_we_did", id, null,
                    new { quarter = values.QuarterStart, values.YouSaid, values.WeDid, values.HeardFrom, by = scope.Actor.Name });
            }
            scope.Touch("you_said_we_did", id);
            return id;
        }
    }
}
