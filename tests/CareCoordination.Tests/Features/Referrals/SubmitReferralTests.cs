using CareCoordination.Domain;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using CareCoordination.Tests.Support;
using Dapper;

namespace CareCoordination.Tests.Features.Referrals;

/// <summary>Submission through the real host and pipeline, on each store.</summary>
public abstract class SubmitReferralTests(AppFactory app)
{
    private DateOnly Today => LondonTime.Today(app.Clock);

    private async Task<SubmitReferral.Result> SubmitAsync(ReferralForm form, string? key = null, string user = "referrer", long? draftId = null,
        string? duplicateAnswer = null, int? draftVersion = null) =>
        await app.SendAsync<SubmitReferral.Result>(new SubmitReferral.Command(form, key ?? Guid.NewGuid().ToString("N"), draftId, duplicateAnswer)
            { DraftVersion = draftVersion }, await app.StaffAsync(user));

    [Fact]
    public async Task Submit_CreatesPersonReferralAndQueuedTask_WithTheirChangeRows()
    {
        var nhs = await app.NewNhsNumberAsync();

        var result = await SubmitAsync(ReferralForms.Discharge(Today, nhs));

        var id = Assert.IsType<long>(result.ReferralId);
        Assert.False(result.Repeated);
        await using var connection = await app.OpenAsync();
        var referral = await connection.QuerySingleAsync<(string Status, long PersonId)>(
            "SELECT status, person_id FROM referral WHERE id = @id", new { id });
        Assert.Equal("submitted", referral.Status);
        Assert.False(await connection.ExecuteScalarAsync<bool>("SELECT early_request FROM referral WHERE id = @id", new { id }));
        var person = await connection.QuerySingleAsync<(string Nhs, string Postcode, string Locality)>(
            "SELECT nhs_number, postcode, locality FROM person WHERE id = @PersonId", new { referral.PersonId });
        Assert.Equal((nhs, "WM1 4QT", "Ashbury"), person);
        var task = await connection.QuerySingleAsync<(string Queue, string Status)>("SELECT queue, status FROM triage_task WHERE referral_id = @id", new { id });
        Assert.Equal(("coordination", "requested"), task);
        var kinds = (await connection.QueryAsync<string>(
            "SELECT kind FROM change WHERE (entity_type = 'referral' AND entity_id = @id) OR (entity_type = 'triage_task' AND entity_id IN (SELECT id FROM triage_task WHERE referral_id = @id)) ORDER BY seq",
            new { id })).ToList();
        Assert.Equal(["referral.submitted", "task.created"], kinds);
        Assert.Equal(1, await connection.ExecuteScalarAsync<long>(
            "SELECT COUNT(*) FROM audit_event WHERE action = 'SubmitReferral' AND outcome = 'success' AND entity_id = @id AND person_id = @PersonId",
            new { id, referral.PersonId }));
    }

    [Fact]
    public async Task Submit_BeforeMedicallyOptimised_IsAllowedButFlagged()
    {
        var form = ReferralForms.Discharge(Today, await app.NewNhsNumberAsync());
        form.MedicallyOptimisedOn = Today.AddDays(2);
        form.ExpectedDischargeOn = Today.AddDays(3);

        var id = (await SubmitAsync(form)).ReferralId;

        await using var connection = await app.OpenAsync();
        Assert.True(await connection.ExecuteScalarAsync<bool>("SELECT early_request FROM referral WHERE id = @id", new { id }));
    }

