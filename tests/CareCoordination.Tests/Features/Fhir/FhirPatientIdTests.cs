// Firely's model marks every element nullable; here a missing element fails the test just as an assert would.
#pragma warning disable CS8600, CS8602, CS8604

using System.Net;
using System.Text.Json.Nodes;
using CareCoordination.Features.Fhir;
using CareCoordination.Store;
using CareCoordination.Tests.Support;
using Dapper;
using Hl7.Fhir.Model;
using Microsoft.Extensions.DependencyInjection;
using Task = System.Threading.Tasks.Task;

namespace CareCoordination.Tests.Features.Fhir;

/// <summary>
/// A Patient's id is its organisation's own. The store numbers a person when anyone first sends them; handed to a partner,
/// that number told it when the person became known here, so a trust registering someone another trust referred long ago
/// could read from the id alone that someone knew them first. Each organisation now reads its own ids for the persons it
/// knows, which no other organisation's id, nor the store's number, opens.
/// </summary>
public abstract class FhirPatientIdTests(AppFactory app)
{
    private const string NhsSystem = "https://fhir.nhs.uk/Id/nhs-number";

    private static async Task<Patient> RegisterAsync(HttpClient client, string nhs, HttpStatusCode expected = HttpStatusCode.Created) =>
        await FhirPartner.ParseAsync<Patient>(await client.PostAsync("/fhir/Patient", FhirPayloads.Body(FhirPayloads.Person(nhs).ToJsonString())), expected);

    /// <summary>The documented example's referral, from the demo's other acute trust (RSM), naming its subject by reference alone.</summary>
    private static JsonObject ReferralNaming(string nhs, string subject)
    {
        var referral = FhirPayloads.ContainedReferral(nhs);
        referral.Remove("contained");
        referral["subject"] = new JsonObject { ["reference"] = subject };
        referral["requester"]!["identifier"]!["value"] = "RSM";
        return referral;
    }

    private async Task<long> StoreNumberAsync(string nhs)
    {
        await using var connection = await app.OpenAsync();
        return await connection.ExecuteScalarAsync<long>("SELECT id FROM person WHERE nhs_number = @nhs", new { nhs });
    }

