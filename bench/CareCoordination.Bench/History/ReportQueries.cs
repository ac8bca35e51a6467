using System.Security.Claims;
using CareCoordination.Auth;
using CareCoordination.Domain;
using CareCoordination.Features.Reports;
using CareCoordination.Store;
using Dapper;
using Mediator;

namespace CareCoordination.Bench.History;

/// <summary>
/// The managers' reports (issue 13, every entry of <see cref="ReportCatalogue.All"/>) on the large store, by the path their
/// pages take: the product's own services (its mediator, pipeline and handlers, built in this process as Program.cs builds
/// them, but not started), a signed-in manager as the caller, and the query the page sends; and the CSV download's path,
/// the same query then its rows written out as the endpoint writes them. Each with the filters a manager would use: a
/// month, a quarter, a year of all trusts, and a quarter of one trust and of one locality. A report that throws or counts
/// nothing on a store that holds its facts is a failure (the short mode's correctness check); timings are only printed.
/// </summary>
public sealed class ReportQueries : IAsyncDisposable
{
    private readonly WebApplication _host;
    private readonly ClaimsPrincipal _manager;
    private readonly Database _database;

    private ReportQueries(WebApplication host, ClaimsPrincipal manager)
    {
        _host = host;
        _manager = manager;
        _database = host.Services.GetRequiredService<Database>();
    }

    /// <summary>Each streamed download's time to its first row, ms, by target, in call order (the first call is the warm-up).</summary>
    public Dictionary<string, List<double>> FirstRows { get; } = [];

    /// <summary>A report measured: its name (report, path, period and scope) and the call, answering why it failed or null.</summary>
    public sealed record Target(string Slug, string Name, Func<Task<string?>> Run);

