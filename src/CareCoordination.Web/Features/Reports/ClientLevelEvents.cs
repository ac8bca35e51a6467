using System.Globalization;
using CareCoordination.Auth;
using CareCoordination.Domain;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using CsvHelper;
using Dapper;
using FluentValidation;
using Mediator;

namespace CareCoordination.Features.Reports;

/// <summary>
/// Report 6: the referrals and placements of a period as events shaped like the DHSC Adult Social Care Client Level
/// Data (CLD, release 1): each referral decided in the period as a Request event, each placement whose support ran in
/// the period as a Service event, with the fields we hold under the names the CLD guidance gives them
/// (docs/reports-client-level-data.md says which we cannot fill and why). The summary counts events and shows no one;
/// the export carries NHS numbers, so each download is audited: each person in it named against the audit row of the run
/// of start days that held them.
/// </summary>
public static partial class ClientLevelEvents
{
    public const string Slug = "client-level-events";

    /// <summary>CLD wants dates as dd/mm/yyyy, with no time.</summary>
    public const string DateFormat = "dd/MM/yyyy";

    [AllowRoles(Roles.Manager, Roles.Admin)]
    public sealed record Summary(ReportFilter Filter) : IQuery<Counts>;

    /// <summary>
    /// The file's events, or those of them that started on <paramref name="Starting"/>'s days (none: all of them). It names
    /// people, so every read is audited. A download reads the file in runs of start days (<see cref="FileRuns"/>), each one
    /// of these, audited before any of its rows is written (<see cref="OpenFileAsync"/>).
    /// </summary>
    [AllowRoles(Roles.Manager, Roles.Admin)]
    public sealed record Export(ReportFilter Filter, StartDays? Starting = null) : IQuery<IReadOnlyList<Row>>, IAudited
    {
        /// <summary>Set as the handler begins: the caller is allowed the file and the filter is valid (OpenFileAsync).</summary>
        internal TaskCompletionSource? Begun { get; init; }
    }

    /// <summary>
    /// A run of London days on which events started: from <paramref name="First"/> (none: any day before) to
    /// <paramref name="Last"/> (none: the period's last day). An event's start is the day its referral was sent (a request)
    /// or its support started (a service), the first key of the file's order.
    /// </summary>
    public sealed record StartDays(DateOnly? First, DateOnly? Last)
    {
        public static StartDays Any { get; } = new(null, null);

        /// <summary>The run as the audit row's detail says it.</summary>
        internal string Describe(ReportFilter filter) => (First, Last) switch
        {
            (null, null) => "",
            (null, { } last) when last < filter.From => ", events started before the period",
            _ => string.Create(CultureInfo.InvariantCulture,
                $", events started {(First is { } first ? first.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture) : "any day")} to {(Last ?? filter.To):yyyy-MM-dd}"),
        };
    }

    /// <summary>How many start days a run of the file holds at most: a year is read as thirteen runs, a month as two.</summary>
    public const int RunDays = 31;

    /// <summary>
    /// The file cut by start day, in its order: first the events that started before the period (requests sent before it
    /// and decided in it, services started before it and still running into it), then the period's days in runs of at most
    /// <see cref="RunDays"/>. No event starts after the period: a request is sent before it is decided, and a service that
    /// ran in the period started before its end. Each event is in exactly one run.
    /// </summary>
    public static IReadOnlyList<StartDays> FileRuns(ReportFilter filter) =>
    [
        BeforeThePeriod(filter),
        .. filter.Parts((filter.Days + RunDays - 1) / RunDays).Select(part => new StartDays(part.From, part.To)),
    ];

    /// <summary>The days before the period (a period from the first day there is fails validation, and is refused as such).</summary>
    private static StartDays BeforeThePeriod(ReportFilter filter) => new(null, filter.From == DateOnly.MinValue ? filter.From : filter.From.AddDays(-1));

    public sealed class SummaryValidator : AbstractValidator<Summary>
    {
        public SummaryValidator() => RuleFor(q => q.Filter).SetValidator(new ReportFilter.Rules());
    }

    public sealed class ExportValidator : AbstractValidator<Export>
    {
        public ExportValidator()
        {
            RuleFor(q => q.Filter).SetValidator(new ReportFilter.Rules());
            RuleFor(q => q.Starting).Must(days => days is not { First: { } first, Last: { } last } || first <= last)
                .WithMessage("The run of start days must end on or after the day it starts.");
        }
    }

