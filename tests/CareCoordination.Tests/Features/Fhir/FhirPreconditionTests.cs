// Firely's model marks every element nullable; here a missing element fails the test just as an assert would.
#pragma warning disable CS8600, CS8602, CS8604

using System.Net;
using System.Text.Json.Nodes;
using CareCoordination.Tests.Support;
using Dapper;
using Hl7.Fhir.Model;
using Task = System.Threading.Tasks.Task;

namespace CareCoordination.Tests.Features.Fhir;

/// <summary>
/// Preconditions first, as FHIR servers check them: a stale If-Match is 412 whatever the body says, on every path an
/// update comes by, and an If-None-Exist that finds the resource answers it (200) before the body is held to any rule.
/// </summary>
public abstract class FhirPreconditionTests(AppFactory app)
{
    private const string Stale = "7";

    /// <summary>A referral of the demo partner's, made new: its id and the JSON it was read back as.</summary>
    private Task<(string Id, JsonObject Read)> ReferralAsync(HttpClient client) => ReferralAsync(app, client);

    internal static async Task<(string Id, JsonObject Read)> ReferralAsync(AppFactory app, HttpClient client)
    {
        using var created = await client.PostAsync("/fhir/ServiceRequest",
            FhirPayloads.Body(FhirPayloads.ContainedReferral(await app.NewNhsNumberAsync()).ToJsonString()));
        var referral = await FhirPartner.ParseAsync<ServiceRequest>(created, HttpStatusCode.Created);
        var read = await client.GetAsync($"/fhir/ServiceRequest/{referral.Id}");
        return (referral.Id!, JsonNode.Parse(await read.Content.ReadAsStringAsync())!.AsObject());
    }

    /// <summary>Updates that each break a rule of their own: not a cancellation; a cancellation that says no why; another referral's id.</summary>
    private static IEnumerable<(string Why, JsonObject Body)> Broken(JsonObject read)
    {
        var onHold = read.DeepClone().AsObject();
        onHold["status"] = "on-hold";
        yield return ("not a cancellation", onHold);
        var noWhy = read.DeepClone().AsObject();
        noWhy["status"] = "revoked";
        noWhy.Remove("note");
        yield return ("a cancellation without a reason", noWhy);
        var otherId = read.DeepClone().AsObject();
        otherId["id"] = "999999999";
        otherId["status"] = "revoked";
        yield return ("another referral's id", otherId);
    }

    /// <summary>A transaction or batch of one entry: PUT ServiceRequest/{id} with this body, and this ifMatch if any.</summary>
    private static JsonObject PutBundle(string type, string id, JsonObject body, string? ifMatch)
    {
        var request = new JsonObject { ["method"] = "PUT", ["url"] = $"ServiceRequest/{id}" };
        if (ifMatch is not null)
        {
            request["ifMatch"] = ifMatch;
        }
        return new JsonObject
        {
            ["resourceType"] = "Bundle",
            ["type"] = type,
            ["entry"] = new JsonArray(new JsonObject { ["resource"] = body.DeepClone(), ["request"] = request }),
        };
    }

