namespace CareCoordination.Features.Reports;

/// <summary>A report: its page at /reports/&lt;slug&gt;, its CSV at /reports/&lt;slug&gt;.csv, and what it is for.</summary>
public sealed record Report(string Slug, string Title, string Purpose, Action<IEndpointRouteBuilder> MapCsv)
{
    public string Path => $"/reports/{Slug}";
}

/// <summary>Every report, in the order the /reports index lists them. A new report adds its one line here.</summary>
public static class ReportCatalogue
{
    public static IReadOnlyList<Report> All { get; } =
    [
        new(CapacityTracker.Slug, "Capacity Tracker view",
            "Beds per site and bed type in the four states providers report to the national Capacity Tracker, ready to copy, with how fresh each figure is.",
            CapacityTracker.MapCsv),
        new(WaitingLists.Slug, "Waiting lists",
            "People waiting for triage, for a service to start and for a bed, by how long (the ADASS snapshot bands), and the median days from request to decision and to service start.",
            WaitingLists.MapCsv),
        new("discharge-sitrep", "Discharge sitrep (daily and weekly)",
            "People who no longer meet the criteria to reside, discharged and remaining, day by day and week by week, with bed days, delay reasons, pathways and destinations.",
            app => app.MapReportCsv("discharge-sitrep", f => new DischargeSitrep.Query(f), DischargeSitrep.CsvRows)),
        new("discharge-delays", "Discharge ready date delays",
            "Discharges by days from discharge ready date to discharge in the national bands, average delays, bed days lost and their cost.",
            app => app.MapReportCsv("discharge-delays", f => new DischargeDelays.Query(f), DischargeDelays.CsvRows)),
        new(ClientLevelEvents.Slug, "Client-level events (CLD-shaped export)",
            "Each referral decided and each placement running in the period as a Request or Service event with the DHSC Client Level Data field names; the file names people and every download is audited.",
            ClientLevelEvents.MapCsv),
        new(DataQuality.Slug, "Data quality scorecard",
            "How complete, timely and consistent the facts behind the reports are for the referrals of the period, with the records that fail each check.",
            DataQuality.MapCsv),
        new(EquityReport.Slug, "Equity",
            "Who is referred, how long they wait and what is decided for them, by ethnic group, age, sex and deprivation, each group against everyone referred.",
            app => app.MapReportCsv(EquityReport.Slug, filter => new EquityReport.Query(filter), result => result.Rows)),
        new(DecisionPack.Slug, "Quarterly decision pack",
            "One quarter in six panels to print: people's outcomes (home first), flow and timeliness, you said we did, equity, market health and finance, with the data quality scorecard.",
            DecisionPack.MapCsv),
    ];

    public static Report Find(string slug) => All.Single(r => r.Slug == slug);

    /// <summary>Maps every report's CSV endpoint (Program.cs calls this once).</summary>
    public static IEndpointRouteBuilder MapReports(this IEndpointRouteBuilder app)
    {
        foreach (var report in All)
        {
            report.MapCsv(app);
        }
        return app;
    }
}
