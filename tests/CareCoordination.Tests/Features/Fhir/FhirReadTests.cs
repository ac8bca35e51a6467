// Firely's model marks every element nullable; here a missing element fails the test just as an assert would.
#pragma warning disable CS8600, CS8602, CS8604

using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using CareCoordination.Domain;
using CareCoordination.Features.Coordination;
using CareCoordination.Features.Fhir;
using CareCoordination.Features.Referrals;
using CareCoordination.Tests.Support;
using Dapper;
using Hl7.Fhir.Model;
using FhirTask = Hl7.Fhir.Model.Task;
using Task = System.Threading.Tasks.Task;

namespace CareCoordination.Tests.Features.Fhir;

/// <summary>
/// A partner system's view through /fhir: what it may read, what it is refused and how, and that what it
/// reads parses with the Firely SDK as the resource it claims to be.
/// </summary>
public abstract class FhirReadTests(AppFactory app)
{
    private const string NhsSystem = "https://fhir.nhs.uk/Id/nhs-number";

    private DateOnly Today => LondonTime.Today(app.Clock);

    private async Task<(long ReferralId, string NhsNumber)> SubmitAsync(string user)
    {
        var nhs = await app.NewNhsNumberAsync();
        var form = ReferralForms.Discharge(Today, nhs);
        var sent = await app.SendAsync<SubmitReferral.Result>(new SubmitReferral.Command(form, Guid.NewGuid().ToString("N")), await app.StaffAsync(user));
        return (sent.ReferralId!.Value, nhs.Replace(" ", "", StringComparison.Ordinal));
    }

    private async Task<long> TaskIdAsync(long referralId)
    {
        await using var connection = await app.OpenAsync();
        return await connection.ExecuteScalarAsync<long>("SELECT id FROM triage_task WHERE referral_id = @referralId", new { referralId });
    }

    [Fact]
    public async Task Metadata_IsAnonymous_AndStatesOnlyWhatIsBuilt()
    {
        using var client = app.CreateClient();

        var capability = await FhirPartner.ParseAsync<CapabilityStatement>(await client.GetAsync("/fhir/metadata"));

        Assert.Equal(FHIRVersion.N4_0_1, capability.FhirVersion);
        Assert.Equal(PublicationStatus.Active, capability.Status);
        Assert.Equal(CapabilityStatementKind.Instance, capability.Kind);
        Assert.Equal("CareCoordination", capability.Software.Name);
        Assert.Equal(["json"], capability.Format);
        var rest = Assert.Single(capability.Rest);
        Assert.Equal("SMART-on-FHIR", rest.Security.Service.Single().Coding.Single().Code);
        Assert.EndsWith("/oauth/token", rest.Security.Extension.Single().Extension.Single(e => e.Url == "token").Value.ToString());
        Assert.Equal(["AuditEvent", "HealthcareService", "Location", "MeasureReport", "Organization", "Patient", "Practitioner", "PractitionerRole", "ServiceRequest", "Subscription", "Task"],
            rest.Resource.Select(r => r.Type).Order());
        // vread and history-instance: FhirHistoryTests. Subscription's interactions and operations: FhirSubscriptionTests.
        CapabilityStatement.TypeRestfulInteraction[] versions = [CapabilityStatement.TypeRestfulInteraction.Vread, CapabilityStatement.TypeRestfulInteraction.HistoryInstance];
        Assert.All(rest.Resource.Where(r => r.Type is not ("ServiceRequest" or "Subscription" or "Patient")), r => Assert.Equal(
            [CapabilityStatement.TypeRestfulInteraction.Read, CapabilityStatement.TypeRestfulInteraction.SearchType],
            r.Interaction.Select(i => i.Code!.Value).Except(versions)));
        var person = rest.Resource.Single(r => r.Type == "Patient");
        Assert.Equal(
            [CapabilityStatement.TypeRestfulInteraction.Read, CapabilityStatement.TypeRestfulInteraction.SearchType, CapabilityStatement.TypeRestfulInteraction.Create],
            person.Interaction.Select(i => i.Code!.Value).Except(versions));
        Assert.True(person.ConditionalCreate);
        var referral = rest.Resource.Single(r => r.Type == "ServiceRequest");
        Assert.Equal(
            [CapabilityStatement.TypeRestfulInteraction.Read, CapabilityStatement.TypeRestfulInteraction.SearchType,
             CapabilityStatement.TypeRestfulInteraction.Create, CapabilityStatement.TypeRestfulInteraction.Update],
            referral.Interaction.Select(i => i.Code!.Value).Except(versions));
        Assert.True(referral.ConditionalCreate);
        Assert.Equal(["patient.identifier", "status", "identifier", "patient", "subject", "_lastUpdated"], referral.SearchParam.Select(p => p.Name));
        Assert.Equal(["focus", "_lastUpdated", "owner", "patient", "status"], rest.Resource.Single(r => r.Type == "Task").SearchParam.Select(p => p.Name));
        Assert.Equal(["identifier"], rest.Resource.Single(r => r.Type == "Patient").SearchParam.Select(p => p.Name));
        Assert.Equal([CapabilityStatement.SystemRestfulInteraction.Transaction, CapabilityStatement.SystemRestfulInteraction.Batch],
            rest.Interaction.Select(i => i.Code!.Value));
        Assert.Equal("process-message", rest.Operation.Single().Name);
    }

