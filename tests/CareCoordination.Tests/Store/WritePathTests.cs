using System.Net;
using System.Text.Json.Nodes;
using CareCoordination.Domain;
using CareCoordination.Features.Coordination;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using CareCoordination.Tests.Support;
using Dapper;
using Microsoft.AspNetCore.Hosting;

namespace CareCoordination.Tests.Store;

/// <summary>
/// The guarantees of the write path while many commands arrive at once, so that on SQLite they are committed in groups
/// (each in its own savepoint): through the real host, on each store.
/// </summary>
public abstract class WritePathTests(AppFactory app)
{
    private DateOnly Today => LondonTime.Today(app.Clock);

    private readonly HashSet<string> _used = [];

    /// <summary>A valid NHS number no one in the store or in this test has: a person with an open referral would be asked about first.</summary>
    private async Task<string> NewNhsAsync()
    {
        while (true)
        {
            var nhs = await app.NewNhsNumberAsync();
            if (_used.Add(nhs))
            {
                return nhs;
            }
        }
    }

    private async Task<List<SubmitReferral.Command>> NewSubmissionsAsync(int count)
    {
        var commands = new List<SubmitReferral.Command>();
        for (var i = 0; i < count; i++)
        {
            commands.Add(new(ReferralForms.Discharge(Today, await NewNhsAsync()), Guid.NewGuid().ToString("N")));
        }
        return commands;
    }

    [Fact]
    public async Task ABurstOfSubmissions_SomeFailingAfterWriting_KeepsEveryGoodOneWhole_NothingOfTheFailedOnes_AndNoSequenceGap()
    {
        using var client = await app.PartnerAsync();
        var before = await MaxSeqAsync();

        var sent = new List<(string Nhs, bool Failing, JsonObject Body)>();
        for (var i = 0; i < 24; i++)
        {
            var nhs = await NewNhsAsync();
            // Every third one writes its first referral, then breaks a rule with a second: it must leave nothing.
            var failing = i % 3 == 2;
            sent.Add((nhs, failing, failing ? TwoReferrals(nhs) : FhirPayloads.Example("referral-transaction.json", nhs)));
        }
        var answers = await Task.WhenAll(sent.Select(s => Task.Run(async () =>
            (await client.PostAsync("/fhir", FhirPayloads.Body(s.Body.ToJsonString()))).StatusCode)));

        await using var connection = await app.OpenAsync();
        for (var i = 0; i < sent.Count; i++)
        {
            var people = await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM person WHERE nhs_number = @Nhs", new { sent[i].Nhs });
            if (sent[i].Failing)
            {
                Assert.Equal((HttpStatusCode)422, answers[i]);
                Assert.Equal(0, people);
            }
            else
            {
                Assert.Equal(HttpStatusCode.OK, answers[i]);
                Assert.Equal(1, people);
                await AssertWholeAsync(sent[i].Nhs);
            }
        }
        await AssertNoGapAfterAsync(before);
    }

