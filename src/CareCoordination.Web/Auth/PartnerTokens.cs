using System.Globalization;
using System.Security.Claims;
using System.Security.Cryptography;
using CareCoordination.Store;
using Dapper;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace CareCoordination.Auth;

/// <summary>
/// Signs and describes partner bearer tokens. The key comes from Auth:TokenSigningKey, or else is made once and
/// kept in the store so that every node behind a load balancer signs and checks alike. Kept there sealed with
/// ASP.NET Core Data Protection: a copy of the database alone (a backup, a leaked dump) cannot mint tokens, provided the
/// ring that seals it is not readable from the same copy: kept in a folder (DataProtection:KeysPath), or in the database
/// encrypted to a certificate (DataProtection:CertificatePath).
/// </summary>
public sealed class PartnerTokens(IConfiguration configuration, Database database, TimeProvider clock, IDataProtectionProvider dataProtection,
    Revocation revocation, ILogger<PartnerTokens> logger)
{
    public const string Issuer = "carecoordination";
    public const string Audience = "carecoordination-partners";

    /// <summary>The identity type of every principal made from a bearer token: Actor.From makes only partners of it.</summary>
    public const string AuthenticationType = "partner-token";

    private const string SealedSetting = "token-signing-key.sealed";

    /// <summary>Where versions before issue 15 kept the key as it is: read once, sealed, then deleted.</summary>
    private const string PlainSetting = "token-signing-key";

    private SymmetricSecurityKey? _key;

    public TimeSpan Lifetime { get; } = TimeSpan.FromMinutes(configuration.GetValue("Auth:TokenLifetimeMinutes", 60));

    public SymmetricSecurityKey Key => _key ?? throw new InvalidOperationException("Partner token key not loaded: call LoadAsync at start-up.");

    private IDataProtector Sealer => dataProtection.CreateProtector("CareCoordination.PartnerTokens.SigningKey");

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
        Task<string?> ReadAsync(string setting) =>
            connection.ExecuteScalarAsync<string?>("SELECT value FROM app_setting WHERE key = @setting", new { setting }, transaction);

        var stored = await ReadAsync(SealedSetting);
        var key = stored is null ? null : Unseal(stored);
        if (key is null)
        {
            var plain = await ReadAsync(PlainSetting);
            key = plain is not null ? Convert.FromBase64String(plain) : RandomNumberGenerator.GetBytes(64);
            var value = Convert.ToBase64String(Sealer.Protect(key));
            // Two nodes starting together: the first write wins and both read it back.
            await connection.ExecuteAsync(
                stored is null
                    ? "INSERT INTO app_setting (key, value) VALUES (@SealedSetting, @value) ON CONFLICT (key) DO NOTHING"
                    : "UPDATE app_setting SET value = @value WHERE key = @SealedSetting",
                new { SealedSetting, value }, transaction);
            await connection.ExecuteAsync("DELETE FROM app_setting WHERE key = @PlainSetting", new { PlainSetting }, transaction);
            key = Unseal((await ReadAsync(SealedSetting))!)
                ?? throw new InvalidOperationException("The partner token key another node stored cannot be unsealed here: every node must share DataProtection:KeysPath.");
        }
        await transaction.CommitAsync(cancellationToken);
        _key = new SymmetricSecurityKey(key);
    }

    private byte[]? Unseal(string stored)
    {
        try
        {
            return Sealer.Unprotect(Convert.FromBase64String(stored));
        }
        catch (Exception ex) when (ex is CryptographicException or FormatException)
        {
            // The data-protection keys that sealed it are gone (a new machine, a wiped key folder): a new key is made,
            // and tokens issued before are refused, so partners ask again. Nodes that do not share keys end up here too.
            logger.LogError(ex, "The stored partner token key cannot be unsealed with this node's data-protection keys; a new key is made. " +
                "Partners' current tokens stop working. With several nodes, set DataProtection:KeysPath to a folder they share.");
            return null;
        }
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
        AuthenticationType = AuthenticationType,
        NameClaimType = CareClaims.ClientId,
        LifetimeValidator = (notBefore, expires, _, _) => IsCurrent(notBefore, expires),
    };

    /// <summary>A token's lifetime, checked against our clock (so tests can move time instead of waiting for expiry), 30 s either side.</summary>
    public bool IsCurrent(DateTime? notBefore, DateTime? expires)
    {
        var at = clock.GetUtcNow().UtcDateTime;
        return expires is { } e && e != DateTime.MinValue && at <= e.AddSeconds(30)
            && (notBefore is not { } nb || nb == DateTime.MinValue || at >= nb.AddSeconds(-30));
    }

    /// <summary>
    /// After the signature and lifetime check, on every request: a token speaks for one partner client, still
    /// active, of the organisation it names, so deactivating a client stops its tokens at once rather than when
    /// they expire. The principal made of it carries client, organisation and scopes, nothing else: no role or
    /// staff claim in a token (even one signed with our key) can reach a page or a message.
    /// </summary>
    public async Task AcceptAsync(TokenValidatedContext context)
    {
        var token = context.Principal!;
        var clientId = token.FindFirstValue(CareClaims.ClientId);
        if (clientId is null || !long.TryParse(token.FindFirstValue(CareClaims.Organisation), CultureInfo.InvariantCulture, out var organisationId))
        {
            context.Fail("A partner token names its client and organisation.");
            return;
        }
        var identity = new ClaimsIdentity(
            [
                new Claim(CareClaims.ClientId, clientId),
                new Claim(CareClaims.Organisation, organisationId.ToString(CultureInfo.InvariantCulture)),
                new Claim(CareClaims.Scope, token.FindFirstValue(CareClaims.Scope) ?? ""),
            ],
            AuthenticationType, CareClaims.ClientId, roleType: null);
        var check = await revocation.CheckPartnerAsync(Actor.From(new ClaimsPrincipal(identity)), context.HttpContext.RequestAborted);
        if (check.Revoked)
        {
            context.Fail("This token's client is unknown, deactivated, or of another organisation.");
            return;
        }
        // What the check read of the organisation, for this request only (FhirWriter's check of a referral's requester).
        if (check.OrganisationCode is { } code)
        {
            identity.AddClaim(new Claim(CareClaims.OrganisationCode, code));
        }
        if (check.OrganisationKind is { } kind)
        {
            identity.AddClaim(new Claim(CareClaims.OrganisationKind, kind));
        }
        context.Principal = new ClaimsPrincipal(identity);
    }
}