    [Fact]
    public async Task NoToken_OrABadOne_Is401WithAnOperationOutcome()
    {
        var (referralId, _) = await SubmitAsync("referrer");
        using var client = app.CreateClient();

        var none = await client.GetAsync($"/fhir/ServiceRequest/{referralId}");
        var outcome = await FhirPartner.ParseAsync<OperationOutcome>(none, HttpStatusCode.Unauthorized);
        Assert.Equal(OperationOutcome.IssueType.Login, outcome.Issue.Single().Code);
        Assert.Equal("Bearer", none.Headers.WwwAuthenticate.Single().Scheme);

        using var bad = new HttpRequestMessage(HttpMethod.Get, "/fhir/Patient?identifier=9434765919");
        bad.Headers.Authorization = new AuthenticationHeaderValue("Bearer", "not.a.token");
        await FhirPartner.ParseAsync<OperationOutcome>(await client.SendAsync(bad), HttpStatusCode.Unauthorized);
    }

    [Fact]
    public async Task ATokenWithoutTheReadScope_Is403WithAnOperationOutcome()
    {
        var (referralId, _) = await SubmitAsync("referrer");
        using var client = await app.PartnerAsync("system/Task.rs");

        var outcome = await FhirPartner.ParseAsync<OperationOutcome>(await client.GetAsync($"/fhir/ServiceRequest/{referralId}"), HttpStatusCode.Forbidden);

        Assert.Equal(OperationOutcome.IssueType.Forbidden, outcome.Issue.Single().Code);
        // Search is its own scope letter: read alone does not allow it.
        using var readOnly = await app.PartnerAsync("system/ServiceRequest.r");
        await FhirPartner.ParseAsync<OperationOutcome>(await readOnly.GetAsync("/fhir/ServiceRequest?status=active"), HttpStatusCode.Forbidden);
        await FhirPartner.ParseAsync<ServiceRequest>(await readOnly.GetAsync($"/fhir/ServiceRequest/{referralId}"));
    }

    [Fact]
    public async Task OwnReferral_ReadsAsAnActiveServiceRequest_ForTheNhsNumbersPatient_AndIsAudited()
    {
        var (referralId, nhs) = await SubmitAsync("referrer");
        using var client = await app.PartnerAsync();

        var response = await client.GetAsync($"/fhir/ServiceRequest/{referralId}");
        var request = await FhirPartner.ParseAsync<ServiceRequest>(response);

        Assert.Equal(referralId.ToString(), request.Id);
        Assert.Equal(RequestStatus.Active, request.Status);
        Assert.Equal(RequestIntent.Order, request.Intent);
        Assert.Equal("1", request.Meta.VersionId);
        Assert.Equal("W/\"1\"", response.Headers.ETag?.ToString());
        Assert.NotNull(request.AuthoredOn);
        Assert.Equal(FhirMapping.PathwaySystem, request.Code.Coding.Single().System);
        Assert.Equal("RWM", request.Requester.Identifier.Value);
        Assert.Equal(NhsSystem, request.Subject.Identifier.System);

        var patient = await FhirPartner.ParseAsync<Patient>(await client.GetAsync($"/fhir/{request.Subject.Reference}"));
        var identifier = patient.Identifier.Single();
        Assert.Equal((NhsSystem, nhs), (identifier.System, identifier.Value));
        Assert.Equal("Trelawny", patient.Name.Single().Family);

        await using var connection = await app.OpenAsync();
        // The store's number for the person the referral is for: the Patient's id is the partner's own, not that number.
        var personId = await connection.ExecuteScalarAsync<long>("SELECT person_id FROM referral WHERE id = @referralId", new { referralId });
        var audited = await connection.QueryAsync<string>(
            "SELECT action FROM audit_event WHERE actor_kind = 'partner' AND person_id = @personId AND outcome = 'success'",
            new { personId });
        Assert.Contains("ReadServiceRequest", audited);
        Assert.Contains("ReadPatient", audited);
    }

