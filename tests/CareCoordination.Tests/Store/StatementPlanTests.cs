using System.Collections.Concurrent;
using System.Text.Json;
using CareCoordination.Store;
using CareCoordination.Tests.Support;
using Dapper;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace CareCoordination.Tests.Store;

/// <summary>
/// Every statement SQLite runs for a partner's referral (both answers, a person new and known) and for the reads the
/// scale-of-history goal names (the queue and the capacity board, as FHIR and as screens, and the FHIR searches), planned with the values it really ran
/// with: none may read the whole of a table that grows with the store's history (issue 14: "no query that scans history").
/// CI asserts no timings, so a plan is what can catch a read that grows with the store before a store is large: the
/// per-organisation Patient versions read all of referral_person for every full answer, 0.05x the bare app, and nothing
/// failed. Statements are watched through SQLite's own trace, which gives each statement with its bound values, set on every
/// native connection the app opens (Database.SqliteOpened): the test store's are not pooled, so none escapes it.
/// </summary>
public sealed partial class StatementPlanTests(StatementPlanTests.WatchingApp app) : IClassFixture<StatementPlanTests.WatchingApp>
{
    /// <summary>
    /// Tables that grow with referrals, people, messages, audit and time. The rest are the county's set-up (organisations,
    /// services, sites, wards and beds, partner clients, code lists, the deprivation lookup), read whole by design: the
    /// capacity board counts every bed.
    /// </summary>
    private static readonly string[] History =
    [
        "referral", "referral_person", "referral_note", "referral_carer", "referral_draft", "person", "person_registration", "triage_task",
        "placement", "bed_state", "discharge_delay", "recontact", "caution_approval", "carer_message", "change", "audit_event", "audit_person",
        "audit_read_person", "fhir_received", "fhir_received_referral", "fhir_version", "fhir_message", "fhir_subscription_event",
    ];

    public sealed class WatchingApp : AppFactory
    {
        /// <summary>The statements run since the last <see cref="Take"/>, each with its values written in (SQLite's legacy trace).</summary>
        private readonly ConcurrentQueue<string> _statements = new();

        public IReadOnlyList<string> Take()
        {
            var taken = new List<string>();
            while (_statements.TryDequeue(out var statement))
            {
                taken.Add(statement);
            }
            return taken;
        }

        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            base.ConfigureWebHost(builder);
            builder.ConfigureTestServices(services => services.AddSingleton(provider =>
            {
                var database = Database.FromConfiguration(provider.GetRequiredService<IConfiguration>());
                database.SqliteOpened = Watch;
                return database;
            }));
        }

