namespace CareCoordination.Features.Boards;

/// <summary>The managers' boards, from configuration section "Boards".</summary>
public sealed class BoardSettings
{
    /// <summary>What a bed day costs, for the price of people waiting in hospital once medically optimised (GBP).</summary>
    public decimal CostPerBedDay { get; set; } = 300m;

    /// <summary>A service whose free capacity nobody has confirmed for this long is flagged stale.</summary>
    public int ServiceStaleAfterHours { get; set; } = 24;

    /// <summary>How many weeks of each weekday the pressure forecast learns from (the most recent complete ones).</summary>
    public int ForecastWeeks { get; set; } = 4;

    /// <summary>
    /// The escalation level, in the manner of the NHS OPEL levels: each measure's thresholds for levels 2, 3
    /// and 4. The level is the highest any measure reaches; level 1 when none does.
    /// </summary>
    public EscalationThresholds Escalation { get; set; } = new();
}

public sealed class EscalationThresholds
{
    /// <summary>Open community beds occupied, percent.</summary>
    public Levels OccupancyPercent { get; set; } = new(85, 92, 97);

    /// <summary>People medically optimised and still waiting for a place.</summary>
    public Levels MedicallyOptimisedWaiting { get; set; } = new(15, 30, 45);

    /// <summary>Minutes the oldest referral has waited in the coordination queue.</summary>
    public Levels OldestWaitingMinutes { get; set; } = new(60, 180, 480);
}

/// <summary>
/// The value from which a measure reaches levels 2, 3 and 4. Named properties, not an array: configuration
/// binding appends to an array's defaults instead of replacing them.
/// </summary>
public sealed class Levels
{
    public Levels()
    {
    }

    public Levels(int level2, int level3, int level4) => (Level2, Level3, Level4) = (level2, level3, level4);

    public int Level2 { get; set; }

    public int Level3 { get; set; }

    public int Level4 { get; set; }

    public bool IsOrdered => Level2 <= Level3 && Level3 <= Level4;

    public int LevelOf(int value) => value >= Level4 ? 4 : value >= Level3 ? 3 : value >= Level2 ? 2 : 1;

    public int From(int level) => level switch { 4 => Level4, 3 => Level3, _ => Level2 };
}
