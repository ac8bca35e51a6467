namespace CareCoordination.Tests.Support;

/// <summary>A report's CSV as a signed-in member of staff downloads it: the response (status, headers) and its bytes.</summary>
public static class ReportCsvDownloads
{
    public static async Task<(HttpResponseMessage Response, byte[] Body)> ReportCsvAsync(this AppFactory app, string username, string slug, string query)
    {
        using var client = app.CreateBrowserlessClient();
        (await app.SignInAsync(client, username, AppFactory.Password)).Dispose();
        var response = await client.GetAsync($"/reports/{slug}.csv?{query}");
        return (response, await response.Content.ReadAsByteArrayAsync());
    }
}
