using CareCoordination.Pipeline;

namespace CareCoordination.Features.Providers;

/// <summary>
/// The commissioners' cautions list, applied the same way to beds and services: red means no new
/// placements; amber means a placement goes ahead only with a manager's approval, after a risk discussion,
/// recorded with the placement.
/// </summary>
public static class ProviderCaution
{
    /// <summary>The approval to keep with the placement (null when none is needed); refuses when the caution says no.</summary>
    public static string? Check(string provider, string caution, string? note, string? approval, string field)
    {
        switch (caution)
        {
            case "red":
                throw new RuleBroken($"{provider} is under a red caution: no new placements. {note}".Trim());
            case "amber" when string.IsNullOrWhiteSpace(approval):
                throw new ValidationFailed(new Dictionary<string, string[]>
                {
                    [field] = [$"{provider} is under an amber caution: record which manager approved this placement after a risk discussion, and what was agreed."],
                });
            case "amber":
                return approval!.Trim();
            default:
                return null;
        }
    }
}
