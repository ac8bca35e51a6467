using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using CareCoordination.Features.Account;
using CareCoordination.Features.Partners;
using CareCoordination.Pipeline;
using CareCoordination.Tests.Support;
using Dapper;

namespace CareCoordination.Tests.Pipeline;

/// <summary>
/// What anonymous callers can put into the audit trail: every value is capped with a visible marker, and the
/// anonymous forms refuse an oversized body before it is read. Issue 15 saw a 4 MB client_id stored whole.
/// </summary>
public abstract class AuditLimitsTests(AppFactory app)
{
    private static readonly string FourMegabytes = new('x', 4_000_000);

    private async Task<long> LastAuditIdAsync()
    {
        await using var connection = await app.OpenAsync();
        return await connection.ExecuteScalarAsync<long>("SELECT COALESCE(MAX(id), 0) FROM audit_event");
    }

    /// <summary>The longest value in any text column of the audit rows written after <paramref name="after"/>.</summary>
    private async Task<(long Rows, long Longest)> AuditSinceAsync(long after)
    {
        await using var connection = await app.OpenAsync();
        return await connection.QuerySingleAsync<(long, long)>(
            """
            SELECT COUNT(*), COALESCE(MAX(CASE
                WHEN length(COALESCE(detail, '')) >= length(COALESCE(actor_name, '')) AND length(COALESCE(detail, '')) >= length(COALESCE(actor_id, '')) THEN length(COALESCE(detail, ''))
                WHEN length(COALESCE(actor_name, '')) >= length(COALESCE(actor_id, '')) THEN length(COALESCE(actor_name, ''))
                ELSE length(COALESCE(actor_id, '')) END), 0)
            FROM audit_event WHERE id > @after
            """, new { after });
    }

    [Fact]
    public async Task TokenRequest_WithA4MbClientId_IsAuditedWithTheValueCutAndMarked()
    {
        var before = await LastAuditIdAsync();

        var result = await app.SendAsync<IssueToken.Result>(new IssueToken.Request("client_credentials", FourMegabytes, "secret", null), null);

        Assert.Equal("invalid_request", result.Error);
        var (rows, longest) = await AuditSinceAsync(before);
        Assert.Equal(1, rows);
        Assert.InRange(longest, 1, AuditWriter.MaxValueLength);
        await using var connection = await app.OpenAsync();
        var detail = await connection.ExecuteScalarAsync<string>("SELECT detail FROM audit_event WHERE id > @before", new { before });
        Assert.StartsWith("client xxxx", detail, StringComparison.Ordinal);
        Assert.EndsWith("[cut: 4,000,007 characters]", detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SignIn_WithA4MbUsername_IsAuditedWithTheValueCutAndMarked()
    {
        var before = await LastAuditIdAsync();

        var result = await app.SendAsync<SignIn.Result>(new SignIn.Request(FourMegabytes, "wrong", "203.0.113.9"), null);

        Assert.False(result.Succeeded);
        var (rows, longest) = await AuditSinceAsync(before);
        Assert.Equal(1, rows);
        Assert.InRange(longest, 1, AuditWriter.MaxValueLength);
    }

    [Fact]
    public async Task TokenRequest_WithControlCharactersInTheClientId_IsRefusedAsInvalid_AndAudited()
    {
        using var client = app.CreateBrowserlessClient();
        var before = await LastAuditIdAsync();

        // A line break in a stored value would let a caller write what looks like a second audit line.
        var response = await client.PostAsync("/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials", ["client_id"] = "demo\tacute\r\ntrust", ["client_secret"] = "x",
        }));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("invalid_request", (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error").GetString());
        await using var connection = await app.OpenAsync();
        var detail = await connection.ExecuteScalarAsync<string>("SELECT detail FROM audit_event WHERE id > @before AND action = 'IssueToken'", new { before });
        Assert.Equal("client demo\uFFFDacute\uFFFD\uFFFDtrust", detail);
    }

    [Fact]
    public async Task TokenRequest_WithANulInTheClientId_IsRefusedAsInvalid_NotAnError()
    {
        using var client = app.CreateBrowserlessClient();

        // The form reader refuses NUL (PostgreSQL text could not hold it): that is the caller's mistake, a 400, not a 500.
        var response = await client.PostAsync("/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials", ["client_id"] = "demo\0acute", ["client_secret"] = "x",
        }));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("invalid_request", (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error").GetString());
    }

    [Fact]
    public async Task TokenEndpoint_WithA4MbClientId_IsRefusedBeforeItIsRead_AndWritesNoLongAuditRow()
    {
        using var client = app.CreateBrowserlessClient();
        var before = await LastAuditIdAsync();

        var response = await client.PostAsync("/oauth/token", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["grant_type"] = "client_credentials", ["client_id"] = FourMegabytes, ["client_secret"] = "x",
        }));

        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal("invalid_request", (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error").GetString());
        Assert.InRange((await AuditSinceAsync(before)).Longest, 0, AuditWriter.MaxValueLength);
    }

    [Fact]
    public async Task TokenEndpoint_WithA4MbClientIdInAStreamedBody_IsRefusedByTheFormLimits()
    {
        using var client = app.CreateBrowserlessClient();
        var before = await LastAuditIdAsync();
        // No Content-Length: the form reader's own limits must stop it.
        var body = new StreamContent(new MemoryStream(System.Text.Encoding.ASCII.GetBytes("grant_type=client_credentials&client_secret=x&client_id=" + FourMegabytes)));
        body.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/x-www-form-urlencoded");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/oauth/token") { Content = body };
        request.Headers.TransferEncodingChunked = true;

        var response = await client.SendAsync(request);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("invalid_request", (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("error").GetString());
        Assert.InRange((await AuditSinceAsync(before)).Longest, 0, AuditWriter.MaxValueLength);
    }

    [Fact]
    public async Task SignInForm_WithA4MbUsername_IsRefusedBeforeItIsRead_AndWritesNoLongAuditRow()
    {
        using var client = app.CreateBrowserlessClient();
        var before = await LastAuditIdAsync();

        var response = await app.SignInAsync(client, FourMegabytes, "wrong");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.InRange((await AuditSinceAsync(before)).Longest, 0, AuditWriter.MaxValueLength);
    }
}

public sealed class AuditLimitsOnSqliteTests(AppFactory app) : AuditLimitsTests(app), IClassFixture<AppFactory>;

public sealed class AuditLimitsOnPostgresTests(PostgresAppFactory app) : AuditLimitsTests(app), IClassFixture<PostgresAppFactory>;
