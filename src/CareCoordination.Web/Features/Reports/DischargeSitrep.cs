using System.Data.Common;
using CareCoordination.Auth;
using CareCoordination.Domain;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Reports;

/// <summary>
/// The acute discharge situation report, in its published wording, counted from the record for each London day of
/// a period: people who no longer meet the criteria to reside, how many were discharged that day and how many remain;
/// the additional bed days of those remaining by their length of stay (7, 14, 21 days or more); why those remaining with
/// a length of stay of 7 and 14 days or more are still waiting; discharges by pathway and destination; by referring trust, site and ward; and the
/// weekly view, Monday to Sunday. Definitions: docs/reports.md#discharge-sitrep.
/// </summary>
public static partial class DischargeSitrep
{
    /// <summary>A year of days at most: a longer period is a different question (the trend), and a heavy one.</summary>
    public const int MaxDays = 366;

    [AllowRoles(Roles.Manager, Roles.Admin)]
    public sealed record Query(ReportFilter Filter) : IQuery<Result>;

    public sealed class Validator : AbstractValidator<Query>
    {
        public Validator(TimeProvider clock)
        {
            RuleFor(q => q.Filter).SetValidator(new ReportFilter.Rules());
            RuleFor(q => q.Filter).SetValidator(new DischargePeriod(clock));
        }
    }

    /// <summary>
    /// A day not yet lived has no discharges, so a period ending after today would show everyone still waiting as
    /// remaining: refused rather than shown. Both discharge reports apply it.
    /// </summary>
    public sealed class DischargePeriod : AbstractValidator<ReportFilter>
    {
        public DischargePeriod(TimeProvider clock)
        {
            RuleFor(f => f.To).Must(to => to <= LondonTime.Today(clock)).WithMessage("The period cannot end after today.");
            RuleFor(f => f.Days).LessThanOrEqualTo(MaxDays).WithMessage($"Choose a period of at most {MaxDays} days.");
        }
    }

    public sealed record Result(DateOnly From, DateOnly To, IReadOnlyList<Day> Days, IReadOnlyList<Week> Weeks,
        IReadOnlyList<Reason> Reasons, IReadOnlyList<Destination> Destinations, IReadOnlyList<Place> Places);

    /// <summary>
    /// One London day. Remaining7Plus etc. count the people still waiting at the day's end whose length of stay was 7
    /// (14, 21) days or more that day (Stay.LengthOfStayOn); each of them is one additional bed day that day.
    /// </summary>
    public sealed record Day(DateOnly Date, int NoLongerMeetCriteria, int Discharged, int Remaining,
        int Remaining7Plus, int Remaining14Plus, int Remaining21Plus, PathwayCounts DischargedByPathway)
    {
        public string Label => Date.ToString("d MMM", System.Globalization.CultureInfo.GetCultureInfo("en-GB"));
    }

    /// <summary>Discharges by the pathway the person left on; NotRecorded when nobody recorded it.</summary>
    public sealed record PathwayCounts(int Pathway0, int Pathway1, int Pathway2, int Pathway3, int NotRecorded)
    {
        public static PathwayCounts Of(IEnumerable<string?> pathways)
        {
            var list = pathways.ToList();
            return new(list.Count(p => p == "0"), list.Count(p => p == "1"), list.Count(p => p == "2"), list.Count(p => p == "3"),
                list.Count(p => p is not ("0" or "1" or "2" or "3")));
        }

        public IEnumerable<(string Pathway, int Count)> Named() =>
            [("0", Pathway0), ("1", Pathway1), ("2", Pathway2), ("3", Pathway3), ("not recorded", NotRecorded)];

        public static PathwayCounts Sum(IEnumerable<PathwayCounts> counts)
        {
            var list = counts.ToList();
            return new(list.Sum(c => c.Pathway0), list.Sum(c => c.Pathway1), list.Sum(c => c.Pathway2), list.Sum(c => c.Pathway3), list.Sum(c => c.NotRecorded));
        }
    }

