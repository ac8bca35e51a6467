using CareCoordination.Features.Referrals;
using CareCoordination.Tests.Features.Reports;
using CareCoordination.Tests.Support;
using Dapper;

namespace CareCoordination.Tests.Features.Referrals;

/// <summary>
/// A referral's first counted decision and first start, kept on the referral by the commands that decide and start
/// (ReferralFirsts): only the first counts, a pass between the teams is not a decision, and a later decision or start
/// leaves them as they were.
/// </summary>
public abstract class ReferralFirstsTests(AppFactory app)
{
    public sealed record Firsts
    {
        public DateTimeOffset? DecidedAt { get; init; }
        public string? Decision { get; init; }
        public string? Queue { get; init; }
        public DateTimeOffset? StartedAt { get; init; }
    }

    private async Task<Firsts> FirstsAsync(long referralId)
    {
        await using var connection = await app.OpenAsync();
        return await connection.QuerySingleAsync<Firsts>(
            """
            SELECT first_decided_at AS DecidedAt, first_decision AS Decision, first_decision_queue AS Queue, first_started_at AS StartedAt
            FROM referral WHERE id = @referralId
            """, new { referralId });
    }

    [Fact]
    public async Task Commands_KeepTheFirstDecisionAndStart_NotAPassBetweenTeams()
    {
        var w = await ReportWorld.CreateAsync(app);
        w.Now(0, 9);
        var bed = await w.SubmitAsync();
        var declined = await w.SubmitAsync();
        var service = await w.SubmitAsync();
        w.Now(0, 10);
        await w.RedirectAsync(bed);
        var passed = await FirstsAsync(bed);
        w.Now(0, 11);
        var reserved = await w.ReserveBedAsync(bed, w.Beds[0]);
        w.Now(0, 12);
        await w.DeclineAsync(declined, "not-eligible");
        w.Now(0, 13);
        var placement = await w.AcceptAsync(service, "Home First Reablement - North");
        w.Now(0, 14);
        await w.AdmitAsync(reserved);
        w.Now(1, 10);
        await w.StartServiceAsync(placement);
        w.Now(3, 10);
        await w.DischargeFromBedAsync(reserved);

        // Passed to the bed bureau is not a decision: nothing yet.
        Assert.Equal(new Firsts(), passed);
        var first = await FirstsAsync(bed);
        Assert.Equal((w.At(0, 11), "bed-bureau", w.At(0, 14)), (first.DecidedAt, first.Queue, first.StartedAt));
        Assert.StartsWith("accepted: ", first.Decision, StringComparison.Ordinal);
        Assert.Equal(new Firsts { DecidedAt = w.At(0, 12), Decision = "declined: not-eligible", Queue = "coordination" }, await FirstsAsync(declined));
        Assert.Equal(new Firsts { DecidedAt = w.At(0, 13), Decision = "accepted: reablement", Queue = "coordination", StartedAt = w.At(1, 10) },
            await FirstsAsync(service));
    }

    [Fact]
    public async Task ALaterDecisionOrStart_DoesNotMoveTheFirst_AnEarlierOneWrittenLaterDoes()
    {
        var w = await ReportWorld.CreateAsync(app);
        w.Now(0, 9);
        var referral = await w.SubmitAsync();
        var at = w.At(0, 9);
        await using var connection = await app.OpenAsync();
        // Written by hand, then kept as every command keeps them: the bed bureau declines at 11:00, the coordination centre
        // accepts at 12:00 (its task made later); two placements start, on day 1 and day 2.
        async Task Decide(string queue, string status, string decision, DateTimeOffset completed)
        {
            await connection.ExecuteAsync(
                """
                INSERT INTO triage_task (referral_id, queue, status, decision, version, created_at, updated_at, completed_at)
                VALUES (@referral, @queue, @status, @decision, 1, @at, @completed, @completed)
                """, new { referral, queue, status, decision, at, completed });
            await ReferralFirsts.KeepAsync(connection, null, referral);
        }
        async Task Start(DateTimeOffset started)
        {
            await connection.ExecuteAsync(
                """
                INSERT INTO placement (referral_id, service_id, status, start_on, started_at, ended_at, created_at)
                VALUES (@referral, @service, 'ended', @day, @started, @started, @at)
                """, new { referral, service = await w.ServiceIdAsync("Home First Reablement - North"), day = w.Day(0), started, at });
            await ReferralFirsts.KeepAsync(connection, null, referral);
        }
        // The coordination centre's open task from the submission is closed by the referral's own flow; cancel it so the
        // hand-written ones are the only decisions.
        await connection.ExecuteAsync("UPDATE triage_task SET status = 'cancelled', completed_at = @at WHERE referral_id = @referral", new { referral, at });

        await Decide("bed-bureau", "rejected", "declined: needs-met", w.At(0, 11));
        await Start(w.At(1, 9));
        await Decide("coordination", "completed", "accepted: reablement", w.At(0, 12));
        await Start(w.At(2, 9));
        var kept = await FirstsAsync(referral);
        // A task written after those but decided before them (a decision recorded late): the earliest decision counts.
        await Decide("coordination", "completed", "accepted: home-care", w.At(0, 10));
        var earlier = await FirstsAsync(referral);

        Assert.Equal(new Firsts { DecidedAt = w.At(0, 11), Decision = "declined: needs-met", Queue = "bed-bureau", StartedAt = w.At(1, 9) }, kept);
        Assert.Equal(new Firsts { DecidedAt = w.At(0, 10), Decision = "accepted: home-care", Queue = "coordination", StartedAt = w.At(1, 9) }, earlier);
    }
}

public sealed class ReferralFirstsOnSqliteTests(AppFactory app) : ReferralFirstsTests(app), IClassFixture<AppFactory>;

public sealed class ReferralFirstsOnPostgresTests(PostgresAppFactory app) : ReferralFirstsTests(app), IClassFixture<PostgresAppFactory>;
