using CareCoordination.Auth;
using CareCoordination.Domain;
using CareCoordination.Features.Coordination;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Providers;

/// <summary>
/// Whoever holds a referral asks a manager to approve placing the person with a provider under amber caution: one of
/// its services (the coordination centre), or its beds (the bed bureau). The question waits on the managers'
/// Approvals page; the placement waits for the answer.
/// </summary>
public static class AskCautionApproval
{
    [AllowRoles(Roles.Coordinator, Roles.BedBureau)]
    public sealed record Command(long TaskId, long ProviderId, long? ServiceId, string Reason) : ICommand<long>;

    public sealed class Validator : AbstractValidator<Command>
    {
        public Validator() =>
            RuleFor(c => c.Reason).NotEmpty().WithMessage("Say why this provider, and what the risk discussion covered.")
                .MaximumLength(ReferralForm.LongText);
    }

    private sealed record Provider
    {
        public string Name { get; init; } = "";
        public string Caution { get; init; } = "none";
    }

    private sealed record Service
    {
        public long ProviderId { get; init; }
        public string Kind { get; init; } = "";
        public bool Active { get; init; }
    }

    private sealed record Asked
    {
        public string Status { get; init; } = "";
        public string RequestedBy { get; init; } = "";
        public DateTimeOffset RequestedAt { get; init; }
        public string? DecidedBy { get; init; }
        public long Placements { get; init; }
    }

    public sealed class Handler(Work work, Database database) : ICommandHandler<Command, long>
    {
        public async ValueTask<long> Handle(Command command, CancellationToken cancellationToken)
        {
            var (scope, connection, transaction) = (work.Scope, work.Connection, work.Transaction);
            var task = await TriageTasks.FindWorkingAsync(work, command.TaskId);
            var provider = await connection.QuerySingleOrDefaultAsync<Provider>(
                "SELECT name AS Name, caution AS Caution FROM organisation WHERE id = @ProviderId", new { command.ProviderId }, transaction)
                ?? throw new NotFound($"Organisation {command.ProviderId}");
            if (provider.Caution != "amber")
            {
                throw new RuleBroken(provider.Caution == "red"
                    ? $"{provider.Name} is under a red caution: no new placements, so there is nothing to approve."
                    : $"{provider.Name} is not under an amber caution: no approval is needed.");
            }
            await RequirePlacementOfTheQueueAsync(command, task, provider.Name);

            var earlier = await connection.QueryFirstOrDefaultAsync<Asked>(
                $"""
                SELECT a.status AS Status, a.requested_by_name AS RequestedBy, a.requested_at AS RequestedAt, a.decided_by_name AS DecidedBy,
                       (SELECT COUNT(*) FROM placement pl WHERE pl.caution_approval_id = a.id AND pl.status <> 'cancelled') AS Placements
                FROM caution_approval a
                WHERE a.referral_id = @ReferralId AND a.provider_id = @ProviderId AND {ProviderCaution.ForService(command.ServiceId)}
                ORDER BY a.id DESC LIMIT 1
                """, new { task.ReferralId, command.ProviderId, serviceId = command.ServiceId }, transaction);
            switch (earlier)
            {
                case { Status: "requested" }:
                    throw new Conflict($"{earlier.RequestedBy} asked at {LondonTime.ToLocal(earlier.RequestedAt):HH:mm}: it is waiting for a manager.");
                case { Status: "approved", Placements: 0 }:
                    throw new RuleBroken($"{earlier.DecidedBy} has approved this already: go ahead with the placement.");
            }

            long id;
            try
            {
                id = await connection.ExecuteScalarAsync<long>(
                    """
                    INSERT INTO caution_approval (referral_id, provider_id, service_id, status, reason, requested_by_user_id, requested_by_name, requested_at)
                    VALUES (@ReferralId, @ProviderId, @ServiceId, 'requested', @Reason, @UserId, @Name, @Now)
                    RETURNING id
                    """, new { task.ReferralId, command.ProviderId, command.ServiceId, Reason = command.Reason.Trim(), scope.Actor.UserId, scope.Actor.Name, scope.Now },
                    transaction);
            }
            catch (Exception ex) when (database.IsUniqueViolation(ex))
            {
                throw new Conflict("A colleague asked for this approval a moment ago: it is waiting for a manager.");
            }
            scope.RecordChange("approval.requested", "caution_approval", id, task.OrganisationId,
                new { referralId = task.ReferralId, providerId = command.ProviderId, serviceId = command.ServiceId, status = "requested" });
            scope.Touch("referral", task.ReferralId, task.PersonId);
            return id;
        }

        /// <summary>The coordination centre places into services, the bed bureau into beds: each asks for what it places.</summary>
        private async Task RequirePlacementOfTheQueueAsync(Command command, TaskRow task, string provider)
        {
            if (task.Queue == "bed-bureau")
            {
                if (command.ServiceId is not null)
                {
                    throw new RuleBroken($"The bed bureau places into beds: ask for a bed with {provider}, not a service.");
                }
                return;
            }
            var service = command.ServiceId is { } serviceId
                ? await work.Connection.QuerySingleOrDefaultAsync<Service>(
                    "SELECT organisation_id AS ProviderId, kind AS Kind, active AS Active FROM service WHERE id = @serviceId", new { serviceId }, work.Transaction)
                : null;
            if (service is null || service.ProviderId != command.ProviderId || !service.Active || service.Kind is "community-hospital" or "care-home")
            {
                throw new RuleBroken($"Choose which of {provider}'s open community services the approval is for.");
            }
        }
    }
}