    /// <summary>
    /// A week, Monday to Sunday, cut to the period, as the published weekly series reports it: the counts of people are
    /// averages per day (one decimal), discharges and additional bed days are totals over the week's days.
    /// </summary>
    public sealed record Week(DateOnly From, DateOnly To, int Days, double AverageNoLongerMeetCriteria, double AverageDischarged,
        double AverageRemaining, int Discharged, int AdditionalBedDays, int AdditionalBedDays7Plus, int AdditionalBedDays14Plus,
        int AdditionalBedDays21Plus, PathwayCounts DischargedByPathway);

    /// <summary>
    /// Why people still waiting at the end of the period's last day are waiting, under the list version each reason
    /// was recorded from (its family and item labels in that version). Code is empty for "no reason recorded".
    /// </summary>
    public sealed record Reason(string ListVersion, string Family, string FamilyLabel, string Code, string Label, int Waiting7Plus, int Waiting14Plus);

    /// <summary>Discharges in the period by destination and whether the care there is new, restarted or as before.</summary>
    public sealed record Destination(string Code, string Label, string CareLevel, string CareLevelLabel, int Discharged);

    /// <summary>
    /// A referring trust, hospital site and ward, as the referral recorded them (Site empty: none recorded), over the period: the people who no longer met the
    /// criteria on any day of it, discharged in it, still waiting at its end (and of those, with a length of stay of 7,
    /// 14, 21 days or more), and the additional bed days they spent in hospital within it.
    /// </summary>
    public sealed record Place(long TrustId, string Trust, string Site, string Ward, int NoLongerMeetCriteria, int Discharged, int RemainingAtEnd,
        int RemainingAtEnd7Plus, int RemainingAtEnd14Plus, int RemainingAtEnd21Plus, int AdditionalBedDays);

    public static IReadOnlyList<Code> Destinations { get; } =
    [
        new("home", "Home (usual place of residence)"),
        new("temporary-accommodation", "Temporary accommodation"),
        new("hospice-at-home", "Hospice at home"),
        new("care-home", "Care home"),
        new("community-hospital", "Community hospital"),
        new("designated-setting", "Designated setting"),
    ];

    public static IReadOnlyList<Code> CareLevels { get; } =
    [
        new("new", "New care"),
        new("restart", "Restarted care"),
        new("return-to-same-level", "Return to the same level of care"),
    ];

    private const string NotRecorded = "Not recorded";

    /// <summary>The figures' names, the same on the page, in its definitions and in the CSV.</summary>
    public static class Figure
    {
        public const string NoLongerMeet = "No longer meet the criteria to reside";
        public const string Discharged = "Discharged";
        public const string Remaining = "Remaining in hospital";
        public const string Remaining7 = "Remaining, length of stay 7+ days";
        public const string Remaining14 = "Remaining, length of stay 14+ days";
        public const string Remaining21 = "Remaining, length of stay 21+ days";
        public const string AverageNoLongerMeet = "Average per day: no longer meet the criteria to reside";
        public const string AverageDischarged = "Average per day: discharged";
        public const string AverageRemaining = "Average per day: remaining in hospital";
        public const string BedDays = "Additional bed days";
        public const string BedDays7 = "Additional bed days, length of stay 7+ days";
        public const string BedDays14 = "Additional bed days, length of stay 14+ days";
        public const string BedDays21 = "Additional bed days, length of stay 21+ days";
        public const string Waiting7 = "Length of stay 7+ days, by delay reason";
        public const string Waiting14 = "Length of stay 14+ days, by delay reason";
        public const string ByDestination = "Discharged, by destination";
        public const string Pathway = "Discharged on pathway";

        public static string OnPathway(string pathway) => $"{Pathway} {pathway}";
    }

