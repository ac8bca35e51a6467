using CareCoordination.Domain;
using CareCoordination.Features.Referrals;

namespace CareCoordination.Features.Coordination;

/// <summary>
/// The queue's order, as points a coordinator can read: urgency first, then each day a person has been
/// medically optimised and still in hospital (each costs a bed day and their recovery), then time
/// waiting, then risks. Highest first; the explanation lists every part.
/// </summary>
public sealed record Priority(int Score, IReadOnlyList<Priority.Part> Parts)
{
    public const int ImmediatePoints = 300;
    public const int UrgentPoints = 150;
    public const int PointsPerDayDelayed = 40;
    public const int MaxDaysDelayed = 10;
    public const int MinutesPerPoint = 10;
    public const int MaxWaitingPoints = 144;
    public const int PointsPerRisk = 15;

    public sealed record Part(string Reason, int Points);

    /// <summary>What the page shows beside the score, e.g. "Urgent +150 · 2 days past medically optimised +80 · ...".</summary>
    public string Explanation => string.Join(" · ", Parts.Select(p => $"{p.Reason} +{p.Points}"));

    /// <summary>The rule in words, shown at the top of the queue.</summary>
    public static string Rule =>
        $"Ordered by points: immediate +{ImmediatePoints}, urgent +{UrgentPoints}; +{PointsPerDayDelayed} for each day since the person was " +
        $"medically optimised (up to {MaxDaysDelayed} days); +1 for every {MinutesPerPoint} minutes waiting (up to {MaxWaitingPoints}); " +
        $"+{PointsPerRisk} for each risk. Highest first.";

    public static Priority Of(string urgency, DateOnly? medicallyOptimisedOn, DateOnly today, TimeSpan waited, IReadOnlyList<string> risks)
    {
        var parts = new List<Part>();
        switch (urgency)
        {
            case "immediate":
                parts.Add(new Part("Immediate", ImmediatePoints));
                break;
            case "urgent":
                parts.Add(new Part("Urgent", UrgentPoints));
                break;
        }
        if (medicallyOptimisedOn is { } optimised && optimised < today)
        {
            var days = today.DayNumber - optimised.DayNumber;
            parts.Add(new Part($"{days} {(days == 1 ? "day" : "days")} since medically optimised", Math.Min(days, MaxDaysDelayed) * PointsPerDayDelayed));
        }
        var waitingPoints = Math.Min((int)(waited.TotalMinutes / MinutesPerPoint), MaxWaitingPoints);
        if (waitingPoints > 0)
        {
            parts.Add(new Part($"waiting {ReferralText.Duration(waited)}", waitingPoints));
        }
        if (risks.Count > 0)
        {
            parts.Add(new Part(string.Join(", ", risks), risks.Count * PointsPerRisk));
        }
        return new Priority(parts.Sum(p => p.Points), parts);
    }

    /// <summary>The risks the rule counts, in the words the queue shows.</summary>
    public static IReadOnlyList<string> Risks(bool safeguarding, string? infection, bool falls, bool selfNeglect, bool cognition, bool mentalCapacity)
    {
        var risks = new List<string>();
        if (safeguarding) risks.Add("safeguarding");
        if (!string.IsNullOrWhiteSpace(infection)) risks.Add("infection");
        if (falls) risks.Add("falls");
        if (selfNeglect) risks.Add("self-neglect");
        if (cognition) risks.Add("cognition");
        if (mentalCapacity) risks.Add("mental capacity");
        return risks;
    }

    public static string UrgencyLabel(string urgency) => ReferralCodes.LabelOf(ReferralCodes.Urgencies, urgency);
}