        private void Watch(SqliteConnection connection) =>
            SQLitePCL.raw.sqlite3_trace(connection.Handle, (_, statement) => _statements.Enqueue(statement.utf8_to_string()), null);
    }

    [Fact]
    public async Task APartnersReferral_AndTheReadsOfTheScaleOfHistoryGoal_ReadNoHistoryTableWhole()
    {
        using var client = await app.PartnerAsync();
        var nhs = (await app.NewNhsNumberAsync()).Replace(" ", "", StringComparison.Ordinal);
        _ = app.Take();

        // Each step with a statement it must have run: the background (the change feed, live screens) also runs statements,
        // which land in whichever step comes next, so a step's having some shows nothing by itself.
        var asked = new List<(string What, string MustRun, IReadOnlyList<string> Statements)>();
        async Task<string> Run(string what, string mustRun, HttpRequestMessage request)
        {
            using var response = await client.SendAsync(request);
            var body = await response.Content.ReadAsStringAsync();
            Assert.True(response.IsSuccessStatusCode, $"{what}: {(int)response.StatusCode} {body}");
            asked.Add((what, mustRun, app.Take()));
            return body;
        }

        const string Referral = "INSERT INTO referral (";
        await Run("a referral of a person new to the store, return=minimal", Referral, PostReferral(nhs, "return=minimal"));
        var full = await Run("a referral of the same person, now known, with the full answer", "UPDATE person SET", PostReferral(nhs, prefer: null));
        var referralId = ReferralIdOf(full);
        await Run("a referral of a person new to the store, with the full answer", Referral,
            PostReferral((await app.NewNhsNumberAsync()).Replace(" ", "", StringComparison.Ordinal), prefer: null));
        foreach (var (path, mustRun) in new[]
        {
            ("/fhir/Task?status=requested&_count=20", "FROM triage_task t"),
            // Without the count, the page alone (one row more than it shows): its plan must not read every task to find them.
            ("/fhir/Task?status=requested&_count=20&_total=none", "FROM triage_task t"),
            ("/fhir/MeasureReport", "FROM bed b"),
            ($"/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}", "FROM referral_person s"),
            ($"/fhir/ServiceRequest/{referralId}", "FROM referral r"),
            ($"/fhir/ServiceRequest?patient.identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}", "FROM referral r"),
            ("/fhir/ServiceRequest?status=active&_count=20", "FROM referral r"),
            ($"/fhir/ServiceRequest?identifier=https://fhir.westmoor-general.nhs.uk/Id/discharge-referral|P-{nhs}-1", "FROM referral r"),
            ("/fhir/Task?owner=Organization/1&_count=20", "FROM triage_task t"),
        })
        {
            await Run("GET " + path, mustRun, new HttpRequestMessage(HttpMethod.Get, path));
        }

        // The screens' own reads of the same: the coordination centre's queue and the capacity board, as a page asks for them.
        var coordinator = await app.StaffAsync("coordinator");
        await app.SendAsync(new CareCoordination.Features.Coordination.CoordinationQueue.Query(), coordinator);
        asked.Add(("the coordination queue page", "FROM triage_task t", app.Take()));
        await app.SendAsync(new CareCoordination.Features.Boards.CapacityBoard.Query(), await app.StaffAsync("manager"));
        asked.Add(("the capacity board page", "FROM bed b", app.Take()));

        // Planned on a connection of the test's own, once the work is done: the plan of a statement depends on the schema and
        // its values, not on the rows it found.
        // Foreign keys off: with them on, the plan of an INSERT also lists the search for rows that point at the new row, which
        // SQLite runs only while a violation is pending (so never in a write that commits): a SCAN where a referral names
        // another (duplicate_of_referral_id) or its message (received_id), neither indexed, and none of them ever read.
        await using var connection = new SqliteConnection(app.ConnectionString);
        await connection.OpenAsync();
        await connection.ExecuteAsync("PRAGMA foreign_keys = OFF");
        // A table renamed away would drop out of the check without a word.
        var tables = (await connection.QueryAsync<string>("SELECT name FROM sqlite_master WHERE type = 'table'")).ToHashSet(StringComparer.Ordinal);
        Assert.All(History, table => Assert.Contains(table, tables));
        var scans = new List<string>();
        foreach (var (what, mustRun, statements) in asked)
        {
            Assert.True(statements.Any(s => s.Contains(mustRun, StringComparison.Ordinal)), $"{what}: no statement with '{mustRun}' was watched, so its own were not checked");
            foreach (var statement in statements.Where(Plannable).Distinct())
            {
                var plan = (await connection.QueryAsync<(long Id, long Parent, long NotUsed, string Detail)>("EXPLAIN QUERY PLAN " + statement)).ToList();
                scans.AddRange(plan.Where(step => ScansHistory(step.Detail, statement) && !ReadsASubquerysRows(step, plan))
                    .Select(step => $"{what}\n  {step.Detail}\n  in: {statement[..Math.Min(statement.Length, 400)]}"));
            }
        }
        Assert.True(scans.Count == 0, string.Join("\n\n", scans));
    }

    /// <summary>
    /// A SCAN of a history table, in any form: whole, by a covering index, or in an index's order (each reads every row). The
    /// plan names a table by its alias where the statement gives one, so the statement's aliases are read too; a subquery's
    /// own rows (a derived table, already searched by index) are not a table.
    /// </summary>
    internal static bool ScansHistory(string detail, string statement)
    {
        if (!detail.StartsWith("SCAN ", StringComparison.Ordinal))
        {
            return false;
        }
        var name = detail["SCAN ".Length..].Split(' ')[0];
        return History.Contains(name, StringComparer.Ordinal)
            || Aliases().Matches(statement).Any(m => m.Groups["alias"].Value == name && History.Contains(m.Groups["table"].Value, StringComparer.Ordinal));
    }

    /// <summary>
    /// A subquery's rows, made as a co-routine or materialised, are scanned under the subquery's alias, which may be the alias
    /// its table has inside it. The scan of its rows sits beside the subquery in the plan (the same parent); its own steps hang
    /// under it, so a scan among them reads its table and is checked like any other, as is a scan of the same name anywhere else.
    /// </summary>
    private static bool ReadsASubquerysRows((long Id, long Parent, long NotUsed, string Detail) step, IReadOnlyList<(long Id, long Parent, long NotUsed, string Detail)> plan)
    {
        var name = step.Detail.Split(' ')[1];
        return plan.Any(s => (s.Detail == $"CO-ROUTINE {name}" || s.Detail == $"MATERIALIZE {name}") && s.Parent == step.Parent);
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"\b(?:FROM|JOIN)\s+(?<table>\w+)\s+(?:AS\s+)?(?<alias>\w+)", System.Text.RegularExpressions.RegexOptions.IgnoreCase)]
    private static partial System.Text.RegularExpressions.Regex Aliases();

    /// <summary>A statement that reads or writes rows: transaction control, PRAGMAs and savepoints have no plan.</summary>
    private static bool Plannable(string statement)
    {
        var head = statement.TrimStart();
        return !(head.StartsWith("BEGIN", StringComparison.OrdinalIgnoreCase) || head.StartsWith("COMMIT", StringComparison.OrdinalIgnoreCase)
            || head.StartsWith("ROLLBACK", StringComparison.OrdinalIgnoreCase) || head.StartsWith("PRAGMA", StringComparison.OrdinalIgnoreCase)
            || head.StartsWith("SAVEPOINT", StringComparison.OrdinalIgnoreCase) || head.StartsWith("RELEASE", StringComparison.OrdinalIgnoreCase)
            || head.StartsWith("--", StringComparison.Ordinal));
    }

    private static HttpRequestMessage PostReferral(string nhs, string? prefer)
    {
        var bundle = FhirPayloads.ProfileExamplesTransaction(nhs);
        var post = new HttpRequestMessage(HttpMethod.Post, "/fhir") { Content = FhirPayloads.Body(bundle.ToJsonString()) };
        if (prefer is not null)
        {
            post.Headers.TryAddWithoutValidation("Prefer", prefer);
        }
        return post;
    }

    private static long ReferralIdOf(string transactionResponse)
    {
        using var answer = JsonDocument.Parse(transactionResponse);
        var location = answer.RootElement.GetProperty("entry").EnumerateArray()
            .Select(e => e.GetProperty("response").GetProperty("location").GetString()!)
            .Single(l => l.StartsWith("ServiceRequest/", StringComparison.Ordinal));
        return long.Parse(location.Split('/')[1], System.Globalization.CultureInfo.InvariantCulture);
    }
}
