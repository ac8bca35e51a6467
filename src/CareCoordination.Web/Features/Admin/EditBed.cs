using CareCoordination.Auth;
using CareCoordination.Domain;
using CareCoordination.Features.BedBureau;
using CareCoordination.Pipeline;
using Dapper;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Admin;

/// <summary>
/// Corrects what a bed is: its type, who it is for, whether it is a single room. Never its status: moving a
/// bed between available, reserved, occupied, closed and cleaning belongs to the bed bureau. A bed with a
/// person in it, or held for one, keeps its type and sex until it is free, so nobody is left in a bed that no
/// longer fits them.
/// </summary>
public static class EditBed
{
    [AllowRoles(Roles.Admin)]
    public sealed record Command(long BedId, string BedType, string AllowedSex, bool SingleRoom) : ICommand;

    public sealed class Validator : AbstractValidator<Command>
    {
        public Validator()
        {
            RuleFor(c => c.BedType).Must(t => AdminCodes.BedTypes.Has(t)).WithMessage("Choose the type of bed.");
            RuleFor(c => c.AllowedSex).Must(s => AdminCodes.AllowedSexes.Has(s)).WithMessage("Choose who the bed is for: any sex, a female bay or a male bay.");
        }
    }

    public sealed class Handler(Work work) : ICommandHandler<Command>
    {
        public async ValueTask<Unit> Handle(Command command, CancellationToken cancellationToken)
        {
            var bed = await Beds.FindAsync(work, command.BedId);
            var from = new { bedType = bed.BedType, allowedSex = bed.AllowedSex, singleRoom = bed.SingleRoom };
            var to = new { bedType = command.BedType, allowedSex = command.AllowedSex, singleRoom = command.SingleRoom };
            if (from.Equals(to))
            {
                throw new RuleBroken($"{bed.Place} already reads like that: nothing to change.");
            }
            // A single room taken from under someone held or in it could leave a person who must be isolated in a bay, which
            // reserving would never have allowed; making a bay a single room leaves nobody in a bed that no longer fits them.
            if (bed.Status is "reserved" or "occupied"
                && (bed.BedType != command.BedType || bed.AllowedSex != command.AllowedSex || (bed.SingleRoom && !command.SingleRoom)))
            {
                throw new RuleBroken($"{bed.Place} is {Beds.StatusLabel(bed.Status).ToLowerInvariant()}: change its type, who it is for or its single room once it is free.");
            }
            // Guarded on the version read, as every bed move is: a bed the bureau moved meanwhile is looked at again.
            await Fhir.FhirVersions.KeepSupersededAsync(work, "bed", bed.Id);
            var changed = await work.Connection.ExecuteAsync(
                """
                UPDATE bed SET bed_type = @BedType, allowed_sex = @AllowedSex, single_room = @SingleRoom, version = version + 1
                WHERE id = @BedId AND version = @Version
                """, new { command.BedType, command.AllowedSex, command.SingleRoom, command.BedId, bed.Version }, work.Transaction);
            if (changed == 0)
            {
                var last = await AdminLookups.LastActorAsync(work, "bed", bed.Id);
                throw new Conflict($"{last ?? "Someone"} changed {bed.Place} a moment ago. Look at it again.");
            }
            work.Scope.Touch("bed", bed.Id);
            await Beds.RecordStateAsync(work, bed.Id, bed.Version + 1, bed.Status, command.BedType);
            Beds.RecordChange(work, bed with { BedType = command.BedType, AllowedSex = command.AllowedSex, SingleRoom = command.SingleRoom },
                "bed.changed", bed.Status, bed.ClosedReason, new { from, to });
            return Unit.Value;
        }
    }
}
