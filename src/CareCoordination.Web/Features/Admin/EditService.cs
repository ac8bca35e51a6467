using CareCoordination.Auth;
using CareCoordination.Domain;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Admin;

/// <summary>
/// Changes a service's name, kind, locality, capacity or whether it takes people. The form carries the version
/// it was opened at: if a colleague, a confirmation or an acceptance changed the service since, the edit is
/// refused rather than quietly overwriting what they did. Lowering the daily capacity lowers today's free
/// capacity with it.
/// </summary>
public static class EditService
{
    [AllowRoles(Roles.Admin)]
    public sealed record Command(long ServiceId, int Version, string Name, string Kind, string? Locality, string CapacityUnit, int CapacityPerDay, bool Active)
        : ICommand;

    public sealed class Validator : AbstractValidator<Command>
    {
        public Validator()
        {
            RuleFor(c => c.Name).NotEmpty().WithMessage("Name the service.").MaximumLength(AdminCodes.NameLength);
            RuleFor(c => c.Kind).Must(k => ReferralCodes.ServiceKinds.Has(k)).WithMessage("Choose the kind of service.");
            RuleFor(c => c.Locality).MaximumLength(AdminCodes.NameLength);
            RuleFor(c => c.CapacityUnit).Must(u => AdminCodes.CapacityUnits.Has(u)).WithMessage("Say whether capacity is counted in slots or hours.");
            RuleFor(c => c.CapacityPerDay).InclusiveBetween(0, AddService.MaxCapacityPerDay)
                .WithMessage($"Capacity a day is between 0 and {AddService.MaxCapacityPerDay}.");
        }
    }

    private sealed record Service
    {
        public long OrganisationId { get; init; }
        public string Name { get; init; } = "";
        public string Kind { get; init; } = "";
        public string? Locality { get; init; }
        public string CapacityUnit { get; init; } = "";
        public int CapacityPerDay { get; init; }
        public int AvailableToday { get; init; }
        public bool Active { get; init; }
        public int Version { get; init; }

        public bool BedBased => Kind is "community-hospital" or "care-home";
    }

    public sealed class Handler(Work work, Database database) : ICommandHandler<Command>
    {
        public async ValueTask<Unit> Handle(Command command, CancellationToken cancellationToken)
        {
            var before = await work.Connection.QuerySingleOrDefaultAsync<Service>(
                """
                SELECT organisation_id AS OrganisationId, name AS Name, kind AS Kind, locality AS Locality, capacity_unit AS CapacityUnit,
                       capacity_per_day AS CapacityPerDay, available_today AS AvailableToday, active AS Active, version AS Version
                FROM service WHERE id = @ServiceId
                """, new { command.ServiceId }, work.Transaction)
                ?? throw new NotFound($"Service {command.ServiceId}");
            if (before.Version != command.Version)
            {
                throw await StaleAsync(before.Name);
            }
            var after = before with
            {
                Name = command.Name.Trim(), Kind = command.Kind, Locality = string.IsNullOrWhiteSpace(command.Locality) ? null : command.Locality.Trim(),
                CapacityUnit = command.CapacityUnit, CapacityPerDay = command.CapacityPerDay, AvailableToday = Math.Min(before.AvailableToday, command.CapacityPerDay),
                Active = command.Active,
            };
            if (after == before)
            {
                throw new RuleBroken($"{before.Name} already reads like that: nothing to change.");
            }
            if (after.BedBased != before.BedBased)
            {
                throw new RuleBroken("A bed-based service stays bed-based, and a home service stays a home service: add a new service instead.");
            }
            int changed;
            try
            {
                changed = await work.Connection.ExecuteAsync(
                    """
                    UPDATE service SET name = @Name, kind = @Kind, locality = @Locality, capacity_unit = @CapacityUnit, capacity_per_day = @CapacityPerDay,
                           available_today = CASE WHEN available_today > @CapacityPerDay THEN @CapacityPerDay ELSE available_today END,
                           active = @Active, version = version + 1
                    WHERE id = @ServiceId AND version = @Version
                    """, new { after.Name, after.Kind, after.Locality, after.CapacityUnit, after.CapacityPerDay, after.Active, command.ServiceId, command.Version },
                    work.Transaction);
            }
            catch (Exception ex) when (database.IsUniqueViolation(ex))
            {
                throw new Conflict($"The provider already has a service called {after.Name}.");
            }
            if (changed == 0)
            {
                throw await StaleAsync(before.Name);
            }
            var availableToday = await work.Connection.ExecuteScalarAsync<int>(
                "SELECT available_today FROM service WHERE id = @ServiceId", new { command.ServiceId }, work.Transaction);
            work.Scope.Touch("service", command.ServiceId);
            work.Scope.RecordChange("service.changed", "service", command.ServiceId, null,
                new
                {
                    after.Name, after.Kind, after.Locality, unit = after.CapacityUnit, capacityPerDay = after.CapacityPerDay, availableToday, after.Active,
                    from = new { before.Name, before.Kind, before.Locality, unit = before.CapacityUnit, capacityPerDay = before.CapacityPerDay, before.Active },
                    by = work.Scope.Actor.Name,
                });
            return Unit.Value;

            async Task<Conflict> StaleAsync(string name)
            {
                var last = await AdminLookups.LastActorAsync(work, "service", command.ServiceId);
                return new Conflict($"{last ?? "Someone"} changed {name} since you opened it. Look at it again and make your change on what is there now.");
            }
        }
    }
}
