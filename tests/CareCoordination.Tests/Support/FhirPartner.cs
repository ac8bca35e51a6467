using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using CareCoordination.Auth;
using CareCoordination.Features.Fhir;
using Dapper;
using Hl7.Fhir.Model;
using Microsoft.Extensions.DependencyInjection;

namespace CareCoordination.Tests.Support;

/// <summary>A partner system calling /fhir in a test: its token, and the FHIR answers it reads.</summary>
public static class FhirPartner
{
    public const string DemoClient = "demo-acute-trust";

    /// <summary>A bearer token from /oauth/token (client credentials), for the demo client unless told otherwise.</summary>
    public static async Task<string> TokenAsync(HttpClient client, string? scope = null, string clientId = DemoClient, string secret = AppFactory.PartnerSecret)
    {
        var fields = new Dictionary<string, string> { ["grant_type"] = "client_credentials", ["client_id"] = clientId, ["client_secret"] = secret };
        if (scope is not null)
        {
            fields["scope"] = scope;
        }
        var response = await client.PostAsync("/oauth/token", new FormUrlEncodedContent(fields));
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("access_token").GetString()!;
    }

    /// <summary>A client that sends a partner's token with every request.</summary>
    public static async Task<HttpClient> PartnerAsync(this AppFactory app, string? scope = null, string clientId = DemoClient, string secret = AppFactory.PartnerSecret)
    {
        var client = app.CreateClient();
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", await TokenAsync(client, scope, clientId, secret));
        return client;
    }

    public const string OtherSecret = "Other-Partner-Secret-1";

    /// <summary>
    /// A second partner client, of the organisation with this ODS code, with every read and search scope: its own id, so its
    /// own audit trail. RSM (Saltmouth and Coast) is the demo's other acute trust: a second trust beside the demo client's.
    /// </summary>
    public static async Task<(HttpClient Client, string ClientId)> OtherPartnerAsync(this AppFactory app, string organisationCode)
    {
        var clientId = await app.NewPartnerClientAsync(organisationCode);
        return (await app.PartnerAsync(null, clientId, OtherSecret), clientId);
    }

    /// <summary>A new, active partner client of the organisation with this ODS code, whose secret is <see cref="OtherSecret"/>.</summary>
    public static async Task<string> NewPartnerClientAsync(this AppFactory app, string organisationCode, string scopes = "system/*.rs", string prefix = "other")
    {
        var clientId = prefix + "-" + Guid.NewGuid().ToString("N")[..8];
        await using var connection = await app.OpenAsync();
        await connection.ExecuteAsync(
            """
            INSERT INTO partner_client (client_id, name, organisation_id, secret_hash, scopes, active, created_at)
            VALUES (@clientId, 'Other EPR', (SELECT id FROM organisation WHERE code = @organisationCode), @hash, @scopes, TRUE, @now)
            """, new { clientId, organisationCode, hash = Passwords.Hash(OtherSecret), scopes, now = app.Clock.GetUtcNow() });
        return clientId;
    }

    /// <summary>
    /// The Patient id the organisation with this ODS code is given for the store's person (PatientIds), for a test that works
    /// from the store's rows with no answer of the server's at hand to take it from.
    /// </summary>
    public static async Task<string> PatientIdAsync(this AppFactory app, string organisationCode, long personId)
    {
        await using var connection = await app.OpenAsync();
        var organisationId = await connection.ExecuteScalarAsync<long>("SELECT id FROM organisation WHERE code = @organisationCode", new { organisationCode });
        return app.Services.GetRequiredService<PatientIds>().For(organisationId).Id(personId);
    }

    /// <summary>The Patient id this client's organisation reads for the person with this NHS number: its own search, finding exactly them.</summary>
    public static async Task<string> PatientIdByNhsNumberAsync(this HttpClient client, string nhsNumber)
    {
        var found = await ParseAsync<Bundle>(await client.GetAsync($"/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|{nhsNumber}"));
        return Assert.IsType<Patient>(Assert.Single(found.Entry).Resource).Id!;
    }

    /// <summary>An answer with the status expected, as FHIR JSON, read as <typeparamref name="T"/>.</summary>
    public static async Task<T> ParseAsync<T>(HttpResponseMessage response, HttpStatusCode status = HttpStatusCode.OK)
        where T : Resource
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"expected {(int)status}, got {(int)response.StatusCode}: {body}");
        Assert.Equal(FhirMapping.ContentType, response.Content.Headers.ContentType?.MediaType);
        return JsonSerializer.Deserialize<T>(body, FhirMapping.Json)!;
    }
}