    /// <param name="store">The product's settings for the store, as <see cref="Load.StoreUnderTest.ProductSettings"/> gives them.</param>
    public static async Task<ReportQueries> StartAsync(IReadOnlyDictionary<string, string> store)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = "Production" });
        builder.Configuration.AddInMemoryCollection(store
            .Select(s => KeyValuePair.Create(s.Key.Replace("__", ":", StringComparison.Ordinal), (string?)s.Value))
            .Append(KeyValuePair.Create("Logging:LogLevel:Default", (string?)"Warning")));
        var configuration = builder.Configuration;
        builder.Services
            .AddStore(configuration)
            .AddUseCases()
            .AddCoordination(configuration)
            .AddBedBureau(configuration)
            .AddBoards(configuration)
            .AddFhir(configuration)
            .AddSubscriptions(configuration)
            .AddCareAuthentication(configuration)
            .AddScreens()
            .AddLiveUpdates();
        var host = builder.Build();
        await using var connection = await host.Services.GetRequiredService<Database>().OpenAsync();
        // The demo county's manager, as the sign-in makes them (the reports are for managers and admins).
        var account = await connection.QueryFirstAsync<StaffAccount>(StaffAccount.Select + " WHERE u.role = 'manager' AND u.active ORDER BY u.id");
        return new ReportQueries(host, account.ToPrincipal("bench"));
    }

    /// <summary>Sends a query as the manager through the product's mediator and pipeline, in a scope of its own, as a page's circuit does.</summary>
    private Task<T> SendAsync<T>(IQuery<T> query) => AsManagerAsync(async mediator => await mediator.Send(query));

    /// <summary>Work with the product's mediator as the manager, in a scope of its own, as a page's circuit or a request has.</summary>
    private async Task<T> AsManagerAsync<T>(Func<IMediator, Task<T>> work)
    {
        await using var scope = _host.Services.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<ActorAccessor>().Principal = _manager;
        return await work(scope.ServiceProvider.GetRequiredService<IMediator>());
    }

    /// <summary>
    /// The CSV download's work after its query: every row written out by CsvHelper (to nowhere), as ReportCsv does, counted as
    /// it goes by. No list of the rows is made first: the endpoint makes none (a year's 570,000 client-level events copied
    /// into one took 0.4-1.3 s that no download spends).
    /// </summary>
    private static async Task<int> WriteCsvAsync<TRow>(IEnumerable<TRow> rows)
    {
        var count = 0;
        await ReportCsv.WriteAsync(Stream.Null, rows.Select(row => { count++; return row; }), CancellationToken.None);
        return count;
    }

    public async Task<IReadOnlyList<Target>> TargetsAsync(long trust, Func<long> anyReferral)
    {
        var choices = await SendAsync(new ReportChoices.Query());
        var locality = choices.Localities.FirstOrDefault() ?? "none";
        var today = LondonTime.Today(TimeProvider.System);
        var thisMonth = new DateOnly(today.Year, today.Month, 1);
        var last = Quarter.LastFull(today);
        var month = new ReportFilter(thisMonth.AddMonths(-1), thisMonth.AddDays(-1));
        var quarter = new ReportFilter(last.First, last.Last);
        var year = new ReportFilter(thisMonth.AddMonths(-12), thisMonth.AddDays(-1));
        var filters = new (string Name, ReportFilter Filter)[]
        {
            ("month, all trusts", month),
            ("quarter, all trusts", quarter),
            ("year, all trusts", year),
            ("quarter, one trust", quarter with { Trust = trust }),
            ($"quarter, locality {locality}", quarter with { Locality = locality }),
        };
        var quarters = filters.Where(f => f.Filter.From == quarter.From).ToList();

        var targets = new List<Target>
        {
            new("", "bare: SELECT referral by primary key (in process)", async () =>
            {
                await using var connection = await _database.OpenAsync();
                await connection.QuerySingleAsync("SELECT * FROM referral WHERE id = @id", new { id = anyReferral() });
                return null;
            }),
            new("", "report filter choices (ReportChoices)", async () =>
                (await SendAsync(new ReportChoices.Query())).Trusts.Count > 0 ? null : "no trusts to choose"),
        };
        void Page<T>(string slug, string report, IEnumerable<(string Name, ReportFilter Filter)> on, Func<ReportFilter, IQuery<T>> query, Func<T, bool> counted)
        {
            foreach (var (name, filter) in on)
            {
                targets.Add(new(slug, $"{report}, {name}", Guard(async () => counted(await SendAsync(query(filter))) ? null : $"counted nothing for {filter.ToQueryString()}")));
            }
        }
        void Csv<T, TRow>(string slug, string report, (string Name, ReportFilter Filter) on, Func<ReportFilter, IQuery<T>> query, Func<T, IEnumerable<TRow>> rows) =>
            targets.Add(new(slug, $"{report} CSV, {on.Name}", Guard(async () =>
                await WriteCsvAsync(rows(await SendAsync(query(on.Filter)))) > 0 ? null : $"an empty CSV for {on.Filter.ToQueryString()}")));

        var now = new (string, ReportFilter)[] { ("now, all sites", month), ($"now, locality {locality}", month with { Locality = locality }) };
        Page(CapacityTracker.Slug, "capacity tracker", now, f => new CapacityTracker.Query(f), r => r.Total.MaximumCapacity > 0);
        Csv(CapacityTracker.Slug, "capacity tracker", now[0], f => new CapacityTracker.Query(f), r => r.Rows);
        // As at the end of a past day: each bed's state in force then, one seek of bed_state a bed; every bed counted or said to be unrecorded.
        Page(CapacityTracker.Slug, "capacity tracker", [("as at a week ago, all sites", month with { AsAt = month.To.AddDays(-7) })],
            f => new CapacityTracker.Query(f), r => r.Past && r.Total.MaximumCapacity + r.NotYetRecorded > 0);

        Page(WaitingLists.Slug, "waiting lists", filters, f => new WaitingLists.Query(f), r => r.RequestToDecision.Count > 0);
        Csv(WaitingLists.Slug, "waiting lists", filters[2], f => new WaitingLists.Query(f), r => r.Rows());

        Page("discharge-sitrep", "discharge sitrep", filters, f => new DischargeSitrep.Query(f), r => r.Days.Sum(d => d.NoLongerMeetCriteria) > 0 && r.Days.Sum(d => d.Discharged) > 0);
        Csv("discharge-sitrep", "discharge sitrep", filters[2], f => new DischargeSitrep.Query(f), DischargeSitrep.CsvRows);

        Page("discharge-delays", "discharge delays", filters, f => new DischargeDelays.Query(f), r => r.All.Discharges > 0);
        Csv("discharge-delays", "discharge delays", filters[2], f => new DischargeDelays.Query(f), DischargeDelays.CsvRows);

        Page(ClientLevelEvents.Slug, "client-level events", filters, f => new ClientLevelEvents.Summary(f),
            r => r.ByEventType.All(c => c.Events > 0));
        // The download differs from the page: every event as a row naming its person, each written to the audit trail, the
        // file's runs of start days read ahead of the writing as the endpoint does (OpenFileAsync). Timed to its last row, and
        // to its first (FirstRows): when the download starts.
        foreach (var (name, filter) in filters.Take(3))
        {
            var target = $"client-level events CSV, {name}";
            var firstRows = FirstRows[target] = [];
            targets.Add(new(ClientLevelEvents.Slug, target, Guard(() => AsManagerAsync(async mediator =>
            {
                var clock = System.Diagnostics.Stopwatch.StartNew();
                var rows = await ClientLevelEvents.OpenFileAsync(mediator, filter, CancellationToken.None);
                var count = 0;
                await ReportCsv.WriteAsync(Stream.Null, Timed(rows), CancellationToken.None);
                return count > 0 ? null : $"an empty CSV for {filter.ToQueryString()}";

                async IAsyncEnumerable<ClientLevelEvents.Row> Timed(IAsyncEnumerable<ClientLevelEvents.Row> all)
                {
                    await foreach (var row in all)
                    {
                        if (count++ == 0)
                        {
                            firstRows.Add(clock.Elapsed.TotalMilliseconds);
                        }
                        yield return row;
                    }
                }
            }))));
        }

        Page(DataQuality.Slug, "data quality scorecard", filters, f => new DataQuality.Scorecard(f), r => r.Any(m => m.Applies > 0));
        Csv(DataQuality.Slug, "data quality scorecard", filters[2], f => new DataQuality.Scorecard(f), r => r.Select(m => m.ToRow()));
        // The drill-down (audited): the people failing a check, here the one most records fail.
        Page(DataQuality.Slug, "data quality drill-down (ethnicity stated)", quarters, f => new DataQuality.Failures("ethnicity-stated", f), r => r.Count > 0);

        Page(EquityReport.Slug, "equity", filters, f => new EquityReport.Query(f), r => r.Everyone.Referrals.Value > 0);
        Csv(EquityReport.Slug, "equity", filters[2], f => new EquityReport.Query(f), r => r.Rows);

        // One quarter by definition.
        Page(DecisionPack.Slug, "decision pack", quarters, f => new DecisionPack.Query(f),
            r => r.Figures.Any(f => f.Name == "Referrals received" && f.Value != "0") && r.DataQuality.Count > 0);
        Csv(DecisionPack.Slug, "decision pack", quarters[0], f => new DecisionPack.Query(f), r => r.Figures);
        return targets;
    }

    /// <summary>The catalogue's reports this bench does not measure: a report added without its line here fails the run.</summary>
    public static IReadOnlyList<string> Unmeasured(IEnumerable<Target> targets) =>
        [.. ReportCatalogue.All.Select(r => r.Slug).Where(slug => !targets.Any(t => t.Slug == slug))];

    private static Func<Task<string?>> Guard(Func<Task<string?>> call) => async () =>
    {
        try
        {
            return await call();
        }
        catch (Exception e)
        {
            return $"threw {e.GetType().Name}: {e.Message}";
        }
    };

    public async ValueTask DisposeAsync() => await _host.DisposeAsync();
}
