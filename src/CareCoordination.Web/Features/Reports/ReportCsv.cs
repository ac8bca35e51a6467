using CareCoordination.Domain;
using CsvHelper;
using Mediator;

namespace CareCoordination.Features.Reports;

/// <summary>
/// A report's CSV: GET /reports/&lt;slug&gt;.csv with the page's filter in the query string. The report's own query is sent
/// through the mediator, so the same roles, validation and SQL serve the page and its CSV; the rows stream out as an
/// attachment. Row types are [CsvRecord] partial records (CsvHelper 34 writes them with generated code).
/// </summary>
public static class ReportCsv
{
    /// <summary>Spreadsheets run a cell that starts with = + - @ as a formula: escape it, as OWASP asks of CSV exports.</summary>
    public static CsvWriterOptions Options { get; } = new() { Injection = CsvInjection.Escape };

    public static RouteHandlerBuilder MapReportCsv<TResult, TRow>(this IEndpointRouteBuilder app, string slug,
        Func<ReportFilter, IQuery<TResult>> query, Func<TResult, IEnumerable<TRow>> rows) =>
        app.MapGet($"/reports/{slug}.csv", async (HttpRequest request, IMediator mediator, TimeProvider clock, CancellationToken cancellationToken) =>
        {
            var filter = ReportFilter.FromQuery(request.Query, LondonTime.Today(clock));
            // Sent before anything is written, so a refusal or a bad filter is an ordinary problem response, not half a file.
            var result = await mediator.Send(query(filter), cancellationToken);
            return Results.Stream(stream => WriteAsync(stream, rows(result), cancellationToken), ContentType, FileName(slug, filter));
        });

    /// <summary>
    /// A report's CSV whose rows come as they are read (the CLD export's runs): <paramref name="open"/> sends what must be
    /// answered before anything is written (a refusal or a bad filter is still a problem response), then the rows stream out.
    /// </summary>
    public static RouteHandlerBuilder MapReportCsvAsRead<TRow>(this IEndpointRouteBuilder app, string slug,
        Func<IMediator, ReportFilter, CancellationToken, Task<IAsyncEnumerable<TRow>>> open) =>
        app.MapGet($"/reports/{slug}.csv", async (HttpRequest request, IMediator mediator, TimeProvider clock, CancellationToken cancellationToken) =>
        {
            var filter = ReportFilter.FromQuery(request.Query, LondonTime.Today(clock));
            var rows = await open(mediator, filter, cancellationToken);
            return Results.Stream(stream => WriteAsync(stream, rows, cancellationToken), ContentType, FileName(slug, filter));
        });

    private const string ContentType = "text/csv; charset=utf-8";

    /// <summary>"slug-from-to-to.csv"; a snapshot asked for as at a day is "slug-at-day.csv", so that two days' files differ.</summary>
    public static string FileName(string slug, ReportFilter filter) => filter.AsAt is { } day
        ? $"{slug}-at-{day:yyyy-MM-dd}.csv"
        : $"{slug}-{filter.From:yyyy-MM-dd}-to-{filter.To:yyyy-MM-dd}.csv";

    public static async Task WriteAsync<TRow>(Stream stream, IEnumerable<TRow> rows, CancellationToken cancellationToken)
    {
        await using var csv = CsvWriter.Create(stream, Options, leaveOpen: true);
        await csv.WriteRecordsAsync(rows, cancellationToken);
    }

    /// <summary>Rows that come as they are read (the CLD export's runs): each written as it arrives.</summary>
    public static async Task WriteAsync<TRow>(Stream stream, IAsyncEnumerable<TRow> rows, CancellationToken cancellationToken)
    {
        await using var csv = CsvWriter.Create(stream, Options, leaveOpen: true);
        await csv.WriteRecordsAsync(rows, cancellationToken);
    }
}
