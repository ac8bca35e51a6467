// Firely's model marks every element nullable; here a missing element fails the test just as an assert would.
#pragma warning disable CS8600, CS8602, CS8604

using CareCoordination.Domain;
using CareCoordination.Features.Coordination;
using CareCoordination.Features.Referrals;
using CareCoordination.Tests.Support;
using Dapper;
using Hl7.Fhir.Model;
using FhirTask = Hl7.Fhir.Model.Task;
using Task = System.Threading.Tasks.Task;

namespace CareCoordination.Tests.Features.Fhir;

/// <summary>
/// Task.owner is kept on the task by the commands that change it (issue 14, scale of history), so a search by owner
/// needs no per-row lookup. After each such command, every task's owner is what the rule has always said (the
/// holder's organisation; unheld, the bed bureau or the coordination centre of the person's locality), worked out
/// here by the read the product used to make, and a search by owner finds exactly those tasks.
/// </summary>
public abstract class FhirTaskOwnerTests(AppFactory app)
{
    /// <summary>The owner as GET /fhir/Task worked it out per row before the owner was kept (main at 6dac663).</summary>
    private const string OwnerByTheRule = """
        SELECT t.id, COALESCE(uo.id, qo.id)
        FROM triage_task t
        JOIN referral r ON r.id = t.referral_id
        JOIN person p ON p.id = r.person_id
        LEFT JOIN staff_user u ON u.id = t.owner_user_id
        LEFT JOIN organisation uo ON uo.id = u.organisation_id
        LEFT JOIN organisation qo ON qo.id = (
            SELECT MIN(q.id) FROM organisation q
            WHERE (t.queue = 'bed-bureau' AND q.kind = 'bed-bureau')
               OR (t.queue = 'coordination' AND q.kind = 'coordination-centre' AND q.locality = p.locality))
        """;

    private DateOnly Today => LondonTime.Today(app.Clock);

    private async Task<long> SubmitAsync(string nhs, string postcode, string? duplicateAnswer = null)
    {
        var form = ReferralForms.Discharge(Today, nhs);
        form.Postcode = postcode;
        var sent = await app.SendAsync<SubmitReferral.Result>(
            new SubmitReferral.Command(form, Guid.NewGuid().ToString("N"), DuplicateAnswer: duplicateAnswer), await app.StaffAsync("referrer"));
        return sent.ReferralId!.Value;
    }

    private async Task<long> OpenTaskAsync(long referralId)
    {
        await using var connection = await app.OpenAsync();
        return await connection.ExecuteScalarAsync<long>(
            "SELECT id FROM triage_task WHERE referral_id = @referralId AND status IN ('requested', 'in-progress', 'on-hold')", new { referralId });
    }

    /// <summary>
    /// The task's Task.owner is <paramref name="code"/>; every task in the store has the owner the rule gives it; and for
    /// each organisation, a search by owner for this person finds exactly the tasks the rule says it owns.
    /// </summary>
    private async Task AssertOwnerAsync(HttpClient partner, long personId, long taskId, string code)
    {
        var read = await FhirPartner.ParseAsync<FhirTask>(await partner.GetAsync($"/fhir/Task/{taskId}"));
        Assert.Equal(code, read.Owner.Identifier.Value);
        // The person, as the partner's organisation was given them: the task's own Task.for.
        var patient = read.For.Reference;

        await using var connection = await app.OpenAsync();
        var byRule = (await connection.QueryAsync<(long Task, long? Owner)>(OwnerByTheRule + " ORDER BY t.id")).ToList();
        var kept = (await connection.QueryAsync<(long Task, long? Owner)>("SELECT id, owner_organisation_id FROM triage_task ORDER BY id")).ToList();
        Assert.Equal(byRule, kept);
        // The referring organisation, kept beside the owner (0030), is the referral's.
        Assert.Equal(
            await connection.QueryAsync<(long Task, long? Referring)>("SELECT t.id, r.organisation_id FROM triage_task t JOIN referral r ON r.id = t.referral_id ORDER BY t.id"),
            await connection.QueryAsync<(long Task, long? Referring)>("SELECT id, referring_organisation_id FROM triage_task ORDER BY id"));

        var persons = (await connection.QueryAsync<(long Task, long? Owner)>(
            OwnerByTheRule + " WHERE r.person_id = @personId ORDER BY t.id", new { personId })).ToList();
        foreach (var organisation in await connection.QueryAsync<long>("SELECT id FROM organisation ORDER BY id"))
        {
            var found = await FhirPartner.ParseAsync<Bundle>(await partner.GetAsync($"/fhir/Task?owner=Organization/{organisation}&patient={patient}"));
            // Compared as numbers: ordered as strings, task 1000 would come before task 999.
            var owned = persons.Where(p => p.Owner == organisation).Select(p => p.Task).ToList();
            Assert.Equal(owned, found.Entry.Select(e => long.Parse(e.Resource.Id, System.Globalization.CultureInfo.InvariantCulture)).Order());
            Assert.Equal(owned.Count, found.Total);
        }
    }

