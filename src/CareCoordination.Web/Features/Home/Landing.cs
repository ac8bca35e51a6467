using System.Data.Common;
using CareCoordination.Auth;
using CareCoordination.Domain;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Mediator;

namespace CareCoordination.Features.Home;

/// <summary>What each role sees first after signing in: the figures that tell them where to start.</summary>
public static class Landing
{
    [AllowRoles(Roles.Referrer, Roles.Coordinator, Roles.BedBureau, Roles.Manager, Roles.Admin)]
    public sealed record Query : IQuery<Result>;

    public sealed record Result(string Title, string Purpose, IReadOnlyList<Tile> Tiles);

    public sealed record Tile(string Label, long Value, string Hint);

    private sealed record Count
    {
        public string Key { get; init; } = "";
        public long N { get; init; }
    }

    public sealed class Handler(Database database, Work work, TimeProvider clock) : IQueryHandler<Query, Result>
    {
        public async ValueTask<Result> Handle(Query query, CancellationToken cancellationToken)
        {
            var actor = work.Scope.Actor;
            await using var connection = await database.OpenAsync(cancellationToken);
            return actor.Role switch
            {
                Roles.Referrer => await ReferrerAsync(connection, actor.OrganisationId ?? 0),
                Roles.Coordinator => await QueueAsync(connection, "coordination", "Coordination centre",
                    "Every referral waiting for triage, home first. Take one to work it."),
                Roles.BedBureau => await BedBureauAsync(connection),
                Roles.Manager => await ManagerAsync(connection),
                _ => await AdminAsync(connection),
            };
        }

        private static async Task<Result> ReferrerAsync(DbConnection connection, long organisationId)
        {
            var byStatus = await CountsAsync(connection,
                "SELECT status AS Key, COUNT(*) AS N FROM referral WHERE organisation_id = @organisationId GROUP BY status", new { organisationId });
            var organisation = await connection.ExecuteScalarAsync<string>("SELECT name FROM organisation WHERE id = @organisationId", new { organisationId });
            var drafts = await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM referral_draft WHERE organisation_id = @organisationId", new { organisationId });
            return new Result($"Referrals from {organisation}", "Your organisation's referrals and what has happened to each.",
            [
                new("Drafts", drafts, "Started, not yet sent"),
                new("Waiting for triage", byStatus.Get("submitted") + byStatus.Get("in-triage"), "With the coordination centre or bed bureau"),
                new("Need your information", byStatus.Get("awaiting-information"), "The coordinator has asked you something"),
                new("Accepted", byStatus.Get("accepted"), "A service has said yes; start date set"),
                new("Placed", byStatus.Get("placed"), "Support has started"),
            ]);
        }

        private async Task<Result> QueueAsync(DbConnection connection, string queue, string title, string purpose)
        {
            var byStatus = await CountsAsync(connection,
                "SELECT status AS Key, COUNT(*) AS N FROM triage_task WHERE queue = @queue GROUP BY status", new { queue });
            var breached = await connection.ExecuteScalarAsync<long>(
                "SELECT COUNT(*) FROM triage_task WHERE queue = @queue AND status = 'requested' AND created_at < @since",
                new { queue, since = clock.GetUtcNow().AddMinutes(-30) });
            return new Result(title, purpose,
            [
                new("Waiting to be taken", byStatus.Get("requested"), "Nobody holds these yet"),
                new("Being worked", byStatus.Get("in-progress"), "Held by a coordinator"),
                new("Waiting for the referrer", byStatus.Get("on-hold"), "Information asked for; the clock is paused"),
                new("Untaken over 30 minutes", breached, "Past the triage target"),
            ]);
        }

        private async Task<Result> BedBureauAsync(DbConnection connection)
        {
            var queue = await QueueAsync(connection, "bed-bureau", "Bed bureau", "Every community bed across all sites, and the referrals that need one.");
            var beds = await CountsAsync(connection, "SELECT status AS Key, COUNT(*) AS N FROM bed GROUP BY status", null);
            return queue with
            {
                Tiles = [.. queue.Tiles.Take(2), new("Beds available", beds.Get("available"), "Ready to reserve now"), new("Beds reserved", beds.Get("reserved"), "Held for a referral"), new("Beds closed", beds.Get("closed"), "Infection or staffing")],
            };
        }

        private async Task<Result> ManagerAsync(DbConnection connection)
        {
            var beds = await CountsAsync(connection, "SELECT status AS Key, COUNT(*) AS N FROM bed GROUP BY status", null);
            var open = beds.Values.Sum() - beds.Get("closed");
            var occupancy = open == 0 ? 0 : (long)Math.Round(100.0 * beds.Get("occupied") / open);
            var today = LondonTime.StartOfToday(clock);
            var referralsToday = await connection.ExecuteScalarAsync<long>(
                "SELECT COUNT(*) FROM referral WHERE submitted_at >= @today", new { today });
            var optimisedNotPlaced = await connection.ExecuteScalarAsync<long>(
                """
                SELECT COUNT(*) FROM referral
                WHERE medically_optimised_on <= @date AND status IN ('submitted', 'in-triage', 'awaiting-information', 'accepted', 'redirected')
                """, new { date = LondonTime.Today(clock) });
            return new Result("Capacity and flow", "Capacity, flow and delays across the county, as they change.",
            [
                new("Bed occupancy %", occupancy, "Occupied beds of those open"),
                new("Beds available", beds.Get("available"), "Across every site"),
                new("Referrals today", referralsToday, "Submitted since midnight"),
                new("Medically optimised, not placed", optimisedNotPlaced, "Each is a hospital bed day lost"),
            ]);
        }

        private static async Task<Result> AdminAsync(DbConnection connection)
        {
            var counts = await CountsAsync(connection,
                """
                SELECT 'organisations' AS Key, COUNT(*) AS N FROM organisation
                UNION ALL SELECT 'staff', COUNT(*) FROM staff_user
                UNION ALL SELECT 'sites', COUNT(*) FROM site
                UNION ALL SELECT 'beds', COUNT(*) FROM bed
                UNION ALL SELECT 'services', COUNT(*) FROM service
                UNION ALL SELECT 'partners', COUNT(*) FROM partner_client
                """, null);
            return new Result("Administration", "Organisations, services, sites, wards, beds, users and partner credentials.",
            [
                new("Organisations", counts.Get("organisations"), "Referrers, centres and providers"),
                new("Staff accounts", counts.Get("staff"), "Local and single sign-on"),
                new("Sites", counts.Get("sites"), "Community hospitals and care homes"),
                new("Beds", counts.Get("beds"), "Across every ward"),
                new("Services", counts.Get("services"), "With daily capacity"),
                new("Partner systems", counts.Get("partners"), "FHIR clients with credentials"),
            ]);
        }

        private static async Task<Dictionary<string, long>> CountsAsync(DbConnection connection, string sql, object? parameters) =>
            (await connection.QueryAsync<Count>(sql, parameters)).ToDictionary(c => c.Key, c => c.N);
    }

    private static long Get(this Dictionary<string, long> counts, string key) => counts.GetValueOrDefault(key);
}
