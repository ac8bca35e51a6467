using CareCoordination.Auth;
using CareCoordination.Pipeline;
using Dapper;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Admin;

/// <summary>
/// Records what a service says it can take today, from the provider's morning call, and when: coordinators
/// trust a figure someone confirmed this morning, and question one from last week. Never more than the
/// service's daily capacity.
/// </summary>
public static class ConfirmServiceCapacity
{
    [AllowRoles(Roles.Admin, Roles.Coordinator, Roles.BedBureau)]
    public sealed record Command(long ServiceId, int AvailableToday) : ICommand;

    public sealed class Validator : AbstractValidator<Command>
    {
        public Validator()
        {
            RuleFor(c => c.AvailableToday).GreaterThanOrEqualTo(0).WithMessage("Free capacity today cannot be below 0.");
        }
    }

    private sealed record Service
    {
        public string Name { get; init; } = "";
        public string CapacityUnit { get; init; } = "";
        public int CapacityPerDay { get; init; }
        public int AvailableToday { get; init; }
        public bool Active { get; init; }
    }

    public sealed class Handler(Work work) : ICommandHandler<Command>
    {
        public async ValueTask<Unit> Handle(Command command, CancellationToken cancellationToken)
        {
            var service = await work.Connection.QuerySingleOrDefaultAsync<Service>(
                """
                SELECT name AS Name, capacity_unit AS CapacityUnit, capacity_per_day AS CapacityPerDay, available_today AS AvailableToday, active AS Active
                FROM service WHERE id = @ServiceId
                """, new { command.ServiceId }, work.Transaction)
                ?? throw new NotFound($"Service {command.ServiceId}");
            if (!service.Active)
            {
                throw new RuleBroken($"{service.Name} is not taking people: there is no capacity to confirm.");
            }
            // Checked again in the statement, so a capacity lowered meanwhile still holds.
            var confirmed = await work.Connection.ExecuteAsync(
                """
                UPDATE service SET available_today = @AvailableToday, confirmed_at = @Now, version = version + 1
                WHERE id = @ServiceId AND active AND @AvailableToday <= capacity_per_day
                """, new { command.AvailableToday, work.Scope.Now, command.ServiceId }, work.Transaction);
            if (confirmed == 0)
            {
                var capacity = await work.Connection.ExecuteScalarAsync<int>(
                    "SELECT capacity_per_day FROM service WHERE id = @ServiceId", new { command.ServiceId }, work.Transaction);
                throw new RuleBroken($"{service.Name} takes at most {capacity} {service.CapacityUnit} a day: today's free capacity cannot be more than that.");
            }
            work.Scope.Touch("service", command.ServiceId);
            work.Scope.RecordChange("service.capacity-confirmed", "service", command.ServiceId, null,
                new
                {
                    availableToday = command.AvailableToday, from = service.AvailableToday, unit = service.CapacityUnit, capacityPerDay = service.CapacityPerDay,
                    confirmedAt = work.Scope.Now, by = work.Scope.Actor.Name,
                });
            return Unit.Value;
        }
    }
}