    [Fact]
    public async Task TaskOwner_AfterEachCommandThatChangesIt_IsTheRulesOwner_AndTheOwnerSearchFindsIt()
    {
        using var partner = await app.PartnerAsync();
        var nhs = await app.NewNhsNumberAsync();
        var first = await SubmitAsync(nhs, "wm1 4qt");
        long person;
        await using (var connection = await app.OpenAsync())
        {
            person = await connection.ExecuteScalarAsync<long>("SELECT person_id FROM referral WHERE id = @first", new { first });
        }
        var task = await OpenTaskAsync(first);
        // Waiting: the coordination centre of the person's locality (WM1 is Ashbury, CCC-NORTH's).
        await AssertOwnerAsync(partner, person, task, "CCC-NORTH");

        await app.SendAsync(new TakeReferral.Command(task), await app.StaffAsync("coordinator"));
        await AssertOwnerAsync(partner, person, task, "CCC-NORTH");

        // Handed to a coordinator of another centre: the holder's organisation.
        var fiona = await app.StaffAsync("fiona.grant");
        await using (var connection = await app.OpenAsync())
        {
            var fionaId = await connection.ExecuteScalarAsync<long>("SELECT id FROM staff_user WHERE username = 'fiona.grant'");
            await app.SendAsync(new HandReferral.Command(task, fionaId), await app.StaffAsync("coordinator"));
        }
        await AssertOwnerAsync(partner, person, task, "CCC-SOUTH");

        // Released: nobody holds it, so the locality's centre again.
        await app.SendAsync(new ReleaseReferral.Command(task), fiona);
        await AssertOwnerAsync(partner, person, task, "CCC-NORTH");

        // The person is referred again from Thornbridge (WM6): their record moves, and the task nobody holds moves with it.
        var second = await SubmitAsync(nhs, "wm6 1aa", duplicateAnswer: "new-need");
        await AssertOwnerAsync(partner, person, task, "CCC-CENTRAL");
        var secondTask = await OpenTaskAsync(second);
        await AssertOwnerAsync(partner, person, secondTask, "CCC-CENTRAL");

        // Taken by a CCC-SOUTH coordinator and passed to the bed bureau: the closed task keeps its holder, the new one is the bureau's.
        await app.SendAsync(new TakeReferral.Command(secondTask), fiona);
        await app.SendAsync(new RedirectToBedBureau.Command(secondTask, "Needs nursing care overnight; no home-first service can give it."), fiona);
        await AssertOwnerAsync(partner, person, secondTask, "CCC-SOUTH");
        var bureauTask = await OpenTaskAsync(second);
        await AssertOwnerAsync(partner, person, bureauTask, "WBB");

        await app.SendAsync(new TakeReferral.Command(bureauTask), await app.StaffAsync("bedbureau"));
        await AssertOwnerAsync(partner, person, bureauTask, "WBB");
    }
}

public sealed class FhirTaskOwnerOnSqliteTests(AppFactory app) : FhirTaskOwnerTests(app), IClassFixture<AppFactory>;

public sealed class FhirTaskOwnerOnPostgresTests(PostgresAppFactory app) : FhirTaskOwnerTests(app), IClassFixture<PostgresAppFactory>;
