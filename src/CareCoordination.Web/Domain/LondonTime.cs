namespace CareCoordination.Domain;

/// <summary>Times are stored in UTC and shown in Europe/London; "today" is a London day.</summary>
public static class LondonTime
{
    public static TimeZoneInfo Zone { get; } = TimeZoneInfo.FindSystemTimeZoneById("Europe/London");

    public static DateTimeOffset ToLocal(DateTimeOffset utc) => TimeZoneInfo.ConvertTime(utc, Zone);

    public static DateOnly Today(TimeProvider clock) => DateOnly.FromDateTime(ToLocal(clock.GetUtcNow()).DateTime);

    public static DateTimeOffset StartOfToday(TimeProvider clock) => StartOf(Today(clock));

    /// <summary>The instant a London day begins, in UTC (23 or 25 hours after the day before when the clocks change).</summary>
    public static DateTimeOffset StartOf(DateOnly date)
    {
        var midnight = date.ToDateTime(TimeOnly.MinValue);
        return new DateTimeOffset(midnight, Zone.GetUtcOffset(midnight)).ToUniversalTime();
    }

    /// <summary>The London day an instant falls on.</summary>
    public static DateOnly DateOf(DateTimeOffset utc) => DateOnly.FromDateTime(ToLocal(utc).DateTime);
}