    public static IReadOnlyList<ReportDefinition> Definitions { get; } =
    [
        new("Request event", "A referral whose outcome was decided in the period: its first decision, accepted into a service or a bed, or declined (a redirect between the coordination centre and the bed bureau is not one). Event Start Date is the day it was sent, Event End Date the day of that decision. A referral cancelled before any decision is left out, as CLD leaves out cancelled events."),
        new("Service event", "A placement whose support started (a reserved placement that never started, or one cancelled, is left out) and ran at some time in the period, including those still running at its end. Event Start Date is the day it started; Event End Date the day it ended, if that was in the period; Event Outcome is \"Services ended as planned\" if it ended in the period, otherwise \"Provision of service\"."),
        new("Request: Route of Access", "Acute or community hospital referrals: Discharge from Hospital; community step-up: Diversion from Hospital Services; GP: Community / Other route."),
        new("Service Type", "From the service's kind (reablement and therapy: Short Term Support: ST-Max; home care: Long Term Support: Community; voluntary sector: Short Term Support: Ongoing Low Level) or the bed's type (rehabilitation and step-down beds: ST-Max; nursing beds: Long Term Support: Nursing Care; other care home beds: Long Term Support: Residential Care)."),
        new("Planned units per week", "Hours a day agreed for an hours-based service, times seven; empty for slot-based services and beds, whose unit we do not hold."),
        new("Filters", "The referring organisation is the one that sent the referral; the locality is the person's. Dates are London days."),
    ];

    public sealed record Count(string Label, int Events);

    public sealed record Counts(IReadOnlyList<Count> ByEventType, IReadOnlyList<Count> ByRouteOfAccess, IReadOnlyList<Count> ByServiceType)
    {
        public int Total => ByEventType.Sum(c => c.Events);
    }

    /// <summary>One event as the CSV carries it: CLD's field names, in CLD's formats, then ours (prefixed "Local:") for what CLD has no field for.</summary>
    [CsvRecord]
    public sealed partial record Row(
        [property: CsvColumn("LA Person Unique Identifier")] string LaPersonUniqueIdentifier,
        [property: CsvColumn("NHS Number")] string NhsNumber,
        [property: CsvColumn("Date of Birth")] string DateOfBirth,
        [property: CsvColumn("Gender")] string Gender,
        [property: CsvColumn("Ethnicity")] string Ethnicity,
        [property: CsvColumn("Postcode")] string Postcode,
        [property: CsvColumn("Client Type")] string ClientType,
        [property: CsvColumn("Reporting Period Start Date")] string ReportingPeriodStartDate,
        [property: CsvColumn("Reporting Period End Date")] string ReportingPeriodEndDate,
        [property: CsvColumn("Event Type")] string EventType,
        [property: CsvColumn("Event Reference")] string EventReference,
        [property: CsvColumn("Event Start Date")] string EventStartDate,
        [property: CsvColumn("Event End Date")] string EventEndDate,
        [property: CsvColumn("Event Outcome")] string EventOutcome,
        [property: CsvColumn("Request: Route of Access")] string RouteOfAccess,
        [property: CsvColumn("Service Type")] string ServiceType,
        [property: CsvColumn("Service Component")] string ServiceComponent,
        [property: CsvColumn("Planned units per week")] string PlannedUnitsPerWeek,
        [property: CsvColumn("Local: Provider")] string LocalProvider,
        [property: CsvColumn("Local: Referring organisation")] string LocalReferringOrganisation);

    /// <summary>One CLD event, before it is written out. Dates are London days.</summary>
    public sealed record Event(
        long PersonId, string NhsNumber, DateOnly DateOfBirth, string Gender, string? Ethnicity, string? Postcode,
        DateOnly PeriodStart, DateOnly PeriodEnd,
        string EventType, string EventReference, DateOnly EventStart, DateOnly? EventEnd, string EventOutcome,
        string? RouteOfAccess, string? ServiceType, string? ServiceComponent, decimal? PlannedUnitsPerWeek,
        string? Provider, string ReferringOrganisation)
    {
        /// <summary>Where the event goes in the file (set as it is read).</summary>
        internal FileOrder Order { get; init; }

        public Row ToRow() => ToRow(Date);

        /// <summary>The row, with its dates written by <paramref name="date"/> (the export's rows share one string per day).</summary>
        internal Row ToRow(Func<DateOnly, string> date) => new(
            $"CC{PersonId.ToString(CultureInfo.InvariantCulture)}", NhsNumber, date(DateOfBirth), Gender, Ethnicity ?? "", Postcode ?? "", "Service User",
            date(PeriodStart), date(PeriodEnd),
            EventType, EventReference, date(EventStart), EventEnd is { } end ? date(end) : "", EventOutcome,
            RouteOfAccess ?? "", ServiceType ?? "", ServiceComponent ?? "",
            PlannedUnitsPerWeek?.ToString("0.00", CultureInfo.InvariantCulture) ?? "",
            Provider ?? "", ReferringOrganisation);

        /// <summary>dd/MM/yyyy (DateFormat), written digit by digit: four dates a row, 570,000 rows for a year.</summary>
        internal static string Date(DateOnly day) => string.Create(10, day, (span, d) =>
        {
            Two(span, d.Day);
            span[2] = '/';
            Two(span[3..], d.Month);
            span[5] = '/';
            Two(span[6..], d.Year / 100);
            Two(span[8..], d.Year % 100);
        });

        private static void Two(Span<char> span, int value)
        {
            span[0] = (char)('0' + value / 10);
            span[1] = (char)('0' + value % 10);
        }
    }

