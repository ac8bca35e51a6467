using System.Globalization;
using CareCoordination.Auth;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using CsvHelper;
using Dapper;
using FluentValidation;
using Mediator;
using Microsoft.Extensions.Options;

namespace CareCoordination.Features.Reports;

/// <summary>The equity report's settings: configuration section "Reports:Equity".</summary>
public sealed class EquitySettings
{
    /// <summary>A group is marked when its disproportionality ratio is more than this far from 1 (20: below 0.80 or above 1.20).</summary>
    public int DisproportionalityThresholdPercent { get; set; } = 20;
}

/// <summary>
/// Report 5, equity: who is referred, how long they wait and what is decided for them, by ethnic group, age band, sex and
/// deprivation, each group against everyone referred. Counts of 1 to 4 are hidden, and one more count beside a lone
/// hidden one, so that no hidden count can be worked out from the total (see <see cref="Suppress"/>).
/// </summary>
public static partial class EquityReport
{
    public const string Slug = "equity";

    /// <summary>Counts of 1 to this minus one are shown as "&lt;5".</summary>
    public const int SmallestShown = 5;

    [AllowRoles(Roles.Manager, Roles.Admin)]
    public sealed record Query(ReportFilter Filter) : IQuery<Result>;

    public sealed class Validator : AbstractValidator<Query>
    {
        public Validator() => RuleFor(q => q.Filter).SetValidator(new ReportFilter.Rules());
    }

    public enum Hidden { No, SmallNumber, ProtectsAnother }

    /// <summary>A count as the report may show it: hidden when small, or when it would give a small one away.</summary>
    public sealed record Count(int Value, Hidden Hidden)
    {
        public int? Shown => Hidden == Hidden.No ? Value : null;

        public string Text => Hidden switch
        {
            Hidden.SmallNumber => $"<{SmallestShown}",
            Hidden.ProtectsAnother => "*",
            _ => Value.ToString(CultureInfo.InvariantCulture),
        };
    }

    public enum Marker { None, Higher, Lower }

    /// <summary>A group's outcome: how many, per 100 of the group's referrals, and that rate over the rate for everyone.</summary>
    public sealed record Outcome(Count Count, double? RatePercent, double? Ratio, Marker Marker);

    /// <summary>A group's wait in days (median), and that median over everyone's; null when fewer than 5 people waited.</summary>
    public sealed record Wait(double? MedianDays, double? Ratio, Marker Marker);

    public sealed record Group(string Dimension, string Name, Count Referrals, double? SharePercent,
        Outcome HomeBased, Outcome Bed, Outcome Declined, Wait ToDecision, Wait ToServiceStart);

    public sealed record Dimension(string Name, IReadOnlyList<Group> Groups);

    /// <param name="DeprivationIllustrative">The lookup loaded is the demo county's made-up one, not the published files.</param>
    public sealed record Result(ReportFilter Filter, int ThresholdPercent, Group Everyone, IReadOnlyList<Dimension> Dimensions,
        bool DeprivationLoaded, bool DeprivationIllustrative)
    {
        public IEnumerable<Row> Rows => new[] { Everyone }.Concat(Dimensions.SelectMany(d => d.Groups)).Select(Row.From);
    }

    /// <summary>One line of the CSV: a group's figures as the page shows them ("&lt;5" and "*" where hidden).</summary>
    [CsvRecord]
    public sealed partial record Row(string Dimension, string Group, string Referrals, double? ShareOfReferralsPercent,
        string HomeBased, double? HomeBasedPer100, double? HomeBasedRatio, string HomeBasedMarker,
        string Bed, double? BedPer100, double? BedRatio, string BedMarker,
        string Declined, double? DeclinedPer100, double? DeclinedRatio, string DeclinedMarker,
        double? DaysToDecisionMedian, double? DaysToDecisionRatio, string DaysToDecisionMarker,
        double? DaysToServiceStartMedian, double? DaysToServiceStartRatio, string DaysToServiceStartMarker)
    {
        public static Row From(Group g) => new(g.Dimension, g.Name, g.Referrals.Text, g.SharePercent,
            g.HomeBased.Count.Text, g.HomeBased.RatePercent, g.HomeBased.Ratio, Words(g.HomeBased.Marker),
            g.Bed.Count.Text, g.Bed.RatePercent, g.Bed.Ratio, Words(g.Bed.Marker),
            g.Declined.Count.Text, g.Declined.RatePercent, g.Declined.Ratio, Words(g.Declined.Marker),
            g.ToDecision.MedianDays, g.ToDecision.Ratio, Words(g.ToDecision.Marker),
            g.ToServiceStart.MedianDays, g.ToServiceStart.Ratio, Words(g.ToServiceStart.Marker));
    }

