// Firely's model marks every element nullable; here a missing element fails the test just as an assert would.
#pragma warning disable CS8600, CS8602, CS8603, CS8604, CS8620, CS8629

using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using CareCoordination.Domain;
using CareCoordination.Features.Admin;
using CareCoordination.Features.BedBureau;
using CareCoordination.Features.Coordination;
using CareCoordination.Features.Fhir;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using CareCoordination.Tests.Support;
using Dapper;
using Hl7.Fhir.Model;
using FhirTask = Hl7.Fhir.Model.Task;
using Task = System.Threading.Tasks.Task;

namespace CareCoordination.Tests.Features.Fhir;

/// <summary>
/// vread and instance _history: every version a partner could have been shown reads back exactly as it was
/// shown, whichever command made it; nothing is kept for a command that was refused; and the read's rules
/// (who may see what) hold for every version.
/// </summary>
public abstract class FhirHistoryTests(AppFactory app)
{
    private DateOnly Today => LondonTime.Today(app.Clock);

    private async Task<(long ReferralId, long TaskId, string Nhs)> SubmitAsync(string user, string? nhs = null, Action<ReferralForm>? change = null)
    {
        nhs ??= await app.NewNhsNumberAsync();
        var form = ReferralForms.Discharge(Today, nhs);
        change?.Invoke(form);
        var sent = await app.SendAsync<SubmitReferral.Result>(
            new SubmitReferral.Command(form, Guid.NewGuid().ToString("N"), DuplicateAnswer: "new-need"), await app.StaffAsync(user));
        var referralId = sent.ReferralId!.Value;
        await using var connection = await app.OpenAsync();
        var taskId = await connection.ExecuteScalarAsync<long>("SELECT id FROM triage_task WHERE referral_id = @referralId", new { referralId });
        return (referralId, taskId, nhs);
    }

    private async Task<long> PersonOfAsync(long referralId)
    {
        await using var connection = await app.OpenAsync();
        return await connection.ExecuteScalarAsync<long>("SELECT person_id FROM referral WHERE id = @referralId", new { referralId });
    }

    /// <summary>The Patient a referral is for, as the client's organisation was given them: the subject of the ServiceRequest it reads.</summary>
    private static async Task<string> PatientOfAsync(HttpClient client, long referralId) =>
        (await GetAsync<ServiceRequest>(client, $"/fhir/ServiceRequest/{referralId}")).Resource.Subject.Reference;

    private async Task StaffAsync(Mediator.IMessage command, string user) => await app.SendAsync(command, await app.StaffAsync(user));

    private async Task<long> StoredVersionsAsync()
    {
        await using var connection = await app.OpenAsync();
        return await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM fhir_version");
    }