    [Fact]
    public async Task DecisionsOnOneReferral_AmongABurstOfOtherCommands_HaveExactlyOneWinner_EachTime()
    {
        string[] team = ["coordinator", "jo.nankivell", "kemal.arslan", "ben.rowe"];
        var principals = await Task.WhenAll(team.Select(app.StaffAsync));
        var referrer = await app.StaffAsync("referrer");
        var before = await MaxSeqAsync();
        for (var round = 0; round < 5; round++)
        {
            var submitted = await app.SendAsync<SubmitReferral.Result>((await NewSubmissionsAsync(1))[0], referrer);
            await using var connection = await app.OpenAsync();
            var taskId = await connection.ExecuteScalarAsync<long>("SELECT id FROM triage_task WHERE referral_id = @id", new { id = submitted.ReferralId });

            var others = (await NewSubmissionsAsync(6)).Select(c => Task.Run(() => app.SendAsync<SubmitReferral.Result>(c, referrer))).ToList();
            var takes = principals.Select(p => Task.Run(async () =>
            {
                try
                {
                    await app.SendAsync(new TakeReferral.Command(taskId), p);
                    return true;
                }
                catch (Conflict)
                {
                    return false;
                }
            })).ToList();
            await Task.WhenAll(others);

            Assert.Single(await Task.WhenAll(takes), won => won);
            Assert.Equal(1, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM change WHERE kind = 'task.taken' AND entity_id = @taskId", new { taskId }));
        }
        await AssertNoGapAfterAsync(before);
    }

    [Fact]
    public async Task OneReferralKey_SubmittedManyTimesAtOnce_AmongOthers_MakesOneReferral()
    {
        var referrer = await app.StaffAsync("referrer");
        var key = Guid.NewGuid().ToString("N");
        var form = ReferralForms.Discharge(Today, await NewNhsAsync());
        var submissions = await NewSubmissionsAsync(6);

        var repeated = Enumerable.Range(0, 10).Select(_ => Task.Run(() =>
            app.SendAsync<SubmitReferral.Result>(new SubmitReferral.Command(form, key), referrer))).ToList();
        var others = submissions.Select(c => Task.Run(() => app.SendAsync<SubmitReferral.Result>(c, referrer))).ToList();
        var results = await Task.WhenAll(repeated);
        await Task.WhenAll(others);

        Assert.Single(results.Select(r => r.ReferralId).Distinct());
        Assert.Single(results, r => !r.Repeated);
        await using var connection = await app.OpenAsync();
        Assert.Equal(1, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM referral WHERE idempotency_key = @key", new { key }));
        Assert.Equal(1, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM triage_task WHERE referral_id = @id", new { id = results[0].ReferralId }));
    }

    /// <summary>The documented transaction for one person, and a second referral in the same Bundle for a person whose NHS number is wrong.</summary>
    private static JsonObject TwoReferrals(string nhs)
    {
        var bundle = FhirPayloads.Example("referral-transaction.json", nhs);
        var wrongCheckDigit = nhs[..9] + (char)('0' + ((nhs[9] - '0' + 1) % 10));
        var second = FhirPayloads.Example("referral-transaction.json", wrongCheckDigit);
        var entries = bundle["entry"]!.AsArray();
        var secondPatient = second["entry"]![0]!.DeepClone();
        var secondReferral = second["entry"]![1]!.DeepClone();
        const string secondUrl = "urn:uuid:4e0c9d55-1f7a-4a8e-b1c2-9d3e5f7a0b1c";
        secondPatient["fullUrl"] = secondUrl;
        secondReferral["fullUrl"] = "urn:uuid:" + Guid.NewGuid();
        secondReferral["resource"]!["subject"]!["reference"] = secondUrl;
        entries.Add(secondPatient);
        entries.Add(secondReferral);
        return bundle;
    }

    private async Task AssertWholeAsync(string nhs)
    {
        await using var connection = await app.OpenAsync();
        var referralId = await connection.ExecuteScalarAsync<long>(
            "SELECT r.id FROM referral r JOIN person p ON p.id = r.person_id WHERE p.nhs_number = @nhs", new { nhs });
        Assert.Equal(1, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM triage_task WHERE referral_id = @referralId", new { referralId }));
        Assert.Equal(1, await connection.ExecuteScalarAsync<long>(
            "SELECT COUNT(*) FROM change WHERE kind = 'referral.submitted' AND entity_id = @referralId", new { referralId }));
        Assert.True(await connection.ExecuteScalarAsync<long>(
            "SELECT COUNT(*) FROM audit_event WHERE outcome = 'success' AND entity_type = 'referral' AND entity_id = @referralId", new { referralId }) >= 1);
    }

    private async Task<long> MaxSeqAsync()
    {
        await using var connection = await app.OpenAsync();
        return await connection.ExecuteScalarAsync<long?>("SELECT MAX(seq) FROM change") ?? 0;
    }

    private async Task AssertNoGapAfterAsync(long before)
    {
        await using var connection = await app.OpenAsync();
        var seqs = (await connection.QueryAsync<long>("SELECT seq FROM change WHERE seq > @before ORDER BY seq", new { before })).ToList();
        Assert.NotEmpty(seqs);
        Assert.Equal(Enumerable.Range(0, seqs.Count).Select(i => before + 1 + i), seqs);
    }
}

/// <summary>The host with write groups allowed to stay open long, so that a burst of commands shares transactions.</summary>
public sealed class GroupingSqliteApp() : AppFactory(new SqliteTestStore())
{
    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.UseSetting("Database:GroupCommitMaxMilliseconds", "2000");
    }
}

public sealed class WritePathOnSqliteTests(GroupingSqliteApp app) : WritePathTests(app), IClassFixture<GroupingSqliteApp>;

public sealed class WritePathOnPostgresTests(PostgresAppFactory app) : WritePathTests(app), IClassFixture<PostgresAppFactory>;