    public static string Words(Marker marker) => marker switch
    {
        Marker.Higher => "higher",
        Marker.Lower => "lower",
        _ => "",
    };

    // ---- The groups, in the order the report lists them ----

    public const string Ethnicity = "Ethnic group";
    public const string AgeBand = "Age band";
    public const string Sex = "Sex";
    public const string Deprivation = "Deprivation (IMD 2019 decile)";
    public const string NotKnown = "Not known";

    /// <summary>
    /// The NHS ethnic category codes (2001 census classification) in their high-level groups, as the NHS Data Dictionary
    /// groups them: Chinese (R) sits in "Other ethnic groups" there, not in "Asian" as in the 2011 and 2021 censuses.
    /// </summary>
    public static IReadOnlyList<string> EthnicGroups { get; } =
        ["White", "Mixed", "Asian or Asian British", "Black or Black British", "Other ethnic groups", "Not stated", NotKnown];

    public static string EthnicGroup(string? code) => code?.Trim().ToUpperInvariant() switch
    {
        "A" or "B" or "C" => "White",
        "D" or "E" or "F" or "G" => "Mixed",
        "H" or "J" or "K" or "L" => "Asian or Asian British",
        "M" or "N" or "P" => "Black or Black British",
        "R" or "S" => "Other ethnic groups",
        "Z" => "Not stated",
        _ => NotKnown,
    };

    public static IReadOnlyList<string> AgeBands { get; } = ["Under 65", "65 to 74", "75 to 84", "85 and over"];

    public static string AgeBandOf(int age) => age switch
    {
        < 65 => "Under 65",
        < 75 => "65 to 74",
        < 85 => "75 to 84",
        _ => "85 and over",
    };

    public static IReadOnlyList<string> Sexes { get; } = ["Female", "Male", "Other", NotKnown];

    public static string SexOf(string sex) => sex switch
    {
        "female" => "Female",
        "male" => "Male",
        "other" => "Other",
        _ => NotKnown,
    };

    public static IReadOnlyList<string> Deciles { get; } =
        [.. Enumerable.Range(1, 10).Select(DecileName), NotKnown];

