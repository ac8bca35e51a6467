using System.Data.Common;
using CareCoordination.Domain;
using CareCoordination.Features.Discharges;
using CareCoordination.Features.Reports.CodeLists;

namespace CareCoordination.Demo;

/// <summary>
/// The demo county's discharges, as the flows would have recorded them (issue 13), so that the returns and reports show
/// something: the pathway intended from each triage decision, the discharge when a hospital patient's placement started (with
/// its pathway and destination), and reasons for the wait of those who waited past their discharge ready date, from the list
/// that applied on the day. Planned from the county in memory before its referrals are written, so that each referral is
/// written once with them (a pass of UPDATEs over every referral and its fifteen indexes was a third of PostgreSQL's demo seed:
/// issue 14, cold start); delays only when the code lists are loaded.
/// </summary>
internal static class DemoDischarges
{
    private static readonly string[] StillInHospital = ["submitted", "in-triage", "awaiting-information", "accepted", "redirected"];

    /// <summary>
    /// A referral as written, with its latest placement not cancelled. Ordinal is its place among the referrals written (1 for the
    /// first, its id in a new store): the few choices spread over the county are made by it, so both stores make the same ones.
    /// </summary>
    public sealed record Stay(int Ordinal, string Source, string AskedFor, string Status, DateOnly? ReadyOn, DateTimeOffset? StartedAt,
        string? ServiceKind, string? SiteKind);

    /// <summary>What the flows keep on the referral: the pathway intended, and the discharge (recorded from its placement) if it left.</summary>
    public sealed record Discharge(string? PathwayIntended, DateTimeOffset? LeftAt, string? Destination, string? CareLevel)
    {
        public string? RecordedFrom => LeftAt is null ? null : "placement";

        public string? PathwayAtDischarge => LeftAt is null ? null : PathwayIntended;
    }

    /// <summary>A reason recorded for part of a wait, from the list version that applied on its first day.</summary>
    public sealed record Delay(string ListName, string ListVersion, string Code, DateTimeOffset From, DateTimeOffset? To, DateTimeOffset RecordedAt);

    public static async Task<(Dictionary<TKey, Discharge> Discharges, List<(TKey Referral, Delay Delay)> Delays)> PlanAsync<TKey>(
        DbConnection connection, DbTransaction transaction, DateTimeOffset now, IEnumerable<(TKey Referral, Stay Stay)> stays)
        where TKey : notnull
    {
        var lists = new Dictionary<DateOnly, CodeListVersion?>();
        var discharges = new Dictionary<TKey, Discharge>();
        var delays = new List<(TKey, Delay)>();
        foreach (var (key, r) in stays)
        {
            var intended = r.ServiceKind is { } kind ? Discharges.IntendedForService(kind) : r.SiteKind is not null ? Discharges.IntendedForBed(r.AskedFor) : null;
            DateTimeOffset? left = null;
            string? destination = null;
            string? careLevel = null;
            if (ReferralCodes.IsHospital(r.Source) && r.StartedAt is { } started && (r.ReadyOn is null || Day(started) >= r.ReadyOn))
            {
                left = started;
                // Mostly what the placement implies; a few of the other subtypes, so that every row of the return has someone.
                destination = r.ServiceKind is not null ? (r.Ordinal % 15 == 0 ? "temporary-accommodation" : r.Ordinal % 23 == 0 ? "hospice-at-home" : "home")
                    : r.SiteKind == "care-home" ? (r.Ordinal % 11 == 0 ? "designated-setting" : "care-home") : "community-hospital";
                careLevel = r.Ordinal % 6 == 0 ? "restart" : r.Ordinal % 9 == 0 && destination == "home" ? "return-to-same-level" : "new";
            }
            discharges[key] = new Discharge(intended, left, destination, careLevel);

            // Waiting past the discharge ready date: from the day after it, a reason; for a long wait, a second from halfway.
            var waitedUntil = left ?? (StillInHospital.Contains(r.Status) ? now : (DateTimeOffset?)null);
            if (!ReferralCodes.IsHospital(r.Source) || r.ReadyOn is not { } ready || waitedUntil is not { } until || Day(until).DayNumber - ready.DayNumber < 2)
            {
                continue;
            }
            var from = LondonMorning(ready.AddDays(1));
            var second = Day(until).DayNumber - ready.DayNumber >= 6 && r.Ordinal % 2 == 0 ? from.AddDays((until - from).Days / 2) : (DateTimeOffset?)null;
            foreach (var (at, to, pick) in new[] { (from, second ?? left, r.Ordinal), (second ?? default, left, r.Ordinal / 2 + 7) }.Where(d => d.Item1 != default))
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
                var item = list.Items[pick % list.Items.Count];
                delays.Add((key, new Delay(list.Name, list.Version, item.Code, at, to, at.AddHours(1) > now ? now : at.AddHours(1))));
            }
        }
        return (discharges, delays);
    }

    private static DateOnly Day(DateTimeOffset at) => DateOnly.FromDateTime(LondonTime.ToLocal(at).DateTime);

    private static DateTimeOffset LondonMorning(DateOnly day)
    {
        var local = day.ToDateTime(new TimeOnly(10, 0));
        return new DateTimeOffset(local, LondonTime.Zone.GetUtcOffset(local)).ToUniversalTime();
    }
}
