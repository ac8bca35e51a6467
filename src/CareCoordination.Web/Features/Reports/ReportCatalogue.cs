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
        new(EquityReport.Slug, "Equity",
            "Who is referred, how long they wait and what is decided for them, by ethnic group, age, sex and deprivation, each group against everyone referred.",
            app => app.MapReportCsv(EquityReport.Slug, filter => new EquityReport.Query(filter), result => result.Rows)),
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
