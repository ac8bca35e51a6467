using Microsoft.AspNetCore.Identity;

namespace CareCoordination.Auth;

/// <summary>
/// The framework's PasswordHasher (PBKDF2, versioned format) for staff passwords and partner secrets. Checking
/// one is slow on purpose, so sign-in and token issue do it holding no connection and no transaction.
/// </summary>
public static class Passwords
{
    /// <summary>The hasher's user type: whose secret it is does not change how it is hashed.</summary>
    public sealed class Account;

    private static readonly Account Anyone = new();

    /// <summary>The hasher the host registers; handlers take it from the container, so a test can watch a check happen.</summary>
    public static IPasswordHasher<Account> Hasher { get; } = new PasswordHasher<Account>();

    public static string Hash(string secret) => Hasher.HashPassword(Anyone, secret);

    public static bool Verify(string? hash, string secret) => Hasher.Verify(hash, secret);

    public static bool Verify(this IPasswordHasher<Account> hasher, string? hash, string secret) =>
        hash is not null && hasher.VerifyHashedPassword(Anyone, hash, secret) != PasswordVerificationResult.Failed;

    /// <summary>A strong random secret for where none was configured.</summary>
    public static string Generate() =>
        Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(18))
            .Replace('+', 'x').Replace('/', 'y');
}

/// <summary>
/// Checking a secret takes a core for a tenth of a second on purpose, so a burst of guesses could take every core
/// and pool thread and stall everyone else. At most Auth:ConcurrentSecretChecks run at once (0, the default: half
/// the cores, at least one); the rest wait their turn without holding a thread.
/// </summary>
public sealed class SecretChecks(IPasswordHasher<Passwords.Account> hasher, IConfiguration configuration) : IDisposable
{
    private readonly SemaphoreSlim _slots = new(configuration.GetValue("Auth:ConcurrentSecretChecks", 0) is > 0 and var slots
        ? slots
        : Math.Max(1, Environment.ProcessorCount / 2));
    private int _waiting;

    /// <summary>Checks waiting for a slot now: more than a few means guesses are arriving faster than they are refused.</summary>
    public int Waiting => Volatile.Read(ref _waiting);

    public async Task<bool> VerifyAsync(string? hash, string secret, CancellationToken cancellationToken) =>
        hash is not null && await VerifyThrottledAsync(hash, secret, static () => true, static () => { }, cancellationToken) == true;

    /// <summary>
    /// As <see cref="VerifyAsync"/>, for a check a throttle limits (staff sign-in). Whether it may still run is asked once the
    /// slot is held, and a wrong secret is counted before the slot is given up: a burst of guesses sent at once, each let in by
    /// the throttle on arrival, is then checked no more often than the same guesses one after another (with more than one slot,
    /// at most one more per slot), and a right guess queued behind them is refused once they have used the allowance.
    /// Null when it was not checked because <paramref name="allowed"/> said no.
    /// </summary>
    public async Task<bool?> VerifyThrottledAsync(string hash, string secret, Func<bool> allowed, Action wrong, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _waiting);
        try
        {
            await _slots.WaitAsync(cancellationToken);
        }
        finally
        {
            Interlocked.Decrement(ref _waiting);
        }
        try
        {
            if (!allowed())
            {
                return null;
            }
            var right = hasher.Verify(hash, secret);
            if (!right)
            {
                wrong();
            }
            return right;
        }
        finally
        {
            _slots.Release();
        }
    }

    /// <summary>
    /// A hash of a secret nobody knows, checked in place of a password where there is no account, or none that may sign in,
    /// so that the answer takes as long as a wrong password's: a quick answer would tell a stranger which names are staff.
    /// </summary>
    public string Decoy => _decoy.Value;

    private readonly Lazy<string> _decoy = new(() => hasher.HashPassword(new Passwords.Account(), Passwords.Generate()));

    public void Dispose() => _slots.Dispose();
}
