namespace CareCoordination.Features.BedBureau;

/// <summary>The bed bureau's settings, from configuration section "BedBureau".</summary>
public sealed class BedBureauSettings
{
    /// <summary>How long a reserved bed is held for the person before it goes back to the board.</summary>
    public int ReservationHours { get; set; } = 12;

    /// <summary>A bed whose state nobody has confirmed for this long is flagged stale on every board.</summary>
    public int StaleAfterHours { get; set; } = 12;

    /// <summary>How often expired reservations are looked for; 0 turns the check off.</summary>
    public int ReservationCheckSeconds { get; set; } = 60;
}
