using CareCoordination.Auth;
using CareCoordination.Domain;
using CareCoordination.Features.Referrals;
using CareCoordination.Features.Reports.CodeLists;
using CareCoordination.Pipeline;
using Dapper;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Discharges;

/// <summary>
/// Why a person past their discharge ready date is still in hospital, from the national list that applies on the day the reason
/// starts to hold. One reason holds at a time: a new one closes the last, so the history reads from when to when. The code is
/// kept with its list's version, so it reports under that version's labels whatever list comes later.
/// </summary>
public static class RecordDelayReason
{
    [AllowRoles(Roles.Coordinator, Roles.BedBureau)]
    public sealed record Command(long ReferralId, string Code, DateTimeOffset? From = null, string? Note = null) : ICommand;

    public sealed class Validator : AbstractValidator<Command>
    {
        public Validator(TimeProvider clock)
        {
            RuleFor(c => c.Code).NotEmpty().WithMessage("Choose the reason the person is waiting.");
            RuleFor(c => c.From).Must(from => from <= clock.GetUtcNow()).When(c => c.From is not null)
                .WithMessage("A reason holds from now or from a time already past, not from the future.");
            RuleFor(c => c.Note).MaximumLength(ReferralForm.LongText);
        }
    }

    private sealed record Waiting
    {
        public DateOnly? DischargeReadyOn { get; init; }
        public DateTimeOffset? DischargedAt { get; init; }
    }

    private sealed record Latest
    {
        public long Id { get; init; }
        public DateTimeOffset FromAt { get; init; }
        public DateTimeOffset? ToAt { get; init; }
    }

    public sealed class Handler(Work work) : ICommandHandler<Command>
    {
        public async ValueTask<Unit> Handle(Command command, CancellationToken cancellationToken)
        {
            var (scope, connection, transaction) = (work.Scope, work.Connection, work.Transaction);
            var referral = await ReferralAccess.FindAsync(connection, transaction, command.ReferralId, scope.Actor);
            if (referral.Status == "draft")
            {
                throw new RuleBroken("A draft has not been sent: nobody is waiting on it yet.");
            }
            var waiting = await connection.QuerySingleAsync<Waiting>(
                "SELECT medically_optimised_on AS DischargeReadyOn, discharged_at AS DischargedAt FROM referral WHERE id = @Id", new { referral.Id }, transaction);
            var from = command.From ?? scope.Now;
            var day = DateOnly.FromDateTime(LondonTime.ToLocal(from).DateTime);
            if (waiting.DischargeReadyOn is not { } ready)
            {
                throw new RuleBroken("This referral has no discharge ready date (medically optimised): a delay counts from it. Ask the referrer for it first.");
            }
            if (day < ready)
            {
                throw new RuleBroken($"On {ReferralText.Date(day)} the person was not yet ready to leave: their discharge ready date is {ReferralText.Date(ready)}. "
                    + "A delay reason holds from that day on.");
            }
            if (waiting.DischargedAt is { } left && from >= left)
            {
                throw new RuleBroken($"The person left hospital {ReferralText.Time(left)}: there is no delay to explain after that.");
            }

            var list = await CodeListVersions.OnAsync(connection, transaction, CodeListVersions.DelayReasons, day)
                ?? throw new RuleBroken($"No list of delay reasons applies on {ReferralText.Date(day)}: ask an administrator to load one.");
            var item = list.Items.FirstOrDefault(i => i.Code == command.Code)
                ?? throw new ValidationFailed(new Dictionary<string, string[]>
                {
                    [nameof(Command.Code)] = [$"'{command.Code}' is not a reason in the list that applies on {ReferralText.Date(day)} ({list.Title}, version {list.Version})."],
                });

            // The history runs forward: a reason starts after the one before it began, and not inside one already closed.
            var latest = await connection.QuerySingleOrDefaultAsync<Latest>(
                "SELECT id AS Id, from_at AS FromAt, to_at AS ToAt FROM discharge_delay WHERE referral_id = @Id ORDER BY from_at DESC, id DESC LIMIT 1",
                new { referral.Id }, transaction);
            if (latest is not null && (from < latest.FromAt || (latest.ToAt is { } ended && from < ended)))
            {
                throw new RuleBroken($"A reason is already recorded from {ReferralText.Time(latest.FromAt)}"
                    + (latest.ToAt is { } to ? $" to {ReferralText.Time(to)}" : "") + ": a new reason starts after it.");
            }
            if (latest is { ToAt: null })
            {
                await connection.ExecuteAsync("UPDATE discharge_delay SET to_at = @from WHERE id = @Id", new { from, latest.Id }, transaction);
            }
            await connection.ExecuteAsync(
                """
                INSERT INTO discharge_delay (referral_id, list_name, list_version, code, from_at, to_at, note, recorded_by_user_id, recorded_by_name, recorded_at)
                VALUES (@ReferralId, @Name, @Version, @Code, @from, @to, @note, @userId, @name, @now)
                """,
                new
                {
                    ReferralId = referral.Id, list.Name, list.Version, item.Code, from, to = waiting.DischargedAt, note = string.IsNullOrWhiteSpace(command.Note) ? null : command.Note.Trim(),
                    userId = scope.Actor.UserId, name = scope.Actor.Name, now = scope.Now,
                }, transaction);
            scope.AuditDetail = $"delay reason {item.Code} ({list.Name} {list.Version}) from {from:O}";
            await ReferralNotes.TouchReferralAsync(work, referral, "referral.delay-recorded");
            return Unit.Value;
        }
    }
}
