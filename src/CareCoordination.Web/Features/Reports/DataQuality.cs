using System.Globalization;
using CareCoordination.Auth;
using CareCoordination.Domain;
using CareCoordination.Features.Coordination;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using CsvHelper;
using Dapper;
using FluentValidation;
using Mediator;
using Microsoft.Extensions.Options;

namespace CareCoordination.Features.Reports;

/// <summary>
/// The data quality scorecard of the decision pack (report 7): for the referrals submitted in a period, how complete,
/// timely and consistent the facts the reports count are. Each check is a share of the referrals it applies to, with
/// its definition; the referrals that fail one are listed only in the drill-down, each open of which is audited.
/// </summary>
public static partial class DataQuality
{
    public const string Slug = "data-quality";

    [AllowRoles(Roles.Manager, Roles.Admin)]
    public sealed record Scorecard(ReportFilter Filter) : IQuery<IReadOnlyList<Measure>>
    {
        /// <summary>As the decision pack (fix/decision-pack) sends it for its quarter.</summary>
        public Scorecard(DateOnly From, DateOnly To, long? Trust = null, string? Locality = null) : this(new ReportFilter(From, To, Trust, Locality))
        {
        }
    }

    [AllowRoles(Roles.Manager, Roles.Admin)]
    public sealed record Failures(string Check, ReportFilter Filter) : IQuery<IReadOnlyList<Failure>>, IAudited;

    public sealed class FailuresValidator : AbstractValidator<Failures>
    {
        public FailuresValidator()
        {
            RuleFor(f => f.Check).Must(code => Checks.Any(c => c.Code == code)).WithMessage("Choose one of the scorecard's checks.");
            RuleFor(f => f.Filter).SetValidator(new ReportFilter.Rules());
        }
    }

    public sealed class ScorecardValidator : AbstractValidator<Scorecard>
    {
        public ScorecardValidator() => RuleFor(q => q.Filter).SetValidator(new ReportFilter.Rules());
    }

    /// <param name="Percent">Passing as a share of those it applies to, to one decimal place; none when it applies to no one.</param>
    public sealed record Measure(string Code, string Dimension, string Title, string Definition, int Applies, int Passing, double? Percent)
    {
        public int Failing => Applies - Passing;

        public Row ToRow() => new(Title, Dimension, Applies, Passing, Failing, Percent, Definition);
    }

    /// <summary>One check as the CSV carries it. No one is named: the failing records are only in the audited drill-down.</summary>
    [CsvRecord]
    public sealed partial record Row(
        [property: CsvColumn("Check")] string Check,
        [property: CsvColumn("Dimension")] string Dimension,
        [property: CsvColumn("Referrals it applies to")] int Applies,
        [property: CsvColumn("Passing")] int Passing,
        [property: CsvColumn("Failing")] int Failing,
        [property: CsvColumn("Percent passing")] double? Percent,
        [property: CsvColumn("Definition")] string Definition);

    public sealed record Failure(long ReferralId, string NhsNumber, string Name, DateOnly SubmittedOn, string Trust, string Why);

    /// <summary>What one referral holds that the checks look at.</summary>
    public sealed record Facts
    {
        public long ReferralId { get; init; }
        public long PersonId { get; init; }
        public string NhsNumber { get; init; } = "";
        public string GivenName { get; init; } = "";
        public string FamilyName { get; init; } = "";
        public string Trust { get; init; } = "";
        public string Source { get; init; } = "";
        public string Status { get; init; } = "";
        public DateTimeOffset SubmittedAt { get; init; }
        public DateOnly? MedicallyOptimisedOn { get; init; }
        public DateTimeOffset? DischargedAt { get; init; }
        public string? PathwayAtDischarge { get; init; }
        public string? Ethnicity { get; init; }
        public string? Postcode { get; init; }
        /// <summary>A placement of the referral has started (its first start, kept on the referral by ReferralFirsts).</summary>
        public bool PlacementStarted { get; init; }
        public long DelayReasons { get; init; }
        public DateTimeOffset? TriageCreatedAt { get; init; }
        public DateTimeOffset? TriageCompletedAt { get; init; }
        public string? TriageStatus { get; init; }
        public int TriagePausedSeconds { get; init; }