    public static IReadOnlyList<ReportDefinition> Definitions { get; } =
    [
        new(Figure.NoLongerMeet, "People referred from hospital whose discharge ready date (the day they no longer met the criteria to reside: the "
            + "referral's medically optimised date) was on or before the day, and who were in hospital at the start of the day or were discharged "
            + "on it. With no discharge recorded, a person counts as still in hospital while their referral is open (sent, in triage, "
            + "awaiting information, accepted or redirected); a cancelled, declined, placed or completed referral with no discharge "
            + "recorded is left out, as nobody will record when that person left."),
        new(Figure.Discharged, "Of those, the people discharged from hospital that day (the London day of the recorded discharge)."),
        new(Figure.Remaining, "Of those, the people still in hospital at the end of the day: no longer meeting the criteria minus discharged."),
        new("Remaining, length of stay 7+ / 14+ / 21+ days", "Of those remaining, the people who had been in hospital 7, 14 or 21 days or more "
            + "that day: days since the day of admission the referral gave (the form's \"admitted on\", or the partner's hospital-stay admitted "
            + "date or Encounter.period.start). Where no admission was recorded, days since the discharge ready date: the least the stay "
            + "can have been, so such a person may be left out of a group they belong to but is never put in one they do not."),
        new(Figure.BedDays, "Each person remaining at the end of a day occupied a bed that night that they no longer needed: one additional bed "
            + "day. A day's additional bed days are its people remaining (and, for 7+, 14+, 21+, those remaining that long); a week's are the sum."),
        new("Weekly view", "Weeks run Monday to Sunday, cut to the period. As the published weekly series does, the counts of people are "
            + "averages per day (to one decimal) and discharges and additional bed days are totals over the week."),
        new("Delay reasons (7+ and 14+)", "For the people remaining at the end of the period's last day with a length of stay of 7 (14) days or more, the "
            + "delay reason that held then, under the family and words of the code list version it was chosen from (a reason recorded under the "
            + "2023 list shows the 2023 words). \"No reason recorded\" when none held."),
        new("Discharges by pathway and destination", "Discharges in the period by the pathway the person left on (0 to 3, as recorded at "
            + "discharge) and by destination and whether the care there is new, restarted or a return to the level before admission."),
        new("By referring trust, site and ward", "The organisation that sent the referral, the hospital site the person was in (chosen on the "
            + "form from the trust's sites, the trust's only site, or a partner's ODS site code; \"Not recorded\" otherwise) and the ward the "
            + "referral named. No longer meeting the criteria: people counted on any day of the period; remaining: at the end of its last day; "
            + "additional bed days: within the period."),
        new("Locality", "Where the person lives: the locality of their postcode."),
    ];

    /// <summary>
    /// The CSV: one row per figure ("long" form, ready for a pivot table). Section says which table; From and To the day or
    /// week; Trust and Ward for the breakdown; Group and Item the reason or destination; Figure as named on the page.
    /// </summary>
    [CsvHelper.CsvRecord]
    public sealed partial record CsvRow(string Section, DateOnly From, DateOnly To, string Trust, string Site, string Ward, string Group, string Item, string Figure, decimal Value);

    /// <summary>The CSV's section for the breakdown by referring trust, hospital site and ward.</summary>
    public const string BySiteSection = "By trust, site and ward";

