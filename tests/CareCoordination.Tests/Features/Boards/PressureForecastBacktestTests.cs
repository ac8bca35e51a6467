using System.Globalization;
using CareCoordination.Domain;
using CareCoordination.Features.Boards;
using CareCoordination.Tests.Support;
using Dapper;
using Microsoft.AspNetCore.Hosting;
using Xunit.Abstractions;

namespace CareCoordination.Tests.Features.Boards;

/// <summary>
/// The backtest (docs/forecast.md): the demo county seeded with six weeks of history; for each day that has four complete
/// weeks before it, the forecast is made from what the store knew at the end of that day (referrals, tasks, placements
/// as they stood then) and each of its next seven days, up to yesterday, is compared with what happened. The errors are
/// printed and held below the bounds stated in docs/forecast.md.
/// </summary>
public sealed class PressureForecastBacktestTests(PressureForecastBacktestTests.SixWeeksOfDemo app, ITestOutputHelper output)
    : IClassFixture<PressureForecastBacktestTests.SixWeeksOfDemo>
{
    public const int HistoryDays = 42;
    private const int Weeks = 4;

    public sealed class SixWeeksOfDemo : AppFactory
    {
        // The demo history is planned back from now with a fixed random seed, so what it holds depends on the time of day the
        // test runs; at some times (01:40-02:20 UTC on 4 December) the six weeks' plan ran out of beds and the seed threw. The
        // backtest replays one fixed six weeks, ending at an instant whose history seeds: the same figures on every run.
        public SixWeeksOfDemo() => Clock.AdjustTime(new DateTimeOffset(2026, 12, 3, 21, 0, 0, TimeSpan.Zero));

        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            base.ConfigureWebHost(builder);
            builder.UseSetting("Demo:HistoryDays", HistoryDays.ToString(CultureInfo.InvariantCulture));
        }
    }

    private sealed record Acceptance
    {
        public DateTimeOffset At { get; init; }
        public string? ServiceKind { get; init; }
        public string? BedType { get; init; }
    }

    /// <summary>One forecast figure for one day, and what happened.</summary>
    private sealed record Pair(string Measure, int Horizon, PressureForecast.Band Band, double Actual, double Flat);

    [Fact]
    public async Task Backtest_OnTheDemoHistory_StaysWithinItsStatedError()
    {
        var today = LondonTime.Today(app.Clock);
        var yesterday = today.AddDays(-1);
        await using var connection = await app.OpenAsync();

        // What happened, day by day: referrals sent, and slots and beds taken (an acceptance makes a placement).
        var referrals = (await connection.QueryAsync<DateTimeOffset>("SELECT submitted_at FROM referral WHERE submitted_at IS NOT NULL"))
            .Select(LondonTime.DateOf).GroupBy(d => d).ToDictionary(g => g.Key, g => (double)g.Count());
        var taken = (await connection.QueryAsync<Acceptance>(
            """
            SELECT pl.created_at AS At, s.kind AS ServiceKind, b.bed_type AS BedType FROM placement pl
            LEFT JOIN service s ON s.id = pl.service_id LEFT JOIN bed b ON b.id = pl.bed_id
            """)).Select(a => (Day: LondonTime.DateOf(a.At), Measure: a.ServiceKind == "reablement" ? "reablement" : a.BedType))
            .Where(a => a.Measure is not null).GroupBy(a => (a.Day, a.Measure!)).ToDictionary(g => g.Key, g => (double)g.Count());
        double Actual(string measure, DateOnly day) => measure == "referrals" ? referrals.GetValueOrDefault(day)
            : measure == "all beds" ? PressureForecast.BedTypes.Sum(t => taken.GetValueOrDefault((day, t)))
            : taken.GetValueOrDefault((day, measure));

        var firstDay = referrals.Keys.Min();
        Assert.Equal(today.AddDays(1 - HistoryDays), firstDay);
        var pairs = new List<Pair>();
        var origins = 0;
        // The first origin with four complete weeks behind it; the last whose next day has happened.
        for (var origin = firstDay.AddDays(7 * Weeks - 1); origin <= yesterday.AddDays(-1); origin = origin.AddDays(1))
        {
            origins++;
            var asOf = LondonTime.StartOf(origin.AddDays(1));
            var inputs = await PressureForecast.ReadAsync(connection, asOf, origin.AddDays(1), Weeks);
            var forecast = PressureForecast.Make(inputs, asOf);
            Assert.Equal(Weeks, forecast.WeeksUsed);
            var known = Enumerable.Range(0, 7 * Weeks).Select(back => origin.AddDays(-back)).ToList();
            foreach (var day in forecast.Days.Where(d => d.Date <= yesterday))
            {
                var horizon = day.Date.DayNumber - origin.DayNumber;
                foreach (var measure in new[] { "referrals", "reablement", "all beds" }.Concat(PressureForecast.BedTypes))
                {
                    var band = measure switch
                    {
                        "referrals" => day.Referrals,
                        "all beds" => Sum(PressureForecast.BedTypes.Select(t => day.Demand[t])),
                        _ => day.Demand[measure],
                    };
                    // The reference a forecast must beat: the plain average of the last four weeks, every day alike.
                    var flat = known.Average(d => Actual(measure, d));
                    pairs.Add(new Pair(measure, horizon, band, Actual(measure, day.Date), flat));
                }
            }
        }

        output.WriteLine($"Backtest: {origins} forecasts (made at the end of each day from {firstDay.AddDays(7 * Weeks - 1):d MMM} to {yesterday.AddDays(-1):d MMM}), "
            + $"{pairs.Count(p => p.Measure == "referrals")} forecast days compared with what happened.");
        output.WriteLine("measure            | mean a day | MAE   | MAE of flat 4-week mean | inside low-high | MAE day 1 | MAE days 2-7 | bias day 1 | bias days 2-7");
        var summary = pairs.GroupBy(p => p.Measure).ToDictionary(g => g.Key, g => Summarise(g.ToList()));
        foreach (var (measure, s) in summary)
        {
            output.WriteLine(FormattableString.Invariant(
                $"{measure,-18} | {s.Mean,10:0.0} | {s.Mae,5:0.00} | {s.FlatMae,23:0.00} | {s.Inside,15:P0} | {s.MaeDay1,9:0.00} | {s.MaeLater,12:0.00} | {s.BiasDay1,10:+0.00;-0.00} | {s.BiasLater,13:+0.00;-0.00}"));
        }

        // The bounds and why they are these: docs/forecast.md, "Backtest".
        var r = summary["referrals"];
        Assert.True(r.Mae <= 4.5, $"referrals MAE {r.Mae:0.00} > 4.5");
        Assert.True(r.Mae < r.FlatMae, $"referrals MAE {r.Mae:0.00} does not beat the flat mean's {r.FlatMae:0.00}");
        Assert.True(r.Inside >= 0.5, $"referrals inside the band {r.Inside:P0} < 50%");
        var reablement = summary["reablement"];
        Assert.True(reablement.Mae <= 0.12 * reablement.Mean, $"reablement MAE {reablement.Mae:0.00} > 12% of its mean {reablement.Mean:0.0}");
        Assert.True(reablement.MaeDay1 <= 0.2 * reablement.Mean, $"tomorrow's reablement MAE {reablement.MaeDay1:0.00} > 20% of its mean {reablement.Mean:0.0}");
        Assert.True(reablement.Inside >= 0.8, $"reablement inside the band {reablement.Inside:P0} < 80%");
        var beds = summary["all beds"];
        Assert.True(beds.Mae <= 0.35 * beds.Mean, $"all beds MAE {beds.Mae:0.00} > 35% of its mean {beds.Mean:0.0}");
        Assert.True(summary["rehabilitation"].Inside >= 0.8, $"rehabilitation beds inside the band {summary["rehabilitation"].Inside:P0} < 80%");
    }

    private sealed record Summary(double Mean, double Mae, double FlatMae, double Inside, double MaeDay1, double MaeLater, double BiasDay1, double BiasLater);

    private static Summary Summarise(List<Pair> pairs) => new(
        pairs.Average(p => p.Actual),
        pairs.Average(p => Math.Abs(p.Band.Likely - p.Actual)),
        pairs.Average(p => Math.Abs(p.Flat - p.Actual)),
        pairs.Count(p => p.Band.Low <= p.Actual && p.Actual <= p.Band.High) / (double)pairs.Count,
        pairs.Where(p => p.Horizon == 1).Average(p => Math.Abs(p.Band.Likely - p.Actual)),
        pairs.Where(p => p.Horizon > 1).Average(p => Math.Abs(p.Band.Likely - p.Actual)),
        pairs.Where(p => p.Horizon == 1).Average(p => p.Band.Likely - p.Actual),
        pairs.Where(p => p.Horizon > 1).Average(p => p.Band.Likely - p.Actual));

    /// <summary>Bed types together: likely figures add; the band's ends add too (a wider, cautious band).</summary>
    private static PressureForecast.Band Sum(IEnumerable<PressureForecast.Band> bands)
    {
        var list = bands.ToList();
        return new PressureForecast.Band(list.Sum(b => b.Low), list.Sum(b => b.Likely), list.Sum(b => b.High));
    }
}
