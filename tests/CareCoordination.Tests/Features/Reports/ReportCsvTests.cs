using System.Text;
using CareCoordination.Features.Reports;
using CsvHelper;

namespace CareCoordination.Tests.Features.Reports;

/// <summary>The CSV writer every report uses: a header even with no rows, RFC 4180 quoting, and no formulas for a spreadsheet to run.</summary>
public sealed partial class ReportCsvTests
{
    [CsvRecord]
    public sealed partial record Row(string Site, int Beds);

    private static async Task<string> WriteAsync(IEnumerable<Row> rows)
    {
        using var stream = new MemoryStream();
        await ReportCsv.WriteAsync(stream, rows, CancellationToken.None);
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    [Fact]
    public async Task NoRows_StillWritesTheHeader()
    {
        Assert.Equal("Site,Beds\r\n", await WriteAsync([]));
    }

    [Fact]
    public async Task Rows_ParseBackAsWritten_AndAFormulaIsEscaped()
    {
        var text = await WriteAsync([new("Hill, \"North\"", 3), new("=HYPERLINK(\"x\")", 4)]);
        using var reader = CsvReader.Create(Encoding.UTF8.GetBytes(text));
        var back = reader.GetRecords<Row>().ToList();
        Assert.Equal([new("Hill, \"North\"", 3), new("'=HYPERLINK(\"x\")", 4)], back);
    }
}