    private static async Task<(T Resource, string Body, HttpResponseMessage Response)> GetAsync<T>(HttpClient client, string url, HttpStatusCode status = HttpStatusCode.OK)
        where T : Resource
    {
        var response = await client.GetAsync(url);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"GET {url}: expected {(int)status}, got {(int)response.StatusCode}: {body}");
        Assert.Equal("application/fhir+json", response.Content.Headers.ContentType?.MediaType);
        return (JsonSerializer.Deserialize<T>(body, FhirMapping.Json)!, body, response);
    }

    private static async Task NotFoundAsync(HttpClient client, string url)
    {
        var (outcome, _, _) = await GetAsync<OperationOutcome>(client, url, HttpStatusCode.NotFound);
        Assert.Equal(OperationOutcome.IssueType.NotFound, outcome.Issue.Single().Code);
    }

    [Fact]
    public async Task EveryVersion_OfTheReferralAndItsTask_ReadsBackAsThePartnerWasShownIt()
    {
        using var client = await app.PartnerAsync();
        var (referralId, taskId, _) = await SubmitAsync("referrer");
        var shownReferral = new List<ServiceRequest>();
        var shownTask = new List<FhirTask>();
        async Task LookAsync()
        {
            shownReferral.Add((await GetAsync<ServiceRequest>(client, $"/fhir/ServiceRequest/{referralId}")).Resource);
            shownTask.Add((await GetAsync<FhirTask>(client, $"/fhir/Task/{taskId}")).Resource);
        }

        await LookAsync();
        await StaffAsync(new TakeReferral.Command(taskId), "coordinator");
        await LookAsync();
        await StaffAsync(new RequestInformation.Command(taskId, "Is a key safe fitted?"), "coordinator");
        await LookAsync();
        await StaffAsync(new AnswerInformationRequest.Command(referralId, "Yes, code with the daughter."), "referrer");
        await LookAsync();
        long service;
        await using (var connection = await app.OpenAsync())
        {
            service = await connection.ExecuteScalarAsync<long>("SELECT id FROM service WHERE name = 'Home First Reablement - Central'");
        }
        await StaffAsync(new AcceptIntoService.Command(taskId, service, Today.AddDays(1), OverrideFullService: true, OverrideReason: "test"), "coordinator");
        await LookAsync();

        // What the partner saw at each step: one new version of each per command.
        Assert.Equal(["1", "2", "3", "4", "5"], shownReferral.Select(r => r.Meta.VersionId));
        Assert.Equal(["1", "2", "3", "4", "5"], shownTask.Select(t => t.Meta.VersionId));
        Assert.Equal([RequestStatus.Active, RequestStatus.Active, RequestStatus.OnHold, RequestStatus.Active, RequestStatus.Active],
            shownReferral.Select(r => r.Status!.Value));
        Assert.Equal([FhirTask.TaskStatus.Requested, FhirTask.TaskStatus.InProgress, FhirTask.TaskStatus.OnHold, FhirTask.TaskStatus.InProgress, FhirTask.TaskStatus.Accepted],
            shownTask.Select(t => t.Status!.Value));

        // Every one of those versions, read again now, is exactly what was shown then.
        foreach (var shown in shownReferral)
        {
            var (vread, _, response) = await GetAsync<ServiceRequest>(client, $"/fhir/ServiceRequest/{referralId}/_history/{shown.Meta.VersionId}");
            Assert.True(shown.IsExactly(vread), $"version {shown.Meta.VersionId}: shown {FhirMapping.Serialize(shown)}\nvread {FhirMapping.Serialize(vread)}");
            Assert.Equal($"W/\"{shown.Meta.VersionId}\"", response.Headers.ETag?.ToString());
            Assert.Equal(shown.Meta.LastUpdated.Value.ToUnixTimeSeconds(), response.Content.Headers.LastModified?.ToUnixTimeSeconds());
        }
        foreach (var shown in shownTask)
        {
            var (vread, _, response) = await GetAsync<FhirTask>(client, $"/fhir/Task/{taskId}/_history/{shown.Meta.VersionId}");
            Assert.True(shown.IsExactly(vread), $"version {shown.Meta.VersionId}: shown {FhirMapping.Serialize(shown)}\nvread {FhirMapping.Serialize(vread)}");
            Assert.Equal($"W/\"{shown.Meta.VersionId}\"", response.Headers.ETag?.ToString());
        }

        // Read back from packed rows (issue 14: the store keeps each version once, Brotli-packed, not as JSON text).
        await using var audit = await app.OpenAsync();
        Assert.Equal(0, await audit.ExecuteScalarAsync<long>(
            "SELECT COUNT(*) FROM fhir_version WHERE resource_type = 'ServiceRequest' AND resource_id = @id AND (packed IS NULL OR resource IS NOT NULL)",
            new { id = referralId.ToString(System.Globalization.CultureInfo.InvariantCulture) }));

        // Audited like the read: the partner, the referral, its person.
        var audited = await audit.ExecuteScalarAsync<long>(
            "SELECT COUNT(*) FROM audit_event WHERE action = 'ServiceRequestHistory' AND actor_kind = 'partner' AND entity_type = 'referral' AND entity_id = @referralId AND person_id IS NOT NULL",
            new { referralId });
        Assert.Equal(5, audited);
    }

    [Fact]
    public async Task History_ListsEveryVersionNewestFirst_AndPagesWithNextLinks()
    {
        using var client = await app.PartnerAsync();
        var (referralId, taskId, _) = await SubmitAsync("referrer");
        await StaffAsync(new TakeReferral.Command(taskId), "coordinator");
        await StaffAsync(new RequestInformation.Command(taskId, "Does she have a key safe?"), "coordinator");
        await StaffAsync(new AnswerInformationRequest.Command(referralId, "No."), "referrer");

        var (history, _, _) = await GetAsync<Bundle>(client, $"/fhir/ServiceRequest/{referralId}/_history");

        Assert.Equal(Bundle.BundleType.History, history.Type);
        Assert.Equal(4, history.Total);
        Assert.Equal(["4", "3", "2", "1"], history.Entry.Select(e => e.Resource.Meta.VersionId));
        Assert.Equal([RequestStatus.Active, RequestStatus.OnHold, RequestStatus.Active, RequestStatus.Active],
            history.Entry.Select(e => ((ServiceRequest)e.Resource).Status!.Value));
        Assert.All(history.Entry, e => Assert.EndsWith($"/fhir/ServiceRequest/{referralId}", e.FullUrl, StringComparison.Ordinal));
        Assert.All(history.Entry, e => Assert.Equal($"W/\"{e.Resource.Meta.VersionId}\"", e.Response.Etag));
        Assert.All(history.Entry, e => Assert.Equal(e.Resource.Meta.LastUpdated, e.Response.LastModified));
        Assert.Equal([Bundle.HTTPVerb.PUT, Bundle.HTTPVerb.PUT, Bundle.HTTPVerb.PUT, Bundle.HTTPVerb.POST], history.Entry.Select(e => e.Request.Method!.Value));
        Assert.Equal([$"ServiceRequest/{referralId}", $"ServiceRequest/{referralId}", $"ServiceRequest/{referralId}", "ServiceRequest"],
            history.Entry.Select(e => e.Request.Url));
        Assert.Equal(["200 OK", "200 OK", "200 OK", "201 Created"], history.Entry.Select(e => e.Response.Status));
        Assert.DoesNotContain(history.Link, l => l.Relation == "next");

        var seen = new List<string>();
        var url = $"/fhir/ServiceRequest/{referralId}/_history?_count=3";
        var pages = 0;
        while (url is not null)
        {
            var (page, _, _) = await GetAsync<Bundle>(client, url);
            Assert.Equal(4, page.Total);
            Assert.InRange(page.Entry.Count, 1, 3);
            seen.AddRange(page.Entry.Select(e => e.Resource.Meta.VersionId));
            url = page.Link.SingleOrDefault(l => l.Relation == "next")?.Url;
            pages++;
        }
        Assert.Equal(2, pages);
        Assert.Equal(["4", "3", "2", "1"], seen);

        var tasks = (await GetAsync<Bundle>(client, $"/fhir/Task/{taskId}/_history?_count=1")).Resource;
        Assert.Equal((4, "4"), (tasks.Total, tasks.Entry.Single().Resource.Meta.VersionId));
        Assert.Contains(tasks.Link, l => l.Relation == "next");

        // Strict, like every search: _count and paging only.
        var (refused, _, _) = await GetAsync<OperationOutcome>(client, $"/fhir/ServiceRequest/{referralId}/_history?_since=2025-01-01", HttpStatusCode.BadRequest);
        Assert.Equal(OperationOutcome.IssueType.Invalid, refused.Issue.Single().Code);
    }

    [Fact]
    public async Task TheCurrentVersion_ByVread_IsTheRead()
    {
        using var client = await app.PartnerAsync();
        var (referralId, taskId, _) = await SubmitAsync("referrer");
        await StaffAsync(new TakeReferral.Command(taskId), "coordinator");
        var patient = await PatientOfAsync(client, referralId);

        foreach (var url in new[] { $"/fhir/ServiceRequest/{referralId}", $"/fhir/Task/{taskId}", $"/fhir/{patient}" })
        {
            var (read, readBody, readResponse) = await GetAsync<Resource>(client, url);
            var (_, vreadBody, vreadResponse) = await GetAsync<Resource>(client, $"{url}/_history/{read.Meta.VersionId}");
            Assert.Equal(readBody, vreadBody);
            Assert.Equal(readResponse.Headers.ETag, vreadResponse.Headers.ETag);
            Assert.Equal(readResponse.Content.Headers.LastModified, vreadResponse.Content.Headers.LastModified);
        }
    }

    /// <summary>Issue 14: the store keeps a version only once it is superseded; the current one is the live row's.</summary>
    [Fact]
    public async Task TheCurrentVersion_IsNotStored_YetVreadAndHistoryAnswerIt_AndIsKeptOnceSuperseded()
    {
        using var client = await app.PartnerAsync();
        var (referralId, taskId, _) = await SubmitAsync("referrer");
        var personId = await PersonOfAsync(referralId);
        var patient = await PatientOfAsync(client, referralId);
        async Task<List<(string, string, int)>> StoredAsync()
        {
            await using var connection = await app.OpenAsync();
            return [.. await connection.QueryAsync<(string, string, int)>(
                """
                SELECT resource_type, resource_id, version FROM fhir_version
                WHERE (resource_type = 'ServiceRequest' AND resource_id = @referral) OR (resource_type = 'Task' AND resource_id = @task)
                   OR (resource_type = 'Patient' AND resource_id = @person)
                ORDER BY resource_type, version
                """, new { referral = referralId.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    task = taskId.ToString(System.Globalization.CultureInfo.InvariantCulture), person = personId.ToString(System.Globalization.CultureInfo.InvariantCulture) })];
        }
        var urls = new[] { $"/fhir/ServiceRequest/{referralId}", $"/fhir/Task/{taskId}", $"/fhir/{patient}" };
        var shown = new List<Resource>();

        // The submission made version 1 of each, and its live rows say exactly that: nothing is stored beside them.
        Assert.Empty(await StoredAsync());
        foreach (var url in urls)
        {
            var (read, readBody, readResponse) = await GetAsync<Resource>(client, url);
            shown.Add(read);
            var (_, vreadBody, vreadResponse) = await GetAsync<Resource>(client, $"{url}/_history/1");
            Assert.Equal(readBody, vreadBody);
            Assert.Equal(readResponse.Headers.ETag, vreadResponse.Headers.ETag);
            Assert.Equal(readResponse.Content.Headers.LastModified, vreadResponse.Content.Headers.LastModified);
            var (history, _, _) = await GetAsync<Bundle>(client, $"{url}/_history");
            var entry = Assert.Single(history.Entry);
            Assert.Equal(1, history.Total);
            Assert.True(read.IsExactly(entry.Resource), $"{url}: read {readBody}\nhistory {FhirMapping.Serialize(entry.Resource)}");
            Assert.Equal(("W/\"1\"", "201 Created", read.Meta.LastUpdated), (entry.Response.Etag, entry.Response.Status, entry.Response.LastModified));
        }

        // Taking the referral moves the referral and its task on: version 1 of each is kept as it was shown, version 2 is not.
        await StaffAsync(new TakeReferral.Command(taskId), "coordinator");
        Assert.Equal([("ServiceRequest", referralId.ToString(System.Globalization.CultureInfo.InvariantCulture), 1),
            ("Task", taskId.ToString(System.Globalization.CultureInfo.InvariantCulture), 1)], await StoredAsync());
        for (var i = 0; i < 2; i++)
        {
            var (vread, _, _) = await GetAsync<Resource>(client, $"{urls[i]}/_history/1");
            Assert.True(shown[i].IsExactly(vread), $"{urls[i]}/_history/1: shown {FhirMapping.Serialize(shown[i])}\nvread {FhirMapping.Serialize(vread)}");
            Assert.Equal(["2", "1"], (await GetAsync<Bundle>(client, $"{urls[i]}/_history")).Resource.Entry.Select(e => e.Resource.Meta.VersionId));
        }
    }

    [Fact]
    public async Task AVersionThatNeverExisted_IsNotFound()
    {
        using var client = await app.PartnerAsync();
        var (referralId, taskId, _) = await SubmitAsync("referrer");

        await NotFoundAsync(client, $"/fhir/ServiceRequest/{referralId}/_history/2");
        await NotFoundAsync(client, $"/fhir/ServiceRequest/{referralId}/_history/0");
        await NotFoundAsync(client, $"/fhir/ServiceRequest/{referralId}/_history/-1");
        await NotFoundAsync(client, $"/fhir/ServiceRequest/{referralId}/_history/one");
        await NotFoundAsync(client, $"/fhir/ServiceRequest/{referralId}/_history/99999999999");
        await NotFoundAsync(client, $"/fhir/Task/{taskId}/_history/7");
        await NotFoundAsync(client, "/fhir/ServiceRequest/999999999/_history/1");
        await NotFoundAsync(client, "/fhir/ServiceRequest/999999999/_history");
        await GetAsync<ServiceRequest>(client, $"/fhir/ServiceRequest/{referralId}/_history/1");
    }

    [Fact]
    public async Task AnotherOrganisationsReferral_ItsTaskAndItsPerson_AreNotFound_InAnyVersion()
    {
        var (referralId, taskId, _) = await SubmitAsync("gareth.evans");
        await StaffAsync(new TakeReferral.Command(taskId), "coordinator");
        var personId = await PersonOfAsync(referralId);
        using var client = await app.PartnerAsync();
        // The id this client's organisation would be given for the person, were it theirs to read.
        var patient = await app.PatientIdAsync("RWM", personId);

        foreach (var url in new[] { $"/fhir/ServiceRequest/{referralId}", $"/fhir/Task/{taskId}", $"/fhir/Patient/{patient}" })
        {
            await NotFoundAsync(client, url + "/_history/1");
            await NotFoundAsync(client, url + "/_history/2");
            await NotFoundAsync(client, url + "/_history");
        }
        // Their own organisation's staff see them, as they see the read.
        var referrer = await app.StaffAsync("gareth.evans");
        var mine = await app.SendAsync<Page<Resource>>(new ServiceRequestHistory.Query(referralId, null, 10, 0), referrer);
        Assert.Equal(["2", "1"], mine.Items.Select(r => r.Meta.VersionId));
        // And the scope is the read's: a token for Task only may not read a ServiceRequest's versions.
        using var taskOnly = await app.PartnerAsync("system/Task.rs");
        var (mineAgain, _, _) = await GetAsync<OperationOutcome>(taskOnly, $"/fhir/ServiceRequest/{referralId}/_history", HttpStatusCode.Forbidden);
        Assert.Equal(OperationOutcome.IssueType.Forbidden, mineAgain.Issue.Single().Code);
    }

    [Fact]
    public async Task ARefusedCommand_KeepsNoVersion()
    {
        using var client = await app.PartnerAsync();
        var (referralId, taskId, _) = await SubmitAsync("referrer");
        await StaffAsync(new TakeReferral.Command(taskId), "coordinator");
        var before = await StoredVersionsAsync();

        // A second coordinator too late, an illegal move, and a partner's stale If-Match: each refused.
        await Assert.ThrowsAsync<Conflict>(() => StaffAsync(new TakeReferral.Command(taskId), "jo.nankivell"));
        await Assert.ThrowsAsync<RuleBroken>(() => StaffAsync(new AnswerInformationRequest.Command(referralId, "Nobody asked."), "referrer"));
        var (current, _, _) = await GetAsync<ServiceRequest>(client, $"/fhir/ServiceRequest/{referralId}");
        current.Status = RequestStatus.Revoked;
        current.Note.Add(new Annotation { Text = "No longer needed." });
        using var put = new HttpRequestMessage(HttpMethod.Put, $"/fhir/ServiceRequest/{referralId}")
        {
            Content = new StringContent(FhirMapping.Serialize(current), Encoding.UTF8, "application/fhir+json"),
        };
        put.Headers.TryAddWithoutValidation("If-Match", "W/\"1\"");
        Assert.Equal(HttpStatusCode.PreconditionFailed, (await client.SendAsync(put)).StatusCode);

        Assert.Equal(before, await StoredVersionsAsync());
        await NotFoundAsync(client, $"/fhir/ServiceRequest/{referralId}/_history/3");
        Assert.Equal(2, (await GetAsync<Bundle>(client, $"/fhir/ServiceRequest/{referralId}/_history")).Resource.Total);
    }

    [Fact]
    public async Task ATransactionWithOneBadEntry_KeepsNoVersionOfTheEntriesBeforeIt()
    {
        using var client = await app.PartnerAsync();
        var before = await StoredVersionsAsync();
        var bundle = new Bundle { Type = Bundle.BundleType.Transaction };
        var good = ReferralEntries(ReferralForms.NewNhsNumber(), "urn:uuid:7c0b8a52-35d4-4d7e-9a39-2d8a4b1f0c01");
        // A check digit that is wrong: the second referral is refused after the first was written, in the same transaction.
        var bad = ReferralEntries("9434765918", "urn:uuid:7c0b8a52-35d4-4d7e-9a39-2d8a4b1f0c02");
        bundle.Entry.AddRange([.. good, .. bad]);

        var response = await client.PostAsync("/fhir", new StringContent(FhirMapping.Serialize(bundle), Encoding.UTF8, "application/fhir+json"));

        Assert.Equal((HttpStatusCode)422, response.StatusCode);
        Assert.Equal(before, await StoredVersionsAsync());
    }

    [Fact]
    public async Task APartnersCreateAndCancel_AreVersionsOneAndTwo_WithTheCreatesLocationReadable()
    {
        using var client = await app.PartnerAsync();
        var bundle = new Bundle { Type = Bundle.BundleType.Transaction };
        bundle.Entry.AddRange(ReferralEntries(await app.NewNhsNumberAsync(), "urn:uuid:2f9d7e31-0c6b-4b0e-8e55-6a1d3c9b7f10"));
        var reply = (await GetReplyAsync(client, bundle)).Entry[1];
        var created = (ServiceRequest)reply.Resource;

        var (atLocation, _, _) = await GetAsync<ServiceRequest>(client, "/fhir/" + reply.Response.Location);
        Assert.True(created.IsExactly(atLocation));
        created.Status = RequestStatus.Revoked;
        created.Note.Add(new Annotation { Text = "Went home with family instead." });
        using var put = new HttpRequestMessage(HttpMethod.Put, $"/fhir/ServiceRequest/{created.Id}")
        {
            Content = new StringContent(FhirMapping.Serialize(created), Encoding.UTF8, "application/fhir+json"),
        };
        put.Headers.TryAddWithoutValidation("If-Match", "W/\"1\"");
        Assert.Equal(HttpStatusCode.OK, (await client.SendAsync(put)).StatusCode);

        var (history, _, _) = await GetAsync<Bundle>(client, $"/fhir/ServiceRequest/{created.Id}/_history");
        Assert.Equal([(RequestStatus.Revoked, "2"), (RequestStatus.Active, "1")],
            history.Entry.Select(e => (((ServiceRequest)e.Resource).Status!.Value, e.Resource.Meta.VersionId)));
        Assert.True(atLocation.IsExactly(history.Entry[1].Resource));
        // The task was cancelled with it: its versions tell the same story.
        var taskId = (await GetAsync<Bundle>(client, $"/fhir/Task?focus=ServiceRequest/{created.Id}")).Resource.Entry.Single().Resource.Id;
        var (tasks, _, _) = await GetAsync<Bundle>(client, $"/fhir/Task/{taskId}/_history");
        Assert.Equal([FhirTask.TaskStatus.Cancelled, FhirTask.TaskStatus.Requested], tasks.Entry.Select(e => ((FhirTask)e.Resource).Status!.Value));
    }

    [Fact]
    public async Task ThePersonsVersions_FollowTheReferralsThatUpdateThem()
    {
        using var client = await app.PartnerAsync();
        var (firstReferral, _, nhs) = await SubmitAsync("referrer");
        await SubmitAsync("referrer", nhs, form => form.AddressLine = "7 Quay Street");
        var patient = await PatientOfAsync(client, firstReferral);

        var (history, _, _) = await GetAsync<Bundle>(client, $"/fhir/{patient}/_history");

        Assert.Equal(["2", "1"], history.Entry.Select(e => e.Resource.Meta.VersionId));
        Assert.Equal("7 Quay Street", ((Patient)history.Entry[0].Resource).Address.Single().Line.Single());
        Assert.NotEqual("7 Quay Street", ((Patient)history.Entry[1].Resource).Address.Single().Line.Single());
        var (first, _, _) = await GetAsync<Patient>(client, $"/fhir/{patient}/_history/1");
        Assert.True(first.IsExactly(history.Entry[1].Resource));
    }

    // What two trusts said about one person: Westmoor General (the demo referrer and partner) and Saltmouth and Coast.
    private static void AsWestmoorSaidIt(ReferralForm form)
    {
        form.AddressLine = "4 Chapel Row, Ashbury";
        form.CarerContact = "07700 900123";
        form.Ethnicity = "A";
    }

    private static void AsSaltmouthSaidIt(ReferralForm form)
    {
        form.AddressLine = "3 Harbour View, Saltmouth";
        form.Postcode = "WM8 2QB";
        form.CarerContact = "07700 900456";
        form.Ethnicity = "H";
    }

    private static readonly string[] WestmoorsWords = ["Chapel Row", "Fore Street", "07700 900123", "White: British"];

    private static readonly string[] SaltmouthsWords = ["Harbour View", "07700 900456", "Indian"];

    private static void SaysNothingOf(string body, string[] words)
    {
        foreach (var word in words)
        {
            Assert.DoesNotContain(word, body, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task APersonReferredByTwoTrusts_EachTrustReadsOnlyTheVersionsItsOwnReferralsWrote_NumberedWithoutGaps()
    {
        var (first, _, nhs) = await SubmitAsync("referrer", change: AsWestmoorSaidIt);
        var (saltmouths, _, _) = await SubmitAsync("gareth.evans", nhs, AsSaltmouthSaidIt);
        await SubmitAsync("referrer", nhs, form =>
        {
            AsWestmoorSaidIt(form);
            form.AddressLine = "9 Fore Street, Ashbury";
        });
        var personId = await PersonOfAsync(first);
        var (saltmouth, _) = await app.OtherPartnerAsync("RSM");
        using var westmoor = await app.PartnerAsync();
        // Each trust's own id for the person: the subject of its own referral.
        var theirs = await PatientOfAsync(saltmouth, saltmouths);
        var ours = await PatientOfAsync(westmoor, first);

        // Saltmouth: what it said, as its own version 1, by read, search, history and vread, though the store's record was at
        // its version 2 by then: a 2 would tell Saltmouth that another trust knows the person. Westmoor's versions are not found.
        var (read, readBody, readResponse) = await GetAsync<Patient>(saltmouth, $"/fhir/{theirs}");
        Assert.Equal(("1", "3 Harbour View, Saltmouth", "07700 900456"), (read.Meta.VersionId, read.Address.Single().Line.Single(), read.Contact.Single().Telecom.Single().Value));
        Assert.Equal("W/\"1\"", readResponse.Headers.ETag?.ToString());
        var (search, searchBody, _) = await GetAsync<Bundle>(saltmouth, $"/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}");
        Assert.True(read.IsExactly(search.Entry.Single().Resource));
        var (history, historyBody, _) = await GetAsync<Bundle>(saltmouth, $"/fhir/{theirs}/_history");
        Assert.Equal(1, history.Total);
        Assert.Equal(["1"], history.Entry.Select(e => e.Resource.Meta.VersionId));
        var (vread, vreadBody, _) = await GetAsync<Patient>(saltmouth, $"/fhir/{theirs}/_history/1");
        Assert.True(read.IsExactly(vread));
        await NotFoundAsync(saltmouth, $"/fhir/{theirs}/_history/2");
        await NotFoundAsync(saltmouth, $"/fhir/{theirs}/_history/3");
        foreach (var body in new[] { readBody, searchBody, historyBody, vreadBody })
        {
            SaysNothingOf(body, WestmoorsWords);
        }
        // Its referrer on the staff side reads the same through the same messages.
        var gareth = await app.StaffAsync("gareth.evans");
        var staffHistory = await app.SendAsync<Page<Resource>>(new PatientHistory.Query(personId, null, 10, 0), gareth);
        Assert.Equal(["1"], staffHistory.Items.Select(r => r.Meta.VersionId));
        SaysNothingOf(FhirMapping.Serialize(staffHistory.Items.Single()), WestmoorsWords);
        await Assert.ThrowsAsync<NotFound>(() => app.SendAsync<Page<Resource>>(new PatientHistory.Query(personId, 2, 1, 0), gareth));

        // Westmoor: its own two versions, 2 and 1, with no gap where Saltmouth's referral came between them.
        var (ourHistory, oursBody, _) = await GetAsync<Bundle>(westmoor, $"/fhir/{ours}/_history");
        Assert.Equal(["2", "1"], ourHistory.Entry.Select(e => e.Resource.Meta.VersionId));
        Assert.Equal(["9 Fore Street, Ashbury", "4 Chapel Row, Ashbury"], ourHistory.Entry.Select(e => ((Patient)e.Resource).Address.Single().Line.Single()));
        Assert.Equal("9 Fore Street, Ashbury", (await GetAsync<Patient>(westmoor, $"/fhir/{ours}/_history/2")).Resource.Address.Single().Line.Single());
        await NotFoundAsync(westmoor, $"/fhir/{ours}/_history/3");
        SaysNothingOf(oursBody, SaltmouthsWords);
        SaysNothingOf((await GetAsync<Patient>(westmoor, $"/fhir/{ours}")).Body, SaltmouthsWords);

        // The coordination centre keeps the whole record: every version, whoever wrote it.
        var everything = await app.SendAsync<Page<Resource>>(new PatientHistory.Query(personId, null, 10, 0), await app.StaffAsync("coordinator"));
        Assert.Equal(["3", "2", "1"], everything.Items.Select(r => r.Meta.VersionId));
        Assert.Equal("3 Harbour View, Saltmouth", ((Patient)everything.Items[1]).Address.Single().Line.Single());
    }

    [Fact]
    public async Task APartnerThatRegistersAPersonAnotherTrustReferred_ThenRefersThem_ReadsItsOwnVersions1And2()
    {
        // Saltmouth refers the person twice: the store's record is at its version 2 before Westmoor says anything.
        var (first, _, nhs) = await SubmitAsync("gareth.evans", change: AsSaltmouthSaidIt);
        await SubmitAsync("gareth.evans", nhs, AsSaltmouthSaidIt);
        var personId = await PersonOfAsync(first);
        using var westmoor = await app.PartnerAsync();
        string patient;
        using (var registered = await westmoor.PostAsync("/fhir/Patient", FhirPayloads.Body(FhirPayloads.Person(nhs).ToJsonString())))
        {
            Assert.Equal(HttpStatusCode.Created, registered.StatusCode);
            // The person Saltmouth referred, by Westmoor's own id for them: the registration's answer.
            var created = JsonSerializer.Deserialize<Patient>(await registered.Content.ReadAsStringAsync(), FhirMapping.Json)!;
            Assert.Equal(await app.PatientIdAsync("RWM", personId), created.Id);
            patient = $"Patient/{created.Id}";
            Assert.EndsWith($"/fhir/{patient}/_history/1", registered.Headers.Location!.ToString(), StringComparison.Ordinal);
        }
        // Then Westmoor's referral: the store's version 3, Westmoor's 2.
        await SubmitAsync("referrer", nhs, AsWestmoorSaidIt);

        var (read, _, response) = await GetAsync<Patient>(westmoor, $"/fhir/{patient}");
        Assert.Equal(("2", "4 Chapel Row, Ashbury"), (read.Meta.VersionId, read.Address.Single().Line.Single()));
        Assert.Equal("W/\"2\"", response.Headers.ETag?.ToString());
        var (history, body, _) = await GetAsync<Bundle>(westmoor, $"/fhir/{patient}/_history");
        Assert.Equal(["2", "1"], history.Entry.Select(e => e.Resource.Meta.VersionId));
        Assert.True(read.IsExactly(history.Entry[0].Resource));
        var (registration, _, _) = await GetAsync<Patient>(westmoor, $"/fhir/{patient}/_history/1");
        Assert.True(registration.IsExactly(history.Entry[1].Resource));
        await NotFoundAsync(westmoor, $"/fhir/{patient}/_history/3");
        // Not Saltmouth's address or ethnic category (its carer's telephone is the example registration's too).
        SaysNothingOf(body, ["Harbour View", "Indian"]);
    }

    [Fact]
    public async Task AReferralAfterOnesSentBeforeVersionsWereKept_IsItsOrganisationsVersion1()
    {
        var (earlier, _, nhs) = await SubmitAsync("referrer");
        await using (var connection = await app.OpenAsync())
        {
            // As the upgrade leaves an earlier referral: no version kept with what it said.
            await connection.ExecuteAsync("UPDATE referral_person SET person_version = NULL WHERE referral_id = @earlier", new { earlier });
        }
        await SubmitAsync("referrer", nhs, form => form.AddressLine = "7 Quay Street");
        using var client = await app.PartnerAsync();
        var patient = await PatientOfAsync(client, earlier);

        // The store's record is at its version 2; the first version this organisation has is the new referral's.
        var (read, _, _) = await GetAsync<Patient>(client, $"/fhir/{patient}");
        Assert.Equal(("1", "7 Quay Street"), (read.Meta.VersionId, read.Address.Single().Line.Single()));
        var (history, _, _) = await GetAsync<Bundle>(client, $"/fhir/{patient}/_history");
        Assert.Equal(["1"], history.Entry.Select(e => e.Resource.Meta.VersionId));
    }

    [Fact]
    public async Task APersonKnownOnlyFromAReferralSentBeforeVersionsWereKept_IsReadWithoutAVersionOrHistory()
    {
        var (referralId, _, _) = await SubmitAsync("referrer");
        await using (var connection = await app.OpenAsync())
        {
            // As the upgrade leaves an earlier referral: who the person is, and nothing else it said.
            await connection.ExecuteAsync(
                "UPDATE referral_person SET person_version = NULL, address_line = NULL, postcode = NULL, carer_name = NULL, carer_contact = NULL WHERE referral_id = @referralId",
                new { referralId });
        }
        using var client = await app.PartnerAsync();
        var patient = await PatientOfAsync(client, referralId);

        var (read, _, response) = await GetAsync<Patient>(client, $"/fhir/{patient}");

        Assert.Null(read.Meta.VersionId);
        Assert.Null(response.Headers.ETag);
        Assert.Equal("Trelawny", read.Name.Single().Family);
        Assert.Empty(read.Address);
        Assert.Empty(read.Contact);
        await NotFoundAsync(client, $"/fhir/{patient}/_history");
        await NotFoundAsync(client, $"/fhir/{patient}/_history/1");
    }

    [Fact]
    public async Task ABedsVersions_AreKeptFromItsFirstChange_TheSeededOneAsItWasServed()
    {
        using var client = await app.PartnerAsync();
        long bedId, siteId;
        int seeded;
        await using (var connection = await app.OpenAsync())
        {
            // A bed of an open site: one of a site another test closed has a version more.
            bedId = await connection.ExecuteScalarAsync<long>(
                "SELECT MAX(b.id) FROM bed b JOIN ward w ON w.id = b.ward_id JOIN site s ON s.id = w.site_id WHERE b.status = 'available' AND s.active");
            seeded = await connection.ExecuteScalarAsync<int>("SELECT version FROM bed WHERE id = @bedId", new { bedId });
            siteId = await connection.ExecuteScalarAsync<long>("SELECT MIN(id) FROM site");
        }
        var url = $"/fhir/Location/bed-{bedId}";
        // The seeded bed: only its current version, from the live row.
        var (asSeeded, _, _) = await GetAsync<Bundle>(client, url + "/_history");
        Assert.Equal(seeded.ToString(), asSeeded.Entry.Single().Resource.Meta.VersionId);

        await StaffAsync(new ChangeBedState.Command(bedId, ChangeBedState.Move.Close, "staffing"), "bedbureau");
        await StaffAsync(new ChangeBedState.Command(bedId, ChangeBedState.Move.Reopen), "bedbureau");

        var (history, _, _) = await GetAsync<Bundle>(client, url + "/_history");
        Assert.Equal([(seeded + 2).ToString(), (seeded + 1).ToString(), seeded.ToString()], history.Entry.Select(e => e.Resource.Meta.VersionId));
        Assert.Equal(["U", "C", "U"], history.Entry.Select(e => ((Location)e.Resource).OperationalStatus.Code));
        Assert.Equal("C", (await GetAsync<Location>(client, $"{url}/_history/{seeded + 1}")).Resource.OperationalStatus.Code);
        // The seed's version was kept when the first change superseded it, as it was served then.
        Assert.True(asSeeded.Entry.Single().Resource.IsExactly((await GetAsync<Location>(client, $"{url}/_history/{seeded}")).Resource));
        // The versions before it were superseded without a command (the seed wrote its rows directly): honestly not found.
        if (seeded > 1)
        {
            await NotFoundAsync(client, $"{url}/_history/{seeded - 1}");
        }
        // Sites and wards have no versions at all.
        await GetAsync<Location>(client, $"/fhir/Location/site-{siteId}");
        await NotFoundAsync(client, $"/fhir/Location/site-{siteId}/_history");
    }

    /// <summary>A site closing turns each of its beds' Locations inactive: a new version of each, the open one kept as it was served.</summary>
    [Fact]
    public async Task ASiteClosing_GivesEachOfItsBedsLocations_ANewVersion_TheOpenOneKept()
    {
        using var client = await app.PartnerAsync();
        long provider;
        await using (var connection = await app.OpenAsync())
        {
            provider = await connection.ExecuteScalarAsync<long>(
                "SELECT s.organisation_id FROM site s JOIN organisation o ON o.id = s.organisation_id WHERE o.caution = 'none' AND s.active ORDER BY s.id LIMIT 1");
        }
        var admin = await app.StaffAsync("admin");
        var siteId = await app.SendAsync<long>(new AddSite.Command("Closing House " + Guid.NewGuid().ToString("N")[..6], "care-home", "Ashbury", "wm2 6xy", provider), admin);
        var wardId = await app.SendAsync<long>(new AddWard.Command(siteId, "Larch"), admin);
        var beds = await app.SendAsync<IReadOnlyList<long>>(new AddBeds.Command(wardId, 2, "CH", "rehabilitation", "any", SingleRoom: false), admin);
        var urls = beds.Select(bed => $"/fhir/Location/bed-{bed}").ToList();
        var open = new List<Location>();
        foreach (var url in urls)
        {
            open.Add((await GetAsync<Location>(client, url)).Resource);
        }
        Assert.All(open, location => Assert.Equal(Location.LocationStatus.Active, location.Status));
        app.Clock.Advance(TimeSpan.FromMinutes(1));

        await app.SendAsync(new DeactivateSite.Command(siteId, "Provider left the framework."), admin);

        for (var i = 0; i < urls.Count; i++)
        {
            var closed = (await GetAsync<Location>(client, urls[i])).Resource;
            Assert.Equal(Location.LocationStatus.Inactive, closed.Status);
            Assert.Equal((int.Parse(open[i].Meta.VersionId, CultureInfo.InvariantCulture) + 1).ToString(CultureInfo.InvariantCulture), closed.Meta.VersionId);
            Assert.True(closed.Meta.LastUpdated > open[i].Meta.LastUpdated);
            Assert.True(open[i].IsExactly((await GetAsync<Location>(client, $"{urls[i]}/_history/{open[i].Meta.VersionId}")).Resource));
            Assert.Equal([closed.Meta.VersionId, open[i].Meta.VersionId],
                (await GetAsync<Bundle>(client, $"{urls[i]}/_history")).Resource.Entry.Select(e => e.Resource.Meta.VersionId));
        }
    }

    [Fact]
    public async Task Metadata_StatesVreadAndHistory_ForTheVersionedTypes()
    {
        using var client = app.CreateClient();

        var (capability, _, _) = await GetAsync<CapabilityStatement>(client, "/fhir/metadata");

        foreach (var resource in capability.Rest.Single().Resource)
        {
            var versioned = resource.Type is "ServiceRequest" or "Task" or "Patient" or "Location";
            var codes = resource.Interaction.Select(i => i.Code!.Value).ToList();
            Assert.Equal(versioned, codes.Contains(CapabilityStatement.TypeRestfulInteraction.Vread));
            Assert.Equal(versioned, codes.Contains(CapabilityStatement.TypeRestfulInteraction.HistoryInstance));
            Assert.Equal(versioned, resource.ReadHistory == true);
            Assert.DoesNotContain(CapabilityStatement.TypeRestfulInteraction.HistoryType, codes);
            if (versioned)
            {
                Assert.Equal(CapabilityStatement.ResourceVersionPolicy.Versioned, resource.Versioning);
            }
        }
        Assert.Equal(CapabilityStatement.ResourceVersionPolicy.NoVersion, capability.Rest.Single().Resource.Single(r => r.Type == "MeasureReport").Versioning);
    }

    private static async Task<Bundle> GetReplyAsync(HttpClient client, Bundle transaction)
    {
        var response = await client.PostAsync("/fhir", new StringContent(FhirMapping.Serialize(transaction), Encoding.UTF8, "application/fhir+json"));
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, body);
        return JsonSerializer.Deserialize<Bundle>(body, FhirMapping.Json);
    }

    /// <summary>A Patient and a referral for them, as transaction entries.</summary>
    private Bundle.EntryComponent[] ReferralEntries(string nhs, string patientUrn)
    {
        const string canonical = "https://carecoordination.example.org/fhir";
        var patient = new Patient
        {
            Identifier = [new Identifier("https://fhir.nhs.uk/Id/nhs-number", nhs.Replace(" ", "", StringComparison.Ordinal))],
            Name = [new HumanName { Use = HumanName.NameUse.Official, Family = "Penrose", Given = ["Jenifer"] }],
            Gender = AdministrativeGender.Female,
            BirthDate = "1938-11-02",
            Address = [new Address { Use = Address.AddressUse.Home, Line = ["4 Chapel Row"], PostalCode = "WM1 4QT" }],
        };
        var referral = new ServiceRequest
        {
            Identifier = [new Identifier("https://fhir.westmoor-general.nhs.uk/Id/referral", "H-" + Guid.NewGuid().ToString("N"))],
            Status = RequestStatus.Active,
            Intent = RequestIntent.Order,
            Code = new CodeableConcept($"{canonical}/CodeSystem/discharge-pathway", "1"),
            Priority = RequestPriority.Routine,
            Subject = new ResourceReference(patientUrn),
            Requester = new ResourceReference { Identifier = new Identifier("https://fhir.nhs.uk/Id/ods-organization-code", "RWM") },
            Occurrence = new FhirDateTime(Today.AddDays(2).ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture)),
            OrderDetail = [new CodeableConcept($"{canonical}/CodeSystem/need", "dressing")],
            Note = [new Annotation { Text = "Home with a package of care after a fall; needs help with dressing." }],
            Extension =
            [
                new Extension($"{canonical}/StructureDefinition/referral-source", new Coding($"{canonical}/CodeSystem/referral-source", "acute-hospital")),
                new Extension
                {
                    Url = $"{canonical}/StructureDefinition/hospital-stay",
                    Extension =
                    [
                        new Extension("ward", new FhirString("Ward 2")),
                        new Extension("medicallyOptimised", new Date(Today.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture))),
                    ],
                },
                new Extension
                {
                    Url = $"{canonical}/StructureDefinition/consent-to-share",
                    Extension = [new Extension("shared", new FhirBoolean(true)), new Extension("givenBy", new FhirString("Jenifer Penrose"))],
                },
                new Extension
                {
                    Url = $"{canonical}/StructureDefinition/what-matters",
                    Extension = [new Extension("personWishes", new FhirString("To be home for her grandson's visits."))],
                },
            ],
        };
        return
        [
            new Bundle.EntryComponent
            {
                FullUrl = patientUrn,
                Resource = patient,
                Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.POST, Url = "Patient" },
            },
            new Bundle.EntryComponent
            {
                Resource = referral,
                Request = new Bundle.RequestComponent { Method = Bundle.HTTPVerb.POST, Url = "ServiceRequest" },
            },
        ];
    }
}

public sealed class FhirHistoryOnSqliteTests(AppFactory app) : FhirHistoryTests(app), IClassFixture<AppFactory>;

public sealed class FhirHistoryOnPostgresTests(PostgresAppFactory app) : FhirHistoryTests(app), IClassFixture<PostgresAppFactory>;
