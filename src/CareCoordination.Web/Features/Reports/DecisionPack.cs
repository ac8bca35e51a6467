using System.Globalization;
using CareCoordination.Auth;
using CareCoordination.Domain;
using CareCoordination.Features.Admin;
using CareCoordination.Features.Boards;
using CareCoordination.Features.Coordination;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using CsvHelper;
using Dapper;
using FluentValidation;
using Mediator;
using Microsoft.Extensions.Options;

namespace CareCoordination.Features.Reports;

/// <summary>
/// Report 7, the quarterly decision pack: one page set per quarter with six panels and the data quality scorecard.
/// Outcomes (home first), flow and market health are counted here; experience is the admin-kept "you said, we did"
/// list; finance and the scorecard are the discharge ready date delays and data quality queries sent for the same
/// quarter, trust and locality, so the pack never shows a figure those reports would not. Every figure is a row of
/// (panel, figure, value, definition): the page's tables and the CSV are the same rows.
/// Definitions: docs/reports.md#decision-pack.
/// </summary>
public static partial class DecisionPack
{
    public const string Slug = "decision-pack";

    /// <summary>The panels, in the pack's order; each is a printed page of its own.</summary>
    public static class Panels
    {
        public const string Outcomes = "1. People's outcomes: home first";
        public const string Flow = "2. Flow and timeliness";
        public const string Experience = "3. Experience: you said, we did";
        public const string Equity = "4. Equity";
        public const string Market = "5. Market health";
        public const string Finance = "6. Finance";
        public const string DataQuality = "Data quality scorecard";

        public static IReadOnlyList<string> All { get; } = [Outcomes, Flow, Experience, Equity, Market, Finance, DataQuality];
    }

    /// <summary>Days after a reablement placement ends that a person is followed for "still at home".</summary>
    public const int FollowUpDays = 91;

    /// <summary>Home-based service kinds: the person lives at home while they are supported.</summary>
    public static IReadOnlyList<string> HomeBasedKinds { get; } = ["reablement", "home-care", "therapy", "voluntary-sector"];

    /// <param name="Filter">The quarter as a period (its first to its last day), the referring organisation and the locality.</param>
    [AllowRoles(Roles.Manager, Roles.Admin)]
    public sealed record Query(ReportFilter Filter) : IQuery<Result>;

    public sealed class Validator : AbstractValidator<Query>
    {
        public Validator(TimeProvider clock)
        {
            RuleFor(q => q.Filter).SetValidator(new ReportFilter.Rules());
            RuleFor(q => q.Filter).Must(f => Quarter.Containing(f.From).Covers(f)).WithName("Quarter")
                .WithMessage("The decision pack covers one quarter: from its first day to its last.");
            RuleFor(q => q.Filter.From).Must(from => from <= LondonTime.Today(clock)).WithName("Quarter")
                .WithMessage("That quarter has not started yet.");
        }
    }

    /// <summary>One figure of the pack, as the page's tables show it and the CSV carries it. Value is invariant text ("12", "57.1"); empty when there is nothing to count.</summary>
    [CsvRecord]
    public sealed partial record Figure(
        [property: CsvColumn("Panel")] string Panel,
        [property: CsvColumn("Figure")] string Name,
        [property: CsvColumn("Value")] string Value,
        [property: CsvColumn("Definition")] string Definition);

    public sealed record Bar(string Label, double Value);

    /// <summary>A panel's chart: the same figures as its table, drawn.</summary>
    public sealed record Chart(string Title, string Axis, IReadOnlyList<Bar> Bars);

    /// <param name="CountedTo">The last day counted: the quarter's last day, or today while the quarter is still running.</param>
    /// <param name="EquityPath">The equity report's page, for the detail behind the equity panel.</param>
    public sealed record Result(Quarter Quarter, DateOnly CountedTo, IReadOnlyList<Figure> Figures, IReadOnlyDictionary<string, Chart> Charts,
        IReadOnlyList<YouSaidWeDidItems.Item> YouSaidWeDid, IReadOnlyList<DataQuality.Measure> DataQuality, string EquityPath)
    {
        public IEnumerable<Figure> Of(string panel) => Figures.Where(f => f.Panel == panel);
    }

