using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Threading.RateLimiting;
using CareCoordination.Features.Partners;

namespace CareCoordination.Auth;

/// <summary>
/// Limits POST /oauth/token per caller address, per client id from that address, and per client id from every address
/// together, with the framework's rate limiters: past a limit a request is answered 429 before any secret is checked, so a
/// flood costs its sender, not the store. Every request counts, right or wrong, since it is the check itself that costs.
/// The client's own limit is per address: a client id is no secret (it is a token's subject, and in AuditEvents), and one
/// counted from every address let anyone lock a trust's system out of its tokens, and so out of sending referrals, with
/// 20 wrong guesses a minute from one address. The limit over every address, ten times that by default, still bounds
/// guesses spread over many. All are taken here, after the small form is read, because the client id is in the body and
/// the rate-limiting middleware picks its partition before the body is read.
/// </summary>
public sealed class TokenThrottle : IDisposable
{
    private readonly PartitionedRateLimiter<(string Address, string ClientId)> _limiter;

    public TokenThrottle(IConfiguration configuration)
    {
        var perAddress = configuration.GetValue("Auth:TokenRequestsPerAddressPerMinute", 60);
        var perClient = configuration.GetValue("Auth:TokenRequestsPerClientPerMinute", 20);
        var perClientEverywhere = configuration.GetValue("Auth:TokenRequestsPerClientAllAddressesPerMinute", perClient * 10);
        _limiter = PartitionedRateLimiter.CreateChained(
            PartitionedRateLimiter.Create<(string Address, string ClientId), string>(request => PerMinute(request.Address, perAddress)),
            PartitionedRateLimiter.Create<(string Address, string ClientId), string>(request => PerMinute(request.ClientId + " from " + request.Address, perClient)),
            PartitionedRateLimiter.Create<(string Address, string ClientId), string>(request => PerMinute(request.ClientId, perClientEverywhere)));
    }

    public RateLimitLease Acquire(HttpContext context, string? clientId) =>
        _limiter.AttemptAcquire((AddressOf(context.Connection.RemoteIpAddress), clientId ?? ""));

    /// <summary>429 with Retry-After and an RFC 6749 style body ("slow_down" is the token endpoint's registered code, RFC 8628).</summary>
    public static IResult Refusal(HttpContext context, RateLimitLease lease)
    {
        var seconds = lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter) ? Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)) : 60;
        context.Response.Headers.RetryAfter = seconds.ToString(CultureInfo.InvariantCulture);
        return IssueToken.Error("slow_down", $"Too many token requests from this client or address. Try again in {seconds} seconds; a token lasts an hour, so reuse it.",
            StatusCodes.Status429TooManyRequests);
    }

    private static RateLimitPartition<string> PerMinute(string key, int limit) =>
        RateLimitPartition.GetFixedWindowLimiter(key, _ => new FixedWindowRateLimiterOptions
        {
            PermitLimit = limit,
            Window = TimeSpan.FromMinutes(1),
            QueueLimit = 0,
            AutoReplenishment = true,
        });

    /// <summary>One IPv6 holder has a whole /64 to send from, so that is one address here.</summary>
    private static string AddressOf(IPAddress? address)
    {
        if (address is null)
        {
            return "unknown";
        }
        if (address.IsIPv4MappedToIPv6)
        {
            return address.MapToIPv4().ToString();
        }
        if (address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return address.ToString();
        }
        var bytes = address.GetAddressBytes();
        Array.Clear(bytes, 8, 8);
        return new IPAddress(bytes) + "/64";
    }

    public void Dispose() => _limiter.Dispose();
}