    public static string DecileName(int decile) => decile switch
    {
        1 => "1 (most deprived)",
        10 => "10 (least deprived)",
        _ => decile.ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>Age in whole years on the London day the referral was sent.</summary>
    public static int AgeOn(DateOnly born, DateOnly on) =>
        on.Year - born.Year - (on.Month < born.Month || (on.Month == born.Month && on.Day < born.Day) ? 1 : 0);

    // ---- Counting ----

    internal sealed record Referral
    {
        public DateTimeOffset SubmittedAt { get; init; }
        public DateOnly DateOfBirth { get; init; }
        public string Sex { get; init; } = "";
        public string? Ethnicity { get; init; }
        public int? ImdDecile { get; init; }
        public DateTimeOffset? DecidedAt { get; init; }
        public DateTimeOffset? ServiceStartedAt { get; init; }
        public Decision Decision { get; init; }
    }

    // The numbers are the query's: it works the decision out as it reads each referral.
    internal enum Decision { None = 0, HomeBased = 1, Bed = 2, Declined = 3 }

    private sealed record Counted(Referral Referral, Decision Decision, double? DaysToDecision, double? DaysToServiceStart,
        string Ethnicity, string AgeBand, string Sex, string Deprivation);

    // Referrals sent in the period; the first decision (the task closed as accepted or declined, not a pass between teams) and
    // the first placement that started, both kept on the referral (ReferralFirsts; a year at 1M referrals read each one's tasks
    // and placements in over 2 s, issue 13); and what was decided: declined, cancelled (nothing), or else where the first
    // placement not cancelled went (a service: home-based; a bed), nothing if none. Worked out here rather than from the
    // referral's status and that placement in .NET: the placement is not looked up for a declined or cancelled referral, and
    // a year at 1M referrals carries two text columns fewer.
    // What equity reads of each referral besides its submission: over "referral r JOIN person p" and EquityJoins. The decision
    // pack reads these beside the scorecard's columns in one pass over its quarter (DataQuality.LoadAsync), so they are kept here once.
    internal const string EquityColumns = """
        pe.date_of_birth AS DateOfBirth, pe.sex AS Sex, da.imd_decile AS ImdDecile,
               r.first_decided_at AS DecidedAt, r.first_started_at AS ServiceStartedAt,
               CASE r.status WHEN 'declined' THEN 3 WHEN 'cancelled' THEN 0
                    ELSE COALESCE((SELECT CASE WHEN f.service_id IS NOT NULL THEN 1 ELSE 2 END FROM placement f
                                   WHERE f.referral_id = r.id AND f.status <> 'cancelled' ORDER BY f.created_at, f.id LIMIT 1), 0) END AS Decision
        """;

    internal const string EquityJoins = """
        LEFT JOIN deprivation_postcode dp ON dp.postcode = pe.postcode
        LEFT JOIN deprivation_area da ON da.lsoa_code = dp.lsoa_code
        """;

    private const string Sql = $"""
        SELECT r.submitted_at AS SubmittedAt, pe.ethnicity AS Ethnicity, {EquityColumns}
        FROM referral r
        JOIN person pe ON pe.id = r.person_id
        {EquityJoins}
        WHERE r.submitted_at >= @start AND r.submitted_at < @end
          AND (@trust IS NULL OR r.organisation_id = @trust)
          AND (@locality IS NULL OR pe.locality = @locality)
        """;

    public sealed class Handler(Database database, IOptionsMonitor<EquitySettings> settings) : IQueryHandler<Query, Result>
    {
        public async ValueTask<Result> Handle(Query query, CancellationToken cancellationToken)
        {
            var filter = query.Filter;
            // Each part of the period read and classified at once: a year at 1M referrals read on one core took over 3 s. The
            // figures do not depend on the order the referrals arrive in.
            var parts = await ReportFilter.ReadAtOnceAsync(filter.Parts(ReportFilter.ReadParts), part => ClassifyAsync(part, cancellationToken), cancellationToken);
            return await ResultAsync(database, filter, [.. parts.SelectMany(part => part)], settings.CurrentValue.DisproportionalityThresholdPercent, cancellationToken);
        }

        /// <summary>The report from referrals already read (the decision pack reads its quarter's once for equity and the scorecard).</summary>
        internal static Task<Result> FromReferralsAsync(Database database, ReportFilter filter, IEnumerable<Referral> referrals, int thresholdPercent,
            CancellationToken cancellationToken)
        {
            var days = new StoredTimes();
            return ResultAsync(database, filter, [.. referrals.Select(r => Classify(r, days))], thresholdPercent, cancellationToken);
        }

        private static async Task<Result> ResultAsync(Database database, ReportFilter filter, IReadOnlyList<Counted> counted, int thresholdPercent,
            CancellationToken cancellationToken)
        {
            await using var connection = await database.OpenForReportAsync(cancellationToken);
            var source = await connection.ExecuteScalarAsync<string?>(
                new CommandDefinition("SELECT postcode_file FROM deprivation_source", cancellationToken: cancellationToken));
            var illustrative = source is not null && source.EndsWith(Path.GetFileName(DeprivationSettings.DemoPostcodeLookupFile), StringComparison.Ordinal);
            return Tally(filter, counted, thresholdPercent, source is not null, illustrative);
        }

        private async Task<List<Counted>> ClassifyAsync(ReportFilter part, CancellationToken cancellationToken)
        {
            await using var connection = await database.OpenForReportAsync(cancellationToken);
            // Read straight off the reader, in the query's column order: a year is 330,000 referrals, and Dapper's mapping (each
            // time through its type handler, each number boxed) cost a large share of the report (issue 13).
            await using var rows = await connection.ReadRowsAsync(new CommandDefinition(Sql,
                new { start = part.StartUtc, end = part.EndUtc, trust = part.Trust, locality = part.Locality }, cancellationToken: cancellationToken));
            var reader = rows.Reader;
            var days = new StoredTimes();
            var counted = new List<Counted>();
            while (await reader.ReadAsync(cancellationToken))
            {
                counted.Add(Classify(new Referral
                {
                    SubmittedAt = StoredTimes.Read(reader.GetValue(0)),
                    Ethnicity = reader.IsDBNull(1) ? null : reader.GetString(1),
                    DateOfBirth = StoredTimes.ReadDate(reader.GetValue(2)),
                    Sex = reader.GetString(3),
                    ImdDecile = reader.IsDBNull(4) ? null : Convert.ToInt32(reader.GetValue(4), CultureInfo.InvariantCulture),
                    DecidedAt = StoredTimes.ReadOrNull(reader.GetValue(5)),
                    ServiceStartedAt = StoredTimes.ReadOrNull(reader.GetValue(6)),
                    Decision = (Decision)Convert.ToInt32(reader.GetValue(7), CultureInfo.InvariantCulture),
                }, days));
            }
            return counted;
        }

        // The London day through the offsets cache (a time zone conversion per referral was a visible part of a year).
        private static Counted Classify(Referral r, StoredTimes days) =>
            new(r, r.Decision, Days(r.SubmittedAt, r.DecidedAt), Days(r.SubmittedAt, r.ServiceStartedAt),
                EthnicGroup(r.Ethnicity), AgeBandOf(AgeOn(r.DateOfBirth, days.DayOf(r.SubmittedAt))), SexOf(r.Sex),
                r.ImdDecile is { } d ? DecileName(d) : NotKnown);

        private static double? Days(DateTimeOffset from, DateTimeOffset? to) => to is { } t ? (t - from).TotalDays : null;
    }

    private static Result Tally(ReportFilter filter, IReadOnlyList<Counted> all, int thresholdPercent, bool deprivationLoaded, bool illustrative)
    {
        var threshold = thresholdPercent / 100.0;
        var overall = new Overall(all);
        var everyone = Figures("All referrals", "All", all, overall, threshold);
        Dimension Dimension(string name, IReadOnlyList<string> groups, Func<Counted, string> key)
        {
            var byGroup = all.ToLookup(key);
            var figures = groups.Select(g => Figures(name, g, [.. byGroup[g]], overall, threshold)).ToList();
            return new Dimension(name, Suppress(figures));
        }
        return new Result(filter, thresholdPercent, Primary(everyone),
        [
            Dimension(Ethnicity, EthnicGroups, c => c.Ethnicity),
            Dimension(AgeBand, AgeBands, c => c.AgeBand),
            Dimension(Sex, Sexes, c => c.Sex),
            Dimension(Deprivation, Deciles, c => c.Deprivation),
        ], deprivationLoaded, illustrative);
    }

    /// <summary>
    /// Everyone's figures, which every group is compared with: worked out once, not again for each group (a year of a large
    /// store is hundreds of thousands of referrals, and each median a sort of them all).
    /// </summary>
    private sealed class Overall(IReadOnlyList<Counted> all)
    {
        public int Count { get; } = all.Count;

        private readonly Dictionary<Decision, int> _decided = all.GroupBy(c => c.Decision).ToDictionary(g => g.Key, g => g.Count());

        public double Rate(Decision decision) => Count == 0 ? 0 : (double)_decided.GetValueOrDefault(decision) / Count;

        public double? ToDecision { get; } = Median(DaysOf(all, c => c.DaysToDecision));

        public double? ToServiceStart { get; } = Median(DaysOf(all, c => c.DaysToServiceStart));
    }

    /// <summary>A group's figures before any are hidden.</summary>
    private static Group Figures(string dimension, string name, IReadOnlyList<Counted> group, Overall all, double threshold)
    {
        Outcome Outcome(Decision decision)
        {
            var count = group.Count(c => c.Decision == decision);
            double? rate = group.Count == 0 ? null : (double)count / group.Count;
            var overall = all.Rate(decision);
            double? ratio = rate is { } r && overall > 0 ? r / overall : null;
            return new Outcome(new Count(count, Hidden.No), Round(rate * 100, 1), Round(ratio, 2), MarkerFor(ratio, threshold));
        }
        Wait Wait(Func<Counted, double?> days, double? overall)
        {
            var median = Median(DaysOf(group, days));
            double? ratio = median is { } m && overall is > 0 ? m / overall : null;
            return new Wait(Round(median, 2), Round(ratio, 2), MarkerFor(ratio, threshold));
        }
        return new Group(dimension, name, new Count(group.Count, Hidden.No), all.Count == 0 ? null : Round(100.0 * group.Count / all.Count, 1),
            Outcome(Decision.HomeBased), Outcome(Decision.Bed), Outcome(Decision.Declined),
            Wait(c => c.DaysToDecision, all.ToDecision), Wait(c => c.DaysToServiceStart, all.ToServiceStart));
    }

    // Shown as rounded; markers are decided on the unrounded ratio.
    private static double? Round(double? value, int digits) => value is { } v ? Math.Round(v, digits, MidpointRounding.AwayFromZero) : null;

    // The waits there are, as a new array the median may reorder (OfType over nullable numbers boxed each one).
    private static double[] DaysOf(IReadOnlyList<Counted> group, Func<Counted, double?> days)
    {
        var found = new List<double>(group.Count);
        foreach (var c in group)
        {
            if (days(c) is { } d)
            {
                found.Add(d);
            }
        }
        return [.. found];
    }

    /// <summary>The middle wait (the mean of the two middle ones for an even number); none for fewer than 5 people.</summary>
    public static double? Median(IReadOnlyList<double> days)
    {
        if (days.Count < SmallestShown)
        {
            return null;
        }
        // The middle one found by selection, not a sort: the report takes ten medians over up to a year's referrals
        // (issue 13), and only the middle one or two are needed. The same values a sort puts in the middle.
        var values = days.ToArray();
        var middle = values.Length / 2;
        var upper = Select(values, middle);
        if (values.Length % 2 == 1)
        {
            return upper;
        }
        // Everything before the middle is now no greater than it: the largest of those is the other middle one.
        var lower = values[0];
        for (var i = 1; i < middle; i++)
        {
            lower = Math.Max(lower, values[i]);
        }
        return (lower + upper) / 2;
    }

    /// <summary>
    /// Puts the k-th smallest value (from 0) at index k, the values before it no greater and those after no smaller, and
    /// returns it (Hoare's selection; the middle of three as the pivot, so that sorted or equal waits stay linear).
    /// </summary>
    internal static double Select(double[] values, int k)
    {
        var (left, right) = (0, values.Length - 1);
        while (left < right)
        {
            var mid = left + (right - left) / 2;
            if (values[mid] < values[left]) (values[mid], values[left]) = (values[left], values[mid]);
            if (values[right] < values[left]) (values[right], values[left]) = (values[left], values[right]);
            if (values[right] < values[mid]) (values[right], values[mid]) = (values[mid], values[right]);
            var pivot = values[mid];
            var (i, j) = (left, right);
            while (i <= j)
            {
                while (values[i] < pivot) i++;
                while (values[j] > pivot) j--;
                if (i <= j)
                {
                    (values[i], values[j]) = (values[j], values[i]);
                    i++;
                    j--;
                }
            }
            // Now values[left..j] <= pivot <= values[i..right], and any between j and i equal the pivot.
            if (k <= j) right = j;
            else if (k >= i) left = i;
            else break;
        }
        return values[k];
    }

    public static Marker MarkerFor(double? ratio, double threshold) => ratio switch
    {
        { } r when r > 1 + threshold => Marker.Higher,
        { } r when r < 1 - threshold => Marker.Lower,
        _ => Marker.None,
    };

    private static bool IsSmall(int value) => value is > 0 and < SmallestShown;

    private static Group Primary(Group g) => Hide(g, IsSmall(g.Referrals.Value), IsSmall(g.HomeBased.Count.Value), IsSmall(g.Bed.Count.Value),
        IsSmall(g.Declined.Count.Value), Hidden.SmallNumber);

    /// <summary>
    /// Hides the figures of one dimension. Primary: every count of 1 to 4, with the share, rate and ratio made from it (a
    /// rate over a hidden number of referrals is hidden too). Secondary: the groups of a dimension add up to the total of
    /// everyone referred, so where a column has exactly one count hidden, the smallest count above zero still shown in that
    /// column is hidden as well ("*"), and neither can be worked out from the total. Zeros stay shown: they reveal nobody.
    /// </summary>
    public static IReadOnlyList<Group> Suppress(IReadOnlyList<Group> groups)
    {
        var hidden = groups.Select(Primary).ToList();
        Func<Group, Count>[] columns = [g => g.Referrals, g => g.HomeBased.Count, g => g.Bed.Count, g => g.Declined.Count];
        for (var column = 0; column < columns.Length; column++)
        {
            var cells = hidden.Select(columns[column]).ToList();
            if (cells.Count(c => c.Hidden != Hidden.No) != 1)
            {
                continue;
            }
            var protect = Enumerable.Range(0, cells.Count).Where(i => cells[i].Hidden == Hidden.No && cells[i].Value > 0)
                .OrderBy(i => cells[i].Value).ThenBy(i => i).Cast<int?>().FirstOrDefault();
            if (protect is { } i)
            {
                hidden[i] = Hide(hidden[i], column == 0, column == 1, column == 2, column == 3, Hidden.ProtectsAnother);
            }
        }
        return hidden;
    }

    private static Group Hide(Group g, bool referrals, bool home, bool bed, bool declined, Hidden why)
    {
        var referralsCount = referrals ? g.Referrals with { Hidden = why } : g.Referrals;
        var referralsHidden = referralsCount.Hidden != Hidden.No;
        Outcome Apply(Outcome o, bool hide)
        {
            var count = hide ? o.Count with { Hidden = why } : o.Count;
            return count.Hidden != Hidden.No || referralsHidden ? new Outcome(count, null, null, Marker.None) : o;
        }
        return g with
        {
            Referrals = referralsCount,
            SharePercent = referralsHidden ? null : g.SharePercent,
            HomeBased = Apply(g.HomeBased, home),
            Bed = Apply(g.Bed, bed),
            Declined = Apply(g.Declined, declined),
        };
    }
}
