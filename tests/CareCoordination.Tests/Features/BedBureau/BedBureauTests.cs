using CareCoordination.Domain;
using CareCoordination.Features.Admin;
using CareCoordination.Tests.Features.Admin;
using CareCoordination.Features.BedBureau;
using CareCoordination.Features.Coordination;
using CareCoordination.Features.Providers;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using CareCoordination.Tests.Support;
using Dapper;
using Mediator;

namespace CareCoordination.Tests.Features.BedBureau;

/// <summary>Beds through their whole life, legal and illegal moves, expiry, and double booking under parallel attempts.</summary>
public abstract class BedBureauTests(AppFactory app)
{
    private DateOnly Today => LondonTime.Today(app.Clock);

    private sealed record BedState
    {
        public string Status { get; init; } = "";
        public int Version { get; init; }
        public string? ClosedReason { get; init; }
        public string? ClosedDetail { get; init; }
    }

    /// <summary>A pathway 2 referral passed by the coordination centre to the bed bureau, and taken there by <paramref name="bureau"/>.</summary>
    protected async Task<(long ReferralId, long TaskId)> AtTheBureauAsync(string bureau = "bedbureau", Action<ReferralForm>? change = null)
    {
        var form = ReferralForms.Discharge(Today, await app.NewNhsNumberAsync());
        form.Pathway = "2";
        change?.Invoke(form);
        var sent = await app.SendAsync<SubmitReferral.Result>(new SubmitReferral.Command(form, Guid.NewGuid().ToString("N")), await app.StaffAsync("referrer"));
        var referralId = sent.ReferralId!.Value;
        var coordinator = await app.StaffAsync("coordinator");
        await app.SendAsync(new TakeReferral.Command(await OpenTaskAsync(referralId)), coordinator);
        await app.SendAsync(new RedirectToBedBureau.Command(await OpenTaskAsync(referralId), "Not yet safe at home even with reablement."), coordinator);
        var task = await OpenTaskAsync(referralId);
        await app.SendAsync(new TakeReferral.Command(task), await app.StaffAsync(bureau));
        return (referralId, task);
    }

    private async Task<long> OpenTaskAsync(long referralId)
    {
        await using var connection = await app.OpenAsync();
        return await connection.ExecuteScalarAsync<long>(
            "SELECT id FROM triage_task WHERE referral_id = @referralId AND status IN ('requested', 'in-progress', 'on-hold')", new { referralId });
    }

    /// <summary>An available bed of a caution-free provider that fits a woman without an infection, not used by another test.</summary>
    private async Task<long> FreeBedAsync(string caution = "none", bool singleRoom = false, string allowedSex = "any")
    {
        await using var connection = await app.OpenAsync();
        var id = await connection.ExecuteScalarAsync<long?>(
            """
            SELECT b.id FROM bed b JOIN ward w ON w.id = b.ward_id JOIN site s ON s.id = w.site_id JOIN organisation o ON o.id = s.organisation_id
            WHERE b.status = 'available' AND o.caution = @caution AND b.single_room = @singleRoom AND b.allowed_sex = @allowedSex
              AND b.bed_type IN ('rehabilitation', 'step-down-nursing') AND s.active AND b.id NOT IN (SELECT bed_id FROM placement WHERE bed_id IS NOT NULL AND created_at > @since)
            ORDER BY b.id LIMIT 1
            """, new { caution, singleRoom, allowedSex, since = app.Clock.GetUtcNow().AddHours(-1) });
        if (id is { } found)
        {
            return found;
        }
        // Not one free in the demo's current state: free one up for the test, the way a ward would.
        var any = await connection.ExecuteScalarAsync<long>(
            """
            SELECT b.id FROM bed b JOIN ward w ON w.id = b.ward_id JOIN site s ON s.id = w.site_id JOIN organisation o ON o.id = s.organisation_id
            WHERE o.caution = @caution AND b.status IN ('closed', 'cleaning', 'available') ORDER BY b.id LIMIT 1
            """, new { caution });
        await connection.ExecuteAsync("UPDATE bed SET status = 'available', closed_reason = NULL, single_room = @singleRoom, allowed_sex = @allowedSex, bed_type = 'rehabilitation' WHERE id = @any",
            new { any, singleRoom, allowedSex });
        return any;
    }