    [Fact]
    public async Task AStaleIfMatch_Is412_OnEveryUpdatePath_EvenWhenTheBodyBreaksARule()
    {
        using var client = await app.PartnerAsync();
        var (id, read) = await ReferralAsync(client);
        var wrong = new List<string>();

        async Task ExpectAsync(string path, HttpResponseMessage response, string? entryStatus = null)
        {
            var body = await response.Content.ReadAsStringAsync();
            var status = entryStatus ?? ((int)response.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (!status.StartsWith("412", StringComparison.Ordinal))
            {
                wrong.Add($"{path}: {status} {body}");
            }
        }

        foreach (var (why, body) in Broken(read))
        {
            using var put = new HttpRequestMessage(HttpMethod.Put, $"/fhir/ServiceRequest/{id}") { Content = FhirPayloads.Body(body.ToJsonString()) };
            put.Headers.TryAddWithoutValidation("If-Match", $"W/\"{Stale}\"");
            await ExpectAsync($"PUT ({why})", await client.SendAsync(put));

            foreach (var type in new[] { "transaction", "batch" })
            {
                var bundle = PutBundle(type, id, body, $"W/\"{Stale}\"");
                using var response = await client.PostAsync("/fhir", FhirPayloads.Body(bundle.ToJsonString()));
                var entryStatus = type == "batch" && response.IsSuccessStatusCode
                    ? (await FhirPartner.ParseAsync<Bundle>(response)).Entry.Single().Response.Status
                    : null;
                await ExpectAsync($"{type} PUT entry ({why})", response, entryStatus);
            }
        }

        // $process-message: an update with no new note, and a delete with no reason, each at a version long gone.
        foreach (var reason in new[] { "update", "delete" })
        {
            var message = FhirPayloads.Example("referral-message.json", await app.NewNhsNumberAsync());
            message["entry"]![0]!["resource"]!["reason"]!["coding"]![0]!["code"] = reason;
            var request = message["entry"]![1]!["resource"]!.AsObject();
            request["id"] = id;
            request["meta"] = new JsonObject { ["versionId"] = Stale };
            request.Remove("note");
            await ExpectAsync($"$process-message {reason}", await client.PostAsync("/fhir/$process-message", FhirPayloads.Body(message.ToJsonString())));
        }

        Assert.True(wrong.Count == 0, string.Join('\n', wrong));
        var after = await FhirPartner.ParseAsync<ServiceRequest>(await client.GetAsync($"/fhir/ServiceRequest/{id}"));
        Assert.Equal(RequestStatus.Active, after.Status);
        Assert.Equal("1", after.Meta.VersionId);
    }

    /// <summary>
    /// Another trust's client may change nothing of the referral (404, as if it did not exist); a client of the referrer's own
    /// trust that may read but not update it is refused (403).
    /// </summary>
    [Theory]
    [InlineData("RSM", "system/ServiceRequest.cruds", HttpStatusCode.NotFound)]
    [InlineData("RWM", "system/ServiceRequest.rs", HttpStatusCode.Forbidden)]
    public async Task AMessageFromACallerThatMayNotChangeTheReferral_IsRefusedAlike_WhateverItsOneNoteSays(string organisation, string scopes, HttpStatusCode refused)
    {
        using var client = await app.PartnerAsync();
        var (id, read) = await ReferralAsync(client);
        var summary = (string)read["note"]![0]!["text"]!;
        var otherClient = await app.NewPartnerClientAsync(organisation, scopes);
        using var other = await app.PartnerAsync(null, otherClient, FhirPartner.OtherSecret);
        var wrong = new List<string>();

        // A note equal to the referral's summary must not be answered otherwise than any other note: that would confirm a guess.
        foreach (var reason in new[] { "delete", "update" })
        {
            foreach (var note in new[] { summary, "Not ours to change." })
            {
                var message = FhirPayloads.Example("referral-message.json", await app.NewNhsNumberAsync());
                message["entry"]![0]!["resource"]!["reason"]!["coding"]![0]!["code"] = reason;
                var request = message["entry"]![1]!["resource"]!.AsObject();
                request["id"] = id;
                request.Remove("meta");
                request["requester"]!["identifier"]!["value"] = organisation;
                request["note"] = new JsonArray(new JsonObject { ["text"] = note });
                using var response = await other.PostAsync("/fhir/$process-message", FhirPayloads.Body(message.ToJsonString()));
                if (response.StatusCode != refused)
                {
                    wrong.Add($"{reason} with '{note}': {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
                }
            }
        }

        Assert.True(wrong.Count == 0, string.Join('\n', wrong));
        var after = await FhirPartner.ParseAsync<ServiceRequest>(await client.GetAsync($"/fhir/ServiceRequest/{id}"));
        Assert.Equal((RequestStatus.Active, "1"), (after.Status, after.Meta.VersionId));
    }

    [Fact]
    public async Task ABundlesPutWithoutIfMatch_Is428_AsAPutOnItsOwnIs_AndCancelsNothing()
    {
        using var client = await app.PartnerAsync();
        var (id, read) = await ReferralAsync(client);
        // A cancellation that is right in every way but the version it was read at, which it does not give.
        var cancel = read.DeepClone().AsObject();
        cancel["status"] = "revoked";
        var notes = cancel["note"]?.AsArray() ?? [];
        notes.Add(new JsonObject { ["text"] = "Admitted elsewhere." });
        notes.Add(new JsonObject { ["text"] = "No longer needed." });
        cancel["note"] = notes;

        using var alone = new HttpRequestMessage(HttpMethod.Put, $"/fhir/ServiceRequest/{id}") { Content = FhirPayloads.Body(cancel.ToJsonString()) };
        Assert.Equal((HttpStatusCode)428, (await client.SendAsync(alone)).StatusCode);
        foreach (var type in new[] { "transaction", "batch" })
        {
            var bundle = PutBundle(type, id, cancel, ifMatch: null);
            using var response = await client.PostAsync("/fhir", FhirPayloads.Body(bundle.ToJsonString()));
            var status = type == "batch"
                ? (await FhirPartner.ParseAsync<Bundle>(response)).Entry.Single().Response.Status
                : ((int)response.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture);
            Assert.StartsWith("428", status, StringComparison.Ordinal);
        }

        var after = await FhirPartner.ParseAsync<ServiceRequest>(await client.GetAsync($"/fhir/ServiceRequest/{id}"));
        Assert.Equal((RequestStatus.Active, "1"), (after.Status, after.Meta.VersionId));
    }

    [Fact]
    public async Task AnIfNoneExistThatFindsTheReferral_Is200_EvenWhenTheBodyBreaksItsProfileAndTheFormsRules()
    {
        using var client = await app.PartnerAsync();
        var sent = FhirPayloads.ContainedReferral(await app.NewNhsNumberAsync());
        var identifier = sent["identifier"]![0]!;
        var condition = $"identifier={identifier["system"]}|{identifier["value"]}";
        var first = await FhirPartner.ParseAsync<ServiceRequest>(await client.PostAsync("/fhir/ServiceRequest", FhirPayloads.Body(sent.ToJsonString())), HttpStatusCode.Created);
        // The retry is broken every way: no pathway (profile), a draft (a rule), and nobody to refer.
        var broken = sent.DeepClone().AsObject();
        broken.Remove("code");
        broken["status"] = "draft";
        broken.Remove("contained");
        broken["subject"] = new JsonObject { ["reference"] = "Patient/999999999" };
        var before = await app.StoredAsync();

        using var post = new HttpRequestMessage(HttpMethod.Post, "/fhir/ServiceRequest") { Content = FhirPayloads.Body(broken.ToJsonString()) };
        post.Headers.Add("If-None-Exist", condition);
        var found = await FhirPartner.ParseAsync<ServiceRequest>(await client.SendAsync(post), HttpStatusCode.OK);

        var transaction = new JsonObject
        {
            ["resourceType"] = "Bundle",
            ["type"] = "transaction",
            ["entry"] = new JsonArray(new JsonObject
            {
                ["resource"] = broken.DeepClone(),
                ["request"] = new JsonObject { ["method"] = "POST", ["url"] = "ServiceRequest", ["ifNoneExist"] = condition },
            }),
        };
        var reply = await FhirPartner.ParseAsync<Bundle>(await client.PostAsync("/fhir", FhirPayloads.Body(transaction.ToJsonString())));

        Assert.Equal(first.Id, found.Id);
        Assert.Equal("200 OK", reply.Entry.Single().Response.Status);
        Assert.Equal(first.Id, reply.Entry.Single().Resource.Id);
        Assert.Equal(before, await app.StoredAsync());
    }

    [Fact]
    public async Task ARetriedTransaction_WhoseReferralIsFound_SaysItsPatientEntryMadeNothing()
    {
        using var client = await app.PartnerAsync();
        // The documented transaction, its Patient entry without an ifNoneExist of its own: the referral's condition decides.
        var transaction = FhirPayloads.Example("referral-transaction.json", await app.NewNhsNumberAsync());
        transaction["entry"]![0]!["request"]!.AsObject().Remove("ifNoneExist");
        var first = await FhirPartner.ParseAsync<Bundle>(await client.PostAsync("/fhir", FhirPayloads.Body(transaction.ToJsonString())));
        var before = await app.StoredAsync();

        var retry = await FhirPartner.ParseAsync<Bundle>(await client.PostAsync("/fhir", FhirPayloads.Body(transaction.ToJsonString())));

        Assert.Equal(["201 Created", "201 Created"], first.Entry.Select(e => e.Response.Status));
        // Nothing was made the second time, the person no more than the referral: 201 would tell the partner otherwise.
        Assert.Equal(["200 OK", "200 OK"], retry.Entry.Select(e => e.Response.Status));
        Assert.Equal(first.Entry.Select(e => e.Response.Location.Split("/_history/")[0]), retry.Entry.Select(e => e.Response.Location.Split("/_history/")[0]));
        Assert.Equal(before, await app.StoredAsync());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task ATransactionRepeatingAReferralsIdentifier_ForAnotherPerson_IsAConflict_NotAnAnswerNamingTheFirstPerson(bool anotherIsKnown)
    {
        using var client = await app.PartnerAsync();
        var first = await app.NewNhsNumberAsync();
        var transaction = FhirPayloads.Example("referral-transaction.json", first);
        var made = await FhirPartner.ParseAsync<Bundle>(await client.PostAsync("/fhir", FhirPayloads.Body(transaction.ToJsonString())));
        Assert.Equal(["201 Created", "201 Created"], made.Entry.Select(e => e.Response.Status));
        // The same referral identifier, with another person in the Patient entry: one the partner has referred before (its
        // own condition finds them), or one new to the store.
        var another = await app.NewNhsNumberAsync();
        if (anotherIsKnown)
        {
            var registered = await client.PostAsync("/fhir/Patient", FhirPayloads.Body(FhirPayloads.Person(another).ToJsonString()));
            Assert.Equal(HttpStatusCode.Created, registered.StatusCode);
        }
        var before = await app.StoredAsync();

        var mistaken = JsonNode.Parse(transaction.ToJsonString().Replace(first, another, StringComparison.Ordinal))!;
        var refused = await FhirPartner.ParseAsync<OperationOutcome>(
            await client.PostAsync("/fhir", FhirPayloads.Body(mistaken.ToJsonString())), HttpStatusCode.Conflict);

        var referral = "ServiceRequest/" + made.Entry[1].Response.Location.Split("ServiceRequest/")[1].Split('/')[0];
        Assert.Contains($"{referral}, a referral for another person", refused.Issue[0].Diagnostics, StringComparison.Ordinal);
        Assert.Equal(OperationOutcome.IssueType.Duplicate, refused.Issue[0].Code);
        Assert.Equal(before, await app.StoredAsync());
        // The retry that is one still answers what it made.
        var retried = await FhirPartner.ParseAsync<Bundle>(await client.PostAsync("/fhir", FhirPayloads.Body(transaction.ToJsonString())));
        Assert.Equal(["200 OK", "200 OK"], retried.Entry.Select(e => e.Response.Status));
    }
}

public sealed class FhirPreconditionOnSqliteTests(AppFactory app) : FhirPreconditionTests(app), IClassFixture<AppFactory>;

public sealed class FhirPreconditionOnPostgresTests(PostgresAppFactory app) : FhirPreconditionTests(app), IClassFixture<PostgresAppFactory>;

/// <summary>
/// On PostgreSQL two writers can both pass the version check before either writes: the second's version-guarded write then
/// finds the referral moved on. With a version named, that is the precondition failing (412), as it would have been a
/// moment later; not the 409 a member of staff is shown. Without one it is 409 <c>conflict</c> (read again and send it
/// again), never <c>duplicate</c>, which tells a partner not to send it again. SQLite's writers take turns, so they cannot
/// interleave so.
/// </summary>
public sealed class FhirPreconditionRaceOnPostgresTests(PostgresAppFactory app) : IClassFixture<PostgresAppFactory>
{
    [Theory]
    [InlineData("PUT revoked", true)]
    [InlineData("$process-message delete", true)]
    [InlineData("$process-message update", true)]
    [InlineData("$process-message update", false)]
    public async Task AChangeLandingBetweenTheVersionCheckAndTheWrite_Is412WhenAVersionWasNamed_ElseAConflict_AndWritesNothing(string path, bool versionNamed)
    {
        using var client = await app.PartnerAsync();
        var (id, read) = await FhirPreconditionTests.ReferralAsync(app, client);
        var referralId = long.Parse(id, System.Globalization.CultureInfo.InvariantCulture);
        var before = await app.StoredAsync();

        // Another writer's change, made and held uncommitted: the request's checks read the referral at version 1 and
        // pass; its own version-guarded write waits for this row; the change then commits under it.
        await using var change = await app.HoldAsync("UPDATE referral SET version = version + 1 WHERE id = @referralId", new { referralId });
        var sending = SendAsync(client, path, id, read, versionNamed);
        await app.UntilBlockedByAsync(change, [sending], $"The {path}");
        await change.CommitAsync();
        using var answer = await sending;

        var expected = versionNamed ? HttpStatusCode.PreconditionFailed : HttpStatusCode.Conflict;
        Assert.True(answer.StatusCode == expected, await Describe(answer));
        var outcome = await FhirPartner.ParseAsync<OperationOutcome>(answer, expected);
        Assert.Equal(OperationOutcome.IssueType.Conflict, outcome.Issue[0].Code);
        Assert.Contains(versionNamed ? "version 2, not 1" : "changed this referral a moment ago", outcome.Issue[0].Diagnostics, StringComparison.Ordinal);
        // Nothing of the request stayed: only the other writer's change moved the store (its version, which StoredAsync does not count).
        Assert.Equal(before, await app.StoredAsync());
        var after = await FhirPartner.ParseAsync<ServiceRequest>(await client.GetAsync($"/fhir/ServiceRequest/{id}"));
        Assert.Equal(RequestStatus.Active, after.Status);
    }

    /// <summary>
    /// A cancellation frees the bed reserved for the person; someone moving that bed at the same instant makes it a conflict
    /// about the referral, in words a partner can act on, naming neither the bed board nor the member of staff.
    /// </summary>
    [Fact]
    public async Task ACancellationWhoseReservedBedMovesMeanwhile_IsAConflict_AboutTheReferral_AndCancelsNothing()
    {
        using var client = await app.PartnerAsync();
        var (id, _) = await FhirPreconditionTests.ReferralAsync(app, client);
        var referralId = long.Parse(id, System.Globalization.CultureInfo.InvariantCulture);
        var bedId = await app.FreeBedAsync();
        var coordinator = await app.StaffAsync("coordinator");
        var bureau = await app.StaffAsync("bedbureau");
        var task = await app.OpenTaskAsync(referralId);
        await app.SendAsync(new CareCoordination.Features.Coordination.TakeReferral.Command(task), coordinator);
        await app.SendAsync(new CareCoordination.Features.Coordination.RedirectToBedBureau.Command(task, "Not yet safe at home even with reablement."), coordinator);
        task = await app.OpenTaskAsync(referralId);
        await app.SendAsync(new CareCoordination.Features.Coordination.TakeReferral.Command(task), bureau);
        await app.SendAsync(new CareCoordination.Features.BedBureau.ReserveBed.Command(task, bedId, CareCoordination.Domain.LondonTime.Today(app.Clock)), bureau);
        var read = JsonNode.Parse(await (await client.GetAsync($"/fhir/ServiceRequest/{id}")).Content.ReadAsStringAsync())!.AsObject();
        var before = await app.StoredAsync();

        // The bed bureau's change to the bed, made and held uncommitted; the cancellation waits for the bed's row, then finds it moved.
        await using var change = await app.HoldAsync("UPDATE bed SET version = version + 1 WHERE id = @bedId", new { bedId });
        var body = read.DeepClone().AsObject();
        body["status"] = "revoked";
        body["note"]!.AsArray().Add(new JsonObject { ["text"] = "Family have arranged care privately." });
        using var put = new HttpRequestMessage(HttpMethod.Put, $"/fhir/ServiceRequest/{id}") { Content = FhirPayloads.Body(body.ToJsonString()) };
        put.Headers.TryAddWithoutValidation("If-Match", $"W/\"{read["meta"]!["versionId"]}\"");
        var sending = client.SendAsync(put);
        await app.UntilBlockedByAsync(change, [sending], "The cancellation");
        await change.CommitAsync();
        using var answer = await sending;

        var outcome = await FhirPartner.ParseAsync<OperationOutcome>(answer, HttpStatusCode.Conflict);
        Assert.Equal(OperationOutcome.IssueType.Conflict, outcome.Issue[0].Code);
        Assert.Contains("The bed held for this referral changed a moment ago", outcome.Issue[0].Diagnostics, StringComparison.Ordinal);
        Assert.DoesNotContain("board", outcome.Issue[0].Diagnostics, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(before, await app.StoredAsync());
        var after = await FhirPartner.ParseAsync<ServiceRequest>(await client.GetAsync($"/fhir/ServiceRequest/{id}"));
        Assert.NotEqual(RequestStatus.Revoked, after.Status);
        await using var store = await app.OpenAsync();
        Assert.Equal("reserved", await store.ExecuteScalarAsync<string>("SELECT status FROM bed WHERE id = @bedId", new { bedId }));
    }

    private static async Task<string> Describe(HttpResponseMessage response) =>
        $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}";

    private async Task<HttpResponseMessage> SendAsync(HttpClient client, string path, string id, JsonObject read, bool versionNamed)
    {
        var note = new JsonObject { ["text"] = "Family have arranged care privately." };
        if (path == "PUT revoked")
        {
            var body = read.DeepClone().AsObject();
            body["status"] = "revoked";
            body["note"]!.AsArray().Add(note);
            using var put = new HttpRequestMessage(HttpMethod.Put, $"/fhir/ServiceRequest/{id}") { Content = FhirPayloads.Body(body.ToJsonString()) };
            put.Headers.TryAddWithoutValidation("If-Match", "W/\"1\"");
            return await client.SendAsync(put);
        }
        var message = FhirPayloads.Example("referral-message.json", await app.NewNhsNumberAsync());
        message["entry"]![0]!["resource"]!["reason"]!["coding"]![0]!["code"] = path.Split(' ')[1];
        var request = message["entry"]![1]!["resource"]!.AsObject();
        request["id"] = id;
        if (versionNamed)
        {
            request["meta"] = new JsonObject { ["versionId"] = "1" };
        }
        else
        {
            request.Remove("meta");
        }
        request["note"] = new JsonArray(note);
        return await client.PostAsync("/fhir/$process-message", FhirPayloads.Body(message.ToJsonString()));
    }
}
