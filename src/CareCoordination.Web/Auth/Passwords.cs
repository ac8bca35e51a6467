using Microsoft.AspNetCore.Identity;

namespace CareCoordination.Auth;

/// <summary>The framework's PasswordHasher (PBKDF2, versioned format) for staff passwords and partner secrets.</summary>
public static class Passwords
{
    private sealed class Account;

    private static readonly PasswordHasher<Account> Hasher = new();
    private static readonly Account Anyone = new();

    public static string Hash(string secret) => Hasher.HashPassword(Anyone, secret);

    public static bool Verify(string? hash, string secret) =>
        hash is not null && Hasher.VerifyHashedPassword(Anyone, hash, secret) != PasswordVerificationResult.Failed;

    /// <summary>A strong random secret for where none was configured.</summary>
    public static string Generate() =>
        Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(18))
            .Replace('+', 'x').Replace('/', 'y');
}