        // Equity's columns (EquityReport.EquityColumns), read only when the decision pack reads its quarter once for both.
        public DateOnly DateOfBirth { get; init; }
        public string Sex { get; init; } = "";
        public int? ImdDecile { get; init; }
        public DateTimeOffset? DecidedAt { get; init; }
        public DateTimeOffset? ServiceStartedAt { get; init; }
        public int Decision { get; init; }

        internal EquityReport.Referral ForEquity() => new()
        {
            SubmittedAt = SubmittedAt, DateOfBirth = DateOfBirth, Sex = Sex, Ethnicity = Ethnicity, ImdDecile = ImdDecile,
            DecidedAt = DecidedAt, ServiceStartedAt = ServiceStartedAt, Decision = (EquityReport.Decision)Decision,
        };

        internal bool FromHospital => Source is "acute-hospital" or "community-hospital";

        private DateOnly? _dischargedOn;

        // Several checks ask for it: converted to London time once per referral, not once per check.
        internal DateOnly? DischargedOn => DischargedAt is { } at ? _dischargedOn ??= LondonTime.DateOf(at) : null;

        /// <summary>The discharge's London day, worked out by whoever read the referral (the same as LondonTime.DateOf).</summary>
        internal void KnowDischargedOn(DateOnly? day) => _dischargedOn = day;

        internal TimeSpan? TriageTook => TriageStatus is "completed" or "rejected" && TriageCompletedAt is { } done && TriageCreatedAt is { } created
            ? done - created - TimeSpan.FromSeconds(TriagePausedSeconds)
            : null;
    }

    /// <summary>What a check needs besides the referral: today (London) and the triage target.</summary>
    public sealed record Context(DateOnly Today, TimeSpan TriageTarget);

    public sealed record Check(string Code, string Dimension, string Title, string Definition,
        Func<Facts, Context, bool> Applies, Func<Facts, Context, bool> Passes, Func<Facts, Context, string> Why);

    private static string Day(DateOnly day) => day.ToString("d MMM yyyy", CultureInfo.GetCultureInfo("en-GB"));

    private static string Day(DateOnly? day) => day is { } d ? Day(d) : "none";

