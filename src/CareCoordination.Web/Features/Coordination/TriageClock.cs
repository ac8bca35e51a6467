namespace CareCoordination.Features.Coordination;

public enum Rag { Green, Amber, Red }

/// <summary>
/// How long a referral has waited in a queue and how that stands against its target. Until it is taken
/// the "taken within" target is in force, then the "triaged within" one; time paused waiting for the
/// referrer's answer does not count.
/// </summary>
public sealed record TriageClock(TimeSpan Waited, string Target, TimeSpan TargetTime, Rag Rag, bool Paused)
{
    public bool Breached => Rag == Rag.Red;

    public TimeSpan Over => Waited - TargetTime;

    public static TriageClock Of(DateTimeOffset createdAt, DateTimeOffset? takenAt, DateTimeOffset? onHoldSince, int pausedSeconds,
        DateTimeOffset now, CoordinationTargets targets)
    {
        var stoppedAt = onHoldSince ?? now;
        var waited = stoppedAt - createdAt - TimeSpan.FromSeconds(pausedSeconds);
        if (waited < TimeSpan.Zero)
        {
            waited = TimeSpan.Zero;
        }
        // Not yet taken: measured against the "taken" target. Taken late: it already breached, and stays red.
        var (target, targetTime) = takenAt is null
            ? ("taken", TimeSpan.FromMinutes(targets.TakenWithinMinutes))
            : ("triaged", TimeSpan.FromMinutes(targets.TriagedWithinMinutes));
        var takenLate = takenAt is { } taken && taken - createdAt > TimeSpan.FromMinutes(targets.TakenWithinMinutes);
        var rag = waited > targetTime || takenLate ? Rag.Red
            : waited >= targetTime * (targets.AmberAtPercent / 100.0) ? Rag.Amber
            : Rag.Green;
        return new TriageClock(waited, target, targetTime, rag, onHoldSince is not null);
    }
}
