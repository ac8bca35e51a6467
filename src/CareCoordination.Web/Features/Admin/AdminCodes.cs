using CareCoordination.Domain;
using CareCoordination.Features.BedBureau;

namespace CareCoordination.Features.Admin;

/// <summary>
/// The coded answers on the administration forms. The forms offer these, the validators accept only
/// these, and the schema's CHECK constraints hold the same lists: one list each.
/// </summary>
public static class AdminCodes
{
    public const int NameLength = 120;

    public static IReadOnlyList<Code> SiteKinds { get; } =
    [
        new("community-hospital", "Community hospital"),
        new("care-home", "Care home"),
        new("step-down-unit", "Step-down unit"),
    ];

    public static IReadOnlyList<Code> BedTypes { get; } =
        new[] { "rehabilitation", "step-down-nursing", "residential", "nursing", "dementia" }.Select(t => new Code(t, MatchBeds.Label(t))).ToList();

    public static IReadOnlyList<Code> AllowedSexes { get; } =
    [
        new("any", "Any sex"),
        new("female", "Female bay"),
        new("male", "Male bay"),
    ];

    /// <summary>Home and community services. Bed-based capacity is added as sites, wards and beds, which the bed bureau places.</summary>
    public static IReadOnlyList<Code> ServiceKinds { get; } =
        ReferralCodes.ServiceKinds.Where(k => k.Value is "reablement" or "home-care" or "therapy" or "voluntary-sector").ToList();

    public static IReadOnlyList<Code> CapacityUnits { get; } =
    [
        new("slots", "Slots", "People it can start a day"),
        new("hours", "Hours", "Hours of care it can give a day"),
    ];

    /// <summary>The Care Quality Commission's overall ratings.</summary>
    public static IReadOnlyList<Code> CqcRatings { get; } =
    [
        new("outstanding", "Outstanding"),
        new("good", "Good"),
        new("requires-improvement", "Requires improvement"),
        new("inadequate", "Inadequate"),
        new("not-rated", "Not yet rated"),
    ];

    /// <summary>The commissioners' caution, which the bed bureau's reservation rules read.</summary>
    public static IReadOnlyList<Code> Cautions { get; } =
    [
        new("none", "None", "Place as usual"),
        new("amber", "Amber", "A placement needs a manager's approval after a risk discussion"),
        new("red", "Red", "No new placements"),
    ];
}
