using System.Net;
using System.Net.Sockets;

namespace CareCoordination.Features.Fhir.Subscriptions;

/// <summary>Subscriptions:* in configuration: how notifications are delivered, and where they may go.</summary>
public sealed class SubscriptionSettings
{
    /// <summary>Longest wait for a partner's endpoint to answer one notification; a subscription's backport-timeout may only shorten it.</summary>
    public int RequestTimeoutSeconds { get; set; } = 10;

    /// <summary>Back-off after a failed delivery: doubles from the first to the most, per subscription.</summary>
    public double RetryFirstSeconds { get; set; } = 2;

    public double RetryMaxSeconds { get; set; } = 300;

    /// <summary>Failures in a row after which the subscription's status is error (delivery still retries at the longest back-off).</summary>
    public int ErrorAfterFailures { get; set; } = 5;

    /// <summary>The shortest heartbeat period a partner may ask for.</summary>
    public int MinimumHeartbeatSeconds { get; set; } = 60;

    /// <summary>How often each node looks for subscriptions to deliver and new changes even when not told of one.</summary>
    public double PollSeconds { get; set; } = 5;

    /// <summary>How long a node holds a subscription before another may take it over (renewed while it delivers).</summary>
    public int LeaseSeconds { get; set; } = 60;

    /// <summary>
    /// URL prefixes partners' endpoints must start with (e.g. https://epr.trust.nhs.uk/fhir-hooks/). Empty: any https
    /// endpoint on a public address.
    /// </summary>
    public List<string> AllowedEndpoints { get; set; } = [];

    /// <summary>Private networks (CIDR) receivers may be on, e.g. the HSCN range a trust's EPR listens on. Others are refused.</summary>
    public List<string> AllowedNetworks { get; set; } = [];

    /// <summary>For tests and a developer's own machine only: http and https endpoints on 127.0.0.1 / ::1 / localhost.</summary>
    public bool AllowLoopback { get; set; }

    /// <summary>A post, then its audit and outcome, must end inside the host's default 30 s shutdown wait.</summary>
    public const int MaxRequestTimeoutSeconds = 20;

    public string? Invalid()
    {
        if (RequestTimeoutSeconds <= 0 || RetryFirstSeconds <= 0 || RetryMaxSeconds < RetryFirstSeconds)
        {
            return "Subscriptions: RequestTimeoutSeconds and RetryFirstSeconds must be positive, RetryMaxSeconds at least RetryFirstSeconds.";
        }
        if (ErrorAfterFailures <= 0 || MinimumHeartbeatSeconds <= 0 || PollSeconds <= 0)
        {
            return "Subscriptions: ErrorAfterFailures, MinimumHeartbeatSeconds and PollSeconds must be positive.";
        }
        if (RequestTimeoutSeconds > MaxRequestTimeoutSeconds)
        {
            // A stopping node finishes the post it has begun (SubscriptionDelivery.SendAsync), and the host waits 30 s for it.
            return $"Subscriptions: RequestTimeoutSeconds may be at most {MaxRequestTimeoutSeconds}: a node that stops finishes the notification it is posting, within the host's 30 s shutdown.";
        }
        if (LeaseSeconds <= RequestTimeoutSeconds * 2)
        {
            // Else a slow endpoint could cost a node its lease in the middle of a delivery.
            return "Subscriptions: LeaseSeconds must be more than twice RequestTimeoutSeconds.";
        }
        return AllowedNetworks.FirstOrDefault(n => !IPNetwork.TryParse(n, out _)) is { } bad ? $"Subscriptions:AllowedNetworks: '{bad}' is not a CIDR range." : null;
    }

    /// <summary>Why this endpoint may not be a rest-hook here, or null. Checked on create, and again at every connection (EndpointGuard).</summary>
    public string? Refuse(string? endpoint)
    {
        if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || uri.Scheme is not ("https" or "http") || !string.IsNullOrEmpty(uri.UserInfo))
        {
            return "channel.endpoint must be an absolute https URL (without a user name or password in it).";
        }
        var loopback = IsLoopbackName(uri.Host);
        if (loopback && !AllowLoopback)
        {
            return "channel.endpoint may not be this server's own machine.";
        }
        if (uri.Scheme == "http" && !loopback)
        {
            return "channel.endpoint must use https: notifications name people's referrals.";
        }
        if (AllowedEndpoints.Count > 0 && !loopback && !AllowedEndpoints.Any(prefix => endpoint!.StartsWith(prefix, StringComparison.OrdinalIgnoreCase)))
        {
            return "channel.endpoint is not one this server has been told partners' receivers are at: ask its operators to add it.";
        }
        if (IPAddress.TryParse(uri.Host.Trim('[', ']'), out var address) && !MayConnect(address))
        {
            return "channel.endpoint is on a private or reserved network address that this server does not send to.";
        }
        return null;
    }

    /// <summary>A public address, a loopback one when allowed, or one in an allowed private network.</summary>
    public bool MayConnect(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }
        if (IPAddress.IsLoopback(address))
        {
            return AllowLoopback;
        }
        return AllowedNetworks.Any(n => IPNetwork.Parse(n).Contains(address)) || !IsInternal(address);
    }

    private static bool IsLoopbackName(string host) =>
        host.Equals("localhost", StringComparison.OrdinalIgnoreCase) || (IPAddress.TryParse(host.Trim('[', ']'), out var address) && IPAddress.IsLoopback(address));

    // Private, shared, link-local (cloud metadata lives at 169.254.169.254), multicast and reserved ranges.
    private static readonly IPNetwork[] Internal =
    [
        IPNetwork.Parse("0.0.0.0/8"), IPNetwork.Parse("10.0.0.0/8"), IPNetwork.Parse("100.64.0.0/10"), IPNetwork.Parse("169.254.0.0/16"),
        IPNetwork.Parse("172.16.0.0/12"), IPNetwork.Parse("192.0.0.0/24"), IPNetwork.Parse("192.168.0.0/16"), IPNetwork.Parse("198.18.0.0/15"),
        IPNetwork.Parse("224.0.0.0/3"), IPNetwork.Parse("::/128"), IPNetwork.Parse("fc00::/7"), IPNetwork.Parse("fe80::/10"), IPNetwork.Parse("ff00::/8"),
    ];

    private static bool IsInternal(IPAddress address) =>
        address.AddressFamily is not (AddressFamily.InterNetwork or AddressFamily.InterNetworkV6) || Internal.Any(n => n.Contains(address));
}