    [Fact]
    public async Task AnotherOrganisationsReferral_ItsTaskAndItsPerson_AreNotFound()
    {
        var (referralId, nhs) = await SubmitAsync("gareth.evans");
        var taskId = await TaskIdAsync(referralId);
        await using var connection = await app.OpenAsync();
        var personId = await connection.ExecuteScalarAsync<long>("SELECT person_id FROM referral WHERE id = @referralId", new { referralId });
        using var client = await app.PartnerAsync();

        var outcome = await FhirPartner.ParseAsync<OperationOutcome>(await client.GetAsync($"/fhir/ServiceRequest/{referralId}"), HttpStatusCode.NotFound);
        Assert.Equal(OperationOutcome.IssueType.NotFound, outcome.Issue.Single().Code);
        await FhirPartner.ParseAsync<OperationOutcome>(await client.GetAsync($"/fhir/Task/{taskId}"), HttpStatusCode.NotFound);
        // By the id this client's organisation would be given for the person, were it theirs to read.
        await FhirPartner.ParseAsync<OperationOutcome>(await client.GetAsync($"/fhir/Patient/{await app.PatientIdAsync("RWM", personId)}"), HttpStatusCode.NotFound);
        await FhirPartner.ParseAsync<OperationOutcome>(await client.GetAsync("/fhir/ServiceRequest/999999999"), HttpStatusCode.NotFound);
        Assert.Equal(0, (await FhirPartner.ParseAsync<Bundle>(await client.GetAsync($"/fhir/ServiceRequest?patient.identifier={NhsSystem}|{nhs}"))).Total);
        Assert.Equal(0, (await FhirPartner.ParseAsync<Bundle>(await client.GetAsync($"/fhir/Patient?identifier={NhsSystem}|{nhs}"))).Total);
        Assert.Equal(0, (await FhirPartner.ParseAsync<Bundle>(await client.GetAsync($"/fhir/Task?focus=ServiceRequest/{referralId}"))).Total);
    }

    [Fact]
    public async Task WaitingTasks_TheirTotalAndFirstPage_AreThePartnersOwnReferralsTasksOnly()
    {
        var (ours, _) = await SubmitAsync("referrer");
        var (theirs, _) = await SubmitAsync("gareth.evans");
        var (ourTask, theirTask) = (await TaskIdAsync(ours), await TaskIdAsync(theirs));
        await using var connection = await app.OpenAsync();
        // Counted from each task's referral, as the search narrowed them before the organisation was kept on the task.
        var expected = (await connection.QueryAsync<long>(
            """
            SELECT t.id FROM triage_task t JOIN referral r ON r.id = t.referral_id
            WHERE t.status = 'requested' AND r.organisation_id = (SELECT organisation_id FROM referral WHERE id = @ours)
            ORDER BY t.id
            """, new { ours })).ToList();
        using var client = await app.PartnerAsync();

        var page = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync("/fhir/Task?status=requested&_count=2"));

