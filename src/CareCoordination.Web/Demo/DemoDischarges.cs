using System.Data.Common;
using CareCoordination.Domain;
using CareCoordination.Features.Discharges;
using CareCoordination.Features.Reports.CodeLists;
using Dapper;

namespace CareCoordination.Demo;

/// <summary>
/// The demo county's discharges, as the flows would have recorded them (issue 13), so that the returns and reports show
/// something: the pathway intended from each triage decision, the discharge when a hospital patient's placement started (with
/// its pathway and destination), and reasons for the wait of those who waited past their discharge ready date, from the list
/// that applied on the day. Written after the county, in its transaction; delays only when the code lists are loaded.
/// </summary>
internal static class DemoDischarges
{
    private static readonly string[] StillInHospital = ["submitted", "in-triage", "awaiting-information", "accepted", "redirected"];

    private sealed record Row
    {
        public long Id { get; init; }
        public string Source { get; init; } = "";
        public string AskedFor { get; init; } = "";
        public string Status { get; init; } = "";
        public DateOnly? ReadyOn { get; init; }
        public DateTimeOffset? StartedAt { get; init; }
        public string? ServiceKind { get; init; }
        public string? SiteKind { get; init; }
    }

    public static async Task WriteAsync(DbConnection connection, DbTransaction transaction, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var rows = await connection.QueryAsync<Row>(new CommandDefinition(
            """
            SELECT r.id AS Id, r.source AS Source, r.pathway AS AskedFor, r.status AS Status, r.medically_optimised_on AS ReadyOn,
                   pl.started_at AS StartedAt, s.kind AS ServiceKind, st.kind AS SiteKind
            FROM referral r
            LEFT JOIN placement pl ON pl.id = (SELECT MAX(id) FROM placement WHERE referral_id = r.id AND status <> 'cancelled')
            LEFT JOIN service s ON s.id = pl.service_id
            LEFT JOIN bed b ON b.id = pl.bed_id
            LEFT JOIN ward w ON w.id = b.ward_id
            LEFT JOIN site st ON st.id = w.site_id
            ORDER BY r.id
            """, transaction: transaction, cancellationToken: cancellationToken));
        var recorder = await connection.QueryFirstOrDefaultAsync<(long Id, string Name)>(new CommandDefinition(
            "SELECT id, display_name FROM staff_user WHERE role = 'coordinator' ORDER BY id", transaction: transaction, cancellationToken: cancellationToken));
        var lists = new Dictionary<DateOnly, CodeListVersion?>();
        var intentions = new List<object>();
        var discharges = new List<object>();
        var delays = new List<object>();
        foreach (var r in rows)
        {
            var intended = r.ServiceKind is { } kind ? Discharges.IntendedForService(kind) : r.SiteKind is not null ? Discharges.IntendedForBed(r.AskedFor) : null;
            DateTimeOffset? left = null;
            string? destination = null;
            string? careLevel = null;
            if (ReferralCodes.IsHospital(r.Source) && r.StartedAt is { } started && (r.ReadyOn is null || Day(started) >= r.ReadyOn))
            {
                left = started;
                // Mostly what the placement implies; a few of the other subtypes, so that every row of the return has someone.
                destination = r.ServiceKind is not null ? (r.Id % 15 == 0 ? "temporary-accommodation" : r.Id % 23 == 0 ? "hospice-at-home" : "home")
                    : r.SiteKind == "care-home" ? (r.Id % 11 == 0 ? "designated-setting" : "care-home") : "community-hospital";
                careLevel = r.Id % 6 == 0 ? "restart" : r.Id % 9 == 0 && destination == "home" ? "return-to-same-level" : "new";
            }
            if (intended is not null)
            {
                intentions.Add(new { r.Id, intended });
            }
            if (left is not null)
            {
                discharges.Add(new { r.Id, left, pathway = intended, destination, careLevel });
            }

            // Waiting past the discharge ready date: from the day after it, a reason; for a long wait, a second from halfway.
            var waitedUntil = left ?? (StillInHospital.Contains(r.Status) ? now : (DateTimeOffset?)null);
            if (!ReferralCodes.IsHospital(r.Source) || r.ReadyOn is not { } ready || waitedUntil is not { } until || Day(until).DayNumber - ready.DayNumber < 2)
            {
                continue;
            }
            var from = LondonMorning(ready.AddDays(1));
            var second = Day(until).DayNumber - ready.DayNumber >= 6 && r.Id % 2 == 0 ? from.AddDays((until - from).Days / 2) : (DateTimeOffset?)null;
            foreach (var (at, to, pick) in new[] { (from, second ?? left, r.Id), (second ?? default, left, r.Id / 2 + 7) }.Where(d => d.Item1 != default))
            {
                var day = Day(at);
                if (!lists.TryGetValue(day, out var list))
                {
                    lists[day] = list = await CodeListVersions.OnAsync(connection, transaction, CodeListVersions.DelayReasons, day);
                }
                if (list is null || list.Items.Count == 0)
                {
                    break;
                }
                var item = list.Items[(int)(pick % list.Items.Count)];
                delays.Add(new
                {
                    ReferralId = r.Id, list.Name, list.Version, item.Code, from = at, to, UserId = recorder.Id == 0 ? (long?)null : recorder.Id,
                    RecordedBy = recorder.Name ?? "Coordination centre", RecordedAt = at.AddHours(1) > now ? now : at.AddHours(1),
                });
            }
        }
        // On PostgreSQL each of these goes in a few round trips, not one per row (SeedWrites).
        var writes = new SeedWrites(connection, transaction, cancellationToken);
        await writes.ExecuteEachAsync("UPDATE referral SET pathway_intended = @intended WHERE id = @Id", intentions);
        await writes.ExecuteEachAsync(
            """
            UPDATE referral SET discharged_at = @left, discharge_recorded_from = 'placement', pathway_at_discharge = @pathway,
                destination_at_discharge = @destination, destination_care_level = @careLevel
            WHERE id = @Id
            """, discharges);
        await writes.InsertAsync(
            """
            INSERT INTO discharge_delay (referral_id, list_name, list_version, code, from_at, to_at, recorded_by_user_id, recorded_by_name, recorded_at)
            VALUES (@ReferralId, @Name, @Version, @Code, @from, @to, @UserId, @RecordedBy, @RecordedAt)
            """, delays, d => d);
    }

    private static DateOnly Day(DateTimeOffset at) => DateOnly.FromDateTime(LondonTime.ToLocal(at).DateTime);

    private static DateTimeOffset LondonMorning(DateOnly day)
    {
        var local = day.ToDateTime(new TimeOnly(10, 0));
        return new DateTimeOffset(local, LondonTime.Zone.GetUtcOffset(local)).ToUniversalTime();
    }
}