    public const string Request = "Request";
    public const string Service = "Service";

    /// <summary>
    /// The file's order: by start day, then requests before services, then by the referral's or placement's number (the
    /// number in the Event Reference). A value sorted as a key, not events compared field by field: a year is 570,000 events,
    /// and sorting them by their references' text took 0.3-0.45 s (issue 13).
    /// </summary>
    internal readonly record struct FileOrder(int Day, bool IsService, long Number) : IComparable<FileOrder>
    {
        public static FileOrder Of(DateOnly start, bool isService, long number) => new(start.DayNumber, isService, number);

        public int CompareTo(FileOrder other) =>
            Day != other.Day ? Day.CompareTo(other.Day)
            : IsService != other.IsService ? IsService.CompareTo(other.IsService)
            : Number.CompareTo(other.Number);
    }

    /// <summary>
    /// Where the request came from, in CLD's route-of-access list. A hospital (acute or community) referral is a discharge;
    /// a community step-up is made to keep the person out of hospital; a GP's referral is the community route.
    /// </summary>
    public static string RouteOfAccess(string source) => RouteOfAccess(source.AsSpan());

    private static string RouteOfAccess(ReadOnlySpan<char> source) => source switch
    {
        "acute-hospital" or "community-hospital" => "Discharge from Hospital",
        "community-step-up" => "Diversion from Hospital Services",
        _ => "Community / Other route",
    };

    /// <summary>
    /// The request's outcome from its first decision: into reablement is the short-term route CLD names; any other
    /// service or a bed is a service being arranged; a decline is "no further action", for the reason given.
    /// </summary>
    public static string RequestOutcome(string decision) => RequestOutcome(decision.AsSpan());

    private static string RequestOutcome(ReadOnlySpan<char> decision)
    {
        if (decision.StartsWith("accepted", StringComparison.Ordinal))
        {
            return decision is "accepted: reablement" ? "Progress to Reablement/ST-Max" : "Progress to Support Planning / Services";
        }
        // A decline kept with no reason code (the demo county writes "declined", its reason apart) is the catch-all.
        var reason = decision.StartsWith("declined: ", StringComparison.Ordinal) ? decision["declined: ".Length..] : [];
        return reason switch
        {
            "person-declined" => "NFA - Support declined",
            "needs-met" => "NFA - Information and advice/Signposting only",
            "other" => "NFA - Other",
            _ => "NFA - No services offered: Other reason",
        };
    }

    /// <summary>
    /// CLD's Service Type and Service Component for a placement: from the service's kind, or for a bed from its type
    /// (rehabilitation and step-down beds are short-term support to maximise independence; the rest are care home beds).
    /// </summary>
    public static (string Type, string Component) ServiceTypeOf(string? serviceKind, string? bedType) => (serviceKind, bedType) switch
    {
        ("reablement", _) => ("Short Term Support: ST-Max", "Reablement"),
        ("therapy", _) => ("Short Term Support: ST-Max", "Therapy"),
        ("home-care", _) => ("Long Term Support: Community", "Home Support"),
        ("voluntary-sector", _) => ("Short Term Support: Ongoing Low Level", "Other Low Level Support"),
        ("community-hospital", _) or (null, "rehabilitation" or "step-down-nursing") => ("Short Term Support: ST-Max", "Short Term Bed-based Support"),
        (null, "nursing") => ("Long Term Support: Nursing Care", "Nursing Care: Temporary"),
        _ => ("Long Term Support: Residential Care", "Residential Care: Temporary"),
    };

    private const string Filters = " AND " + ReportFilter.ReferralConditions;