        Assert.Equal(expected.Count, page.Total);
        Assert.Equal(expected.Take(2).Select(id => id.ToString(System.Globalization.CultureInfo.InvariantCulture)), page.Entry.Select(e => e.Resource.Id));
        Assert.Contains(ourTask, expected);
        Assert.DoesNotContain(theirTask, expected);
    }

    [Fact]
    public async Task SearchByNhsNumber_FindsTheReferral_AndPagesWithAWorkingNextLink()
    {
        var (first, nhs) = await SubmitAsync("referrer");
        // A second referral for the same person, as a new need: two matches to page through.
        var second = (await app.SendAsync<SubmitReferral.Result>(
            new SubmitReferral.Command(ReferralForms.Discharge(Today, nhs), Guid.NewGuid().ToString("N"), DuplicateAnswer: "new-need"),
            await app.StaffAsync("referrer"))).ReferralId!.Value;
        using var client = await app.PartnerAsync();

        var all = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync($"/fhir/ServiceRequest?patient.identifier={NhsSystem}|{nhs}&status=active"));
        Assert.Equal(Bundle.BundleType.Searchset, all.Type);
        Assert.Equal(2, all.Total);
        Assert.Equal([first.ToString(), second.ToString()], all.Entry.Select(e => e.Resource.Id));
        Assert.All(all.Entry, e => Assert.EndsWith($"/fhir/ServiceRequest/{e.Resource.Id}", e.FullUrl));

        var page1 = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync($"/fhir/ServiceRequest?patient.identifier={NhsSystem}|{nhs}&_count=1"));
        Assert.Equal((2, first.ToString()), (page1.Total, page1.Entry.Single().Resource.Id));
        var next = page1.Link.Single(l => l.Relation == "next").Url;
        var page2 = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync(next));
        Assert.Equal(second.ToString(), page2.Entry.Single().Resource.Id);
        Assert.DoesNotContain(page2.Link, l => l.Relation == "next");

        Assert.Equal(0, (await FhirPartner.ParseAsync<Bundle>(await client.GetAsync($"/fhir/ServiceRequest?patient.identifier={NhsSystem}|{nhs}&status=completed"))).Total);
        var patients = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync($"/fhir/Patient?identifier={NhsSystem}|{nhs}"));
        Assert.Equal(nhs, ((Patient)patients.Entry.Single().Resource).Identifier.Single().Value);
    }

    [Theory]
    [InlineData("/fhir/ServiceRequest?requester=Organization/1")]
    [InlineData("/fhir/ServiceRequest?status=cancelled")]
    [InlineData("/fhir/ServiceRequest?patient.identifier=12345")]
    [InlineData("/fhir/ServiceRequest?_count=many")]
    [InlineData("/fhir/ServiceRequest?_page=bm90LW91cnM")]
    [InlineData("/fhir/Task?focus=Patient/1")]
    [InlineData("/fhir/Task?_lastUpdated=2025-01-01")]
    [InlineData("/fhir/Task?_lastUpdated=gtyesterday")]
    [InlineData("/fhir/Patient?identifier=1&identifier=2")]
    [InlineData("/fhir/Patient")]
    [InlineData("/fhir/Patient?_count=20&_total=none")]
    public async Task ABadSearchParameter_Is400WithAnOperationOutcome(string url)
    {
        using var client = await app.PartnerAsync();

        var outcome = await FhirPartner.ParseAsync<OperationOutcome>(await client.GetAsync(url), HttpStatusCode.BadRequest);

        Assert.Equal(OperationOutcome.IssueType.Invalid, outcome.Issue.Single().Code);
    }

    [Fact]
    public async Task WhatIsNotBuilt_IsRefusedAsAnOperationOutcome()
    {
        using var client = await app.PartnerAsync();

        await FhirPartner.ParseAsync<OperationOutcome>(await client.GetAsync("/fhir/Encounter"), HttpStatusCode.NotFound);
        await FhirPartner.ParseAsync<OperationOutcome>(await client.DeleteAsync("/fhir/ServiceRequest/1"), HttpStatusCode.MethodNotAllowed);
    }

    [Fact]
    public async Task TheTriageTask_FollowsTheReferral_FromRequestedToInProgress()
    {
        var (referralId, _) = await SubmitAsync("referrer");
        var taskId = await TaskIdAsync(referralId);
        using var client = await app.PartnerAsync();

        var waiting = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync($"/fhir/Task?focus=ServiceRequest/{referralId}"));
        var task = (FhirTask)waiting.Entry.Single().Resource;
        Assert.Equal(taskId.ToString(), task.Id);
        Assert.Equal(FhirTask.TaskStatus.Requested, task.Status);
        Assert.Equal($"ServiceRequest/{referralId}", task.Focus.Reference);
        Assert.Equal("submitted", task.BusinessStatus.Coding.Single().Code);
        Assert.StartsWith("Patient/", task.For.Reference);
        Assert.NotNull(task.Owner);

        var beforeTake = app.Clock.GetUtcNow().AddSeconds(30);
        app.Clock.Advance(TimeSpan.FromMinutes(1));
        await app.SendAsync(new TakeReferral.Command(taskId), await app.StaffAsync("coordinator"));

        var read = await client.GetAsync($"/fhir/Task/{taskId}");
        var taken = await FhirPartner.ParseAsync<FhirTask>(read);
        Assert.Equal(FhirTask.TaskStatus.InProgress, taken.Status);
        Assert.Equal("in-triage", taken.BusinessStatus.Coding.Single().Code);
        Assert.Equal("CCC-NORTH", taken.Owner.Identifier.Value);
        Assert.Equal($"W/\"{taken.Meta.VersionId}\"", read.Headers.ETag?.ToString());

        var changed = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync(
            $"/fhir/Task?focus=ServiceRequest/{referralId}&_lastUpdated=gt{Uri.EscapeDataString(FhirMapping.Instant(beforeTake))}"));
        Assert.Equal(taskId.ToString(), changed.Entry.Single().Resource.Id);
        var since = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync(
            $"/fhir/Task?focus=ServiceRequest/{referralId}&_lastUpdated=gt{Uri.EscapeDataString(FhirMapping.Instant(app.Clock.GetUtcNow().AddSeconds(1)))}"));
        Assert.Equal(0, since.Total);
    }
}

public sealed class FhirReadOnSqliteTests(AppFactory app) : FhirReadTests(app), IClassFixture<AppFactory>;

public sealed class FhirReadOnPostgresTests(PostgresAppFactory app) : FhirReadTests(app), IClassFixture<PostgresAppFactory>;