    [Fact]
    public async Task APersonAnotherTrustKnew_IsRegisteredUnderAnIdOfTheTrustsOwn_ThatNeitherTheStoresNumberNorTheOtherTrustsIdOpens()
    {
        using var first = await app.PartnerAsync();
        var clientId = await app.NewPartnerClientAsync("RSM", "system/Patient.crs system/ServiceRequest.crs system/Task.rs system/AuditEvent.rs");
        using var second = await app.PartnerAsync(null, clientId, FhirPartner.OtherSecret);
        var known = await app.NewNhsNumberAsync();
        var stranger = await app.NewNhsNumberAsync();

        // The first trust refers the person; the second registers them later, and someone new to the store as well.
        var referral = await FhirPartner.ParseAsync<ServiceRequest>(
            await first.PostAsync("/fhir/ServiceRequest", FhirPayloads.Body(FhirPayloads.ContainedReferral(known).ToJsonString())), HttpStatusCode.Created);
        var firstId = referral.Subject.Reference["Patient/".Length..];
        var secondId = (await RegisterAsync(second, known)).Id;
        var strangerId = (await RegisterAsync(second, stranger)).Id;

        // Until now the second trust was given the store's number for the person: the first trust's id, and older than the
        // stranger's. Now no id is the store's number, and the two trusts' ids for one person differ.
        var number = (await StoreNumberAsync(known)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        Assert.NotEqual(number, firstId);
        Assert.NotEqual(number, secondId);
        Assert.NotEqual(firstId, secondId);
        Assert.NotEqual((await StoreNumberAsync(stranger)).ToString(System.Globalization.CultureInfo.InvariantCulture), strangerId);
        Assert.All(new[] { firstId, secondId, strangerId }, id => Assert.Matches("^[0-9a-f]{32}$", id));

        // Each trust's id is its own: it reads, searches and refers by it, and the other trust's (or the number) names nobody.
        Assert.Equal(secondId, (await FhirPartner.ParseAsync<Patient>(await second.GetAsync($"/fhir/Patient/{secondId}"))).Id);
        Assert.Equal(firstId, (await FhirPartner.ParseAsync<Patient>(await first.GetAsync($"/fhir/Patient/{firstId}"))).Id);
        await FhirPartner.ParseAsync<OperationOutcome>(await second.PostAsync("/fhir/ServiceRequest",
            FhirPayloads.Body(ReferralNaming(known, $"Patient/{firstId}").ToJsonString())), HttpStatusCode.UnprocessableEntity);
        var bySecondsId = await FhirPartner.ParseAsync<ServiceRequest>(await second.PostAsync("/fhir/ServiceRequest",
            FhirPayloads.Body(ReferralNaming(known, $"Patient/{secondId}").ToJsonString())), HttpStatusCode.Created);
        Assert.Equal($"Patient/{secondId}", bySecondsId.Subject.Reference);
        // Each trust now has a referral of the person, which its own id finds and no other id does.
        foreach (var (client, own, notItsOwn) in new[] { (second, secondId, firstId), (second, secondId, number), (first, firstId, secondId), (first, firstId, number) })
        {
            await FhirPartner.ParseAsync<OperationOutcome>(await client.GetAsync($"/fhir/Patient/{notItsOwn}"), HttpStatusCode.NotFound);
            await FhirPartner.ParseAsync<OperationOutcome>(await client.GetAsync($"/fhir/Patient/{notItsOwn}/_history"), HttpStatusCode.NotFound);
            foreach (var search in new[] { "ServiceRequest?patient=", "ServiceRequest?subject=", "Task?patient=" })
            {
                Assert.Single((await FhirPartner.ParseAsync<Bundle>(await client.GetAsync($"/fhir/{search}Patient/{own}"))).Entry);
                Assert.Empty((await FhirPartner.ParseAsync<Bundle>(await client.GetAsync($"/fhir/{search}Patient/{notItsOwn}"))).Entry);
            }
        }
        // Refusals name the person by the caller's id too: a second registration, and a person the caller may not read.
        using (var again = await second.PostAsync("/fhir/Patient", FhirPayloads.Body(FhirPayloads.Person(known).ToJsonString())))
        {
            var conflict = await again.Content.ReadAsStringAsync();
            Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
            Assert.Contains($"Patient/{secondId}", conflict, StringComparison.Ordinal);
            Assert.DoesNotContain($"Patient/{number}", conflict, StringComparison.Ordinal);
        }
        var onlyFirsts = await app.NewNhsNumberAsync();
        await FhirPartner.ParseAsync<ServiceRequest>(
            await first.PostAsync("/fhir/ServiceRequest", FhirPayloads.Body(FhirPayloads.ContainedReferral(onlyFirsts).ToJsonString())), HttpStatusCode.Created);
        var unreadable = await app.PatientIdAsync("RSM", await StoreNumberAsync(onlyFirsts));
        using (var notFound = await second.GetAsync($"/fhir/Patient/{unreadable}"))
        {
            Assert.Equal(HttpStatusCode.NotFound, notFound.StatusCode);
            Assert.DoesNotContain($"Patient/{await StoreNumberAsync(onlyFirsts)}", await notFound.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        // The same id every time, in every resource that names the person: the read, the Task, the search and the audit trail.
        Assert.Equal(firstId, (await FhirPartner.ParseAsync<Patient>(await first.GetAsync($"/fhir/Patient/{firstId}"))).Id);
        var task = (Hl7.Fhir.Model.Task)(await FhirPartner.ParseAsync<Bundle>(await first.GetAsync($"/fhir/Task?focus=ServiceRequest/{referral.Id}"))).Entry.Single().Resource;
        Assert.Equal($"Patient/{firstId}", task.For.Reference);
        var found = await FhirPartner.ParseAsync<Bundle>(await second.GetAsync($"/fhir/Patient?identifier={NhsSystem}|{known}"));
        Assert.Equal(secondId, found.Entry.Single().Resource.Id);
        var audit = await FhirPartner.ParseAsync<Bundle>(await second.GetAsync($"/fhir/AuditEvent?entity=Patient/{secondId}"));
        Assert.NotEmpty(audit.Entry);
        Assert.All(audit.Entry.Select(e => (AuditEvent)e.Resource), e =>
            Assert.Contains($"Patient/{secondId}", e.Entity.Select(entity => entity.What?.Reference)));
        Assert.Empty((await FhirPartner.ParseAsync<Bundle>(await second.GetAsync($"/fhir/AuditEvent?entity=Patient/{firstId}"))).Entry);
    }

    [Fact]
    public async Task AKeptVersion_NamesThePersonByTheReadersId_AndTheIdsOutliveARestart()
    {
        using var client = await app.PartnerAsync();
        var nhs = await app.NewNhsNumberAsync();
        var created = await FhirPartner.ParseAsync<ServiceRequest>(
            await client.PostAsync("/fhir/ServiceRequest", FhirPayloads.Body(FhirPayloads.ContainedReferral(nhs).ToJsonString())), HttpStatusCode.Created);
        var subject = created.Subject.Reference;

        // Cancelled: version 1 is superseded and kept, written in the store's own numbers, and served in the reader's ids.
        var cancel = JsonNode.Parse(await (await client.GetAsync($"/fhir/ServiceRequest/{created.Id}")).Content.ReadAsStringAsync())!.AsObject();
        cancel["status"] = "revoked";
        cancel["note"] = new JsonArray(new JsonObject { ["text"] = "No longer needed." });
        using var put = new HttpRequestMessage(HttpMethod.Put, $"/fhir/ServiceRequest/{created.Id}") { Content = FhirPayloads.Body(cancel.ToJsonString()) };
        put.Headers.TryAddWithoutValidation("If-Match", "W/\"1\"");
        await FhirPartner.ParseAsync<ServiceRequest>(await client.SendAsync(put));

        var history = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync($"/fhir/ServiceRequest/{created.Id}/_history"));
        Assert.Equal(["2", "1"], history.Entry.Select(e => e.Resource.Meta.VersionId));
        Assert.All(history.Entry, e => Assert.Equal(subject, ((ServiceRequest)e.Resource).Subject.Reference));
        Assert.Equal(subject, (await FhirPartner.ParseAsync<ServiceRequest>(await client.GetAsync($"/fhir/ServiceRequest/{created.Id}/_history/1"))).Subject.Reference);
        // Its triage task, closed with it: its kept version names the person as the current one does.
        var taskId = (await FhirPartner.ParseAsync<Bundle>(await client.GetAsync($"/fhir/Task?focus=ServiceRequest/{created.Id}"))).Entry.Single().Resource.Id;
        var taskHistory = await FhirPartner.ParseAsync<Bundle>(await client.GetAsync($"/fhir/Task/{taskId}/_history"));
        Assert.True(taskHistory.Entry.Count >= 2, $"the task kept {taskHistory.Entry.Count} version(s)");
        Assert.All(taskHistory.Entry, e => Assert.Equal(subject, ((Hl7.Fhir.Model.Task)e.Resource).For.Reference));

        // A node started afresh on the same store (or a second node beside this one) reads the same key: the same ids.
        using var restarted = new PatientIds(app.Services.GetRequiredService<Database>());
        await restarted.LoadAsync();
        await using var connection = await app.OpenAsync();
        var organisation = await connection.ExecuteScalarAsync<long>("SELECT organisation_id FROM referral WHERE id = @Id", new { Id = long.Parse(created.Id, System.Globalization.CultureInfo.InvariantCulture) });
        Assert.Equal(subject, restarted.For(organisation).Reference(await StoreNumberAsync(nhs)));
    }
}

public sealed class FhirPatientIdOnSqliteTests(AppFactory app) : FhirPatientIdTests(app), IClassFixture<AppFactory>;

public sealed class FhirPatientIdOnPostgresTests(PostgresAppFactory app) : FhirPatientIdTests(app), IClassFixture<PostgresAppFactory>;