    private async Task<BedState> BedAsync(long bedId)
    {
        await using var connection = await app.OpenAsync();
        return await connection.QuerySingleAsync<BedState>(
            "SELECT status AS Status, version AS Version, closed_reason AS ClosedReason, closed_detail AS ClosedDetail FROM bed WHERE id = @bedId", new { bedId });
    }

    private async Task<string> ReferralStatusAsync(long referralId)
    {
        await using var connection = await app.OpenAsync();
        return await connection.ExecuteScalarAsync<string>("SELECT status FROM referral WHERE id = @referralId", new { referralId }) ?? "";
    }

    private async Task SendAsync(IMessage message, string user = "bedbureau") => await app.SendAsync(message, await app.StaffAsync(user));

    [Fact]
    public async Task ABed_GoesReservedOccupiedCleaningAvailable_AsThePersonIsPlacedAndLeaves()
    {
        var (referralId, taskId) = await AtTheBureauAsync();
        var bedId = await FreeBedAsync();

        var reserved = await app.SendAsync<ReserveBed.Result>(new ReserveBed.Command(taskId, bedId, Today), await app.StaffAsync("bedbureau"));
        Assert.Equal(("reserved", "accepted"), ((await BedAsync(bedId)).Status, await ReferralStatusAsync(referralId)));
        var heldFor = app.Clock.GetUtcNow().AddHours(12);
        var endOfDay = ReserveBed.EndOf(Today);
        Assert.Equal(heldFor > endOfDay ? heldFor : endOfDay, reserved.ReservedUntil);

        await SendAsync(new ConfirmAdmission.Command(reserved.PlacementId));
        Assert.Equal(("occupied", "placed"), ((await BedAsync(bedId)).Status, await ReferralStatusAsync(referralId)));

        await SendAsync(new DischargeFromBed.Command(reserved.PlacementId));
        Assert.Equal(("cleaning", "completed"), ((await BedAsync(bedId)).Status, await ReferralStatusAsync(referralId)));

        await SendAsync(new ChangeBedState.Command(bedId, ChangeBedState.Move.Cleaned));
        Assert.Equal("available", (await BedAsync(bedId)).Status);

        await SendAsync(new ChangeBedState.Command(bedId, ChangeBedState.Move.Close, "infection", "Norovirus in the bay"));
        var closed = await BedAsync(bedId);
        Assert.Equal(("closed", "infection", "Norovirus in the bay"), (closed.Status, closed.ClosedReason, closed.ClosedDetail));
        await SendAsync(new ChangeBedState.Command(bedId, ChangeBedState.Move.Reopen));
        var reopened = await BedAsync(bedId);
        Assert.Equal(("available", (string?)null, (string?)null), (reopened.Status, reopened.ClosedReason, reopened.ClosedDetail));
    }

    public static TheoryData<string, ChangeBedState.Move, string> IllegalMoves => new()
    {
        { "available", ChangeBedState.Move.Cleaned, "not waiting to be cleaned" },
        { "available", ChangeBedState.Move.Reopen, "not closed" },
        { "occupied", ChangeBedState.Move.Close, "cannot become closed" },
        { "occupied", ChangeBedState.Move.Cleaned, "not waiting to be cleaned" },
        { "reserved", ChangeBedState.Move.Close, "cannot become closed" },
        { "closed", ChangeBedState.Move.Close, "cannot become closed" },
        { "closed", ChangeBedState.Move.Cleaned, "not waiting to be cleaned" },
        { "cleaning", ChangeBedState.Move.Reopen, "not closed" },
    };