    public static IEnumerable<CsvRow> CsvRows(Result result)
    {
        foreach (var d in result.Days)
        {
            CsvRow Row(string figure, int value) => new("Daily", d.Date, d.Date, "", "", "", "", "", figure, value);
            yield return Row(Figure.NoLongerMeet, d.NoLongerMeetCriteria);
            yield return Row(Figure.Discharged, d.Discharged);
            yield return Row(Figure.Remaining, d.Remaining);
            yield return Row(Figure.Remaining7, d.Remaining7Plus);
            yield return Row(Figure.Remaining14, d.Remaining14Plus);
            yield return Row(Figure.Remaining21, d.Remaining21Plus);
            foreach (var (pathway, count) in d.DischargedByPathway.Named())
            {
                yield return Row(Figure.OnPathway(pathway), count);
            }
        }
        foreach (var w in result.Weeks)
        {
            CsvRow Row(string figure, decimal value) => new("Weekly", w.From, w.To, "", "", "", "", "", figure, value);
            yield return Row(Figure.AverageNoLongerMeet, (decimal)w.AverageNoLongerMeetCriteria);
            yield return Row(Figure.AverageDischarged, (decimal)w.AverageDischarged);
            yield return Row(Figure.AverageRemaining, (decimal)w.AverageRemaining);
            yield return Row(Figure.Discharged, w.Discharged);
            yield return Row(Figure.BedDays, w.AdditionalBedDays);
            yield return Row(Figure.BedDays7, w.AdditionalBedDays7Plus);
            yield return Row(Figure.BedDays14, w.AdditionalBedDays14Plus);
            yield return Row(Figure.BedDays21, w.AdditionalBedDays21Plus);
            foreach (var (pathway, count) in w.DischargedByPathway.Named())
            {
                yield return Row(Figure.OnPathway(pathway), count);
            }
        }
        foreach (var r in result.Reasons)
        {
            var group = r.Code == "" ? "" : $"{r.ListVersion}: {r.FamilyLabel}";
            var item = r.Code == "" ? r.Label : $"{r.Code} {r.Label}";
            yield return new("Delay reasons", result.To, result.To, "", "", "", group, item, Figure.Waiting7, r.Waiting7Plus);
            yield return new("Delay reasons", result.To, result.To, "", "", "", group, item, Figure.Waiting14, r.Waiting14Plus);
        }
        foreach (var d in result.Destinations)
        {
            yield return new("Destinations", result.From, result.To, "", "", "", d.Label, d.CareLevelLabel, Figure.ByDestination, d.Discharged);
        }
        foreach (var p in result.Places)
        {
            CsvRow Row(string figure, int value) => new(BySiteSection, result.From, result.To, p.Trust, p.Site, p.Ward, "", "", figure, value);
            yield return Row(Figure.NoLongerMeet, p.NoLongerMeetCriteria);
            yield return Row(Figure.Discharged, p.Discharged);
            yield return Row(Figure.Remaining, p.RemainingAtEnd);
            yield return Row(Figure.Remaining7, p.RemainingAtEnd7Plus);
            yield return Row(Figure.Remaining14, p.RemainingAtEnd14Plus);
            yield return Row(Figure.Remaining21, p.RemainingAtEnd21Plus);
            yield return Row(Figure.BedDays, p.AdditionalBedDays);
        }
    }

    /// <summary>A person who no longer met the criteria to reside at some point the period can see.</summary>
    private sealed record Stay
    {
        public long TrustId { get; init; }
        public string Trust { get; init; } = "";
        public string? Ward { get; init; }

        /// <summary>The hospital site's id (HospitalSites), named once the stays are read.</summary>
        public long? SiteId { get; init; }

        public DateOnly Ready { get; init; }

        /// <summary>The day of admission, if the referral gave one.</summary>
        public DateOnly? AdmittedOn { get; init; }

        public long Id { get; init; }
        public DateTimeOffset? DischargedAt
        {
            get;
            // The London day is asked for again and again while counting: worked out once, when the row is read.
            init
            {
                field = value;
                DischargedOn = value is { } at ? LondonTime.DateOf(at) : null;
            }
        }

        public string? Pathway { get; init; }
        public string? Destination { get; init; }
        public string? CareLevel { get; init; }

        public DateOnly? DischargedOn { get; private init; }

        /// <summary>In hospital at some time of the day, having no longer met the criteria by then (or being discharged that day).</summary>
        public bool NoLongerMeetsCriteriaOn(DateOnly day) => Ready <= day && (DischargedOn is not { } left || left >= day);

        public bool DischargedOnDay(DateOnly day) => DischargedOn == day && Ready <= day;

        public bool RemainsAtEndOf(DateOnly day) => NoLongerMeetsCriteriaOn(day) && DischargedOn != day;

        /// <summary>
        /// The day the length of stay counts from: the admission, or with none recorded the discharge ready date (the stay was
        /// at least that long). A person is admitted before they are ready; an admission recorded after it is not believed.
        /// </summary>
        public DateOnly StayFrom => AdmittedOn is { } admitted && admitted < Ready ? admitted : Ready;

        /// <summary>Days in hospital as at the day (the day of admission is day 0, as for the discharge ready date).</summary>
        public int LengthOfStayOn(DateOnly day) => day.DayNumber - StayFrom.DayNumber;
    }

    private sealed record OpenReason
    {
        public long ReferralId { get; init; }
        public DateTimeOffset FromAt { get; init; }
        public string ListVersion { get; init; } = "";
        public string Code { get; init; } = "";
        public string Family { get; init; } = "";
        public string FamilyLabel { get; init; } = "";
        public string Label { get; init; } = "";
        public int SortOrder { get; init; }
    }

