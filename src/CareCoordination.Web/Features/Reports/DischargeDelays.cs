using CareCoordination.Auth;
using CareCoordination.Domain;
using CareCoordination.Pipeline;
using CareCoordination.Features.Boards;
using CareCoordination.Store;
using Dapper;
using FluentValidation;
using Mediator;
using Microsoft.Extensions.Options;

namespace CareCoordination.Features.Reports;

/// <summary>
/// Discharge ready date delays: the people discharged in a period, by the days between their discharge ready date and
/// their discharge (London dates) in the national bands; the average delay with and without the discharges that had
/// none; the bed days lost and what they cost at the board's price of a bed day. Definitions: docs/reports.md#discharge-ready-date-delays.
/// </summary>
public static class DischargeDelays
{
    [AllowRoles(Roles.Manager, Roles.Admin)]
    public sealed record Query(DateOnly From, DateOnly To, long? TrustId = null, string? Locality = null) : IQuery<Result>;

    public sealed class Validator : AbstractValidator<Query>
    {
        public Validator(TimeProvider clock)
        {
            RuleFor(q => q.To).GreaterThanOrEqualTo(q => q.From).WithMessage("The period ends before it starts.");
            RuleFor(q => q.To).Must(to => to <= LondonTime.Today(clock)).WithMessage("The period cannot end after today.");
            RuleFor(q => q).Must(q => q.To.DayNumber - q.From.DayNumber < DischargeSitrep.MaxDays).WithName("Period")
                .WithMessage($"Choose a period of at most {DischargeSitrep.MaxDays} days.");
        }
    }

    /// <summary>The national bands of days from discharge ready date to discharge: Max null is open-ended.</summary>
    public static IReadOnlyList<(string Label, int Min, int? Max)> Bands { get; } =
    [
        ("0 days", 0, 0), ("1 day", 1, 1), ("2-3 days", 2, 3), ("4-6 days", 4, 6), ("7-13 days", 7, 13), ("14-20 days", 14, 20), ("21+ days", 21, null),
    ];

    /// <summary>
    /// WithoutReadyDate: discharges in the period whose referral has no discharge ready date. ReadyAfterDischarge: a
    /// ready date later than the discharge, a recording error. Neither is in the bands or the averages.
    /// </summary>
    public sealed record Result(DateOnly From, DateOnly To, decimal CostPerBedDay, Figures All, IReadOnlyList<TrustFigures> ByTrust,
        int WithoutReadyDate, int ReadyAfterDischarge);

    public sealed record TrustFigures(long TrustId, string Trust, Figures Figures);

    /// <summary>
    /// Discharges counted in each band (in the order of <see cref="Bands"/>); averages in days to one decimal,
    /// AverageDaysExcludingZero null when every discharge was on its ready date; BedDaysLost the sum of the delays.
    /// </summary>
    public sealed record Figures(int Discharges, IReadOnlyList<int> ByBand, double? AverageDays, double? AverageDaysExcludingZero, int BedDaysLost, decimal Cost);

    private sealed record Discharge
    {
        public long TrustId { get; init; }
        public string Trust { get; init; } = "";
        public DateOnly? Ready { get; init; }
        public DateTimeOffset DischargedAt { get; init; }
    }

    public sealed class Handler(Database database, IOptionsMonitor<BoardSettings> boards) : IQueryHandler<Query, Result>
    {
        public async ValueTask<Result> Handle(Query query, CancellationToken cancellationToken)
        {
            var sql = """
                SELECT o.id AS TrustId, o.name AS Trust, r.medically_optimised_on AS Ready, r.discharged_at AS DischargedAt
                FROM referral r JOIN organisation o ON o.id = r.organisation_id
                WHERE r.discharged_at >= @start AND r.discharged_at < @end AND r.status <> 'draft'
                """;
            if (query.TrustId is not null)
            {
                sql += " AND r.organisation_id = @TrustId";
            }
            if (!string.IsNullOrEmpty(query.Locality))
            {
                sql += " AND o.locality = @Locality";
            }
            await using var connection = await database.OpenAsync(cancellationToken);
            var discharges = (await connection.QueryAsync<Discharge>(sql, new
            {
                start = LondonTime.StartOf(query.From), end = LondonTime.StartOf(query.To.AddDays(1)), query.TrustId, query.Locality,
            })).ToList();

            var price = boards.CurrentValue.CostPerBedDay;
            var delayed = discharges.Where(d => d.Ready is { } ready && ready <= LondonTime.DateOf(d.DischargedAt)).ToList();
            return new Result(query.From, query.To, price, FiguresOf(delayed, price),
                delayed.GroupBy(d => (d.TrustId, d.Trust)).OrderBy(g => g.Key.Trust, StringComparer.Ordinal)
                    .Select(g => new TrustFigures(g.Key.TrustId, g.Key.Trust, FiguresOf(g, price))).ToList(),
                discharges.Count(d => d.Ready is null),
                discharges.Count(d => d.Ready is { } ready && ready > LondonTime.DateOf(d.DischargedAt)));
        }

        private static Figures FiguresOf(IEnumerable<Discharge> discharges, decimal price)
        {
            var days = discharges.Select(d => LondonTime.DateOf(d.DischargedAt).DayNumber - d.Ready!.Value.DayNumber).ToList();
            var delayedOnly = days.Where(d => d > 0).ToList();
            var lost = days.Sum();
            return new Figures(days.Count,
                Bands.Select(b => days.Count(d => d >= b.Min && (b.Max is null || d <= b.Max))).ToList(),
                Average(days), Average(delayedOnly), lost, lost * price);
        }

        private static double? Average(List<int> days) =>
            days.Count == 0 ? null : Math.Round((double)days.Sum() / days.Count, 1, MidpointRounding.AwayFromZero);
    }
}