    /// <summary>
    /// Requests: CLD counts a request once its outcome is final, in the period it was finalised. Ours is the referral's
    /// first decision (accepted into a service or bed, or declined); a redirect between the coordination centre and the
    /// bed bureau is not one. A referral cancelled before any decision never completed, and CLD leaves cancelled events out.
    /// That first decision is kept on the referral (first_decided_at, first_decision: ReferralFirsts, migration 0028, by the
    /// same rule), so the period's requests are one index range over "referral r", with the filter's conditions after it:
    /// each referral's tasks read to find its first decision took a year's export over 2 s alone (issue 13, 1M referrals).
    /// </summary>
    private const string RequestsWhere = """
        WHERE r.first_decided_at >= @start AND r.first_decided_at < @end AND r.submitted_at IS NOT NULL
        """;

    /// <summary>
    /// Services: a placement whose support started (a reserved or cancelled one never gave any) and ran at some time within
    /// the period, including those still running at its end: two halves (still active; ended in the period or after), each
    /// "SELECT columns FROM placement pl joins WHERE ... conditions groupBy". Each half reaches its placements by its own index (0026: active ones by start, ended ones by end). The placement comes
    /// first (CROSS JOIN keeps SQLite to that order), and on SQLite the ended half's start is written +pl.started_at, so that
    /// neither the start index (every placement started before the period's end) nor the referrals of every organisation are
    /// read instead (issue 13, 1M referrals).
    /// </summary>
    private static string ServicesUnion(StoreProvider provider, string columns, string joins, string conditions, string groupBy = "")
    {
        var startedBeforeEnd = provider == StoreProvider.Sqlite ? "+pl.started_at < @end" : "pl.started_at < @end";
        string Half(string running) => $"""
            SELECT {columns}
            FROM placement pl{joins}
            WHERE pl.started_at IS NOT NULL AND {running}{conditions}{groupBy}
            """;
        return Half("pl.started_at < @end AND pl.status = 'active'")
            + "\nUNION ALL\n" + Half($"{startedBeforeEnd} AND pl.status = 'ended' AND pl.ended_at >= @start");
    }

    /// <summary>
    /// The organisations, services and beds the events name, read once: a few dozen rows and 5,000 beds, looked up in memory
    /// rather than joined to each of a year's 570,000 events (the joins were about a third of the services' SQL, issue 13).
    /// </summary>
    private sealed record Names(Dictionary<long, string> Organisations, Dictionary<long, (string Kind, string? Unit, string? Provider)> Services,
        Dictionary<long, (string Type, string? Provider)> Beds);

    private static async Task<Names> NamesAsync(Database database, CancellationToken cancellationToken)
    {
        // A pooled connection: a few thousand small rows need no mapped store, and a report's connection of its own costs
        // about 2.5 ms to open, a year's download reading its names thirteen times (issue 13).
        await using var connection = await database.OpenAsync(cancellationToken);
        var organisations = new Dictionary<long, string>();
        await using (var rows = await connection.ReadRowsAsync(new CommandDefinition(
            "SELECT id, name FROM organisation", cancellationToken: cancellationToken)))
        {
            var reader = rows.Reader;
            while (await reader.ReadAsync(cancellationToken))
            {
                organisations[reader.GetInt64(0)] = reader.GetString(1);
            }
        }
        var services = new Dictionary<long, (string, string?, string?)>();
        await using (var rows = await connection.ReadRowsAsync(new CommandDefinition(
            "SELECT s.id, s.kind, s.capacity_unit, so.name FROM service s LEFT JOIN organisation so ON so.id = s.organisation_id",
            cancellationToken: cancellationToken)))
        {
            var reader = rows.Reader;
            while (await reader.ReadAsync(cancellationToken))
            {
                services[reader.GetInt64(0)] = (reader.GetString(1), NullableText(reader, 2), NullableText(reader, 3));
            }
        }
        var beds = new Dictionary<long, (string, string?)>();
        await using (var rows = await connection.ReadRowsAsync(new CommandDefinition(
            """
            SELECT b.id, b.bed_type, bo.name
            FROM bed b
            LEFT JOIN ward w ON w.id = b.ward_id
            LEFT JOIN site si ON si.id = w.site_id
            LEFT JOIN organisation bo ON bo.id = si.organisation_id
            """, cancellationToken: cancellationToken)))
        {
            var reader = rows.Reader;
            while (await reader.ReadAsync(cancellationToken))
            {
                beds[reader.GetInt64(0)] = (reader.GetString(1), NullableText(reader, 2));
            }
        }
        return new Names(organisations, services, beds);
    }

