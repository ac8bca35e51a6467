// Firely's model marks every element nullable; here a missing element fails the test just as an assert would.
#pragma warning disable CS8600, CS8602, CS8604

using System.Globalization;
using System.Net;
using CareCoordination.Domain;
using CareCoordination.Features.Referrals;
using CareCoordination.Tests.Support;
using Dapper;
using Hl7.Fhir.Model;
using Task = System.Threading.Tasks.Task;

namespace CareCoordination.Tests.Features.Fhir;

/// <summary>
/// FHIR's _total: a partner that will not use a search's total says _total=none, and gets its pages without it (the server
/// does not count every match); estimate and accurate get the exact total; anything else is refused.
/// </summary>
public abstract class FhirTotalTests(AppFactory app)
{
    private const string NhsSystem = "https://fhir.nhs.uk/Id/nhs-number";

    /// <summary>Three referrals for one new person, made by the partner's own organisation: a search with a known answer.</summary>
    private async Task<(string NhsNumber, List<string> ReferralIds)> ThreeReferralsAsync()
    {
        var today = LondonTime.Today(app.Clock);
        var nhs = await app.NewNhsNumberAsync();
        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            var sent = await app.SendAsync<SubmitReferral.Result>(
                new SubmitReferral.Command(ReferralForms.Discharge(today, nhs), Guid.NewGuid().ToString("N"), DuplicateAnswer: i == 0 ? null : "new-need"),
                await app.StaffAsync("referrer"));
            ids.Add(sent.ReferralId!.Value.ToString(CultureInfo.InvariantCulture));
        }
        return (nhs.Replace(" ", "", StringComparison.Ordinal), ids);
    }

    private static string? Next(Bundle page) => page.Link.SingleOrDefault(l => l.Relation == "next")?.Url;

    [Fact]
    public async Task WithoutATotal_ThePagesHaveNoTotal_AndANextLinkExactlyWhileMoreFollow()
    {
        var (nhs, referrals) = await ThreeReferralsAsync();
        using var client = await app.PartnerAsync();
        var search = $"/fhir/ServiceRequest?patient.identifier={NhsSystem}|{nhs}";

        // One a page: three pages, each without a total, the last without a next link.
        var seen = new List<string>();
        var pages = 0;
        for (string? url = search + "&_count=1&_total=none"; url is not null; pages++)
        {
            var page = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync(url));
            Assert.Null(page.Total);
            seen.AddRange(page.Entry.Select(e => e.Resource.Id!));
            url = Next(page);
        }
        Assert.Equal(3, pages);
        Assert.Equal(referrals, seen);

        // A page exactly as long as what is left: no next link (the row read beyond it was not there).
        var whole = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync(search + "&_count=3&_total=none"));
        Assert.Equal(referrals, whole.Entry.Select(e => e.Resource.Id));
        Assert.Null(Next(whole));

        // Two of three: the next link, and only the two on the page.
        var two = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync(search + "&_count=2&_total=none"));
        Assert.Equal(referrals.Take(2), two.Entry.Select(e => e.Resource.Id));
        Assert.NotNull(Next(two));
    }

    [Fact]
    public async Task NoMatchesAsked_GiveTheTotalAlone_OrWithoutATotalNothing()
    {
        var (nhs, _) = await ThreeReferralsAsync();
        using var client = await app.PartnerAsync();
        var search = $"/fhir/ServiceRequest?patient.identifier={NhsSystem}|{nhs}&_count=0";

        var total = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync(search));
        var nothing = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync(search + "&_total=none"));

        Assert.Equal((3, 0, false), (total.Total, total.Entry.Count, Next(total) is not null));
        Assert.Equal(((int?)null, 0, false), (nothing.Total, nothing.Entry.Count, Next(nothing) is not null));
    }

    [Theory]
    [InlineData("estimate")]
    [InlineData("accurate")]
    public async Task AnEstimateOrAnAccurateTotal_IsTheExactTotal(string total)
    {
        var (nhs, _) = await ThreeReferralsAsync();
        using var client = await app.PartnerAsync();

        var page = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync($"/fhir/ServiceRequest?patient.identifier={NhsSystem}|{nhs}&_count=1&_total={total}"));

        Assert.Equal(3, page.Total);
        Assert.Single(page.Entry);
        Assert.NotNull(Next(page));
    }

    [Fact]
    public async Task WithoutATotal_TheRowReadBeyondThePage_IsNotAudited()
    {
        var (nhs, _) = await ThreeReferralsAsync();
        using var client = await app.PartnerAsync();
        // The person, as this client's organisation was given them: its own search by NHS number.
        var patient = await client.PatientIdByNhsNumberAsync(nhs);
        await using var connection = await app.OpenAsync();
        var personId = await connection.ExecuteScalarAsync<long>("SELECT id FROM person WHERE nhs_number = @nhs", new { nhs });
        var taskIds = (await connection.QueryAsync<long>(
            "SELECT t.id FROM triage_task t JOIN referral r ON r.id = t.referral_id WHERE r.person_id = @personId ORDER BY t.id", new { personId })).ToList();
        Assert.Equal(3, taskIds.Count);
        const string Audited = "SELECT COUNT(*) FROM audit_event WHERE action = 'SearchTasks' AND entity_type = 'triage_task' AND entity_id = @id";
        var before = new List<long>();
        foreach (var id in taskIds)
        {
            before.Add(await connection.ExecuteScalarAsync<long>(Audited, new { id }));
        }

        // A page of one: the search reads the second task too, to know that a next page follows, but shows only the first.
        var page = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync($"/fhir/Task?patient=Patient/{patient}&_count=1&_total=none"));

        Assert.Equal(taskIds[0].ToString(CultureInfo.InvariantCulture), page.Entry.Single().Resource.Id);
        Assert.NotNull(Next(page));
        var after = new List<long>();
        foreach (var id in taskIds)
        {
            after.Add(await connection.ExecuteScalarAsync<long>(Audited, new { id }));
        }
        Assert.Equal([before[0] + 1, before[1], before[2]], after);
    }

    [Fact]
    public async Task APatientSearchWithoutATotal_AnswersAnUnknownNhsNumber_AsOneOnlyAnotherOrganisationKnows()
    {
        var today = LondonTime.Today(app.Clock);
        var theirs = await app.NewNhsNumberAsync();
        await app.SendAsync<SubmitReferral.Result>(new SubmitReferral.Command(ReferralForms.Discharge(today, theirs), Guid.NewGuid().ToString("N")),
            await app.StaffAsync("gareth.evans"));
        var unknown = await app.NewNhsNumberAsync();
        using var client = await app.PartnerAsync();

        async Task<string> AnswerAsync(string nhs, string total)
        {
            var page = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync(
                $"/fhir/Patient?identifier={NhsSystem}|{nhs.Replace(" ", "", StringComparison.Ordinal)}&_total={total}"));
            return $"total {page.Total?.ToString(CultureInfo.InvariantCulture) ?? "none"}, {page.Entry.Count} entries, next {Next(page) is not null}";
        }

        foreach (var total in new[] { "none", "accurate" })
        {
            Assert.Equal(await AnswerAsync(unknown, total), await AnswerAsync(theirs, total));
        }
        Assert.Equal("total none, 0 entries, next False", await AnswerAsync(unknown, "none"));
    }

    /// <summary>
    /// Every search the store answers page by page: without a total, the same first page, and a next link where the total says
    /// more follow. (A Patient search names one NHS number: APatientSearchWithoutATotal above.)
    /// </summary>
    [Theory]
    [InlineData("/fhir/ServiceRequest?_count=1")]
    [InlineData("/fhir/Task?_count=1")]
    [InlineData("/fhir/Organization?_count=1")]
    [InlineData("/fhir/Practitioner?_count=1")]
    [InlineData("/fhir/PractitionerRole?_count=1")]
    [InlineData("/fhir/HealthcareService?_count=1")]
    [InlineData("/fhir/AuditEvent?_count=1")]
    [InlineData("/fhir/Subscription?_count=1")]
    public async Task EverySearch_WithoutATotal_PagesAsItDoesWithOne(string search)
    {
        await ThreeReferralsAsync();
        using var client = await app.PartnerAsync();

        var counted = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync(search));
        var uncounted = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync(search + "&_total=none"));

        Assert.NotNull(counted.Total);
        Assert.Null(uncounted.Total);
        // An AuditEvent search is itself audited, so its newest rows move between the two calls; the oldest first page does not.
        Assert.Equal(counted.Entry.Select(e => e.Resource.Id), uncounted.Entry.Select(e => e.Resource.Id));
        Assert.Equal(counted.Total > 1, Next(uncounted) is not null);
    }

    [Theory]
    [InlineData("/fhir/Location?_count=1&_total=none")]
    [InlineData("/fhir/MeasureReport?_count=1&_total=none")]
    public async Task ASearchWorkedOutInMemory_GivesItsTotalAnyway(string search)
    {
        using var client = await app.PartnerAsync();

        var page = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync(search));

        Assert.NotNull(page.Total);
        Assert.Equal(page.Total > 1, Next(page) is not null);
    }

    [Theory]
    [InlineData("/fhir/ServiceRequest?_total=maybe")]
    [InlineData("/fhir/Task?_total=NONE")]
    [InlineData("/fhir/Task?_total=none&_total=accurate")]
    [InlineData("/fhir/Organization?_total=")]
    public async Task AnyOtherTotal_Is400WithAnOperationOutcome(string search)
    {
        using var client = await app.PartnerAsync();

        var outcome = await FhirPartner.ParseAsync<OperationOutcome>(await client.GetAsync(search), HttpStatusCode.BadRequest);

        Assert.Equal(OperationOutcome.IssueType.Invalid, outcome.Issue.Single().Code);
        Assert.Contains("_total", outcome.Issue.Single().Diagnostics, StringComparison.Ordinal);
    }
}

public sealed class FhirTotalOnSqliteTests(AppFactory app) : FhirTotalTests(app), IClassFixture<AppFactory>;

public sealed class FhirTotalOnPostgresTests(PostgresAppFactory app) : FhirTotalTests(app), IClassFixture<PostgresAppFactory>;