    /// <summary>The checks, in the order the scorecard shows them. Every one counts referrals submitted in the period.</summary>
    public static readonly IReadOnlyList<Check> Checks =
    [
        new("drd-recorded", "Completeness", "Discharge ready date recorded",
            "Referrals from a hospital (acute or community) with a discharge ready date (the day the person was medically optimised).",
            (f, _) => f.FromHospital, (f, _) => f.MedicallyOptimisedOn is not null,
            (_, _) => "No discharge ready date"),
        new("discharge-recorded", "Completeness", "Discharge recorded for people placed",
            "Referrals from a hospital whose placement has started (the person has left hospital) with the actual discharge recorded.",
            (f, _) => f.FromHospital && f.PlacementStarted, (f, _) => f.DischargedAt is not null,
            (_, _) => "Placement started, no discharge recorded"),
        new("ethnicity-stated", "Completeness", "Ethnicity stated",
            "Referrals whose person has an ethnic category recorded that is not \"not stated\" (Z).",
            (_, _) => true, (f, _) => !string.IsNullOrWhiteSpace(f.Ethnicity) && f.Ethnicity != "Z",
            (f, _) => string.IsNullOrWhiteSpace(f.Ethnicity) ? "No ethnicity recorded" : "Ethnicity not stated (Z)"),
        new("postcode-known", "Completeness", "Postcode known",
            "Referrals whose person has a postcode recorded (deprivation and locality come from it).",
            (_, _) => true, (f, _) => !string.IsNullOrWhiteSpace(f.Postcode),
            (_, _) => "No postcode"),
        new("delay-reason-recorded", "Completeness", "Delay reason recorded for people past their discharge ready date",
            "Hospital referrals still open or placed (not declined or cancelled) whose person stayed in hospital past the discharge ready date "
            + "(discharged on a later day, or not yet discharged and the date has passed) with at least one delay reason recorded.",
            (f, c) => f.FromHospital && f.MedicallyOptimisedOn is { } drd && f.Status is not ("declined" or "cancelled")
                && (f.DischargedOn is { } left ? left > drd : c.Today > drd),
            (f, _) => f.DelayReasons > 0,
            (f, c) => $"Ready {Day(f.MedicallyOptimisedOn)}, {(f.DischargedOn is { } left ? $"discharged {Day(left)}" : "still in hospital")}, no delay reason"),
        new("decided-within-target", "Timeliness", "Decided within the triage target",
            "Referrals whose first coordination-centre task has closed with a decision (accepted, declined or passed to the bed bureau) "
            + "within the triage target of its creation, time waiting for the referrer's answer not counted.",
            (f, _) => f.TriageTook is not null, (f, c) => f.TriageTook <= c.TriageTarget,
            (f, c) => $"Decided in {Math.Round(f.TriageTook!.Value.TotalMinutes)} minutes; the target is {c.TriageTarget.TotalMinutes:0}"),
        new("discharge-not-before-drd", "Consistency", "Discharge not before the discharge ready date",
            "Referrals with both a discharge ready date and a discharge recorded whose discharge day is on or after the ready date.",
            (f, _) => f.MedicallyOptimisedOn is not null && f.DischargedAt is not null, (f, _) => f.DischargedOn >= f.MedicallyOptimisedOn,
            (f, _) => $"Discharged {Day(f.DischargedOn)}, before the ready date {Day(f.MedicallyOptimisedOn)}"),
        new("discharge-not-before-referral", "Consistency", "Discharge not before the referral",
            "Referrals with a discharge recorded whose discharge time is not earlier than the referral's submission.",
            (f, _) => f.DischargedAt is not null, (f, _) => f.DischargedAt >= f.SubmittedAt,
            (f, _) => $"Discharged {Day(f.DischargedOn)}, before the referral was sent"),
        new("pathway-at-discharge-recorded", "Completeness", "Pathway at discharge recorded",
            "Referrals with a discharge recorded that also record the discharge pathway (0 to 3) the person left on.",
            (f, _) => f.DischargedAt is not null, (f, _) => f.PathwayAtDischarge is not null,
            (f, _) => $"Discharged {Day(f.DischargedOn)}, no pathway at discharge"),
    ];

    /// <summary>
    /// The facts of the referrals submitted in the period, in the order they were submitted: each part of the period read on
    /// its own connection at the same time (a year at 1M referrals read on one core took over 4 s), then put back in order.
    /// </summary>
    /// <param name="named">Read who each referral is about and who sent it: the drill-down lists them; the scorecard only counts.</param>
    /// <param name="equity">Read equity's columns too (the decision pack: one pass over its quarter for the scorecard and equity).</param>
    internal static async Task<List<Facts>> LoadAsync(Database database, ReportFilter filter, bool named, CancellationToken cancellationToken, bool equity = false)
    {
        var parts = await ReportFilter.ReadAtOnceAsync(filter.Parts(ReportFilter.ReadParts), async part =>
        {
            var facts = new List<Facts>();
            await ReadPartAsync(database, part, named, equity, facts.Add, cancellationToken);
            return facts;
        }, cancellationToken);
        return [.. parts.SelectMany(part => part)];
    }