    public static IReadOnlyList<ReportDefinition> Definitions { get; } =
    [
        new("Quarter", "A calendar quarter of London days, first to last day included, named by its months and its NHS financial-year quarter (April to June is Q1). While a quarter is still running, figures count to today."),
        new("Referring organisation", "The organisation that sent the referral. It filters outcomes, flow, finance, the scorecard and caution approvals; not the market (providers, services and beds belong to no referrer)."),
        new("Locality", "Where the person lives (their locality) for every figure about referrals, as in every report; for the market, the service's, site's or provider's locality."),
        new("Each figure", "Its definition is beside it in the panel's table and in the CSV (columns Panel, Figure, Value, Definition). No figure names a person."),
    ];

    private static int IndexOf(string panel) => Panels.All.ToList().IndexOf(panel);

    private static string Number(int value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Number(double? value) => value is { } v ? v.ToString("0.##", CultureInfo.InvariantCulture) : "";

    private static string Money(decimal value) => value.ToString("0.00", CultureInfo.InvariantCulture);

    /// <summary>A share to one decimal place; empty when there is nobody to share among.</summary>
    private static string Percent(int part, int whole) =>
        whole == 0 ? "" : Math.Round(100.0 * part / whole, 1, MidpointRounding.AwayFromZero).ToString("0.#", CultureInfo.InvariantCulture);

    private sealed record Placed
    {
        public long ReferralId { get; init; }
        public string? PathwayAsked { get; init; }
        public string Kind { get; init; } = "";
        public long BedBureauTasks { get; init; }

        public bool HomeBased => HomeBasedKinds.Contains(Kind);

        /// <summary>Asked for a bed: pathway 2 or 3 on the referral, or passed to the bed bureau before this placement was made.</summary>
        public bool BedRequested => PathwayAsked is "2" or "3" || BedBureauTasks > 0;
    }

    private sealed record Reabled
    {
        public long PersonId { get; init; }
        public DateTimeOffset EndedAt { get; init; }
    }

    private sealed record LaterBed
    {
        public long PersonId { get; init; }
        public DateTimeOffset At { get; init; }
    }

    private sealed record Span
    {
        public long ReferralId { get; init; }
        public DateTimeOffset From { get; init; }
        public DateTimeOffset? To { get; init; }
    }

    private sealed record HomeService
    {
        public string CapacityUnit { get; init; } = "";
        public int CapacityPerDay { get; init; }
        public int AvailableToday { get; init; }
    }

    private sealed record Approval
    {
        public string Status { get; init; } = "";
    }

    public sealed class Handler(Database database, TimeProvider clock, IMediator mediator,
        IOptionsMonitor<EquitySettings> equitySettings, IOptionsMonitor<CoordinationTargets> targets, DeprivationLookup deprivation) : IQueryHandler<Query, Result>
    {
        // Outcomes, flow and caution approvals: the referring organisation and the person's locality, as every referral report filters.
        // The trust and locality of "referral r", its person read only when a locality is asked for: joined for the filter,
        // every referral's person was read for nothing (PostgreSQL at 1M: a quarter's referrals counted in 115-200 ms, 25-32 ms
        // without the join).
        private const string ReferralFilter =
            " AND (@Trust IS NULL OR r.organisation_id = @Trust) AND (@Locality IS NULL OR EXISTS (SELECT 1 FROM person pe WHERE pe.id = r.person_id AND pe.locality = @Locality))";

        public async ValueTask<Result> Handle(Query query, CancellationToken cancellationToken)
        {
            var quarter = new Quarter(query.Filter.From);
            var today = LondonTime.Today(clock);
            var countedTo = quarter.Last <= today ? quarter.Last : today;
            var filter = query.Filter with { To = countedTo };
            var figures = new List<Figure>();
            var charts = new Dictionary<string, Chart>();
            var parameters = new
            {
                start = LondonTime.StartOf(quarter.First), end = LondonTime.StartOf(countedTo.AddDays(1)),
                cohortStart = LondonTime.StartOf(quarter.First.AddDays(-FollowUpDays)), cohortEnd = LondonTime.StartOf(countedTo.AddDays(1 - FollowUpDays)),
                // Nothing after this can fall within 91 days of a reablement in the cohort (each ended before cohortEnd).
                followedUntil = LondonTime.StartOf(countedTo.AddDays(1 - FollowUpDays)).AddDays(FollowUpDays),
                query.Filter.Trust, Locality = string.IsNullOrWhiteSpace(query.Filter.Locality) ? null : query.Filter.Locality.Trim(),
            };
            // The panels borrowed from other reports are asked at once, each on its own connection, while the pack counts its
            // own: one after the other, a quarter of a large store added up to nearly twice the 2 s a report must answer in.
            // Task.Run: Microsoft.Data.Sqlite's async calls run synchronously, so a plain Send ran each to its end before the next began.
            Task<T> Borrow<T>(IQuery<T> panel) => Task.Run(() => mediator.Send(panel, cancellationToken).AsTask(), cancellationToken);
            var saidTask = Borrow(new YouSaidWeDidItems.Query(quarter.First));
            var delaysTask = Borrow(new DischargeDelays.Query(filter with { Locality = parameters.Locality }));
            Task<EquityReport.Result> equityTask;
            Task<IReadOnlyList<DataQuality.Measure>> scorecardTask;
            if (filter.Locality == parameters.Locality)
            {
                // Equity and the scorecard count the same referrals (sent in the quarter, same trust and locality): read them once,
                // with both reports' columns, and give each its own count (a quarter at 1M referrals is 72,000 referrals).
                var shared = Task.Run(() => DataQuality.LoadAsync(database, filter, named: false, cancellationToken, equity: true), cancellationToken);
                // Not through the mediator, so not past EquityWaitsForDeprivation: it waits for start-up's lookup here.
                equityTask = Task.Run(async () =>
                {
                    await deprivation.WhenLoadedAsync(cancellationToken);
                    return await EquityReport.Handler.FromReferralsAsync(database, filter, (await shared).Select(f => f.ForEquity()),
                        equitySettings.CurrentValue.DisproportionalityThresholdPercent, cancellationToken);
                }, cancellationToken);
                scorecardTask = Task.Run(async () => DataQuality.Score(await shared, DataQuality.ContextOf(clock, targets.CurrentValue)), cancellationToken);
            }
            else
            {
                // A locality with spaces around it: equity is asked as given, the scorecard trimmed, as each report's page asks.
                equityTask = Borrow(new EquityReport.Query(filter));
                scorecardTask = Borrow(new DataQuality.Scorecard(filter with { Locality = parameters.Locality }));
            }
            try
            {
                // The pack's own panels too, each on its own connection and into its own list, put back in the pack's order below.
                async Task<(List<Figure> Figures, Dictionary<string, Chart> Charts)> Own(
                    Func<System.Data.Common.DbConnection, List<Figure>, Dictionary<string, Chart>, Task> count)
                {
                    await using var connection = await database.OpenForReportAsync(cancellationToken);
                    var (own, drawn) = (new List<Figure>(), new Dictionary<string, Chart>());
                    await count(connection, own, drawn);
                    return (own, drawn);
                }
                var own = await Task.WhenAll(
                    Task.Run(() => Own((c, f, d) => OutcomesAsync(c, parameters, quarter.First, countedTo, f, d, cancellationToken)), cancellationToken),
                    Task.Run(() => Own((c, f, d) => FlowAsync(c, parameters, f, d, cancellationToken)), cancellationToken),
                    Task.Run(() => Own((c, f, d) => MarketAsync(c, parameters, filter, f, d, cancellationToken)), cancellationToken));
                foreach (var (ownFigures, ownCharts) in own)
                {
                    figures.AddRange(ownFigures);
                    foreach (var (panel, chart) in ownCharts)
                    {
                        charts[panel] = chart;
                    }
                }
            }
            finally
            {
                // Never leave a borrowed report running (or its failure unobserved) when the pack's own counting fails.
                await Task.WhenAll(saidTask, equityTask, delaysTask, scorecardTask).ContinueWith(_ => { }, TaskScheduler.Default);
            }

            var said = await saidTask;
            figures.Add(new(Panels.Experience, "Items this quarter", Number(said.Count),
                "\"You said, we did\" items kept by administrators for this quarter, retired ones left out. Not filtered by organisation or locality."));
            figures.AddRange(said.Select((item, i) => new Figure(Panels.Experience, $"You said ({i + 1})", item.YouSaid,
                $"We did: {item.WeDid}{(item.HeardFrom is { } from ? $" (heard from: {from})" : "")}")));

            var equityPath = ReportCatalogue.Find(EquityReport.Slug).Path;
            var equity = await equityTask;
            Equity(equity, figures, charts);

            var delays = await delaysTask;
            Finance(delays, figures, charts);

            var scorecard = await scorecardTask;
            foreach (var measure in scorecard)
            {
                figures.Add(new(Panels.DataQuality, $"{measure.Title}: % passing", Number(measure.Percent), measure.Definition));
                figures.Add(new(Panels.DataQuality, $"{measure.Title}: referrals checked", Number(measure.Applies), $"Referrals submitted in the quarter this {measure.Dimension.ToLowerInvariant()} check applies to."));
                figures.Add(new(Panels.DataQuality, $"{measure.Title}: referrals failing", Number(measure.Failing), "Referrals it applies to that fail it; the data quality report lists them (each open audited)."));
            }
            charts[Panels.DataQuality] = new("Share passing each check", "% passing",
                [.. scorecard.Where(m => m.Percent is not null).Select(m => new Bar(m.Title, m.Percent!.Value))]);

            // In the pack's panel order (the sort is stable, so each panel keeps its own order).
            var ordered = figures.OrderBy(f => IndexOf(f.Panel)).ToList();
            return new Result(quarter, countedTo, ordered, charts, said, scorecard, equityPath);
        }

        private static async Task OutcomesAsync(System.Data.Common.DbConnection connection, object parameters, DateOnly first, DateOnly countedTo,
            List<Figure> figures, Dictionary<string, Chart> charts, CancellationToken cancellationToken)
        {
            var placed = (await connection.QueryAsync<Placed>(new CommandDefinition(
                """
                SELECT pl.referral_id AS ReferralId, r.pathway AS PathwayAsked,
                       CASE WHEN pl.bed_id IS NOT NULL THEN 'bed' ELSE s.kind END AS Kind,
                       (SELECT COUNT(*) FROM triage_task t WHERE t.referral_id = r.id AND t.queue = 'bed-bureau' AND t.created_at <= pl.created_at) AS BedBureauTasks
                FROM placement pl JOIN referral r ON r.id = pl.referral_id
                LEFT JOIN service s ON s.id = pl.service_id
                WHERE pl.created_at >= @start AND pl.created_at < @end AND pl.status <> 'cancelled'
                """ + ReferralFilter, parameters, cancellationToken: cancellationToken))).ToList();
            var home = placed.Where(p => p.HomeBased).Select(p => p.ReferralId).ToHashSet();
            var beds = placed.Where(p => !p.HomeBased).Select(p => p.ReferralId).ToHashSet();
            var askedBed = placed.Where(p => p.BedRequested).Select(p => p.ReferralId).ToHashSet();
            var askedBedAtHome = placed.Where(p => p.HomeBased && p.BedRequested).Select(p => p.ReferralId).ToHashSet();

            // The follow-up cohort: reablement that ended early enough for all 91 days after it to lie before the quarter's end.
            var cohort = (await connection.QueryAsync<Reabled>(new CommandDefinition(
                """
                SELECT r.person_id AS PersonId, pl.ended_at AS EndedAt
                FROM placement pl JOIN service s ON s.id = pl.service_id JOIN referral r ON r.id = pl.referral_id
                WHERE s.kind = 'reablement' AND pl.status = 'ended' AND pl.ended_at >= @cohortStart AND pl.ended_at < @cohortEnd
                """ + ReferralFilter, parameters, cancellationToken: cancellationToken))).ToList();
            // What would show a person did not stay at home, as far as this record knows: a bed placed for them, or a referral asking for one.
            var laterBeds = (await connection.QueryAsync<LaterBed>(new CommandDefinition(
                """
                SELECT r.person_id AS PersonId, b.created_at AS At
                FROM placement b JOIN referral r ON r.id = b.referral_id LEFT JOIN service s ON s.id = b.service_id
                WHERE b.status <> 'cancelled' AND (b.bed_id IS NOT NULL OR s.kind IN ('community-hospital', 'care-home')) AND b.created_at >= @cohortStart AND b.created_at < @followedUntil
                  AND r.person_id IN (SELECT cr.person_id FROM placement c JOIN referral cr ON cr.id = c.referral_id JOIN service cs ON cs.id = c.service_id
                                      WHERE cs.kind = 'reablement' AND c.status = 'ended' AND c.ended_at >= @cohortStart AND c.ended_at < @cohortEnd)
                UNION ALL
                SELECT r.person_id, r.submitted_at
                FROM referral r
                WHERE r.pathway IN ('2', '3') AND r.submitted_at >= @cohortStart AND r.submitted_at < @followedUntil
                  AND r.person_id IN (SELECT cr.person_id FROM placement c JOIN referral cr ON cr.id = c.referral_id JOIN service cs ON cs.id = c.service_id
                                      WHERE cs.kind = 'reablement' AND c.status = 'ended' AND c.ended_at >= @cohortStart AND c.ended_at < @cohortEnd)
                """, parameters, cancellationToken: cancellationToken))).ToLookup(b => b.PersonId);
            var stillHome = cohort.Count(c => !laterBeds[c.PersonId].Any(b => b.At > c.EndedAt && b.At <= c.EndedAt.AddDays(FollowUpDays)));

            const string panel = Panels.Outcomes;
            figures.Add(new(panel, "Accepted to home-based services", Number(home.Count),
                "Referrals with a placement made in the quarter (not cancelled) into a home-based service: reablement, home care, therapy or voluntary sector."));
            figures.Add(new(panel, "Placed in beds", Number(beds.Count),
                "Referrals with a placement made in the quarter (not cancelled) into a bed: reserved by the bed bureau, or a community hospital or care home service. A referral placed both ways counts in both."));
            figures.Add(new(panel, "Home first (%)", Percent(home.Count, home.Count + beds.Count),
                "Accepted to home-based services as a share of home-based and bed placements together."));
            figures.Add(new(panel, "Bed requests placed", Number(askedBed.Count),
                "Referrals placed in the quarter (as above) that asked for a bed: pathway 2 or 3 asked for on the referral, or passed to the bed bureau before the placement was made."));
            figures.Add(new(panel, "Supported at home despite a bed request", Number(askedBedAtHome.Count),
                "Of the bed requests placed, those accepted to a home-based service."));
            figures.Add(new(panel, "Supported at home despite a bed request (%)", Percent(askedBedAtHome.Count, askedBed.Count),
                "Supported at home despite a bed request, as a share of bed requests placed."));
            var window = string.Create(CultureInfo.GetCultureInfo("en-GB"), $"{first.AddDays(-FollowUpDays):d MMM yyyy} to {countedTo.AddDays(-FollowUpDays):d MMM yyyy}");
            figures.Add(new(panel, "Reablement ended, followed up 91 days", Number(cohort.Count),
                $"Reablement placements that ended from {window} (London days): every one ended at least {FollowUpDays} days before the quarter's end, so all {FollowUpDays} days after it are in the record by the quarter's last day (or today, while it runs)."));
            figures.Add(new(panel, "Still at home 91 days after reablement (where known)", Number(stillHome),
                $"Of those, people for whom the record holds no bed placed (not cancelled) and no referral asking for pathway 2 or 3 in the {FollowUpDays} days after the reablement ended. "
                + "Where known: the record does not know of deaths, hospital admissions or care arranged outside this system, so this can only be an upper bound."));
            figures.Add(new(panel, "Still at home 91 days after reablement (%)", Percent(stillHome, cohort.Count),
                "Still at home 91 days after reablement as a share of the reablement followed up."));
            charts[panel] = new("Placements made in the quarter", "Referrals",
                [new("Home-based services", home.Count), new("Beds", beds.Count), new("Bed requests supported at home", askedBedAtHome.Count)]);
        }

        private static async Task FlowAsync(System.Data.Common.DbConnection connection, object parameters,
            List<Figure> figures, Dictionary<string, Chart> charts, CancellationToken cancellationToken)
        {
            var received = await connection.ExecuteScalarAsync<long>(new CommandDefinition(
                "SELECT COUNT(*) FROM referral r WHERE r.status <> 'draft' AND r.submitted_at >= @start AND r.submitted_at < @end"
                + ReferralFilter, parameters, cancellationToken: cancellationToken));
            // The coordination centre's first decision on a referral, as the flow board counts it (Boards/FlowHistory): kept on
            // the referral (triaged_at) by every decision, read from its index rather than worked out again from each referral's
            // tasks (a quarter at 1M referrals, 72,000 of them).
            var decided = (await connection.QueryAsync<Span>(new CommandDefinition(
                """
                SELECT r.id AS ReferralId, r.submitted_at AS "From", r.triaged_at AS "To"
                FROM referral r
                WHERE r.submitted_at IS NOT NULL AND r.triaged_at >= @start AND r.triaged_at < @end
                """ + ReferralFilter, parameters, cancellationToken: cancellationToken))).ToList();
            var started = (await connection.QueryAsync<Span>(new CommandDefinition(
                """
                SELECT r.id AS ReferralId, r.submitted_at AS "From", MIN(pl.started_at) AS "To"
                FROM placement pl JOIN referral r ON r.id = pl.referral_id
                WHERE r.submitted_at IS NOT NULL AND pl.started_at >= @start AND pl.started_at < @end
                """ + ReferralFilter + " GROUP BY r.id, r.submitted_at", parameters, cancellationToken: cancellationToken))).ToList();

            static double? Median(IEnumerable<Span> spans) =>
                FlowHistory.Percentile([.. spans.Select(s => (s.To!.Value - s.From).TotalDays)], 0.5) is { } days ? Math.Round(days, 1, MidpointRounding.AwayFromZero) : null;

            const string panel = Panels.Flow;
            figures.Add(new(panel, "Referrals received", Number((int)received), "Referrals submitted in the quarter (drafts never sent are not counted)."));
            figures.Add(new(panel, "Decisions made", Number(decided.Count),
                "Referrals whose first coordination centre decision (accepted into a service, passed to the bed bureau, or declined) was made in the quarter."));
            figures.Add(new(panel, "Median days from referral to decision", Number(Median(decided)),
                "For the decisions made in the quarter: the middle value (nearest rank) of the days from the referral's submission to its first decision, to one decimal place."));
            figures.Add(new(panel, "Services and beds started", Number(started.Count),
                "Referrals whose person started in a service or was admitted to a bed in the quarter (the first start of each referral in the quarter)."));
            figures.Add(new(panel, "Median days from referral to service start", Number(Median(started)),
                "For those starts: the middle value (nearest rank) of the days from the referral's submission to the start, to one decimal place."));
            charts[panel] = new("Referrals through the quarter", "Referrals",
                [new("Received", received), new("Decided", decided.Count), new("Started", started.Count)]);
        }

        private async Task MarketAsync(System.Data.Common.DbConnection connection, object parameters, ReportFilter filter,
            List<Figure> figures, Dictionary<string, Chart> charts, CancellationToken cancellationToken)
        {
            const string panel = Panels.Market;
            var locality = string.IsNullOrWhiteSpace(filter.Locality) ? null : filter.Locality.Trim();
            var services = (await connection.QueryAsync<HomeService>(new CommandDefinition(
                """
                SELECT capacity_unit AS CapacityUnit, capacity_per_day AS CapacityPerDay, available_today AS AvailableToday FROM service
                WHERE active AND kind IN ('reablement', 'home-care', 'therapy', 'voluntary-sector') AND (@locality IS NULL OR locality = @locality)
                """, new { locality }, cancellationToken: cancellationToken))).ToList();
            var slots = services.Where(s => s.CapacityUnit == "slots").ToList();
            var hours = services.Where(s => s.CapacityUnit == "hours").ToList();
            figures.Add(new(panel, "Home-based services open", Number(services.Count),
                "Active reablement, home care, therapy and voluntary sector services, now (the service's locality)."));
            figures.Add(new(panel, "Places a day (services counted in slots)", Number(slots.Sum(s => s.CapacityPerDay)), "The daily capacity of those services that count people started a day."));
            figures.Add(new(panel, "Places free today", Number(slots.Sum(s => s.AvailableToday)), "What those services have left today."));
            figures.Add(new(panel, "Care hours a day (services counted in hours)", Number(hours.Sum(s => s.CapacityPerDay)), "The daily capacity of those services that count hours of care."));
            figures.Add(new(panel, "Care hours free today", Number(hours.Sum(s => s.AvailableToday)), "What those services have left today."));

            var beds = (await mediator.Send(new CapacityTracker.Query(filter with { Trust = null }), cancellationToken)).Total;
            figures.Add(new(panel, "Beds (maximum capacity)", Number(beds.MaximumCapacity), "Every bed on active sites, now, as the Capacity Tracker view counts them (the site's locality)."));
            figures.Add(new(panel, "Beds occupied", Number(beds.Occupied), "Beds with a person in them now."));
            figures.Add(new(panel, "Bed vacancies accepting admissions", Number(beds.VacantAccepting), "Empty beds open to an admission now."));
            figures.Add(new(panel, "Bed vacancies reserved", Number(beds.VacantReserved), "Empty beds held for a person on the way."));
            figures.Add(new(panel, "Beds vacant not accepting admissions", Number(beds.VacantNotAccepting), "Empty beds closed or being cleaned."));

            var providers = (await mediator.Send(new ProviderRatings.Query(), cancellationToken)).Providers
                .Where(p => locality is null || p.Locality == locality).ToList();
            figures.Add(new(panel, "Providers", Number(providers.Count), "Organisations that run sites or services, now (the provider's locality)."));
            var ratings = AdminCodes.CqcRatings.Select(r => (r.Label, Count: providers.Count(p => p.CqcRating == r.Value))).ToList();
            foreach (var (label, count) in ratings)
            {
                figures.Add(new(panel, $"CQC rating: {label}", Number(count), $"Providers whose CQC rating, as an administrator last recorded it, is {label.ToLowerInvariant()}."));
            }
            figures.Add(new(panel, "CQC rating: not recorded", Number(providers.Count(p => p.CqcRating is null)), "Providers with no CQC rating recorded."));
            figures.Add(new(panel, "Providers under amber caution", Number(providers.Count(p => p.Caution == "amber")),
                "The commissioners' caution, now: each placement with them needs a manager's approval after a risk discussion."));
            figures.Add(new(panel, "Providers under red caution", Number(providers.Count(p => p.Caution == "red")), "The commissioners' caution, now: no new placements."));

            var approvals = (await connection.QueryAsync<Approval>(new CommandDefinition(
                """
                SELECT a.status AS Status FROM caution_approval a JOIN referral r ON r.id = a.referral_id
                WHERE a.requested_at >= @start AND a.requested_at < @end
                """ + ReferralFilter, parameters, cancellationToken: cancellationToken))).ToList();
            figures.Add(new(panel, "Caution approvals asked", Number(approvals.Count),
                "Managers' approvals asked in the quarter to place a person with a provider under amber caution (the referral's organisation and person's locality)."));
            figures.Add(new(panel, "Caution approvals given", Number(approvals.Count(a => a.Status == "approved")), "Of those, approved."));
            figures.Add(new(panel, "Caution approvals refused", Number(approvals.Count(a => a.Status == "refused")), "Of those, refused."));

            charts[panel] = new("Providers by CQC rating", "Providers",
                [.. ratings.Select(r => new Bar(r.Label, r.Count)), new("Not recorded", providers.Count(p => p.CqcRating is null))]);
        }

        /// <summary>
        /// The equity report's groups as it shows them (small numbers hidden as it hides them): each group's referrals and
        /// its disproportionality ratios, with the marker where a ratio is beyond the configured threshold.
        /// </summary>
        private static void Equity(EquityReport.Result equity, List<Figure> figures, Dictionary<string, Chart> charts)
        {
            const string panel = Panels.Equity;
            var threshold = $"{equity.ThresholdPercent}%";
            string Marked(EquityReport.Marker marker) => marker switch
            {
                EquityReport.Marker.Higher => $" Marked higher: more than {threshold} above everyone's.",
                EquityReport.Marker.Lower => $" Marked lower: more than {threshold} below everyone's.",
                _ => "",
            };
            var groups = equity.Dimensions.SelectMany(d => d.Groups).ToList();
            var marked = groups.Sum(g => new[] { g.HomeBased.Marker, g.Bed.Marker, g.Declined.Marker, g.ToDecision.Marker, g.ToServiceStart.Marker }
                .Count(m => m != EquityReport.Marker.None));
            figures.Add(new(panel, "Referrals (everyone)", equity.Everyone.Referrals.Text,
                "Referrals in the quarter that the equity report counts, everyone together: the population each group is compared with."));
            figures.Add(new(panel, "Disproportionalities marked", Number(marked),
                $"Group figures whose disproportionality ratio is more than {threshold} from 1 (Reports:Equity:DisproportionalityThresholdPercent)."));
            foreach (var g in groups)
            {
                var name = $"{g.Dimension}: {g.Name}";
                figures.Add(new(panel, $"{name}: referrals", g.Referrals.Text,
                    $"Referrals of the group in the quarter; \"<{EquityReport.SmallestShown}\" hides a count of 1 to 4, \"*\" a count hidden so that a small one cannot be worked out."));
                figures.Add(new(panel, $"{name}: home-based ratio", Number(g.HomeBased.Ratio),
                    "Placed in a home-based service per referral of the group, over the same for everyone (1 is the same as everyone)." + Marked(g.HomeBased.Marker)));
                figures.Add(new(panel, $"{name}: bed ratio", Number(g.Bed.Ratio),
                    "Placed in a bed per referral of the group, over the same for everyone." + Marked(g.Bed.Marker)));
                figures.Add(new(panel, $"{name}: declined ratio", Number(g.Declined.Ratio),
                    "Declined per referral of the group, over the same for everyone." + Marked(g.Declined.Marker)));
                figures.Add(new(panel, $"{name}: wait to decision ratio", Number(g.ToDecision.Ratio),
                    "The group's median days from referral to decision over everyone's." + Marked(g.ToDecision.Marker)));
                figures.Add(new(panel, $"{name}: wait to service start ratio", Number(g.ToServiceStart.Ratio),
                    "The group's median days from referral to service start over everyone's." + Marked(g.ToServiceStart.Marker)));
            }
            charts[panel] = new("Home-based placement ratio by ethnic group (1 = everyone)", "Ratio",
                [.. groups.Where(g => g.Dimension == EquityReport.Ethnicity && g.HomeBased.Ratio is not null).Select(g => new Bar(g.Name, g.HomeBased.Ratio!.Value))]);
        }

        private static void Finance(DischargeDelays.Result delays, List<Figure> figures, Dictionary<string, Chart> charts)
        {
            const string panel = Panels.Finance;
            figures.Add(new(panel, "Discharges with a discharge ready date", Number(delays.All.Discharges),
                "People discharged in the quarter whose discharge ready date is on or before the discharge day (the discharge ready date delays report, same filter)."));
            figures.Add(new(panel, "Bed days lost", Number(delays.All.BedDaysLost),
                "The sum over those discharges of the days from the discharge ready date to the discharge (London dates)."));
            figures.Add(new(panel, "Cost of bed days lost (£)", Money(delays.All.Cost), "Bed days lost times the price of a bed day."));
            figures.Add(new(panel, "Price of a bed day (£)", Money(delays.CostPerBedDay), "The board's configured cost of a bed day (Boards:CostPerBedDay)."));
            figures.Add(new(panel, "Average days from ready to discharge", Number(delays.All.AverageDays), "Mean days, those discharged on their ready date included, to one decimal place."));
            charts[panel] = new("Discharges by days from ready date to discharge", "Discharges",
                [.. DischargeDelays.Bands.Select((band, i) => new Bar(band.Label, delays.All.ByBand[i]))]);
        }
    }

    public static void MapCsv(IEndpointRouteBuilder app) =>
        app.MapReportCsv<Result, Figure>(Slug, filter => new Query(Quarter.Filter(filter)), result => result.Figures);
}