    public sealed class Handler(Database database) : IQueryHandler<Query, Result>
    {
        public async ValueTask<Result> Handle(Query query, CancellationToken cancellationToken)
        {
            await using var connection = await database.OpenForReportAsync(cancellationToken);
            var filter = query.Filter;
            var stays = await StaysAsync(connection, filter, database.Provider);
            var days = DaysOf(stays, filter);

            var last = filter.To;
            var endOfLast = filter.EndUtc;
            // The reasons holding at the end of the last day: those still open, and those that ended later; two halves, each
            // reached by its own index (the open ones, and 0026's by end), rather than every reason ever recorded.
            const string Reason = """
                SELECT d.referral_id AS ReferralId, d.from_at AS FromAt, d.list_version AS ListVersion, d.code AS Code, i.family AS Family,
                       i.family_label AS FamilyLabel, i.label AS Label, i.sort_order AS SortOrder
                FROM discharge_delay d
                JOIN code_list_item i ON i.list_name = d.list_name AND i.list_version = d.list_version AND i.code = d.code
                WHERE d.from_at < @endOfLast AND
                """;
            var reasons = (await connection.QueryAsync<OpenReason>(
                $"{Reason} d.to_at IS NULL\nUNION ALL\n{Reason} d.to_at >= @endOfLast", new { endOfLast }))
                // One reason holds at a time; should two overlap in the record, the later one speaks.
                .GroupBy(r => r.ReferralId).ToDictionary(g => g.Key, g => g.MaxBy(r => r.FromAt)!);

            return new Result(filter.From, filter.To, days, Weeks(days), Reasons(stays, reasons, last),
                DestinationsOf(stays.Where(s => s.DischargedOn is { } on && on >= filter.From && on <= filter.To && s.Ready <= on)),
                Places(stays, filter, await SiteNamesAsync(connection, cancellationToken)));
        }

        /// <summary>
        /// Everyone with a discharge ready date on or before the period's end who was still in hospital at its start: those
        /// discharged since, and those with no discharge recorded whose referral is still open (as the capacity board counts
        /// people waiting). Any other referral without a discharge (cancelled, declined, or placed and completed before
        /// discharges were recorded) is left out: nobody will record when that person left. Two parts, each reached by its
        /// own index, rather than one OR that would walk every ready date in the store's history. The referrals come first
        /// (CROSS JOIN keeps SQLite to that order): with the statistics PRAGMA optimize leaves, SQLite otherwise read every
        /// organisation's referrals to find a month's discharges (4 s on a 1M-referral store, issue 13).
        /// The locality is where the person lives (their postcode's locality), as the coordination centres work.
        /// </summary>
        private static async Task<List<Stay>> StaysAsync(DbConnection connection, ReportFilter filter, StoreProvider provider)
        {
            var narrowing = filter.Narrowing(provider);
            var sql = $"""
                SELECT r.id AS Id, o.id AS TrustId, o.name AS Trust, r.hospital_site_id AS SiteId, r.ward AS Ward, r.medically_optimised_on AS Ready, r.admitted_on AS AdmittedOn,
                       r.discharged_at AS DischargedAt, r.pathway_at_discharge AS Pathway, r.destination_at_discharge AS Destination,
                       r.destination_care_level AS CareLevel
                FROM referral r CROSS JOIN organisation o
                WHERE o.id = r.organisation_id AND r.discharged_at >= @StartUtc AND r.medically_optimised_on <= @To AND r.status <> 'draft'{narrowing}
                UNION ALL
                SELECT r.id, o.id, o.name, r.hospital_site_id, r.ward, r.medically_optimised_on, r.admitted_on, r.discharged_at, r.pathway_at_discharge,
                       r.destination_at_discharge, r.destination_care_level
                FROM referral r CROSS JOIN organisation o
                WHERE o.id = r.organisation_id AND r.discharged_at IS NULL AND r.medically_optimised_on <= @To
                  AND r.status IN ('submitted', 'in-triage', 'awaiting-information', 'accepted', 'redirected'){narrowing}
                """;
            return (await connection.QueryAsync<Stay>(sql, new { filter.To, filter.StartUtc, filter.Trust, filter.Locality })).ToList();
        }