    /// <summary>
    /// The scorecard's counts, each part counted as it is read: a year at 1M referrals is 330,000 referrals, and holding all
    /// their facts until the last was read kept them alive through the collections that ran meanwhile (issue 13).
    /// </summary>
    internal static async Task<IReadOnlyList<Measure>> ScoreAsync(Database database, ReportFilter filter, Context context, CancellationToken cancellationToken)
    {
        var parts = await ReportFilter.ReadAtOnceAsync(filter.Parts(ReportFilter.ReadParts), async part =>
        {
            var tally = new Tally(context);
            await ReadPartAsync(database, part, named: false, equity: false, tally.Add, cancellationToken);
            return tally;
        }, cancellationToken);
        return Tally.Sum(parts);
    }

    /// <summary>
    /// Each referral's first coordination task as "t". SQLite looks it up by its id, once a referral. PostgreSQL plans that
    /// join as a hash of every task ever made, each referral's look-up run twice (a month's scorecard took 1.3 s at 1M
    /// referrals, 1.2M tasks); LATERAL has it read the referral's own tasks by index, once (0.5 s; bench history, p95).
    /// </summary>
    private static string FirstCoordinationTask(StoreProvider provider) => provider == StoreProvider.PostgreSQL
        ? """
          LEFT JOIN LATERAL (
              SELECT f.created_at, f.completed_at, f.status, f.paused_seconds FROM triage_task f
              WHERE f.referral_id = r.id AND f.queue = 'coordination' ORDER BY f.created_at, f.id LIMIT 1) t ON TRUE
          """
        : """
          LEFT JOIN triage_task t ON t.id = (
              SELECT f.id FROM triage_task f WHERE f.referral_id = r.id AND f.queue = 'coordination' ORDER BY f.created_at, f.id LIMIT 1)
          """;

    private static async Task ReadPartAsync(Database database, ReportFilter filter, bool named, bool equity, Action<Facts> each, CancellationToken cancellationToken)
    {
        // Unnamed, the scorecard reads four text columns fewer a referral (a year at 1M referrals is a third of a million of each).
        var names = named ? "pe.nhs_number AS NhsNumber, pe.given_name AS GivenName, pe.family_name AS FamilyName, o.name AS Trust," : "";
        var organisation = named ? "JOIN organisation o ON o.id = r.organisation_id" : "";
        var equityColumns = equity ? EquityReport.EquityColumns + "," : "";
        var equityJoins = equity ? EquityReport.EquityJoins : "";
        await using var connection = await database.OpenForReportAsync(cancellationToken);
        // Read straight off the reader by column name: a year is 330,000 referrals, and Dapper's mapping (each time through its
        // type handler, each number boxed) was a large share of the scorecard (issue 13).
        await using var rows = await connection.ReadRowsAsync(new CommandDefinition(
            $"""
            SELECT r.id AS ReferralId, r.person_id AS PersonId, {names} {equityColumns}
                   r.source AS Source, r.status AS Status, r.submitted_at AS SubmittedAt,
                   r.medically_optimised_on AS MedicallyOptimisedOn, r.discharged_at AS DischargedAt, r.pathway_at_discharge AS PathwayAtDischarge,
                   pe.ethnicity AS Ethnicity, pe.postcode AS Postcode,
                   r.first_started_at AS FirstStartedAt,
                   (SELECT COUNT(*) FROM discharge_delay dd WHERE dd.referral_id = r.id) AS DelayReasons,
                   t.created_at AS TriageCreatedAt, t.completed_at AS TriageCompletedAt, t.status AS TriageStatus, COALESCE(t.paused_seconds, 0) AS TriagePausedSeconds
            FROM referral r
            JOIN person pe ON pe.id = r.person_id
            {organisation}
            {equityJoins}
            {FirstCoordinationTask(database.Provider)}
            WHERE r.submitted_at >= @start AND r.submitted_at < @end
              AND {ReportFilter.ReferralConditions}
            ORDER BY r.submitted_at, r.id
            """,
            new { start = filter.StartUtc, end = filter.EndUtc, filter.Trust, filter.Locality },
            cancellationToken: cancellationToken));
        var reader = rows.Reader;
        await ReadFactsAsync(reader, each, cancellationToken);
    }

