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
public static partial class DischargeDelays
{
    [AllowRoles(Roles.Manager, Roles.Admin)]
    public sealed record Query(ReportFilter Filter) : IQuery<Result>;

    public sealed class Validator : AbstractValidator<Query>
    {
        public Validator(TimeProvider clock)
        {
            RuleFor(q => q.Filter).SetValidator(new ReportFilter.Rules());
            RuleFor(q => q.Filter).SetValidator(new DischargeSitrep.DischargePeriod(clock));
        }
    }

    /// <summary>The national bands of days from discharge ready date to discharge: Max null is open-ended.</summary>
    public static IReadOnlyList<(string Label, int Min, int? Max)> Bands { get; } =
    [
        ("0 days", 0, 0), ("1 day", 1, 1), ("2-3 days", 2, 3), ("4-6 days", 4, 6), ("7-13 days", 7, 13), ("14-20 days", 14, 20), ("21+ days", 21, null),
    ];

    public sealed record Result(DateOnly From, DateOnly To, decimal CostPerBedDay, Figures All, IReadOnlyList<TrustFigures> ByTrust);

    public sealed record TrustFigures(long TrustId, string Trust, Figures Figures);

    /// <summary>
    /// Discharges: those with a ready date on or before the day they left, counted in each band (ByBand, in the order of
    /// <see cref="Bands"/>); averages in days to one decimal, AverageDaysExcludingZero null when none waited a day;
    /// BedDaysLost the sum of the delays. WithoutReadyDate: discharges whose referral has no discharge ready date;
    /// ReadyAfterDischarge: a ready date later than the discharge, a recording error. Neither is in the bands or averages.
    /// </summary>
    public sealed record Figures(int Discharges, IReadOnlyList<int> ByBand, double? AverageDays, double? AverageDaysExcludingZero,
        int BedDaysLost, decimal Cost, int WithoutReadyDate, int ReadyAfterDischarge);

    public static IReadOnlyList<ReportDefinition> Definitions { get; } =
    [
        new("Discharges", "People discharged from hospital in the period (the London day of the recorded discharge) whose referral has a "
            + "discharge ready date on or before that day. The discharge ready date is the day the person no longer met the criteria to reside: "
            + "the referral's medically optimised date."),
        new("Days delayed", "The days from the discharge ready date to the day of discharge: 0 when the person left on their discharge ready "
            + "date. Counted in the national bands 0, 1, 2-3, 4-6, 7-13, 14-20 and 21 or more days."),
        new("Average days (all)", "The days delayed of every discharge, over the number of discharges, to one decimal."),
        new("Average days (excluding 0-day delays)", "The same over only the discharges delayed a day or more, so that the many simple "
            + "discharges do not hide how long the delayed ones waited."),
        new("Bed days lost", "The sum of the days delayed: each is a night in a hospital bed the person no longer needed."),
        new("Cost", "Bed days lost at the configured price of a bed day (Boards:CostPerBedDay)."),
        new("No discharge ready date", "Discharges whose referral has no discharge ready date: not in the bands or averages. National "
            + "guidance lets a same-day discharge leave it blank; here it is shown so it can be put right."),
        new("Ready after discharge", "A discharge ready date later than the discharge: a recording error, not in the bands or averages."),
        new("Locality", "Where the person lives: the locality of their postcode."),
    ];

    /// <summary>The CSV: the whole period ("All") then each referring trust, a column per band.</summary>
    [CsvHelper.CsvRecord]
    public sealed partial record CsvRow(DateOnly From, DateOnly To, string Trust, int Discharges, int Days0, int Days1, int Days2To3, int Days4To6,
        int Days7To13, int Days14To20, int Days21Plus, double? AverageDays, double? AverageDaysExcludingZero, int BedDaysLost, decimal Cost,
        int NoDischargeReadyDate, int ReadyAfterDischarge);

    public const string AllTrusts = "All";

    public static IEnumerable<CsvRow> CsvRows(Result result) =>
        new[] { (Trust: AllTrusts, Figures: result.All) }.Concat(result.ByTrust.Select(t => (t.Trust, t.Figures)))
            .Select(t => new CsvRow(result.From, result.To, t.Trust, t.Figures.Discharges, t.Figures.ByBand[0], t.Figures.ByBand[1], t.Figures.ByBand[2],
                t.Figures.ByBand[3], t.Figures.ByBand[4], t.Figures.ByBand[5], t.Figures.ByBand[6], t.Figures.AverageDays, t.Figures.AverageDaysExcludingZero,
                t.Figures.BedDaysLost, t.Figures.Cost, t.Figures.WithoutReadyDate, t.Figures.ReadyAfterDischarge));

    private sealed record Discharge
    {
        public long TrustId { get; init; }
        public string Trust { get; init; } = "";
        public DateOnly? Ready { get; init; }
        public DateTimeOffset DischargedAt { get; init; }

        private int? _delay;
        private bool _counted;

        /// <summary>Days from the ready date to the London day of discharge; null without a ready date. Worked out once: the
        /// figures ask for it several times over each of a period's (possibly hundreds of thousands of) discharges.</summary>
        public int? Delay
        {
            get
            {
                if (!_counted)
                {
                    _delay = Ready is { } ready ? LondonTime.DateOf(DischargedAt).DayNumber - ready.DayNumber : null;
                    _counted = true;
                }
                return _delay;
            }
        }
    }

    public sealed class Handler(Database database, IOptionsMonitor<BoardSettings> boards) : IQueryHandler<Query, Result>
    {
        public async ValueTask<Result> Handle(Query query, CancellationToken cancellationToken)
        {
            var filter = query.Filter;
            var sql = """
                SELECT o.id AS TrustId, o.name AS Trust, r.medically_optimised_on AS Ready, r.discharged_at AS DischargedAt
                FROM referral r JOIN organisation o ON o.id = r.organisation_id
                WHERE r.discharged_at >= @StartUtc AND r.discharged_at < @EndUtc AND r.status <> 'draft'
                """;
            sql += filter.Narrowing(database.Provider);
            await using var connection = await database.OpenForReportAsync(cancellationToken);
            var discharges = (await connection.QueryAsync<Discharge>(sql, new { filter.StartUtc, filter.EndUtc, filter.Trust, filter.Locality })).ToList();

            var price = boards.CurrentValue.CostPerBedDay;
            return new Result(filter.From, filter.To, price, FiguresOf(discharges, price),
                discharges.GroupBy(d => (d.TrustId, d.Trust)).OrderBy(g => g.Key.Trust, StringComparer.Ordinal)
                    .Select(g => new TrustFigures(g.Key.TrustId, g.Key.Trust, FiguresOf(g, price))).ToList());
        }

        private static Figures FiguresOf(IEnumerable<Discharge> discharges, decimal price)
        {
            var list = discharges.ToList();
            var days = list.Where(d => d.Delay >= 0).Select(d => d.Delay!.Value).ToList();
            var lost = days.Sum();
            return new Figures(days.Count,
                Bands.Select(b => days.Count(d => d >= b.Min && (b.Max is null || d <= b.Max))).ToList(),
                Average(days), Average(days.Where(d => d > 0).ToList()), lost, lost * price,
                list.Count(d => d.Delay is null), list.Count(d => d.Delay < 0));
        }

        private static double? Average(List<int> days) =>
            days.Count == 0 ? null : Math.Round((double)days.Sum() / days.Count, 1, MidpointRounding.AwayFromZero);
    }
}
