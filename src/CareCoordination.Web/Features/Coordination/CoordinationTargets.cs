namespace CareCoordination.Features.Coordination;

/// <summary>
/// The waiting targets, from configuration section "Coordination". Defaults are those of the best-run
/// hubs: taken (accepted by the hub) within 15 minutes, triaged within 30.
/// </summary>
public sealed class CoordinationTargets
{
    public int TakenWithinMinutes { get; set; } = 15;

    public int TriagedWithinMinutes { get; set; } = 30;

    /// <summary>Amber from this share of the target in force: time to act before it turns red.</summary>
    public int AmberAtPercent { get; set; } = 75;

    /// <summary>How often waiting referrals are checked for a breach that needs a re-contact task; 0 turns the check off.</summary>
    public int RecontactCheckSeconds { get; set; } = 60;
}