    private static async Task ReadFactsAsync(System.Data.Common.DbDataReader reader, Action<Facts> each, CancellationToken cancellationToken)
    {
        var column = Enumerable.Range(0, reader.FieldCount).ToDictionary(reader.GetName, StringComparer.OrdinalIgnoreCase);
        int At(string name) => column[name];
        var (referralId, personId, source, status, submittedAt) = (At("ReferralId"), At("PersonId"), At("Source"), At("Status"), At("SubmittedAt"));
        var (optimisedOn, dischargedAt, pathway, ethnicity, postcode) = (At("MedicallyOptimisedOn"), At("DischargedAt"), At("PathwayAtDischarge"), At("Ethnicity"), At("Postcode"));
        var (started, delays, triageCreated, triageCompleted, triageStatus, paused) =
            (At("FirstStartedAt"), At("DelayReasons"), At("TriageCreatedAt"), At("TriageCompletedAt"), At("TriageStatus"), At("TriagePausedSeconds"));
        // Present only when asked for (named: the drill-down; equity: the decision pack), else -1.
        int Optional(string name) => column.TryGetValue(name, out var i) ? i : -1;
        var (nhsNumber, givenName, familyName, trust) = (Optional("NhsNumber"), Optional("GivenName"), Optional("FamilyName"), Optional("Trust"));
        var (born, sex, decile, decidedAt, serviceStartedAt, decision) =
            (Optional("DateOfBirth"), Optional("Sex"), Optional("ImdDecile"), Optional("DecidedAt"), Optional("ServiceStartedAt"), Optional("Decision"));
        string? Text(int i) => reader.IsDBNull(i) ? null : reader.GetString(i);
        string TextOrEmpty(int i) => i < 0 ? "" : reader.GetString(i);
        long Number(int i) => Convert.ToInt64(reader.GetValue(i), CultureInfo.InvariantCulture);
        DateTimeOffset? Time(int i) => i < 0 ? null : StoredTimes.ReadOrNull(reader.GetValue(i));
        var days = new StoredTimes();
        while (await reader.ReadAsync(cancellationToken))
        {
            var discharged = Time(dischargedAt);
            var f = new Facts
            {
                ReferralId = Number(referralId), PersonId = Number(personId),
                Source = reader.GetString(source), Status = reader.GetString(status),
                SubmittedAt = StoredTimes.Read(reader.GetValue(submittedAt)),
                MedicallyOptimisedOn = StoredTimes.ReadDateOrNull(reader.GetValue(optimisedOn)),
                DischargedAt = discharged, PathwayAtDischarge = Text(pathway), Ethnicity = Text(ethnicity), Postcode = Text(postcode),
                PlacementStarted = !reader.IsDBNull(started), DelayReasons = Number(delays),
                TriageCreatedAt = Time(triageCreated), TriageCompletedAt = Time(triageCompleted),
                TriageStatus = Text(triageStatus), TriagePausedSeconds = (int)Number(paused),
                NhsNumber = TextOrEmpty(nhsNumber), GivenName = TextOrEmpty(givenName), FamilyName = TextOrEmpty(familyName), Trust = TextOrEmpty(trust),
                DateOfBirth = born < 0 ? default : StoredTimes.ReadDate(reader.GetValue(born)),
                Sex = TextOrEmpty(sex),
                ImdDecile = decile < 0 || reader.IsDBNull(decile) ? null : (int)Number(decile),
                DecidedAt = Time(decidedAt), ServiceStartedAt = Time(serviceStartedAt),
                Decision = decision < 0 ? 0 : (int)Number(decision),
            };
            // The discharge's London day through the offsets cache, once per referral (several checks ask for it).
            f.KnowDischargedOn(discharged is { } at ? days.DayOf(at) : null);
            each(f);
        }
    }