    [Theory]
    [MemberData(nameof(IllegalMoves))]
    public async Task IllegalBedMoves_AreRefusedWithAClearMessage_AndChangeNothing(string from, ChangeBedState.Move move, string saying)
    {
        var bedId = await FreeBedAsync();
        await using (var connection = await app.OpenAsync())
        {
            await connection.ExecuteAsync("UPDATE bed SET status = @from, closed_reason = CASE WHEN @from = 'closed' THEN 'staffing' END WHERE id = @bedId", new { from, bedId });
        }
        var before = await BedAsync(bedId);

        var refused = await Assert.ThrowsAsync<RuleBroken>(() => SendAsync(new ChangeBedState.Command(bedId, move, "staffing")));

        Assert.Contains(saying, refused.Message, StringComparison.Ordinal);
        Assert.Equal(before, await BedAsync(bedId));
    }

    [Fact]
    public async Task AnUnusedReservation_Expires_TheBedReturns_AndTheReferralIsBackInTheBureauQueue()
    {
        var (referralId, taskId) = await AtTheBureauAsync();
        var bedId = await FreeBedAsync();
        var reserved = await app.SendAsync<ReserveBed.Result>(new ReserveBed.Command(taskId, bedId, Today), await app.StaffAsync("bedbureau"));
        app.Clock.Advance(TimeSpan.FromHours(11));
        await ExpireAllAsync();
        Assert.Equal("reserved", (await BedAsync(bedId)).Status);

        // Past both the hold and the end of the admission day.
        app.Clock.Advance(TimeSpan.FromHours(14));
        var late = await Assert.ThrowsAsync<RuleBroken>(() => SendAsync(new ConfirmAdmission.Command(reserved.PlacementId)));
        Assert.Contains("expired", late.Message, StringComparison.Ordinal);
        await ExpireAllAsync();

        Assert.Equal("available", (await BedAsync(bedId)).Status);
        Assert.Equal("in-triage", await ReferralStatusAsync(referralId));
        await using var connection = await app.OpenAsync();
        var next = await connection.QuerySingleAsync<(string Queue, string Status)>(
            "SELECT queue, status FROM triage_task WHERE referral_id = @referralId ORDER BY id DESC LIMIT 1", new { referralId });
        Assert.Equal(("bed-bureau", "requested"), next);
        Assert.Equal("cancelled", await connection.ExecuteScalarAsync<string>("SELECT status FROM placement WHERE id = @PlacementId", new { reserved.PlacementId }));
        Assert.Equal(1, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM change WHERE kind = 'placement.expired' AND entity_id = @PlacementId", new { reserved.PlacementId }));
    }

    /// <summary>As the system's timer does: one reservation per command, until none has expired.</summary>
    private async Task ExpireAllAsync()
    {
        var bureau = await app.StaffAsync("bedbureau");
        while (await app.SendAsync<int>(new ExpireReservations.Command(), bureau) > 0)
        {
        }
    }

    [Fact]
    public async Task AReservationForALaterDay_IsHeldUntilThatDayEnds()
    {
        var (_, taskId) = await AtTheBureauAsync();
        var reserved = await app.SendAsync<ReserveBed.Result>(new ReserveBed.Command(taskId, await FreeBedAsync(), Today.AddDays(3)), await app.StaffAsync("bedbureau"));

        Assert.Equal(ReserveBed.EndOf(Today.AddDays(3)), reserved.ReservedUntil);
    }

    [Fact]
    public async Task ABedOfATypeThatDoesNotMeetThePathway_IsRefused()
    {
        var (_, taskId) = await AtTheBureauAsync();
        await using var connection = await app.OpenAsync();
        var residential = await connection.ExecuteScalarAsync<long>(
            """
            SELECT b.id FROM bed b JOIN ward w ON w.id = b.ward_id JOIN site s ON s.id = w.site_id JOIN organisation o ON o.id = s.organisation_id
            WHERE b.status = 'available' AND b.bed_type = 'residential' AND b.allowed_sex = 'any' AND o.caution = 'none' ORDER BY b.id LIMIT 1
            """);

        var refused = await Assert.ThrowsAsync<RuleBroken>(() => SendAsync(new ReserveBed.Command(taskId, residential, Today)));

        Assert.Contains("does not meet pathway 2", refused.Message, StringComparison.Ordinal);
        Assert.Equal("available", (await BedAsync(residential)).Status);
    }

    [Fact]
    public async Task ManyReservingOneBedAtOnce_ExactlyOneWins_TheOthersAreTold_ManyTimesOver()
    {
        var bureau = await app.StaffAsync("bedbureau");
        for (var round = 0; round < 8; round++)
        {
            var tasks = new List<long>();
            for (var i = 0; i < 3; i++)
            {
                tasks.Add((await AtTheBureauAsync()).TaskId);
            }
            var bedId = await FreeBedAsync();

            var attempts = await Task.WhenAll(tasks.Select(async task =>
            {
                try
                {
                    await app.SendAsync<ReserveBed.Result>(new ReserveBed.Command(task, bedId, Today), bureau);
                    return (Won: true, Message: "");
                }
                catch (Conflict conflict)
                {
                    return (Won: false, conflict.Message);
                }
            }));

            Assert.Single(attempts, a => a.Won);
            Assert.All(attempts.Where(a => !a.Won), a => Assert.Contains("a moment ago", a.Message, StringComparison.Ordinal));
            await using var connection = await app.OpenAsync();
            Assert.Equal(1, await connection.ExecuteScalarAsync<long>(
                "SELECT COUNT(*) FROM placement WHERE bed_id = @bedId AND status IN ('reserved', 'active')", new { bedId }));
            // The losers' referrals are still with the bureau, held and undecided.
            Assert.Equal(2, await connection.ExecuteScalarAsync<long>(
                $"SELECT COUNT(*) FROM triage_task WHERE id IN ({string.Join(",", tasks)}) AND status = 'in-progress'"));
        }
    }

    [Fact]
    public async Task ProviderCautions_RedRefuses_AmberTakesAManagersApprovalForThatProvidersBeds()
    {
        var (referralId, taskId) = await AtTheBureauAsync();
        var red = await FreeBedAsync("red");
        var amber = await FreeBedAsync("amber");

        var refused = await Assert.ThrowsAsync<RuleBroken>(() => SendAsync(new ReserveBed.Command(taskId, red, Today)));
        Assert.Contains("red caution", refused.Message, StringComparison.Ordinal);
        var unapproved = await Assert.ThrowsAsync<RuleBroken>(() => SendAsync(new ReserveBed.Command(taskId, amber, Today)));
        Assert.Contains("amber caution", unapproved.Message, StringComparison.Ordinal);
        Assert.Equal(("available", "available"), ((await BedAsync(red)).Status, (await BedAsync(amber)).Status));

        // The bureau asks for the provider's beds; the bureau cannot decide; a manager approves.
        long provider;
        await using (var connection = await app.OpenAsync())
        {
            provider = await connection.ExecuteScalarAsync<long>(
                "SELECT s.organisation_id FROM bed b JOIN ward w ON w.id = b.ward_id JOIN site s ON s.id = w.site_id WHERE b.id = @amber", new { amber });
        }
        var approvalId = await app.SendAsync<long>(
            new AskCautionApproval.Command(taskId, provider, null, "Only nursing bed near her daughter; risk discussed with the ward."), await app.StaffAsync("bedbureau"));
        await Assert.ThrowsAsync<AccessDenied>(() => SendAsync(new DecideCautionApproval.Command(approvalId, true, "Approved.")));
        await app.SendAsync(new DecideCautionApproval.Command(approvalId, true, "Approved: daily check calls."), await app.StaffAsync("manager"));

        await SendAsync(new ReserveBed.Command(taskId, amber, Today));

        await using var placed = await app.OpenAsync();
        Assert.Equal(approvalId, await placed.ExecuteScalarAsync<long?>(
            "SELECT caution_approval_id FROM placement WHERE referral_id = @referralId", new { referralId }));
        Assert.Contains("approved by David Trelawney", await placed.ExecuteScalarAsync<string>(
            "SELECT reason FROM triage_task WHERE referral_id = @referralId AND queue = 'bed-bureau'", new { referralId }), StringComparison.Ordinal);
    }

    [Fact]
    public async Task ABay_ForTheOtherSex_AndABay_ForSomeoneWhoMustBeIsolated_AreRefused()
    {
        var (_, taskId) = await AtTheBureauAsync();
        var maleBay = await FreeBedAsync(allowedSex: "male");
        var sex = await Assert.ThrowsAsync<RuleBroken>(() => SendAsync(new ReserveBed.Command(taskId, maleBay, Today)));
        Assert.Contains("male-only bay", sex.Message, StringComparison.Ordinal);

        var (_, infectious) = await AtTheBureauAsync(change: f => f.InfectionStatus = "C. difficile: 48 hours symptom-free");
        var bay = await FreeBedAsync();
        var isolation = await Assert.ThrowsAsync<RuleBroken>(() => SendAsync(new ReserveBed.Command(infectious, bay, Today)));
        Assert.Contains("single room", isolation.Message, StringComparison.Ordinal);
        await SendAsync(new ReserveBed.Command(infectious, await FreeBedAsync(singleRoom: true), Today));
    }

    /// <summary>The board filtered (by type, status or staleness) shows some of a ward's beds: confirming confirms those, not the hidden ones.</summary>
    [Fact]
    public async Task ConfirmingTheBedsShown_LeavesTheWardsHiddenBedsUnconfirmed()
    {
        var (_, wardId, beds) = await NewSiteAsync(3);
        var before = await ConfirmedAtAsync(beds[2]) ?? throw new InvalidOperationException("A new bed is confirmed as it is added.");
        app.Clock.Advance(TimeSpan.FromMinutes(5));

        Assert.Equal(2, await app.SendAsync<int>(new ConfirmBeds.Command(wardId, [beds[0], beds[1]]), await app.StaffAsync("bedbureau")));

        // Read back from the store, to its precision: the beds confirmed now, five minutes after the hidden one's last.
        Assert.True(await ConfirmedAtAsync(beds[0]) > before + TimeSpan.FromMinutes(4));
        Assert.True(await ConfirmedAtAsync(beds[1]) > before + TimeSpan.FromMinutes(4));
        Assert.Equal(before, await ConfirmedAtAsync(beds[2]));
        Assert.DoesNotContain(await app.ChangesAsync("bed", beds[2]), c => c.Kind == "bed.confirmed");
        Assert.Contains(await app.ChangesAsync("bed", beds[0]), c => c.Kind == "bed.confirmed");

        // A bed of another ward named with this one is not confirmed by it.
        var (_, _, elsewhere) = await NewSiteAsync(1);
        var bureau = await app.StaffAsync("bedbureau");
        await Assert.ThrowsAsync<NotFound>(() => app.SendAsync<int>(new ConfirmBeds.Command(wardId, [elsewhere[0]]), bureau));
    }

    private async Task<DateTimeOffset?> ConfirmedAtAsync(long bedId)
    {
        await using var connection = await app.OpenAsync();
        return await connection.QuerySingleAsync<DateTimeOffset?>("SELECT confirmed_at FROM bed WHERE id = @bedId", new { bedId });
    }


    /// <summary>A new site of a provider without a caution, one ward, and this many rehabilitation beds: for a test to close or confirm.</summary>
    protected async Task<(long SiteId, long WardId, IReadOnlyList<long> Beds)> NewSiteAsync(int beds)
    {
        var admin = await app.StaffAsync("admin");
        long provider;
        await using (var connection = await app.OpenAsync())
        {
            provider = await connection.ExecuteScalarAsync<long>(
                "SELECT s.organisation_id FROM site s JOIN organisation o ON o.id = s.organisation_id WHERE o.caution = 'none' AND s.active ORDER BY s.id LIMIT 1");
        }
        var siteId = await app.SendAsync<long>(new AddSite.Command("Test House " + Guid.NewGuid().ToString("N")[..6], "care-home", "Ashbury", "wm2 6xy", provider), admin);
        var wardId = await app.SendAsync<long>(new AddWard.Command(siteId, "Heather"), admin);
        return (siteId, wardId, await app.SendAsync<IReadOnlyList<long>>(new AddBeds.Command(wardId, beds, "TH", "rehabilitation", "any", SingleRoom: false), admin));
    }

    [Fact]
    public async Task OnlyTheBureau_WhoHoldsTheReferral_ReservesABed()
    {
        var (_, taskId) = await AtTheBureauAsync();
        var bedId = await FreeBedAsync();

        await Assert.ThrowsAsync<AccessDenied>(() => SendAsync(new ReserveBed.Command(taskId, bedId, Today), "coordinator"));
        var other = await Assert.ThrowsAsync<Conflict>(() => SendAsync(new ReserveBed.Command(taskId, bedId, Today), "maria.santos"));
        Assert.Contains("Helen Marsh holds", other.Message, StringComparison.Ordinal);
        Assert.Equal("available", (await BedAsync(bedId)).Status);
    }
}

public sealed class BedBureauOnSqliteTests(AppFactory app) : BedBureauTests(app), IClassFixture<AppFactory>;

public sealed class BedBureauOnPostgresTests(PostgresAppFactory app) : BedBureauTests(app), IClassFixture<PostgresAppFactory>
{
    /// <summary>
    /// A bed reserved while its site is being closed: on PostgreSQL the two ran at once, each reading only what the other
    /// writes, and both went through, leaving a held bed in a closed site, on no board. They now take turns on the site: with
    /// the site's lock held here, both wait for it; let go, one of them goes through and the other is told why not.
    /// </summary>
    [Fact]
    public async Task ReservingABed_WhileItsSiteCloses_OneGoesThrough_TheOtherIsRefused()
    {
        var (siteId, _, beds) = await NewSiteAsync(1);
        var bedId = Assert.Single(beds);
        var (_, taskId) = await AtTheBureauAsync();

        await using var holder = new Npgsql.NpgsqlConnection(app.ConnectionString);
        await holder.OpenAsync();
        await holder.ExecuteAsync("SELECT pg_advisory_lock(hashtextextended(@key, 0))", new { key = Beds.SiteLock(siteId) });
        var reserving = Outcome(app.SendAsync<ReserveBed.Result>(new ReserveBed.Command(taskId, bedId, LondonTime.Today(app.Clock)), await app.StaffAsync("bedbureau")));
        var closing = Outcome(app.SendAsync(new DeactivateSite.Command(siteId, "Provider left the framework."), await app.StaffAsync("admin")));
        await WaitingForLocksAsync(holder, 2);
        Assert.False(reserving.IsCompleted || closing.IsCompleted, "Neither may decide while the site's lock is held.");
        await holder.ExecuteAsync("SELECT pg_advisory_unlock(hashtextextended(@key, 0))", new { key = Beds.SiteLock(siteId) });

        var outcomes = await Task.WhenAll(reserving, closing);
        Assert.Single(outcomes, o => o is null);
        await using var store = await app.OpenAsync();
        var (active, status) = await store.QuerySingleAsync<(bool, string)>(
            "SELECT s.active, b.status FROM bed b JOIN ward w ON w.id = b.ward_id JOIN site s ON s.id = w.site_id WHERE b.id = @bedId", new { bedId });
        if (outcomes[0] is null)
        {
            Assert.Equal((true, "reserved"), (active, status));
            Assert.Contains("reserved or occupied", outcomes[1], StringComparison.Ordinal);
        }
        else
        {
            Assert.Equal((false, "available"), (active, status));
            Assert.Contains("closed to admissions", outcomes[0], StringComparison.Ordinal);
        }
    }

