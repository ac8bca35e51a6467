using System.Threading.RateLimiting;

namespace CareCoordination.Auth;

/// <summary>
/// Counts failed sign-ins only, per username and per client address, with the framework's rate limiter:
/// a run of wrong passwords locks that name (or address) out for the window; good sign-ins cost nothing.
/// </summary>
public sealed class SignInThrottle : IDisposable
{
    private readonly PartitionedRateLimiter<string> _failures;

    public SignInThrottle(IConfiguration configuration)
    {
        var perUser = configuration.GetValue("Auth:SignInFailuresAllowed", 5);
        var window = TimeSpan.FromMinutes(configuration.GetValue("Auth:SignInLockoutMinutes", 15));
        Window = window;
        _failures = PartitionedRateLimiter.Create<string, string>(key => RateLimitPartition.GetFixedWindowLimiter(key, _ =>
            new FixedWindowRateLimiterOptions
            {
                // An address may be shared by a whole ward's PCs: give it more room than one name.
                PermitLimit = key.StartsWith("ip:", StringComparison.Ordinal) ? perUser * 6 : perUser,
                Window = window,
                QueueLimit = 0,
                AutoReplenishment = true,
            }));
    }

    public TimeSpan Window { get; }

    public bool IsLockedOut(string username, string? address) =>
        Exhausted(UserKey(username)) || (address is not null && Exhausted("ip:" + address));

    public void RecordFailure(string username, string? address)
    {
        _failures.AttemptAcquire(UserKey(username)).Dispose();
        if (address is not null)
        {
            _failures.AttemptAcquire("ip:" + address).Dispose();
        }
    }

    private bool Exhausted(string key) => _failures.GetStatistics(key)?.CurrentAvailablePermits <= 0;

    private static string UserKey(string username) => "user:" + username.Trim().ToLowerInvariant();

    public void Dispose() => _failures.Dispose();
}