        /// <summary>
        /// Each day's figures, as <see cref="Stay"/>'s rules define them, counted in one pass over the stays rather than one
        /// pass a day: every rule is a run of days (no longer meeting the criteria from the ready date to the discharge day,
        /// remaining to the day before it, 7+ from whichever is later of the ready date and the seventh day of the stay), so each stay adds its runs, cut to the period,
        /// to running totals (a difference array), and the day's figure is the sum so far. A year over a large store is then
        /// hundreds of thousands of steps, not a hundred million.
        /// </summary>
        private static List<Day> DaysOf(List<Stay> stays, ReportFilter filter)
        {
            var (first, last) = (filter.From.DayNumber, filter.To.DayNumber);
            var length = last - first + 1;
            int[] Runs() => new int[length + 1];
            var (noLonger, remaining, remaining7, remaining14, remaining21) = (Runs(), Runs(), Runs(), Runs(), Runs());
            var discharged = new int[length];
            var byPathway = new int[length, 5];
            void Add(int[] runs, int from, int to)
            {
                (from, to) = (Math.Max(from, first), Math.Min(to, last));
                if (from <= to)
                {
                    runs[from - first]++;
                    runs[to - first + 1]--;
                }
            }
            foreach (var stay in stays)
            {
                var ready = stay.Ready.DayNumber;
                var stayFrom = stay.StayFrom.DayNumber;
                var left = stay.DischargedOn?.DayNumber;
                Add(noLonger, ready, left ?? last);
                var lastNight = left is { } l ? l - 1 : last;
                Add(remaining, ready, lastNight);
                Add(remaining7, Math.Max(ready, stayFrom + 7), lastNight);
                Add(remaining14, Math.Max(ready, stayFrom + 14), lastNight);
                Add(remaining21, Math.Max(ready, stayFrom + 21), lastNight);
                if (left is { } day && ready <= day && day >= first && day <= last)
                {
                    discharged[day - first]++;
                    byPathway[day - first, stay.Pathway switch { "0" => 0, "1" => 1, "2" => 2, "3" => 3, _ => 4 }]++;
                }
            }
            var days = new List<Day>(length);
            var (n, r, r7, r14, r21) = (0, 0, 0, 0, 0);
            for (var i = 0; i < length; i++)
            {
                (n, r, r7, r14, r21) = (n + noLonger[i], r + remaining[i], r7 + remaining7[i], r14 + remaining14[i], r21 + remaining21[i]);
                days.Add(new Day(filter.From.AddDays(i), n, discharged[i], r, r7, r14, r21,
                    new PathwayCounts(byPathway[i, 0], byPathway[i, 1], byPathway[i, 2], byPathway[i, 3], byPathway[i, 4])));
            }
            return days;
        }

        private static List<Week> Weeks(IReadOnlyList<Day> days) =>
            days.GroupBy(d => d.Date.AddDays(-(((int)d.Date.DayOfWeek + 6) % 7)))
                .Select(week =>
                {
                    var list = week.ToList();
                    return new Week(list[0].Date, list[^1].Date, list.Count,
                        Average(list.Sum(d => d.NoLongerMeetCriteria), list.Count), Average(list.Sum(d => d.Discharged), list.Count),
                        Average(list.Sum(d => d.Remaining), list.Count), list.Sum(d => d.Discharged),
                        list.Sum(d => d.Remaining), list.Sum(d => d.Remaining7Plus), list.Sum(d => d.Remaining14Plus), list.Sum(d => d.Remaining21Plus),
                        PathwayCounts.Sum(list.Select(d => d.DischargedByPathway)));
                })
                .ToList();