    /// <summary>
    /// A bed reserved while its provider is put under a red caution: on PostgreSQL the reservation read the caution with the
    /// bed, and went through on the old one after the red caution had committed. Both now take turns on the provider: with its
    /// lock held here, both wait; let go, either the reservation came first (its change before the caution's) or it is refused.
    /// </summary>
    [Fact]
    public async Task ReservingABed_WhileItsProviderIsPutUnderARedCaution_IsMadeBeforeIt_OrRefused()
    {
        var (siteId, _, beds) = await NewSiteAsync(1);
        var bedId = Assert.Single(beds);
        var (_, taskId) = await AtTheBureauAsync();
        long provider;
        await using (var connection = await app.OpenAsync())
        {
            provider = await connection.ExecuteScalarAsync<long>("SELECT organisation_id FROM site WHERE id = @siteId", new { siteId });
        }
        try
        {
            await using var holder = new Npgsql.NpgsqlConnection(app.ConnectionString);
            await holder.OpenAsync();
            await holder.ExecuteAsync("SELECT pg_advisory_lock(hashtextextended(@key, 0))", new { key = ProviderCaution.Lock(provider) });
            var reserving = Outcome(app.SendAsync<ReserveBed.Result>(new ReserveBed.Command(taskId, bedId, LondonTime.Today(app.Clock)), await app.StaffAsync("bedbureau")));
            var cautioning = Outcome(app.SendAsync(new ChangeProviderRating.Command(provider, "inadequate", "red", "Safeguarding enquiry open.", "CQC warning notice."),
                await app.StaffAsync("admin")));
            await WaitingForLocksAsync(holder, 2);
            Assert.False(reserving.IsCompleted || cautioning.IsCompleted, "Neither may decide while the provider's lock is held.");
            await holder.ExecuteAsync("SELECT pg_advisory_unlock(hashtextextended(@key, 0))", new { key = ProviderCaution.Lock(provider) });

            var (reserved, cautioned) = (await reserving, await cautioning);
            Assert.Null(cautioned);
            await using var store = await app.OpenAsync();
            var rated = await store.ExecuteScalarAsync<long>(
                "SELECT seq FROM change WHERE kind = 'provider.rating-changed' AND entity_id = @provider ORDER BY seq DESC LIMIT 1", new { provider });
            if (reserved is null)
            {
                Assert.True(await store.ExecuteScalarAsync<long>("SELECT MAX(seq) FROM change WHERE kind = 'bed.reserved' AND entity_id = @bedId", new { bedId }) < rated,
                    "A reservation made under no caution was committed before the red caution.");
            }
            else
            {
                Assert.Contains("red caution", reserved, StringComparison.Ordinal);
                Assert.Equal("available", await store.ExecuteScalarAsync<string>("SELECT status FROM bed WHERE id = @bedId", new { bedId }));
            }
        }
        finally
        {
            await using var connection = await app.OpenAsync();
            await connection.ExecuteAsync("UPDATE organisation SET caution = 'none', caution_note = NULL WHERE id = @provider", new { provider });
        }
    }