    [Fact]
    public async Task Submit_Invalid_IsRefusedWithFieldErrors_AndWritesNothing()
    {
        var nhs = await app.NewNhsNumberAsync();
        var form = ReferralForms.Discharge(Today, nhs);
        form.NhsNumber = nhs[..9] + ((nhs[9] - '0' + 1) % 10);
        form.ConsentToShare = false;

        var refused = await Assert.ThrowsAsync<ValidationFailed>(() => SubmitAsync(form));

        Assert.Contains("Form.NhsNumber", refused.Errors.Keys);
        Assert.Contains("Form.LawfulReason", refused.Errors.Keys);
        await using var connection = await app.OpenAsync();
        Assert.Equal(0, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM person WHERE nhs_number IN (@nhs, @wrong)",
            new { nhs, wrong = NhsNumber.Normalise(form.NhsNumber) }));
    }

    [Fact]
    public async Task Submit_TheSameKeyAgain_FindsTheFirstReferral()
    {
        var form = ReferralForms.Discharge(Today, await app.NewNhsNumberAsync());
        var key = Guid.NewGuid().ToString("N");

        var first = await SubmitAsync(form, key);
        var again = await SubmitAsync(form, key);

        Assert.Equal(first.ReferralId, again.ReferralId);
        Assert.True(again.Repeated);
        Assert.False(again.ForAnotherPerson);
    }

    [Fact]
    public async Task Submit_TheSameKeyForAnotherPerson_FindsTheFirstReferral_AndSaysItIsSomeoneElses()
    {
        // What a retry that raced its first sees (FhirWriter answers such a transaction 409): the key names a referral, and the
        // form another person, one new to the store or one known to it.
        var key = Guid.NewGuid().ToString("N");
        var first = await SubmitAsync(ReferralForms.Discharge(Today, await app.NewNhsNumberAsync()), key);
        var known = ReferralForms.Discharge(Today, await app.NewNhsNumberAsync());
        await SubmitAsync(known, Guid.NewGuid().ToString("N"));

        var forNew = await SubmitAsync(ReferralForms.Discharge(Today, await app.NewNhsNumberAsync()), key);
        var forKnown = await SubmitAsync(known, key);

        Assert.Equal((first.ReferralId, true, true), (forNew.ReferralId, forNew.Repeated, forNew.ForAnotherPerson));
        Assert.Equal((first.ReferralId, true, true), (forKnown.ReferralId, forKnown.Repeated, forKnown.ForAnotherPerson));
    }

    [Fact]
    public async Task Submit_ConcurrentDuplicatePosts_MakeExactlyOneReferral()
    {
        for (var round = 0; round < 5; round++)
        {
            var form = ReferralForms.Discharge(Today, await app.NewNhsNumberAsync());
            var key = Guid.NewGuid().ToString("N");
            var referrer = await app.StaffAsync("referrer");

            var results = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() =>
                app.SendAsync<SubmitReferral.Result>(new SubmitReferral.Command(form, key), referrer))));

            Assert.Single(results.Select(r => r.ReferralId).Distinct());
            Assert.Single(results, r => !r.Repeated);
            await using var connection = await app.OpenAsync();
            Assert.Equal(1, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM referral WHERE idempotency_key = @key", new { key }));
            Assert.Equal(1, await connection.ExecuteScalarAsync<long>(
                "SELECT COUNT(*) FROM triage_task WHERE referral_id = @id", new { id = results[0].ReferralId }));
        }
    }

    [Fact]
    public async Task Submit_ForAPersonWithAnOpenReferralOfTheirOwnTrust_AsksFirst_ThenRecordsTheAnswer()
    {
        var nhs = await app.NewNhsNumberAsync();
        var first = await SubmitAsync(ReferralForms.Discharge(Today, nhs));

        // A colleague at the same trust is shown the trust's own open referral in full (another trust's: see FindPersonTests).
        var asked = await SubmitAsync(ReferralForms.Discharge(Today, nhs), user: "aisha.begum");

        Assert.Null(asked.ReferralId);
        var open = Assert.Single(asked.PossibleDuplicates.Visible);
        Assert.Equal(first.ReferralId, open.Id);
        Assert.Equal("Westmoor General Hospital NHS Trust", open.Organisation);
        Assert.False(asked.PossibleDuplicates.Elsewhere);

        var answered = await SubmitAsync(ReferralForms.Discharge(Today, nhs), user: "aisha.begum", duplicateAnswer: "update");

        await using var connection = await app.OpenAsync();
        var recorded = await connection.QuerySingleAsync<(long DuplicateOf, string Answer)>(
            "SELECT duplicate_of_referral_id, duplicate_answer FROM referral WHERE id = @ReferralId", new { answered.ReferralId });
        Assert.Equal((first.ReferralId!.Value, "update"), recorded);
        Assert.Equal(2, await connection.ExecuteScalarAsync<long>(
            "SELECT COUNT(*) FROM referral r JOIN person p ON p.id = r.person_id WHERE p.nhs_number = @nhs", new { nhs }));
    }

    /// <summary>
    /// A save from the form page whose answer was lost (the store did not answer in time, though the save landed) is that
    /// page's own: its next save, with more typed, goes over it (a new draft's too: one draft, not two), and so do its send
    /// (a new form's send too, whose page never heard of its draft) and its discard. Another page at the version since saved over (a colleague's, or the referrer's second tab) is refused
    /// as before, as is a save without a page's key; two pages' new drafts that say the same are two drafts.
    /// </summary>
    [Fact]
    public async Task Draft_APagesSaveWhoseAnswerWasLost_IsThatPagesToSaveOverSendAndDiscard()
    {
        var referrer = await app.StaffAsync("referrer");
        var page = Guid.NewGuid().ToString("N");
        var form = ReferralForms.Discharge(Today, await app.NewNhsNumberAsync());
        var lost = await app.SendAsync<SaveDraft.Result>(new SaveDraft.Command(null, null, form, page), referrer);

        form.Ward = "Ward 9";
        var again = await app.SendAsync<SaveDraft.Result>(new SaveDraft.Command(null, null, form, page), referrer);
        Assert.Equal((lost.DraftId, 2), (again.DraftId, again.Version));
        Assert.Equal("Ward 9", (await app.SendAsync<OpenDraft.Result>(new OpenDraft.Query(again.DraftId), referrer)).Form.Ward);

        Assert.Equal(3, (await app.SendAsync<SaveDraft.Result>(new SaveDraft.Command(again.DraftId, again.Version, form, page), referrer)).Version);
        form.Ward = "Ward 10";
        var over = await app.SendAsync<SaveDraft.Result>(new SaveDraft.Command(again.DraftId, again.Version, form, page), referrer);
        Assert.Equal((again.DraftId, 4), (over.DraftId, over.Version));
        await Assert.ThrowsAsync<Conflict>(() => app.SendAsync<SaveDraft.Result>(new SaveDraft.Command(again.DraftId, again.Version, form, Guid.NewGuid().ToString("N")), referrer));
        await Assert.ThrowsAsync<Conflict>(() => app.SendAsync<SaveDraft.Result>(new SaveDraft.Command(again.DraftId, again.Version, form), referrer));
        var colleague = await app.StaffAsync("aisha.begum");
        await Assert.ThrowsAsync<Conflict>(() => app.SendAsync<SaveDraft.Result>(new SaveDraft.Command(again.DraftId, again.Version, form, page), colleague));

        // Sent from the version the page last heard of, over its own later save: what it sends goes, and the draft with it.
        await app.SendAsync<SaveDraft.Result>(new SaveDraft.Command(over.DraftId, over.Version, form, page), referrer);
        var sent = await SubmitAsync(form, key: page, draftId: over.DraftId, draftVersion: over.Version);
        Assert.NotNull(sent.ReferralId);
        await Assert.ThrowsAsync<NotFound>(() => app.SendAsync<OpenDraft.Result>(new OpenDraft.Query(over.DraftId), referrer));

        // Sent from a new form whose only save's answer was lost: the draft goes with the send, not left to be sent again.
        var unheard = Guid.NewGuid().ToString("N");
        var newForm = ReferralForms.Discharge(Today, await app.NewNhsNumberAsync());
        var stray = await app.SendAsync<SaveDraft.Result>(new SaveDraft.Command(null, null, newForm, unheard), referrer);
        Assert.NotNull((await SubmitAsync(newForm, key: unheard)).ReferralId);
        await Assert.ThrowsAsync<NotFound>(() => app.SendAsync<OpenDraft.Result>(new OpenDraft.Query(stray.DraftId), referrer));
        // A key is its organisation's: the same one sent by another organisation's referrer is a draft of their own.
        var theirs = await app.SendAsync<SaveDraft.Result>(new SaveDraft.Command(null, null, new ReferralForm(), unheard), await app.StaffAsync("gareth.evans"));
        Assert.Equal(1, theirs.Version);

        // Discarded from the version the page last heard of, over its own later save.
        var other = Guid.NewGuid().ToString("N");
        var started = await app.SendAsync<SaveDraft.Result>(new SaveDraft.Command(null, null, new ReferralForm(), other), referrer);
        await app.SendAsync<SaveDraft.Result>(new SaveDraft.Command(started.DraftId, started.Version, new ReferralForm(), other), referrer);
        await Assert.ThrowsAsync<Conflict>(() => app.SendAsync(new DiscardDraft.Command(started.DraftId, started.Version), referrer));
        await app.SendAsync(new DiscardDraft.Command(started.DraftId, started.Version, other), referrer);
        await Assert.ThrowsAsync<NotFound>(() => app.SendAsync<OpenDraft.Result>(new OpenDraft.Query(started.DraftId), referrer));

        var blank = await app.SendAsync<SaveDraft.Result>(new SaveDraft.Command(null, null, new ReferralForm(), Guid.NewGuid().ToString("N")), referrer);
        Assert.NotEqual(blank.DraftId, (await app.SendAsync<SaveDraft.Result>(new SaveDraft.Command(null, null, new ReferralForm(), Guid.NewGuid().ToString("N")), referrer)).DraftId);
    }

    [Fact]
    public async Task Draft_SavedEmpty_ReopensForItsOrganisationOnly_AndIsGoneOnceSubmitted()
    {
        var referrer = await app.StaffAsync("referrer");
        var saved = await app.SendAsync<SaveDraft.Result>(new SaveDraft.Command(null, null, new ReferralForm()), referrer);
        var form = ReferralForms.Discharge(Today, await app.NewNhsNumberAsync());
        var resaved = await app.SendAsync<SaveDraft.Result>(new SaveDraft.Command(saved.DraftId, saved.Version, form), await app.StaffAsync("aisha.begum"));

        var opened = await app.SendAsync<OpenDraft.Result>(new OpenDraft.Query(saved.DraftId), referrer);
        Assert.Equal(form.NhsNumber, opened.Form.NhsNumber);
        Assert.Equal(["personal-hygiene", "dressing", "mobility"], opened.Form.Needs);
        var other = await app.StaffAsync("gareth.evans");
        await Assert.ThrowsAsync<NotFound>(() => app.SendAsync<OpenDraft.Result>(new OpenDraft.Query(saved.DraftId), other));
        await Assert.ThrowsAsync<Conflict>(() => app.SendAsync<SaveDraft.Result>(new SaveDraft.Command(saved.DraftId, saved.Version, form), referrer));
        Assert.Equal(2, resaved.Version);

        await SubmitAsync(opened.Form, draftId: saved.DraftId, draftVersion: opened.Version);

        await Assert.ThrowsAsync<NotFound>(() => app.SendAsync<OpenDraft.Result>(new OpenDraft.Query(saved.DraftId), referrer));
    }

    /// <summary>
    /// A referrer opens a draft, a colleague saves more to it, and the referrer then sends what they had: refused, with
    /// nothing sent and the colleague's save kept, as saving over it is. Sent from the colleague's version, it goes.
    /// </summary>
    [Fact]
    public async Task Draft_SavedByAColleagueAfterItWasOpened_IsNotDeletedBySendingTheOlderVersion()
    {
        var referrer = await app.StaffAsync("referrer");
        var form = ReferralForms.Discharge(Today, await app.NewNhsNumberAsync());
        var saved = await app.SendAsync<SaveDraft.Result>(new SaveDraft.Command(null, null, form), referrer);
        var colleagues = ReferralForms.Discharge(Today, form.NhsNumber);
        colleagues.SafeguardingConcern = true;
        colleagues.Summary = "Neighbour reports she has been found on the floor twice this week.";
        var resaved = await app.SendAsync<SaveDraft.Result>(new SaveDraft.Command(saved.DraftId, saved.Version, colleagues), await app.StaffAsync("aisha.begum"));
        var before = await app.StoredAsync();

        var refused = await Assert.ThrowsAsync<Conflict>(() => SubmitAsync(form, draftId: saved.DraftId, draftVersion: saved.Version));

        Assert.Contains("Aisha Begum saved this draft after you opened it", refused.Message, StringComparison.Ordinal);
        Assert.Equal(before, await app.StoredAsync());
        var kept = await app.SendAsync<OpenDraft.Result>(new OpenDraft.Query(saved.DraftId), referrer);
        Assert.Equal((resaved.Version, true), (kept.Version, kept.Form.SafeguardingConcern));

        Assert.NotNull((await SubmitAsync(kept.Form, draftId: saved.DraftId, draftVersion: kept.Version)).ReferralId);
        await Assert.ThrowsAsync<NotFound>(() => app.SendAsync<OpenDraft.Result>(new OpenDraft.Query(saved.DraftId), referrer));
    }

    /// <summary>
    /// A draft started in error is discarded, as the version the referrer has open: a colleague's later save is refused
    /// that way, and kept; another organisation's draft is no one's to discard here.
    /// </summary>
    [Fact]
    public async Task Draft_IsDiscardedAtTheVersionOpen_NotOverAColleaguesLaterSave()
    {
        var referrer = await app.StaffAsync("referrer");
        var saved = await app.SendAsync<SaveDraft.Result>(new SaveDraft.Command(null, null, ReferralForms.Discharge(Today, await app.NewNhsNumberAsync())), referrer);
        var resaved = await app.SendAsync<SaveDraft.Result>(new SaveDraft.Command(saved.DraftId, saved.Version, new ReferralForm()), await app.StaffAsync("aisha.begum"));

        await Assert.ThrowsAsync<Conflict>(() => app.SendAsync(new DiscardDraft.Command(saved.DraftId, saved.Version), referrer));
        Assert.Equal(resaved.Version, (await app.SendAsync<OpenDraft.Result>(new OpenDraft.Query(saved.DraftId), referrer)).Version);
        var otherTrust = await app.StaffAsync("gareth.evans");
        await Assert.ThrowsAsync<NotFound>(() => app.SendAsync(new DiscardDraft.Command(saved.DraftId, resaved.Version), otherTrust));

        await app.SendAsync(new DiscardDraft.Command(saved.DraftId, resaved.Version), referrer);

        await Assert.ThrowsAsync<NotFound>(() => app.SendAsync<OpenDraft.Result>(new OpenDraft.Query(saved.DraftId), referrer));
        await using var connection = await app.OpenAsync();
        Assert.Equal(1, await connection.ExecuteScalarAsync<long>(
            "SELECT COUNT(*) FROM change WHERE kind = 'draft.discarded' AND entity_id = @DraftId", new { saved.DraftId }));
    }

    /// <summary>
    /// Asked about the person's open referral, the referrer answers "a new need"; before they send again, that referral is
    /// cancelled. The answer names a referral no longer open: the referral goes, as there is nothing open to link it to
    /// (before, it was refused at every send, and could not be sent at all from that page). With another of the trust's
    /// still open, the referrer is asked again about that one.
    /// </summary>
    [Fact]
    public async Task AnAnswerAboutAnOpenReferralThatHasSinceClosed_IsNotRefused_TheReferralGoesOrTheReferrerIsAskedAgain()
    {
        var nhs = await app.NewNhsNumberAsync();
        var first = (await SubmitAsync(ReferralForms.Discharge(Today, nhs))).ReferralId!.Value;
        var asked = await SubmitAsync(ReferralForms.Discharge(Today, nhs), user: "aisha.begum");
        Assert.Equal(first, Assert.Single(asked.PossibleDuplicates.Visible).Id);
        await app.SendAsync(new CancelReferral.Command(first, "Sent twice by mistake."), await app.StaffAsync("referrer"));

        var sent = await app.SendAsync<SubmitReferral.Result>(
            new SubmitReferral.Command(ReferralForms.Discharge(Today, nhs), Guid.NewGuid().ToString("N"), DuplicateAnswer: "new-need", DuplicateOf: first),
            await app.StaffAsync("aisha.begum"));

        Assert.NotNull(sent.ReferralId);
        await using (var connection = await app.OpenAsync())
        {
            Assert.Null(await connection.ExecuteScalarAsync<long?>("SELECT duplicate_of_referral_id FROM referral WHERE id = @id", new { id = sent.ReferralId }));
        }

        // The new one is open now; an answer naming the cancelled one is asked again, about the new one.
        var again = await app.SendAsync<SubmitReferral.Result>(
            new SubmitReferral.Command(ReferralForms.Discharge(Today, nhs), Guid.NewGuid().ToString("N"), DuplicateAnswer: "update", DuplicateOf: first),
            await app.StaffAsync("aisha.begum"));
        Assert.Null(again.ReferralId);
        Assert.Equal(sent.ReferralId, Assert.Single(again.PossibleDuplicates.Visible).Id);
    }
}

public sealed class SubmitReferralOnSqliteTests(AppFactory app) : SubmitReferralTests(app), IClassFixture<AppFactory>;

public sealed class SubmitReferralOnPostgresTests(PostgresAppFactory app) : SubmitReferralTests(app), IClassFixture<PostgresAppFactory>;
