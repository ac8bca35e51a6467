using CareCoordination.Auth;
using CareCoordination.Domain;
using CareCoordination.Features.Coordination;
using CareCoordination.Features.Providers;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using FluentValidation;
using Mediator;
using Microsoft.Extensions.Options;

namespace CareCoordination.Features.BedBureau;

/// <summary>
/// Holds a bed for a person. The bed moves from available to reserved in one guarded statement and the
/// database allows one live placement per bed, so two people reserving one bed at once cannot both win.
/// The hold expires: a bed not taken up goes back to the board and the referral back to the queue. A bed of a provider
/// under amber caution is reserved only on a manager's approval for this referral and that provider's beds.
/// </summary>
public static class ReserveBed
{
    [AllowRoles(Roles.BedBureau)]
    public sealed record Command(long TaskId, long BedId, DateOnly StartOn) : ICommand<Result>;

    public sealed record Result(long PlacementId, DateTimeOffset ReservedUntil, string Place);

    public sealed class Validator : AbstractValidator<Command>
    {
        public Validator(TimeProvider clock)
        {
            RuleFor(c => c.StartOn)
                .Must(start => start >= LondonTime.Today(clock)).WithMessage("The admission date cannot be in the past.")
                .Must(start => start <= LondonTime.Today(clock).AddDays(7)).WithMessage("Reserve a bed for admission within a week.");
        }
    }

    private sealed record Person
    {
        public string Sex { get; init; } = "";
        public string? InfectionStatus { get; init; }
        public string? Pathway { get; init; }
    }

    public static DateTimeOffset EndOf(DateOnly day)
    {
        var local = day.AddDays(1).ToDateTime(TimeOnly.MinValue);
        return new DateTimeOffset(local, LondonTime.Zone.GetUtcOffset(local)).ToUniversalTime();
    }

    private static DateTimeOffset Max(DateTimeOffset a, DateTimeOffset b) => a > b ? a : b;

    public sealed class Handler(Work work, Database database, IOptionsMonitor<BedBureauSettings> settings) : ICommandHandler<Command, Result>
    {
        public async ValueTask<Result> Handle(Command command, CancellationToken cancellationToken)
        {
            var scope = work.Scope;
            var task = await TriageTasks.FindWorkingAsync(work, command.TaskId);
            var bed = await Beds.FindAsync(work, command.BedId);
            var person = await work.Connection.QuerySingleAsync<Person>(
                "SELECT p.sex AS Sex, r.infection_status AS InfectionStatus, r.pathway AS Pathway FROM referral r JOIN person p ON p.id = r.person_id WHERE r.id = @ReferralId",
                new { task.ReferralId }, work.Transaction);

            var approval = await ProviderCaution.RequireAsync(work, database, task.ReferralId, bed.ProviderId, null, bed.Provider);
            // Whether the site is open, read again under its lock: a site closing at the same moment (DeactivateSite) has either
            // committed, and is seen closed, or waits, and then counts this bed as reserved.
            await database.LockAsync(work.Connection, work.Transaction, Beds.SiteLock(bed.SiteId));
            if (!await work.Connection.ExecuteScalarAsync<bool>("SELECT active FROM site WHERE id = @SiteId", new { bed.SiteId }, work.Transaction))
            {
                throw new RuleBroken($"{bed.SiteName} is closed to admissions.");
            }
            // Matching ranks within these types; reserving outside them would place the person on the wrong pathway.
            var fits = MatchBeds.TypesFor(new MatchBeds.Needs(person.Pathway, person.Sex, null, false, false, false));
            if (!fits.Contains(bed.BedType))
            {
                throw new RuleBroken($"A {MatchBeds.Label(bed.BedType).ToLowerInvariant()} bed does not meet pathway {person.Pathway ?? "(not yet stated)"}: choose {string.Join(" or ", fits.Select(t => MatchBeds.Label(t).ToLowerInvariant()))}.");
            }
            if (bed.AllowedSex != "any" && bed.AllowedSex != person.Sex)
            {
                throw new RuleBroken($"{bed.Place} is in a {bed.AllowedSex}-only bay.");
            }
            if (!string.IsNullOrWhiteSpace(person.InfectionStatus) && !bed.SingleRoom)
            {
                throw new RuleBroken($"The person must be isolated ({person.InfectionStatus}): choose a single room.");
            }

            if (bed.Status is "reserved" or "occupied")
            {
                throw new Conflict($"{bed.Place} is no longer available: it was taken a moment ago. Choose another bed.");
            }
            await Beds.MoveAsync(work, bed, "reserved", "bed.reserved", detail: new { referralId = task.ReferralId });
            // Held for the reservation time, and at least until the end of the admission day: a bed kept for
            // Thursday must not go back to the board on Tuesday night.
            var until = Max(scope.Now.AddHours(settings.CurrentValue.ReservationHours), EndOf(command.StartOn));
            long placementId;
            try
            {
                placementId = await work.Connection.ExecuteScalarAsync<long>(
                    """
                    INSERT INTO placement (referral_id, bed_id, status, start_on, reserved_until, caution_approval_id, created_at, referral_submitted_at)
                    VALUES (@ReferralId, @BedId, 'reserved', @StartOn, @until, @approvalId, @Now, (SELECT submitted_at FROM referral WHERE id = @ReferralId))
                    RETURNING id
                    """, new { task.ReferralId, command.BedId, command.StartOn, until, approvalId = approval?.Id, scope.Now }, work.Transaction);
            }
            catch (Exception ex) when (database.IsUniqueViolation(ex))
            {
                // The bed's guard should have caught it; the index is the last word.
                throw new Conflict($"{bed.Place} was reserved for someone else a moment ago. Choose another bed.");
            }
            scope.RecordChange("placement.reserved", "placement", placementId, task.OrganisationId,
                new { referralId = task.ReferralId, bedId = bed.Id, status = "reserved", reservedUntil = until, startOn = command.StartOn, cautionApprovalId = approval?.Id });
            var approved = approval?.Describe(bed.Provider);
            await TriageTasks.CloseAsync(work, task, "completed", "task.completed", $"accepted: {bed.BedType} bed, {bed.SiteName}", approved);
            if (approved is not null)
            {
                await ReferralNotes.AddAsync(work, task.ReferralId, "note", approved);
            }
            await ReferralNotes.TouchReferralAsync(work, task.Referral, "referral.accepted", status: "accepted");
            await Carers.CarerMessages.QueueAsync(work, task.ReferralId, task.OrganisationId, Carers.CarerMessages.Accepted, bed.SiteName, command.StartOn);
            return new Result(placementId, until, bed.Place);
        }
    }
}