    public static IReadOnlyList<Measure> Score(IReadOnlyList<Facts> facts, Context context)
    {
        var tally = new Tally(context);
        foreach (var f in facts)
        {
            tally.Add(f);
        }
        return Tally.Sum([tally]);
    }

    /// <summary>How many referrals each check applies to and how many of those pass: counted, not listed.</summary>
    private sealed class Tally(Context context)
    {
        private readonly int[] _applies = new int[Checks.Count];
        private readonly int[] _passing = new int[Checks.Count];

        public void Add(Facts f)
        {
            for (var i = 0; i < Checks.Count; i++)
            {
                if (Checks[i].Applies(f, context))
                {
                    _applies[i]++;
                    _passing[i] += Checks[i].Passes(f, context) ? 1 : 0;
                }
            }
        }

        public static IReadOnlyList<Measure> Sum(IReadOnlyList<Tally> tallies) =>
        [
            .. Checks.Select((check, i) =>
            {
                var (applies, passing) = (tallies.Sum(t => t._applies[i]), tallies.Sum(t => t._passing[i]));
                return new Measure(check.Code, check.Dimension, check.Title, check.Definition, applies, passing,
                    applies == 0 ? null : Math.Round(100.0 * passing / applies, 1, MidpointRounding.AwayFromZero));
            }),
        ];
    }

    internal static Context ContextOf(TimeProvider clock, CoordinationTargets targets) =>
        new(LondonTime.Today(clock), TimeSpan.FromMinutes(targets.TriagedWithinMinutes));

    public sealed class ScorecardHandler(Database database, TimeProvider clock, IOptionsMonitor<CoordinationTargets> targets)
        : IQueryHandler<Scorecard, IReadOnlyList<Measure>>
    {
        public async ValueTask<IReadOnlyList<Measure>> Handle(Scorecard query, CancellationToken cancellationToken) =>
            await ScoreAsync(database, query.Filter, ContextOf(clock, targets.CurrentValue), cancellationToken);
    }

    /// <summary>The only place the scorecard names people: each one listed is written to the audit trail.</summary>
    public sealed class FailuresHandler(Database database, TimeProvider clock, IOptionsMonitor<CoordinationTargets> targets, Work work)
        : IQueryHandler<Failures, IReadOnlyList<Failure>>
    {
        public async ValueTask<IReadOnlyList<Failure>> Handle(Failures query, CancellationToken cancellationToken)
        {
            var check = Checks.Single(c => c.Code == query.Check);
            var context = ContextOf(clock, targets.CurrentValue);
            var failing = (await LoadAsync(database, query.Filter, named: true, cancellationToken))
                .Where(f => check.Applies(f, context) && !check.Passes(f, context)).ToList();
            foreach (var f in failing)
            {
                work.Scope.Touch("referral", f.ReferralId, f.PersonId);
            }
            work.Scope.AuditDetail = string.Create(CultureInfo.InvariantCulture,
                $"Data quality: {check.Code}, {query.Filter.From:yyyy-MM-dd} to {query.Filter.To:yyyy-MM-dd}: {failing.Count} referrals");
            return
            [
                .. failing.Select(f => new Failure(f.ReferralId, NhsNumber.Format(f.NhsNumber), $"{f.GivenName} {f.FamilyName}",
                    DateOnly.FromDateTime(LondonTime.ToLocal(f.SubmittedAt).DateTime), f.Trust, check.Why(f, context))),
            ];
        }
    }

    public static void MapCsv(IEndpointRouteBuilder app) =>
        app.MapReportCsv<IReadOnlyList<Measure>, Row>(Slug, filter => new Scorecard(filter), measures => measures.Select(m => m.ToRow()));
}
