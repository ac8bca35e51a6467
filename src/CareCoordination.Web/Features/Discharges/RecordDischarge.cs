using CareCoordination.Auth;
using CareCoordination.Domain;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using Dapper;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Discharges;

/// <summary>
/// The person has left hospital: when, on which pathway, and to where. Recorded (or corrected) by the referrer, the coordination
/// centre or bed bureau, or the referring organisation's system over FHIR; a placement starting records it too when nobody has
/// (Discharges.RecordFromPlacementAsync). What is not said defaults to what was recorded before, else to the placement's.
/// </summary>
public static class RecordDischarge
{
    /// <summary>A discharge this long before the referral was sent is a mistyped date, not a late referral.</summary>
    public static readonly TimeSpan EarliestBeforeReferral = TimeSpan.FromDays(30);

    /// <summary>Clocks differ a little between a partner's system and ours.</summary>
    private static readonly TimeSpan ClockSkew = TimeSpan.FromMinutes(5);

    /// <summary>ExpectedVersion, when given (a FHIR update's meta.versionId), refuses a referral changed since the caller read it.</summary>
    [AllowRoles(Roles.Referrer, Roles.Coordinator, Roles.BedBureau)]
    [AllowPartnerScope("system/ServiceRequest.u")]
    public sealed record Command(long ReferralId, DateTimeOffset DischargedAt, string? PathwayAtDischarge = null, string? Destination = null,
        string? CareLevel = null, int? ExpectedVersion = null) : ICommand;

    public sealed class Validator : AbstractValidator<Command>
    {
        public Validator(TimeProvider clock)
        {
            RuleFor(c => c.DischargedAt).Must(at => at != default).WithMessage("Say when the person left hospital.")
                .Must(at => at <= clock.GetUtcNow() + ClockSkew).WithMessage("The discharge cannot be in the future: record it once the person has left.");
            RuleFor(c => c.PathwayAtDischarge).Must(p => Discharges.Pathways.Has(p)).When(c => c.PathwayAtDischarge is not null)
                .WithMessage("The pathway at discharge is 0, 1, 2 or 3.");
            RuleFor(c => c.Destination).Must(d => Discharges.Destinations.Has(d)).When(c => c.Destination is not null)
                .WithMessage("Choose the destination from the list.");
            RuleFor(c => c.CareLevel).Must(l => Discharges.CareLevels.Has(l)).When(c => c.CareLevel is not null)
                .WithMessage("Say whether the care is new, restarted, or a return to the same level as before.");
        }
    }

    private sealed record Current
    {
        public string Source { get; init; } = "";
        public DateTimeOffset CreatedAt { get; init; }
        public DateTimeOffset? SubmittedAt { get; init; }
        public DateTimeOffset? DischargedAt { get; init; }
        public string? RecordedFrom { get; init; }
        public string? Pathway { get; init; }
        public string? Destination { get; init; }
        public string? CareLevel { get; init; }
    }

    public sealed class Handler(Work work, Fhir.ReceivedMessage received) : ICommandHandler<Command>
    {
        public async ValueTask<Unit> Handle(Command command, CancellationToken cancellationToken)
        {
            var (scope, connection, transaction) = (work.Scope, work.Connection, work.Transaction);
            var referral = await ReferralAccess.FindAsync(connection, transaction, command.ReferralId, scope.Actor);
            CheckReferralVersion.Require(referral, command.ExpectedVersion);
            if (referral.Status == "draft")
            {
                throw new RuleBroken("A draft has not been sent: there is no discharge to record on it.");
            }
            var current = await connection.QuerySingleAsync<Current>(
                """
                SELECT source AS Source, created_at AS CreatedAt, submitted_at AS SubmittedAt, discharged_at AS DischargedAt,
                       discharge_recorded_from AS RecordedFrom, pathway_at_discharge AS Pathway, destination_at_discharge AS Destination,
                       destination_care_level AS CareLevel
                FROM referral WHERE id = @Id
                """, new { referral.Id }, transaction);
            if (!ReferralCodes.IsHospital(current.Source))
            {
                throw new RuleBroken($"Referral {referral.Id} came from the community ({ReferralCodes.Sources.LabelOf(current.Source)}): there is no hospital discharge to record.");
            }
            var sent = current.SubmittedAt ?? current.CreatedAt;
            if (command.DischargedAt < sent - EarliestBeforeReferral)
            {
                throw new RuleBroken($"A discharge on {ReferralText.Time(command.DischargedAt)} is more than {EarliestBeforeReferral.Days} days before the referral was sent "
                    + $"({ReferralText.Time(sent)}): check the date.");
            }
            var laterDelay = await connection.ExecuteScalarAsync<DateTimeOffset?>(
                "SELECT MAX(from_at) FROM discharge_delay WHERE referral_id = @Id AND from_at > @DischargedAt", new { referral.Id, command.DischargedAt }, transaction);
            if (laterDelay is { } delayFrom)
            {
                throw new RuleBroken($"A delay reason is recorded from {ReferralText.Time(delayFrom)}, after that discharge time: the person was still waiting then. Check the time.");
            }

            var defaults = await Discharges.FromPlacementAsync(connection, transaction, referral.Id);
            var pathway = command.PathwayAtDischarge ?? current.Pathway ?? defaults.Pathway;
            var destination = command.Destination ?? current.Destination ?? defaults.Destination;
            var careLevel = command.CareLevel ?? current.CareLevel ?? defaults.CareLevel;
            var from = scope.Actor.Kind == ActorKind.Partner ? "partner" : scope.Actor.Role == Roles.Referrer ? "referrer" : "coordination";
            await connection.ExecuteAsync(
                """
                UPDATE referral SET discharged_at = @DischargedAt, discharge_recorded_from = @from, pathway_at_discharge = @pathway,
                    destination_at_discharge = @destination, destination_care_level = @careLevel
                WHERE id = @Id
                """, new { command.DischargedAt, from, pathway, destination, careLevel, referral.Id }, transaction);
            if (current.DischargedAt is { } recordedBefore && command.DischargedAt > recordedBefore)
            {
                // Corrected to later: the reason the earlier time ended held until the person really left.
                await connection.ExecuteAsync(
                    "UPDATE discharge_delay SET to_at = @DischargedAt WHERE referral_id = @Id AND to_at = @recordedBefore",
                    new { command.DischargedAt, referral.Id, recordedBefore }, transaction);
            }
            await Discharges.CloseDelaysAsync(work, referral.Id, command.DischargedAt);
            // A partner's message that says so (its Encounter's end) is kept as sent with the referral, as every write of one is.
            await received.KeepAsync(work, referral.Id);

            // The audit row says what was there before, so that a correction can be followed.
            scope.AuditDetail = $"discharged {command.DischargedAt:O}, pathway {pathway ?? "-"}, destination {destination ?? "-"}, care {careLevel ?? "-"}, from {from}"
                + (current.DischargedAt is { } before
                    ? $" (was {before:O}, pathway {current.Pathway ?? "-"}, destination {current.Destination ?? "-"}, care {current.CareLevel ?? "-"}, from {current.RecordedFrom})"
                    : "");
            await ReferralNotes.TouchReferralAsync(work, referral, current.DischargedAt is null ? "referral.discharged" : "referral.discharge-corrected",
                expectedVersion: command.ExpectedVersion);
            return Unit.Value;
        }
    }
}