        private static List<Reason> Reasons(List<Stay> stays, Dictionary<long, OpenReason> reasons, DateOnly last)
        {
            var waiting = stays.Where(s => s.RemainsAtEndOf(last) && s.LengthOfStayOn(last) >= 7).ToList();
            // By the reason alone: an open reason also names its referral and since when, which would make a row of each person.
            return waiting
                .GroupBy(s => reasons.GetValueOrDefault(s.Id) is { } open ? open with { ReferralId = 0, FromAt = default } : null)
                .Select(g => (Open: g.Key, Rows: g.ToList()))
                .OrderBy(g => g.Open is null).ThenBy(g => g.Open?.ListVersion, StringComparer.Ordinal).ThenBy(g => g.Open?.SortOrder)
                .Select(g => new Reason(g.Open?.ListVersion ?? "", g.Open?.Family ?? "", g.Open?.FamilyLabel ?? "", g.Open?.Code ?? "",
                    g.Open?.Label ?? "No reason recorded", g.Rows.Count, g.Rows.Count(s => s.LengthOfStayOn(last) >= 14)))
                .ToList();
        }

        private static List<Destination> DestinationsOf(IEnumerable<Stay> discharged) =>
            discharged
                .GroupBy(s => (s.Destination, s.CareLevel))
                .Select(g => new Destination(g.Key.Destination ?? "", Label(Destinations, g.Key.Destination), g.Key.CareLevel ?? "",
                    Label(CareLevels, g.Key.CareLevel), g.Count()))
                .OrderBy(d => Order(Destinations, d.Code)).ThenBy(d => Order(CareLevels, d.CareLevel))
                .ToList();

        /// <summary>The hospital sites' names: a few dozen rows, looked up rather than joined to each stay.</summary>
        private static async Task<Dictionary<long, string>> SiteNamesAsync(DbConnection connection, CancellationToken cancellationToken) =>
            (await connection.QueryAsync<(long Id, string Name)>(new CommandDefinition("SELECT id, name FROM hospital_site", cancellationToken: cancellationToken)))
                .ToDictionary(s => s.Id, s => s.Name);

        private static List<Place> Places(List<Stay> stays, ReportFilter filter, Dictionary<long, string> siteNames)
        {
            var (first, last) = (filter.From, filter.To);
            // The period's days a stay's rule holds on, worked out from its run of days instead of asking each day.
            static int DaysIn(DateOnly from, DateOnly to, DateOnly first, DateOnly last)
            {
                var (start, end) = (from > first ? from : first, to < last ? to : last);
                return start <= end ? end.DayNumber - start.DayNumber + 1 : 0;
            }
            int NoLongerMeetingDays(Stay s) => DaysIn(s.Ready, s.DischargedOn ?? last, first, last);
            int RemainingNights(Stay s) => DaysIn(s.Ready, s.DischargedOn is { } left ? left.AddDays(-1) : last, first, last);
            bool DischargedInPeriod(Stay s) => s.DischargedOn is { } on && on >= first && on <= last && s.DischargedOnDay(on);
            return stays
                .Where(s => NoLongerMeetingDays(s) > 0)
                .GroupBy(s => (s.TrustId, s.Trust, Site: s.SiteId is { } site ? siteNames.GetValueOrDefault(site, "") : "", Ward: s.Ward ?? ""))
                .Select(g =>
                {
                    var atEnd = g.Where(s => s.RemainsAtEndOf(last)).Select(s => s.LengthOfStayOn(last)).ToList();
                    return new Place(g.Key.TrustId, g.Key.Trust, g.Key.Site, g.Key.Ward, g.Count(), g.Count(DischargedInPeriod),
                        atEnd.Count, atEnd.Count(w => w >= 7), atEnd.Count(w => w >= 14), atEnd.Count(w => w >= 21),
                        g.Sum(RemainingNights));
                })
                .OrderBy(p => p.Trust, StringComparer.Ordinal).ThenBy(p => p.Site, StringComparer.Ordinal).ThenBy(p => p.Ward, StringComparer.Ordinal)
                .ToList();
        }

        private static double Average(int total, int days) => Math.Round((double)total / days, 1, MidpointRounding.AwayFromZero);

        private static string Label(IReadOnlyList<Code> codes, string? value) =>
            codes.FirstOrDefault(c => c.Value == value)?.Label ?? NotRecorded;

        private static int Order(IReadOnlyList<Code> codes, string? value)
        {
            var index = codes.ToList().FindIndex(c => c.Value == value);
            return index < 0 ? int.MaxValue : index;
        }
    }
}
