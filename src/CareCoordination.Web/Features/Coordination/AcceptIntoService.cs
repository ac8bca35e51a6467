using CareCoordination.Auth;
using CareCoordination.Domain;
using CareCoordination.Features.Providers;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using Dapper;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Coordination;

/// <summary>
/// The home-first decision: the person goes into a community service from a start date. The service's
/// capacity for today is taken in the same transaction; a full service is refused unless the coordinator
/// overrides it and says why, and the override is kept with the placement. A provider under amber caution takes the
/// person only on a manager's approval for this referral and service (see ProviderCaution).
/// </summary>
public static class AcceptIntoService
{
    [AllowRoles(Roles.Coordinator)]
    public sealed record Command(long TaskId, long ServiceId, DateOnly StartOn, string? Note = null, int? HoursPerDay = null,
        bool OverrideFullService = false, string? OverrideReason = null) : ICommand<Result>;

    public sealed record Result(long PlacementId, string ServiceName, int AvailableAfter);

    public sealed class Validator : AbstractValidator<Command>
    {
        public Validator(TimeProvider clock)
        {
            RuleFor(c => c.ServiceId).GreaterThan(0).WithMessage("Choose the service.");
            RuleFor(c => c.StartOn)
                .Must(start => start >= LondonTime.Today(clock)).WithMessage("The start date cannot be in the past.")
                .Must(start => start <= LondonTime.Today(clock).AddDays(28)).WithMessage("Choose a start date within four weeks.");
            RuleFor(c => c.HoursPerDay).InclusiveBetween(1, 24).When(c => c.HoursPerDay is not null)
                .WithMessage("Hours a day must be between 1 and 24.");
            RuleFor(c => c.OverrideReason).NotEmpty().When(c => c.OverrideFullService)
                .WithMessage("Say why the person must go into a service that is full today.");
            RuleFor(c => c.OverrideReason).MaximumLength(ReferralForm.LongText);
            RuleFor(c => c.Note).MaximumLength(ReferralForm.LongText);
        }
    }

    private sealed record ServiceRow
    {
        public string Name { get; init; } = "";
        public string Kind { get; init; } = "";
        public string CapacityUnit { get; init; } = "";
        public int AvailableToday { get; init; }
        public bool Active { get; init; }
        public long ProviderId { get; init; }
        public string Provider { get; init; } = "";
    }

    public sealed class Handler(Work work, Store.Database database) : ICommandHandler<Command, Result>
    {
        public async ValueTask<Result> Handle(Command command, CancellationToken cancellationToken)
        {
            var (scope, connection, transaction) = (work.Scope, work.Connection, work.Transaction);
            var task = await TriageTasks.FindWorkingAsync(work, command.TaskId);
            var service = await connection.QuerySingleOrDefaultAsync<ServiceRow>(
                """
                SELECT s.name AS Name, s.kind AS Kind, s.capacity_unit AS CapacityUnit, s.available_today AS AvailableToday, s.active AS Active,
                       o.id AS ProviderId, o.name AS Provider
                FROM service s JOIN organisation o ON o.id = s.organisation_id WHERE s.id = @ServiceId
                """, new { command.ServiceId }, transaction);
            if (service is null || !service.Active)
            {
                throw new RuleBroken("That service is not open to new referrals.");
            }
            if (service.Kind is "community-hospital" or "care-home")
            {
                throw new RuleBroken("A bed is placed by the bed bureau: redirect the referral to them instead.");
            }
            // The commissioners' cautions list: red stops new placements, amber needs a manager's approval on record.
            var approval = await ProviderCaution.RequireAsync(work, database, task.ReferralId, service.ProviderId, command.ServiceId, service.Provider);
            var hours = service.CapacityUnit == "hours"
                ? command.HoursPerDay ?? throw new ValidationFailed(new Dictionary<string, string[]>
                {
                    [nameof(Command.HoursPerDay)] = [$"{service.Name} counts its capacity in hours: say how many hours a day the person needs."],
                })
                : (int?)null;
            var units = hours ?? 1;

            // Taken in one statement, so two acceptances cannot both have the last slot.
            var taken = await connection.ExecuteAsync(
                "UPDATE service SET available_today = available_today - @units, version = version + 1 WHERE id = @ServiceId AND available_today >= @units",
                new { units, command.ServiceId }, transaction);
            string? overrideReason = null;
            if (taken == 0)
            {
                if (!command.OverrideFullService)
                {
                    var free = service.CapacityUnit == "hours" ? $"{service.AvailableToday} hours" : $"{service.AvailableToday} slots";
                    throw new RuleBroken($"{service.Name} has {free} free today, not enough for this person. Choose another service, or override and say why.");
                }
                overrideReason = command.OverrideReason!.Trim();
            }
            var availableAfter = await connection.ExecuteScalarAsync<int>(
                "SELECT available_today FROM service WHERE id = @ServiceId", new { command.ServiceId }, transaction);

            await TriageTasks.CloseAsync(work, task, "completed", "task.completed", $"accepted: {service.Kind}", command.Note?.Trim());
            var placementId = await connection.ExecuteScalarAsync<long>(
                """
                INSERT INTO placement (referral_id, service_id, status, start_on, hours_per_day, capacity_override, caution_approval_id, created_at, referral_submitted_at)
                VALUES (@ReferralId, @ServiceId, 'reserved', @StartOn, @hours, @overrideReason, @approvalId, @Now, (SELECT submitted_at FROM referral WHERE id = @ReferralId))
                RETURNING id
                """, new { task.ReferralId, command.ServiceId, command.StartOn, hours, overrideReason, approvalId = approval?.Id, scope.Now }, transaction);
            scope.RecordChange("placement.reserved", "placement", placementId, task.OrganisationId,
                new { referralId = task.ReferralId, serviceId = command.ServiceId, status = "reserved", startOn = command.StartOn, capacityOverride = overrideReason,
                    cautionApprovalId = approval?.Id });
            scope.RecordChange("service.capacity-changed", "service", command.ServiceId, null,
                new { availableToday = availableAfter, unit = service.CapacityUnit, reason = "accepted", overridden = overrideReason is not null });
            if (overrideReason is not null)
            {
                await ReferralNotes.AddAsync(work, task.ReferralId, "note", $"Accepted into {service.Name} although it was full today: {overrideReason}");
            }
            if (approval is not null)
            {
                await ReferralNotes.AddAsync(work, task.ReferralId, "note", approval.Describe(service.Provider));
            }
            if (!string.IsNullOrWhiteSpace(command.Note))
            {
                await ReferralNotes.AddAsync(work, task.ReferralId, "note", command.Note);
            }
            await ReferralNotes.TouchReferralAsync(work, task.Referral, "referral.accepted", status: "accepted");
            await Carers.CarerMessages.QueueAsync(work, task.ReferralId, task.OrganisationId, Carers.CarerMessages.Accepted, service.Name, command.StartOn);
            await Discharges.Discharges.SetIntendedAsync(work, task.ReferralId, Discharges.Discharges.IntendedForService(service.Kind));
            return new Result(placementId, service.Name, availableAfter);
        }
    }
}
