using System.Globalization;
using System.Security.Claims;
using CareCoordination.Store;
using Dapper;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace CareCoordination.Auth;

/// <summary>
/// Signs and describes partner bearer tokens. The key comes from Auth:TokenSigningKey, or else is made
/// once and kept in the store so that every node behind a load balancer signs and checks alike.
/// </summary>
public sealed class PartnerTokens(IConfiguration configuration, Database database, TimeProvider clock)
{
    public const string Issuer = "carecoordination";
    public const string Audience = "carecoordination-partners";

    private SymmetricSecurityKey? _key;

    public TimeSpan Lifetime { get; } = TimeSpan.FromMinutes(configuration.GetValue("Auth:TokenLifetimeMinutes", 60));

    public SymmetricSecurityKey Key => _key ?? throw new InvalidOperationException("Partner token key not loaded: call LoadAsync at start-up.");

    public async Task LoadAsync(CancellationToken cancellationToken = default)
    {
        var configured = configuration["Auth:TokenSigningKey"];
        if (!string.IsNullOrWhiteSpace(configured))
        {
            var bytes = Convert.FromBase64String(configured);
            if (bytes.Length < 32)
            {
                throw new InvalidOperationException("Auth:TokenSigningKey must be at least 32 bytes, base64-encoded.");
            }
            _key = new SymmetricSecurityKey(bytes);
            return;
        }

        await using var connection = await database.OpenAsync(cancellationToken);
        await using var transaction = await database.BeginWriteAsync(connection, cancellationToken);
        var stored = await connection.ExecuteScalarAsync<string?>(
            "SELECT value FROM app_setting WHERE key = 'token-signing-key'", transaction: transaction);
        if (stored is null)
        {
            stored = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(64));
            // Two nodes starting together: the first insert wins and both read it back.
            await connection.ExecuteAsync(
                "INSERT INTO app_setting (key, value) VALUES ('token-signing-key', @stored) ON CONFLICT (key) DO NOTHING",
                new { stored }, transaction);
            stored = await connection.ExecuteScalarAsync<string>(
                "SELECT value FROM app_setting WHERE key = 'token-signing-key'", transaction: transaction);
        }
        await transaction.CommitAsync(cancellationToken);
        _key = new SymmetricSecurityKey(Convert.FromBase64String(stored!));
    }

    public string Issue(string clientId, long organisationId, IEnumerable<string> scopes)
    {
        var now = clock.GetUtcNow().UtcDateTime;
        var descriptor = new SecurityTokenDescriptor
        {
            Issuer = Issuer,
            Audience = Audience,
            IssuedAt = now,
            NotBefore = now,
            Expires = now + Lifetime,
            Subject = new ClaimsIdentity(
            [
                new Claim(JwtRegisteredClaimNames.Sub, clientId),
                new Claim(CareClaims.ClientId, clientId),
                new Claim(CareClaims.Organisation, organisationId.ToString(CultureInfo.InvariantCulture)),
                new Claim(CareClaims.Scope, string.Join(' ', scopes)),
                new Claim(JwtRegisteredClaimNames.Jti, Guid.NewGuid().ToString("N")),
            ]),
            SigningCredentials = new SigningCredentials(Key, SecurityAlgorithms.HmacSha256),
        };
        return new JsonWebTokenHandler().CreateToken(descriptor);
    }

    public TokenValidationParameters ValidationParameters() => new()
    {
        ValidIssuer = Issuer,
        ValidAudience = Audience,
        IssuerSigningKeyResolver = (_, _, _, _) => [Key],
        ValidAlgorithms = [SecurityAlgorithms.HmacSha256],
        ClockSkew = TimeSpan.FromSeconds(30),
        NameClaimType = CareClaims.ClientId,
        LifetimeValidator = (notBefore, expires, _, _) =>
        {
            // Checked against our clock, so tests can move time instead of waiting for expiry.
            var at = clock.GetUtcNow().UtcDateTime;
            return expires is { } e && at <= e.AddSeconds(30) && (notBefore is not { } nb || at >= nb.AddSeconds(-30));
        },
    };
}