    private static string? NullableText(System.Data.Common.DbDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : reader.GetString(ordinal);

    private const string DateOfBirth = "pe.date_of_birth";

    /// <summary>The events' rows, each as one text (PackedRow): a year's are hundreds of thousands.</summary>
    private static string Packed(StoreProvider provider, params string[] columns) => PackedRow.Select(provider, columns, DateOfBirth);

    /// <summary>The fields every event starts with: its referral's or placement's number, then who it is for and who sent it.</summary>
    private static readonly string[] EventFields = ["r.person_id", "r.organisation_id", "pe.nhs_number", DateOfBirth, "pe.sex", "pe.ethnicity"];

    /// <summary>
    /// The period's events that started on <paramref name="starting"/>'s days, in the file's order (FileOrder): the
    /// requests, the services still running and those ended read at the same time, each on its own connection. Each row is
    /// read straight off the data reader, with the organisations, services and beds looked up in memory (a year of all
    /// trusts is 570,000 events, and its two queries with every name joined and mapped by Dapper took about 6 s, issue 13).
    /// </summary>
    internal static async Task<Event[]> LoadAsync(Database database, ReportFilter filter, StartDays starting, CancellationToken cancellationToken)
    {
        var (from, to, end) = (filter.From, filter.To, filter.EndUtc);
        var names = await NamesAsync(database, cancellationToken);
        // The run's starts as instants, [startFrom, startBefore), and never after the period's end.
        DateTimeOffset? startFrom = starting.First is { } first ? LondonTime.StartOf(first) : null;
        var startBefore = starting.Last is { } last && LondonTime.StartOf(last.AddDays(1)) < end ? LondonTime.StartOf(last.AddDays(1)) : end;
        var parameters = new { start = filter.StartUtc, end, startFrom, startBefore, filter.Trust, filter.Locality };
        // On SQLite "+" keeps a column's index out of the plan (PostgreSQL's statistics choose well without it). A run inside
        // the period is found by its starts' index: its referrals by when they were sent, its placements by when they started.
        // Otherwise (the starts before the period, or all) by the period's own: decisions, and ends since its start.
        var hint = database.Provider == StoreProvider.Sqlite ? "+" : "";
        var byStart = startFrom is { } runStart && runStart >= filter.StartUtc;
        string Hinted(string column) => byStart ? column : hint + column;
        string StartedFrom(string column) => startFrom is null ? "" : $" AND {Hinted(column)} >= @startFrom";
        var requestsWhere = byStart
            ? $"WHERE r.submitted_at < @startBefore{StartedFrom("r.submitted_at")} AND {hint}r.first_decided_at >= @start AND {hint}r.first_decided_at < @end"
            : $"{RequestsWhere} AND {hint}r.submitted_at < @startBefore{StartedFrom("r.submitted_at")}";
        var active = $"pl.status = 'active' AND pl.started_at < @startBefore{(startFrom is null ? "" : " AND pl.started_at >= @startFrom")}";
        var ended = byStart
            ? $"pl.status = 'ended' AND pl.started_at < @startBefore{StartedFrom("pl.started_at")} AND {hint}pl.ended_at >= @start"
            : $"pl.status = 'ended' AND pl.ended_at >= @start AND {hint}pl.started_at < @startBefore{StartedFrom("pl.started_at")}";
        // The ended ones by their end: SQLite's planner takes ix_placement_ended instead, and reads each placement to learn
        // when it started, where the partial index holds that (0034; a year's first run 0.36 s against 0.17 s, issue 13).
        var endedIndex = byStart || database.Provider != StoreProvider.Sqlite ? "" : " INDEXED BY ix_placement_ended_by_end";
        Func<Task<List<Event>>>[] reads = [ReadRequestsAsync, () => ReadServicesAsync(active, ""), () => ReadServicesAsync(ended, endedIndex)];
        var read = await ReportFilter.ReadAtOnceAsync(reads, r => r(), cancellationToken);
        var events = new Event[read.Sum(r => r.Count)];
        var order = new FileOrder[events.Length];
        var at = 0;
        foreach (var part in read)
        {
            foreach (var e in part)
            {
                (events[at], order[at]) = (e, e.Order);
                at++;
            }
        }
        // Each event's place is unique (its type and number), so an unstable sort gives the one order.
        Array.Sort(order, events);
        return events;

        async Task<List<Event>> ReadRequestsAsync()
        {
            await using var connection = await database.OpenForReportAsync(cancellationToken);
            await using var rows = await connection.ReadRowsAsync(new CommandDefinition(
                $"""
                SELECT {Packed(database.Provider, ["r.id", .. EventFields, "r.source", "r.submitted_at", "r.first_decided_at", "r.first_decision", "pe.postcode"])}
                FROM referral r
                JOIN person pe ON pe.id = r.person_id
                {requestsWhere}{Filters}
                """, parameters, cancellationToken: cancellationToken));
            var reader = rows.Reader;
            var found = new List<Event>();
            var days = new StoredTimes();
            while (await reader.ReadAsync(cancellationToken))
            {
                var row = new PackedRow.Fields(reader, database.Provider);
                var (referralId, personId, organisationId) = (row.Number(), row.Number(), row.Number());
                var (nhsNumber, dateOfBirth, gender, ethnicity) = (row.Next().ToString(), row.Date(), Gender(row.Next()), EthnicityOf(row.Next()));
                var routeOfAccess = RouteOfAccess(row.Next());
                var (sent, decided, outcome) = (days.DayOf(row.Time()), days.DayOf(row.Time()), RequestOutcome(row.Next()));
                found.Add(new Event(personId, nhsNumber, dateOfBirth, gender, ethnicity, TextOrNone(row.Rest()), from, to,
                    Request, $"request-{referralId.ToString(CultureInfo.InvariantCulture)}", sent, decided, outcome,
                    routeOfAccess, null, null, null, null, names.Organisations[organisationId])
                { Order = FileOrder.Of(sent, false, referralId) });
            }
            return found;
        }

        async Task<List<Event>> ReadServicesAsync(string running, string index)
        {
            // CROSS JOIN keeps SQLite to the placements first, found by the run's own index, each then joined to its referral
            // and person. (They were once taken from a subquery sorted by referral, but SQLite flattens such a subquery into the
            // join and drops its ORDER BY, 3.40 and 3.53 alike: the plan is this one. A materialized, sorted one was no faster
            // in process, 1.1-2.6 s either way for a year's ended services on a busy machine, issue 13.)
            await using var connection = await database.OpenForReportAsync(cancellationToken);
            await using var rows = await connection.ReadRowsAsync(new CommandDefinition(
                $"""
                SELECT {Packed(database.Provider, ["pl.id", .. EventFields, "pl.started_at", "pl.ended_at", "pl.service_id", "pl.bed_id", "pl.hours_per_day", "pe.postcode"])}
                FROM placement pl{index}
                CROSS JOIN referral r
                JOIN person pe ON pe.id = r.person_id
                WHERE pl.started_at IS NOT NULL AND {running} AND r.id = pl.referral_id{Filters}
                """, parameters, cancellationToken: cancellationToken));
            var reader = rows.Reader;
            var found = new List<Event>();
            var days = new StoredTimes();
            while (await reader.ReadAsync(cancellationToken))
            {
                var row = new PackedRow.Fields(reader, database.Provider);
                var (placementId, personId, organisationId) = (row.Number(), row.Number(), row.Number());
                var (nhsNumber, dateOfBirth, gender, ethnicity) = (row.Next().ToString(), row.Date(), Gender(row.Next()), EthnicityOf(row.Next()));
                var (started, endedAt) = (days.DayOf(row.Time()), row.TimeOrNone());
                var (serviceId, bedId, hoursPerDay) = (row.NumberOrNone(), row.NumberOrNone(), row.NumberOrNone());
                string? kind = null, unit = null, bedType = null, provider = null;
                if (serviceId is { } sid && names.Services.TryGetValue(sid, out var service))
                {
                    (kind, unit, provider) = service;
                }
                else if (bedId is { } bid && names.Beds.TryGetValue(bid, out var bed))
                {
                    (bedType, provider) = bed;
                }
                var (type, component) = ServiceTypeOf(kind, bedType);
                var endedInPeriod = endedAt is { } ended && ended < end;
                // CLD asks for planned units only where the unit is more often than weekly; we hold hours a day for hours-based services.
                decimal? hoursPerWeek = unit == "hours" && hoursPerDay is { } hours ? hours * 7m : null;
                found.Add(new Event(personId, nhsNumber, dateOfBirth, gender, ethnicity, TextOrNone(row.Rest()), from, to,
                    Service, $"service-{placementId.ToString(CultureInfo.InvariantCulture)}", started,
                    endedInPeriod ? days.DayOf(endedAt!.Value) : null,
                    endedInPeriod ? "Services ended as planned" : "Provision of service",
                    null, type, component, hoursPerWeek, provider, names.Organisations[organisationId])
                { Order = FileOrder.Of(started, true, placementId) });
            }
            return found;
        }

        static string? TextOrNone(ReadOnlySpan<char> text) => text.IsEmpty ? null : text.ToString();
    }

    private sealed record Tally
    {
        public string? Source { get; init; }
        public string? ServiceKind { get; init; }
        public string? BedType { get; init; }
        public long Events { get; init; }
    }

    /// <summary>
    /// The page's counts, of the same events as the export, counted by the store: no person is read, and no referral either
    /// for a service unless a trust or locality narrows it (a year's counts took 6.6 s as events built one by one, issue 13).
    /// </summary>
    internal static async Task<Counts> CountAsync(Database database, ReportFilter filter, CancellationToken cancellationToken)
    {
        var parameters = new { start = filter.StartUtc, end = filter.EndUtc, filter.Trust, filter.Locality };
        var narrowing = filter.Narrowing(database.Provider);
        await using var connection = await database.OpenForReportAsync(cancellationToken);
        var requests = (await connection.QueryAsync<Tally>(new CommandDefinition(
            $"""
            SELECT r.source AS Source, COUNT(*) AS Events
            FROM referral r
            {RequestsWhere}{narrowing}
            GROUP BY r.source
            """, parameters, cancellationToken: cancellationToken))).ToList();
        var referral = narrowing.Length == 0 ? "" : "\nCROSS JOIN referral r";
        var services = (await connection.QueryAsync<Tally>(new CommandDefinition(ServicesUnion(database.Provider,
            "s.kind AS ServiceKind, b.bed_type AS BedType, COUNT(*) AS Events",
            referral + "\nLEFT JOIN service s ON s.id = pl.service_id\nLEFT JOIN bed b ON b.id = pl.bed_id",
            narrowing.Length == 0 ? "" : " AND r.id = pl.referral_id" + narrowing,
            "\nGROUP BY s.kind, b.bed_type"), parameters, cancellationToken: cancellationToken))).ToList();
        return new Counts(
            [new Count(Request, (int)requests.Sum(t => t.Events)), new Count(Service, (int)services.Sum(t => t.Events))],
            Group(requests.Select(t => (RouteOfAccess(t.Source!), t.Events))),
            Group(services.Select(t => (ServiceTypeOf(t.ServiceKind, t.BedType).Type, t.Events))));
    }

    private static List<Count> Group(IEnumerable<(string Label, long Events)> tallies) =>
        [.. tallies.GroupBy(t => t.Label).Select(g => new Count(g.Key, (int)g.Sum(t => t.Events)))
            .OrderByDescending(c => c.Events).ThenBy(c => c.Label, StringComparer.Ordinal)];

    private static string Gender(ReadOnlySpan<char> sex) => sex switch
    {
        "female" => "Female",
        "male" => "Male",
        "other" => "Other",
        _ => "Unknown",
    };

    /// <summary>CLD follows the NHS Data Dictionary ethnic categories: the code's words, or none recorded.</summary>
    private static string? EthnicityOf(ReadOnlySpan<char> code) =>
        code.IsEmpty ? null : EthnicityLabels.TryGetValue(code, out var label) ? label : code.ToString();

    private static readonly Dictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> EthnicityLabels =
        ReferralCodes.Ethnicities.GroupBy(e => e.Value).ToDictionary(g => g.Key, g => g.First().Label, StringComparer.Ordinal)
            .GetAlternateLookup<ReadOnlySpan<char>>();

    public sealed class SummaryHandler(Database database) : IQueryHandler<Summary, Counts>
    {
        public async ValueTask<Counts> Handle(Summary query, CancellationToken cancellationToken) =>
            await CountAsync(database, query.Filter, cancellationToken);
    }

    /// <summary>
    /// Every person whose events a read holds is named in the audit trail, once per read: one audit row for the read, with the
    /// period, the filter, the run of start days and the number of events in its detail, and each person named against it in
    /// audit_person ("who saw my record" finds it by audit_person.person_id). A year is about 570,000 events of 450,000
    /// people: a statement per event held the store's only write turn for tens of seconds, so every other writer waited and
    /// some gave up with "database is locked", and a full audit row per person, with its two indexes, held it 3-4x as long as two numbers (issue 13).
    /// </summary>
    public sealed class ExportHandler(Database database, Work work) : IQueryHandler<Export, IReadOnlyList<Row>>
    {
        public async ValueTask<IReadOnlyList<Row>> Handle(Export query, CancellationToken cancellationToken)
        {
            query.Begun?.TrySetResult();
            var filter = query.Filter;
            var starting = query.Starting ?? StartDays.Any;
            var events = await LoadAsync(database, filter, starting, cancellationToken);
            work.Scope.TouchPeople(events.Select(e => e.PersonId));
            var trust = filter.Trust is { } id ? ", referring organisation " + id.ToString(CultureInfo.InvariantCulture) : "";
            var locality = filter.Locality is { } name ? ", locality " + name : "";
            work.Scope.AuditDetail = string.Create(CultureInfo.InvariantCulture,
                $"CLD export {filter.From:yyyy-MM-dd} to {filter.To:yyyy-MM-dd}{trust}{locality}{starting.Describe(filter)}: {events.Length} events");
            return new Rows(events);
        }
    }

    /// <summary>How many runs a download reads ahead of the one it is writing: each reads three parts at once.</summary>
    private static readonly int RunsAhead = Math.Min(ReportFilter.ReadParts, 2);

    /// <summary>
    /// The download's rows: the file's runs of start days (FileRuns), each sent as its own Export, so each is authorised,
    /// read and audited (its people named against its own audit row) before any of its rows is written. The first run's
    /// rows are read before this returns, so a refusal or a bad filter is an ordinary problem response, not half a file; the
    /// others are read ahead of the writing, two at a time, from the moment the first run's handler begins (its caller
    /// allowed and its filter valid, so a refusal is refused, and audited, once). Read whole before the first byte, a year
    /// of 1M referrals (570,000 events) took 3-4 s to start and held every event at once (issue 13). A download that fails
    /// or is abandoned part way has been audited for the runs read ahead of what it wrote: more than it showed, never less.
    /// </summary>
    public static async Task<IAsyncEnumerable<Row>> OpenFileAsync(IMediator mediator, ReportFilter filter, CancellationToken cancellationToken)
    {
        var begun = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        // On a pool thread: SQLite's async calls run synchronously, so the first run would be read whole before Send returned.
        var firstRun = Task.Run(async () => await mediator.Send(new Export(filter, BeforeThePeriod(filter)) { Begun = begun }, cancellationToken), cancellationToken);
        // The runs ahead stop with the request, or when the download stops being written (Abandon).
        var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var ahead = new Queue<Task<IReadOnlyList<Row>>>();
        IReadOnlyList<StartDays>? runs = null;
        var next = 1;
        await Task.WhenAny(begun.Task, firstRun);
        if (begun.Task.IsCompleted)
        {
            ReadAhead();
        }
        IReadOnlyList<Row> first;
        try
        {
            first = await firstRun;
        }
        catch
        {
            Abandon();
            stop.Dispose();
            throw;
        }
        // Begun is set before the first run can end, but whoever waits on it may hear after the run ended: cut now if not yet.
        ReadAhead();
        return Write(first);

        void ReadAhead()
        {
            // Cut only once the first run has begun: the period is then known to be one.
            runs ??= FileRuns(filter);
            while (ahead.Count < RunsAhead && next < runs.Count)
            {
                var run = runs[next++];
                var reading = Task.Run(async () => await mediator.Send(new Export(filter, run), stop.Token), stop.Token);
                // Observed whatever becomes of the download: a run that fails once nobody waits for it is nobody's to handle.
                _ = reading.ContinueWith(static t => _ = t.Exception, CancellationToken.None,
                    TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
                ahead.Enqueue(reading);
            }
        }

        // Written no further (the download failed or was abandoned): the runs ahead are cancelled, so a run not yet read is
        // neither read nor audited; one already past its audit has been audited, and is not sent.
        void Abandon()
        {
            next = int.MaxValue;
            stop.Cancel();
            ahead.Clear();
        }

        async IAsyncEnumerable<Row> Write(IReadOnlyList<Row> firstRows)
        {
            try
            {
                foreach (var row in firstRows)
                {
                    yield return row;
                }
                while (ahead.TryDequeue(out var reading))
                {
                    var rows = await reading;
                    ReadAhead();
                    foreach (var row in rows)
                    {
                        yield return row;
                    }
                }
            }
            finally
            {
                Abandon();
                stop.Dispose();
            }
        }
    }

    /// <summary>The events as the file's rows, each made as it is written: the endpoint streams them, and holds no second copy.</summary>
    private sealed class Rows(Event[] events) : IReadOnlyList<Row>
    {
        // A year's file holds about 2.5 million dates of a few tens of thousands of days: each day's text is made once.
        private readonly Dictionary<DateOnly, string> _days = [];

        private string Day(DateOnly day)
        {
            if (!_days.TryGetValue(day, out var text))
            {
                text = Event.Date(day);
                _days[day] = text;
            }
            return text;
        }

        public Row this[int index] => events[index].ToRow(Day);

        public int Count => events.Length;

        public IEnumerator<Row> GetEnumerator() => events.Select(e => e.ToRow(Day)).GetEnumerator();

        System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
    }

    /// <summary>GET /reports/client-level-events.csv: the file written run by run as it is read (OpenFileAsync).</summary>
    public static void MapCsv(IEndpointRouteBuilder app) => app.MapReportCsvAsRead(Slug, OpenFileAsync);
}
