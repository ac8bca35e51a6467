using CareCoordination.Domain;

namespace CareCoordination.Bench.History;

/// <summary>
/// Who the large store's people are, in shares like a county's referred population (issue 13's equity report needs every
/// group, the data quality scorecard some gaps): sex, age, ethnic category, and a postcode from the loaded deprivation
/// lookup so that every IMD decile has people, with the locality of its postcode district as the product works it out.
/// </summary>
public sealed class People(IReadOnlyList<string> postcodes, IReadOnlyDictionary<string, string> districts, IReadOnlyList<string> localities)
{
    public sealed record Person(string Sex, DateOnly Born, string? Ethnicity, string? Postcode, string Locality);

    // NHS ethnic category codes, weighted per 1,000 (mostly White British, as in a rural county); null is "not recorded".
    private static readonly (string? Code, int Weight)[] Ethnicities =
    [
        ("A", 800), ("B", 10), ("C", 40), ("D", 5), ("E", 4), ("F", 5), ("G", 4), ("H", 12), ("J", 8), ("K", 4), ("L", 8),
        ("M", 8), ("N", 10), ("P", 3), ("R", 4), ("S", 10), ("Z", 30), (null, 35),
    ];

    public Person Next(Random random, DateTimeOffset sent)
    {
        var roll = random.Next(1000);
        var sex = roll < 550 ? "female" : roll < 994 ? "male" : roll < 997 ? "other" : "unknown";
        // Mostly older people: about a third under 75, a third 75 to 84, a third 85 and over.
        var ageRoll = random.Next(100);
        var age = ageRoll < 18 ? random.Next(18, 65) : ageRoll < 38 ? random.Next(65, 75) : ageRoll < 70 ? random.Next(75, 85) : random.Next(85, 103);
        var born = LondonTime.DateOf(sent).AddYears(-age).AddDays(-random.Next(0, 365));
        var pick = random.Next(1000);
        string? ethnicity = null;
        foreach (var (code, weight) in Ethnicities)
        {
            if ((pick -= weight) < 0)
            {
                ethnicity = code;
                break;
            }
        }
        var postcodeRoll = random.Next(100);
        var postcode = postcodeRoll < 3 ? null
            : postcodeRoll < 5 || postcodes.Count == 0 ? "WM9 9ZZ" // a postcode the lookup does not know: deprivation "not known"
            : postcodes[random.Next(postcodes.Count)];
        var locality = postcode is not null && districts.TryGetValue(postcode.Split(' ')[0], out var known) ? known : localities[random.Next(localities.Count)];
        return new Person(sex, born, ethnicity, postcode, locality);
    }
}