    /// <summary>
    /// A site closed while one of its beds is being moved (a transaction not yet committed): the closing keeps each bed's
    /// version as it read it and moves each on from that one. Going through after the move commits, it would have lost the
    /// move's version from the bed's history, so it is refused, and keeps nothing: the site open, no version kept, each bed as
    /// the move left it. Closed again, it goes through.
    /// </summary>
    [Fact]
    public async Task ClosingASite_WhileOneOfItsBedsIsMoved_IsRefused_AndKeepsNothing()
    {
        var (siteId, _, beds) = await NewSiteAsync(2);
        await using var other = new Npgsql.NpgsqlConnection(app.ConnectionString);
        await other.OpenAsync();
        var before = (await other.QueryAsync<long>("SELECT version FROM bed WHERE id = @a OR id = @b ORDER BY id", new { a = beds[0], b = beds[1] })).ToList();
        await using var moving = await other.BeginTransactionAsync();
        await other.ExecuteAsync("UPDATE bed SET status = 'closed', closed_reason = 'infection', version = version + 1 WHERE id = @moved", new { moved = beds[1] }, moving);
        var closing = app.SendAsync(new DeactivateSite.Command(siteId, "Provider left the framework."), await app.StaffAsync("admin"));
        await WaitingForLocksAsync(other, 1);
        await moving.CommitAsync();

        var refused = await Assert.ThrowsAsync<Conflict>(() => closing);
        Assert.Contains("Close the site again", refused.Message, StringComparison.Ordinal);
        await using (var store = await app.OpenAsync())
        {
            Assert.True(await store.ExecuteScalarAsync<bool>("SELECT active FROM site WHERE id = @siteId", new { siteId }));
            Assert.Equal([before[0], before[1] + 1],
                await store.QueryAsync<long>("SELECT version FROM bed WHERE id = @a OR id = @b ORDER BY id", new { a = beds[0], b = beds[1] }));
            Assert.Equal(0, await store.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM fhir_version WHERE resource_type = 'Location' AND resource_id IN (@a, @b)",
                new { a = $"bed-{beds[0]}", b = $"bed-{beds[1]}" }));
        }

