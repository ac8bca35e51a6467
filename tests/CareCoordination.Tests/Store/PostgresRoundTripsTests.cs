using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using CareCoordination.Domain;
using CareCoordination.Features.Referrals;
using CareCoordination.Tests.Support;
using Dapper;

namespace CareCoordination.Tests.Store;

/// <summary>
/// What a partner's referral costs PostgreSQL in round trips (issue 14: on two cores each was about 3% of a submission's
/// machine time, paid by the server and by the app alike). Counted by Npgsql's own tracing: the request carries a trace of
/// its own (traceparent), which ASP.NET Core's request activity takes, and every command sent in its flow carries too; one
/// command is one round trip, however many statements it holds.
/// </summary>
public sealed class PostgresRoundTripsTests(PostgresAppFactory app) : IClassFixture<PostgresAppFactory>
{
    private static readonly ActivitySource Test = new("CareCoordination.Tests.RoundTrips");

    /// <summary>
    /// The commands sent to PostgreSQL in <paramref name="work"/>'s flow, in the order they ended: the work runs inside an
    /// activity of a trace of its own, which it can hand on (an HTTP request's traceparent), and which background work (the
    /// change feed reading what was committed) does not carry.
    /// </summary>
    private static async Task<(T Result, List<string> Commands)> CommandsOfAsync<T>(Func<ActivityTraceId, Task<T>> work)
    {
        var trace = ActivityTraceId.CreateRandom();
        var commands = new ConcurrentQueue<string>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name is "Npgsql" or "Microsoft.AspNetCore" || source == Test,
            Sample = (ref ActivityCreationOptions<ActivityContext> options) =>
                options.TraceId == trace ? ActivitySamplingResult.AllDataAndRecorded : ActivitySamplingResult.None,
            ActivityStopped = activity =>
            {
                // A command's text; a physical connection's opening (CONNECT) has none.
                if (activity.Source.Name == "Npgsql" && activity.TraceId == trace
                    && (activity.GetTagItem("db.query.text") ?? activity.GetTagItem("db.statement")) is string text)
                {
                    commands.Enqueue(text);
                }
            },
        };
        ActivitySource.AddActivityListener(listener);
        T result;
        using (Test.StartActivity("work", ActivityKind.Internal, new ActivityContext(trace, ActivitySpanId.CreateRandom(), ActivityTraceFlags.Recorded)))
        {
            result = await work(trace);
        }
        return (result, [.. commands]);
    }

    /// <summary>The commands sent to PostgreSQL while answering <paramref name="request"/>, which carries the trace.</summary>
    private static Task<(HttpResponseMessage Response, List<string> Commands)> CommandsOfAsync(HttpClient client, HttpRequestMessage request) =>
        CommandsOfAsync(trace =>
        {
            request.Headers.Add("traceparent", $"00-{trace}-{ActivitySpanId.CreateRandom()}-01");
            return client.SendAsync(request);
        });

    private static HttpRequestMessage Post(JsonObject bundle, string? prefer)
    {
        var post = new HttpRequestMessage(HttpMethod.Post, "/fhir") { Content = FhirPayloads.Body(bundle.ToJsonString()) };
        if (prefer is not null)
        {
            post.Headers.TryAddWithoutValidation("Prefer", prefer);
        }
        return post;
    }

    private static string Listed(List<string> commands) =>
        string.Join("\n---\n", commands.Select((c, i) => $"{i + 1}: {c[..Math.Min(c.Length, 160)]}"));

    [Theory]
    [InlineData("return=minimal", 4)]
    [InlineData(null, 5)]
    public async Task APartnersReferral_IsFourRoundTrips_FiveWithTheFullAnswer_WithItsAuditRowSentWithItsChangeRowsAndCommit(string? prefer, int expected)
    {
        using var client = await app.PartnerAsync();
        var nhs = (await app.NewNhsNumberAsync()).Replace(" ", "", StringComparison.Ordinal);

        var (response, commands) = await CommandsOfAsync(client, Post(FhirPayloads.ProfileExamplesTransaction(nhs), prefer));

        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        // The full answer carries both resources as written, both read in one more round trip, in the transaction.
        Assert.Equal(prefer is null ? 2 : 0, System.Text.RegularExpressions.Regex.Count(body, "\"resource\":"));
        // The token's check, which reads its organisation too; the person's NHS number and the referral's key, each locked then
        // searched, with the hospital site the referral names; then the writes: the person (its locality from its postcode's
        // district in the same statement), the referral with the message as sent kept in its statement, what it said of the
        // person and its triage task; and last the audit row, the change rows and COMMIT. The full answer reads the referral
        // and its Patient, both in one round trip before that last. Thirteen and fifteen before issue 14's work, eight and
        // nine this morning: the organisation, the second lock and search, the hospital site, the locality, the person, the
        // message, the referral, the task, the audit row and the Patient's read were each a round trip of their own.
        Assert.True(commands.Count == expected, $"{commands.Count} commands:\n{Listed(commands)}");
        var last = commands[^1];
        Assert.Contains("INSERT INTO audit_event", last, StringComparison.Ordinal);
        Assert.Contains("INSERT INTO change", last, StringComparison.Ordinal);
        Assert.EndsWith("COMMIT", last.TrimEnd(), StringComparison.Ordinal);
        Assert.Single(commands, c => c.Contains("INSERT INTO audit_event", StringComparison.Ordinal));
        Assert.Single(commands, c => new[] { "INSERT INTO person", "INSERT INTO fhir_received", "INSERT INTO referral (", "INSERT INTO referral_person", "INSERT INTO triage_task" }
            .All(write => c.Contains(write, StringComparison.Ordinal)));

        // The row says what it always said: who, what and about which referral and person.
        await using var connection = await app.OpenAsync();
        var row = await connection.QuerySingleAsync<(string ActorKind, string Action, string Outcome, string EntityType, long EntityId, long PersonId, long? OrganisationId)>(
            """
            SELECT a.actor_kind, a.action, a.outcome, a.entity_type, a.entity_id, a.person_id, a.organisation_id
            FROM audit_event a JOIN referral r ON r.id = a.entity_id JOIN person p ON p.id = a.person_id
            WHERE a.entity_type = 'referral' AND p.nhs_number = @nhs AND r.person_id = p.id
            """, new { nhs });
        Assert.Equal(("partner", "SubmitReferral", "success"), (row.ActorKind, row.Action, row.Outcome));
        Assert.NotNull(row.OrganisationId);
    }

    [Fact]
    public async Task ACommandThatChangesNothing_StillLeavesItsAuditRow_CommittedInTheSameRoundTrip()
    {
        var referrer = await app.StaffAsync("referrer");
        var nhs = await app.NewNhsNumberAsync();
        var form = ReferralForms.Discharge(LondonTime.Today(app.Clock), nhs);
        var key = Guid.NewGuid().ToString("N");
        var first = await app.SendAsync<SubmitReferral.Result>(new SubmitReferral.Command(form, key), referrer);

        // The same form again with the same key (a double click): found, nothing written but the audit row saying so.
        var (again, commands) = await CommandsOfAsync(_ => app.SendAsync<SubmitReferral.Result>(new SubmitReferral.Command(form, key), referrer));

        Assert.True(again.Repeated);
        Assert.Equal(first.ReferralId, again.ReferralId);
        Assert.DoesNotContain(commands, c => c.Contains("INSERT INTO change", StringComparison.Ordinal));
        // Not an audit row's round trip and then COMMIT's (NpgsqlTransaction's own COMMIT is not traced as a command, so it
        // shows as no command ending in COMMIT): one, the row and COMMIT.
        var committing = Assert.Single(commands, c => c.TrimEnd().EndsWith("COMMIT", StringComparison.Ordinal));
        Assert.StartsWith("INSERT INTO audit_event", committing.TrimStart(), StringComparison.Ordinal);
        Assert.True(commands.Count == 2, $"{commands.Count} commands:\n{Listed(commands)}");
        // The person is locked before the referral's key, as a registration locks them: a Bundle registering the person
        // before its referral, and a resend of that referral alone, then wait for each other instead of deadlocking.
        var locks = commands[0];
        Assert.True(locks.IndexOf("FROM person WHERE nhs_number", StringComparison.Ordinal) is >= 0 and var person
            && locks.IndexOf("FROM referral WHERE organisation_id", StringComparison.Ordinal) > person, locks);
        await using var connection = await app.OpenAsync();
        Assert.Equal(1, await connection.ExecuteScalarAsync<long>(
            "SELECT COUNT(*) FROM audit_event WHERE entity_type = 'referral' AND entity_id = @id AND detail = 'repeated submission: the referral already exists'",
            new { id = first.ReferralId }));
    }
    [Fact]
    public async Task APartnersTaskSearch_CommitsItsAuditRowInTheRowsOwnStatement_ThreeCommandsInAll()
    {
        using var client = await app.PartnerAsync();
        var nhs = (await app.NewNhsNumberAsync()).Replace(" ", "", StringComparison.Ordinal);
        var submitted = await client.SendAsync(Post(FhirPayloads.ProfileExamplesTransaction(nhs), "return=minimal"));
        Assert.Equal(HttpStatusCode.OK, submitted.StatusCode);

        long searchesBefore;
        await using (var before = await app.OpenAsync())
        {
            searchesBefore = await SearchesAuditedAsync(before);
        }

        var (response, commands) = await CommandsOfAsync(client, new HttpRequestMessage(HttpMethod.Get, "/fhir/Task?status=requested&_count=20"));

        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        // The token's check; the page with its total, one command; and the read's audit row, which commits its own transaction
        // in the same round trip rather than one of its own after it (NpgsqlTransaction's COMMIT is not traced as a command, so
        // without this the last command would not end in COMMIT).
        Assert.True(commands.Count == 3, $"{commands.Count} commands:\n{Listed(commands)}");
        Assert.Contains("FROM partner_client", commands[0], StringComparison.Ordinal);
        Assert.Contains("COUNT(*)", commands[1], StringComparison.Ordinal);
        Assert.Contains("FROM triage_task", commands[1], StringComparison.Ordinal);
        Assert.StartsWith("WITH a AS (INSERT INTO audit_event", commands[2].TrimStart(), StringComparison.Ordinal);
        Assert.EndsWith("COMMIT", commands[2].TrimEnd(), StringComparison.Ordinal);

        // Committed: the row is there for any other connection to read.
        await using var connection = await app.OpenAsync();
        Assert.Equal(searchesBefore + 1, await SearchesAuditedAsync(connection));
    }

    private static Task<long> SearchesAuditedAsync(System.Data.Common.DbConnection connection) => connection.ExecuteScalarAsync<long>(
        "SELECT COUNT(*) FROM audit_event WHERE action = 'SearchTasks' AND actor_kind = 'partner' AND outcome = 'success'");
}