/// <summary>
/// What happened to a referral after it was sent, as the product's flows record it (issue 13): the discharge ready date of a
/// hospital patient, the triage decision and the pathway it intends, the placement into a service or a bed with its start and
/// end, the discharge that the placement's start records (with pathway, destination and care level), and the delay reasons of
/// those who waited past their discharge ready date, from the code list version of the day. Shares are those of a county's
/// discharge returns: most people leave within a day of being ready, a tail waits weeks.
/// </summary>
public sealed class Discharges(IReadOnlyList<Discharges.Service> services, IReadOnlyList<Discharges.Bed> beds, IReadOnlyList<Discharges.ListItem> codes,
    IEnumerable<long> bedsInUse)
{
    public sealed record Service
    {
        public long Id { get; init; }
        public string Kind { get; init; } = "";
        public string Unit { get; init; } = "";
    }

    public sealed record Bed
    {
        public long Id { get; init; }
        public string Type { get; init; } = "";
        public string Site { get; init; } = "";
        public string SiteKind { get; init; } = "";
    }

    public sealed record ListItem
    {
        public string Version { get; init; } = "";
        public DateOnly ValidFrom { get; init; }
        public DateOnly? ValidTo { get; init; }
        public string Code { get; init; } = "";
    }

    public sealed record Delay(string Version, string Code, DateTimeOffset From, DateTimeOffset? To);

    public sealed record Flow
    {
        public DateOnly? Ready { get; init; }
        public DateTimeOffset DecidedAt { get; init; }
        public bool Bed { get; init; }
        public string? ServiceKind { get; init; }
        public long? ServiceId { get; init; }
        public long? BedId { get; init; }
        public string? BedType { get; init; }
        public string? SiteName { get; init; }
        public string? PlacementStatus { get; init; }
        public DateTimeOffset? StartedAt { get; init; }
        public DateTimeOffset? EndedAt { get; init; }
        public int? HoursPerDay { get; init; }
        public string? PathwayIntended { get; init; }
        public DateTimeOffset? DischargedAt { get; init; }
        public string? RecordedFrom { get; init; }
        public string? PathwayAtDischarge { get; init; }
        public string? Destination { get; init; }
        public string? CareLevel { get; init; }
        public IReadOnlyList<Delay> Delays { get; init; } = [];
    }

    private static readonly string[] HomeKinds = ["reablement", "reablement", "reablement", "reablement", "home-care", "home-care", "home-care", "therapy", "therapy", "voluntary-sector"];

    // Days from the discharge ready date to discharge, cumulative per 100: 40 the same day, 15 the next, then a tail to 40 days.
    private static readonly (int Below, int Min, int Max)[] DelayDays =
        [(40, 0, 0), (55, 1, 1), (70, 2, 3), (82, 4, 6), (92, 7, 13), (97, 14, 20), (100, 21, 40)];

    private readonly Dictionary<string, List<Service>> _byKind = services.GroupBy(s => s.Kind).ToDictionary(g => g.Key, g => g.ToList());
    // A bed holds one live placement at a time (ux_placement_bed_live): those the demo seed placed already, then ours.
    private readonly HashSet<long> _bedsInUse = [.. bedsInUse];

    public Flow Next(Random random, DateTimeOffset now, DateTimeOffset sent, bool isOpen, string status, string source, string asked)
    {
        var hospital = source is "acute-hospital" or "community-hospital";
        var sentDay = LondonTime.DateOf(sent);
        DateOnly? ready = !hospital || random.Next(20) == 0 ? null
            // Open referrals: some people were ready weeks before anyone referred them, so the sitrep has a tail of long waits.
            : isOpen ? sentDay.AddDays(-random.Next(0, 30)) : sentDay.AddDays(random.Next(-3, 3));
        if (isOpen)
        {
            var waited = ready is { } r ? LondonTime.DateOf(now).DayNumber - r.DayNumber : 0;
            return new Flow
            {
                Ready = ready,
                Delays = waited >= 2 && random.Next(10) < 8 ? [Reason(random, LondonAt(ready!.Value.AddDays(1), 10), null)] : [],
            };
        }
        var decided = Clamp(sent.AddMinutes(random.Next(20, 1200)), sent, now);
        if (status is "declined" or "cancelled" || services.Count == 0)
        {
            return new Flow { Ready = ready, DecidedAt = decided };
        }

        var bed = beds.Count > 0 && (asked is "2" or "3" ? random.Next(10) < 6 : random.Next(10) == 0);
        Service? service = null;
        Bed? place = null;
        string intended;
        if (bed)
        {
            place = beds[random.Next(beds.Count)];
            intended = asked == "3" ? "3" : "2";
        }
        else
        {
            var kind = random.Next(25) == 0 && _byKind.ContainsKey("community-hospital") ? "community-hospital" : HomeKinds[random.Next(HomeKinds.Length)];
            var candidates = _byKind.TryGetValue(kind, out var found) ? found : services;
            service = candidates[random.Next(candidates.Count)];
            intended = service.Kind switch { "voluntary-sector" => "0", "community-hospital" or "care-home" => "2", _ => "1" };
        }

        // The start: a hospital patient leaves on their discharge ready date plus the delay; anyone else a few days after the decision.
        var start = hospital && ready is { } day
            ? LondonAt(day.AddDays(Pick(random)), 10 + random.Next(8)).AddMinutes(random.Next(60))
            : decided.AddDays(random.Next(0, 6)).AddHours(random.Next(1, 8));
        start = Clamp(start, decided.AddHours(2), now.AddMinutes(-30));
        if (start < decided)
        {
            decided = start;
        }
        var days = bed ? random.Next(14, 70) : service!.Kind switch
        {
            "reablement" => random.Next(10, 43),
            "home-care" => random.Next(30, 366),
            "therapy" => random.Next(14, 43),
            "voluntary-sector" => random.Next(14, 91),
            _ => random.Next(14, 60),
        };
        DateTimeOffset? ended = start.AddDays(days).AddHours(random.Next(-3, 4));
        var placementStatus = "ended";
        if (ended > now)
        {
            // Still running; a bed holds one live placement at a time, so a bed already in use has this one ended now.
            if (place is null || _bedsInUse.Add(place.Id))
            {
                placementStatus = "active";
                ended = null;
            }
            else
            {
                ended = Clamp(now.AddHours(-1), start, now);
            }
        }

        var flow = new Flow
        {
            Ready = ready,
            DecidedAt = decided,
            Bed = bed,
            ServiceKind = service?.Kind,
            ServiceId = service?.Id,
            BedId = place?.Id,
            BedType = place?.Type,
            SiteName = place?.Site,
            PlacementStatus = placementStatus,
            StartedAt = start,
            EndedAt = ended,
            HoursPerDay = service?.Unit == "hours" ? 1 + random.Next(4) : null,
            PathwayIntended = intended,
        };
        // A few hospital patients placed with no discharge recorded: the data quality scorecard's gaps.
        if (!hospital || random.Next(50) == 0)
        {
            return flow;
        }
        var fromRoll = random.Next(100);
        var (recordedFrom, left) = fromRoll < 90 ? ("placement", start) : fromRoll < 97 ? ("referrer", start.AddHours(-random.Next(1, 6))) : ("partner", start.AddMinutes(-random.Next(5, 90)));
        var destination = place is not null
            ? place.SiteKind == "care-home" ? (random.Next(10) == 0 ? "designated-setting" : "care-home") : "community-hospital"
            : service!.Kind is "community-hospital" ? "community-hospital"
            : random.Next(100) switch { < 92 => "home", < 96 => "temporary-accommodation", _ => "hospice-at-home" };
        var careRoll = random.Next(100);
        var careLevel = careRoll < 75 ? "new" : careRoll < 92 || destination != "home" ? "restart" : "return-to-same-level";
        var pathwayRoll = random.Next(100);
        var delays = new List<Delay>();
        if (ready is { } readyDay && LondonTime.DateOf(left).DayNumber - readyDay.DayNumber >= 2 && random.Next(100) < 85)
        {
            var first = LondonAt(readyDay.AddDays(1), 10);
            if (first < left)
            {
                var second = LondonTime.DateOf(left).DayNumber - readyDay.DayNumber >= 6 && random.Next(2) == 0 ? first.AddDays((left - first).Days / 2) : (DateTimeOffset?)null;
                delays.Add(Reason(random, first, second ?? left));
                if (second is { } from)
                {
                    delays.Add(Reason(random, from, left));
                }
            }
        }
        return flow with
        {
            // One in a hundred recorded with a ready date after the discharge: a recording error the scorecard must find.
            Ready = ready is not null && random.Next(100) == 0 ? LondonTime.DateOf(left).AddDays(1) : ready,
            DischargedAt = left,
            RecordedFrom = recordedFrom,
            PathwayAtDischarge = pathwayRoll < 96 ? intended : pathwayRoll < 99 ? null : intended == "1" ? "0" : "1",
            Destination = destination,
            CareLevel = careLevel,
            Delays = [.. delays.Where(d => d.Code != "")],
        };
    }

    private static int Pick(Random random)
    {
        var roll = random.Next(100);
        foreach (var (below, min, max) in DelayDays)
        {
            if (roll < below)
            {
                return random.Next(min, max + 1);
            }
        }
        return 0;
    }

    /// <summary>A reason from the code list version that applied on the day it was recorded; none when no list is loaded.</summary>
    private Delay Reason(Random random, DateTimeOffset from, DateTimeOffset? to)
    {
        var day = LondonTime.DateOf(from);
        var items = codes.Where(c => c.ValidFrom <= day && (c.ValidTo is null || c.ValidTo > day)).ToList();
        if (items.Count == 0)
        {
            return new Delay("", "", from, to);
        }
        var item = items[random.Next(items.Count)];
        return new Delay(item.Version, item.Code, from, to);
    }

    private static DateTimeOffset LondonAt(DateOnly day, int hour) => LondonTime.StartOf(day).AddHours(hour);

    /// <summary>Not before min, and never after max (max wins: nothing the generator writes lies in the future).</summary>
    private static DateTimeOffset Clamp(DateTimeOffset value, DateTimeOffset min, DateTimeOffset max)
    {
        var atLeast = value < min ? min : value;
        return atLeast > max ? max : atLeast;
    }
}