        await app.SendAsync(new DeactivateSite.Command(siteId, "Provider left the framework."), await app.StaffAsync("admin"));
        await using var after = await app.OpenAsync();
        Assert.Equal([before[0] + 1, before[1] + 2],
            await after.QueryAsync<long>("SELECT version FROM bed WHERE id = @a OR id = @b ORDER BY id", new { a = beds[0], b = beds[1] }));
    }

    /// <summary>
    /// A ward confirmed while one of its beds is being moved: the confirmation waits for the move and tells each bed as it then
    /// stands. It read the beds first, and told every board the moved bed's old status after the move's own change.
    /// </summary>
    [Fact]
    public async Task ConfirmingAWard_WhileABedIsMoved_TellsTheBedAsItStandsAfter()
    {
        var (_, wardId, beds) = await NewSiteAsync(2);
        var moved = beds[0];

        // Another transaction moves the bed, and has not committed when the ward is confirmed.
        await using var other = new Npgsql.NpgsqlConnection(app.ConnectionString);
        await other.OpenAsync();
        await using var moving = await other.BeginTransactionAsync();
        await other.ExecuteAsync("UPDATE bed SET status = 'closed', closed_reason = 'infection', version = version + 1 WHERE id = @moved", new { moved }, moving);
        var confirming = app.SendAsync<int>(new ConfirmBeds.Command(wardId), await app.StaffAsync("bedbureau"));
        await WaitingForLocksAsync(other, 1);
        await moving.CommitAsync();

        Assert.Equal(2, await confirming);
        var told = (await app.ChangesAsync("bed", moved)).Last(c => c.Kind == "bed.confirmed");
        Assert.Equal("closed", System.Text.Json.JsonDocument.Parse(told.Data!).RootElement.GetProperty("status").GetString());
    }


    /// <summary>Null once the command went through, else the rule it was refused by.</summary>
    private static async Task<string?> Outcome(Task sent)
    {
        try
        {
            await sent;
            return null;
        }
        catch (RuleBroken refused)
        {
            return refused.Message;
        }
    }

    /// <summary>Waits until this many sessions of this database wait for a lock (one that <paramref name="watcher"/>'s session or transaction holds).</summary>
    private static async Task WaitingForLocksAsync(Npgsql.NpgsqlConnection watcher, int sessions)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (await watcher.ExecuteScalarAsync<long>(
            "SELECT COUNT(DISTINCT l.pid) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE NOT l.granted AND a.datname = current_database()") < sessions)
        {
            Assert.True(DateTime.UtcNow < deadline, $"Waited 20 s for {sessions} commands to wait for a lock held here.");
            await Task.Delay(50);
        }
    }
}
