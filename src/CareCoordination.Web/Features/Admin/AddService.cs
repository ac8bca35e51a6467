using CareCoordination.Auth;
using CareCoordination.Domain;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Admin;

/// <summary>
/// A new home or community service a coordinator can accept people into, with its daily capacity. It starts
/// with all of today's capacity free, confirmed now.
/// </summary>
public static class AddService
{
    public const int MaxCapacityPerDay = 10_000;

    [AllowRoles(Roles.Admin)]
    public sealed record Command(long OrganisationId, string Name, string Kind, string? Locality, string CapacityUnit, int CapacityPerDay) : ICommand<long>;

    public sealed class Validator : AbstractValidator<Command>
    {
        public Validator()
        {
            RuleFor(c => c.OrganisationId).GreaterThan(0).WithMessage("Choose the provider that runs the service.");
            RuleFor(c => c.Name).NotEmpty().WithMessage("Name the service.").MaximumLength(AdminCodes.NameLength);
            RuleFor(c => c.Kind).Must(k => AdminCodes.ServiceKinds.Has(k)).WithMessage("Choose reablement, home care, therapy or voluntary sector.");
            RuleFor(c => c.Locality).MaximumLength(AdminCodes.NameLength);
            RuleFor(c => c.CapacityUnit).Must(u => AdminCodes.CapacityUnits.Has(u)).WithMessage("Say whether capacity is counted in slots or hours.");
            RuleFor(c => c.CapacityPerDay).InclusiveBetween(0, MaxCapacityPerDay).WithMessage($"Capacity a day is between 0 and {MaxCapacityPerDay}.");
        }
    }

    public sealed class Handler(Work work, Database database) : ICommandHandler<Command, long>
    {
        public async ValueTask<long> Handle(Command command, CancellationToken cancellationToken)
        {
            var provider = await AdminLookups.RequireProviderAsync(work, command.OrganisationId);
            var service = new
            {
                command.OrganisationId, Name = command.Name.Trim(), command.Kind,
                Locality = string.IsNullOrWhiteSpace(command.Locality) ? null : command.Locality.Trim(),
                command.CapacityUnit, command.CapacityPerDay, work.Scope.Now,
            };
            long serviceId;
            try
            {
                serviceId = await work.Connection.ExecuteScalarAsync<long>(
                    """
                    INSERT INTO service (organisation_id, name, kind, locality, capacity_unit, capacity_per_day, available_today, confirmed_at, active, version)
                    VALUES (@OrganisationId, @Name, @Kind, @Locality, @CapacityUnit, @CapacityPerDay, @CapacityPerDay, @Now, TRUE, 1) RETURNING id
                    """, service, work.Transaction);
            }
            catch (Exception ex) when (database.IsUniqueViolation(ex))
            {
                throw new Conflict($"{provider.Name} already has a service called {service.Name}.");
            }
            work.Scope.Touch("service", serviceId);
            work.Scope.RecordChange("service.added", "service", serviceId, null,
                new
                {
                    service.Name, service.Kind, service.Locality, providerId = provider.Id, provider = provider.Name, unit = service.CapacityUnit,
                    capacityPerDay = service.CapacityPerDay, availableToday = service.CapacityPerDay, active = true,
                });
            return serviceId;
        }
    }
}
