using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.LoadBalancing;

// The reverse proxy in front of several CareCoordination nodes (see docs/deployment.md). Everything is
// forwarded to one cluster of nodes:
// - a cookie pins each browser to one node, because a Blazor Server circuit and a SignalR connection live
//   in one node's memory; when that node is out of service the browser is moved to a healthy one;
// - every node's /health is polled (it answers 503 without its store), and a node that refuses
//   connections is taken out as well, so a killed node stops receiving requests within a few seconds;
// - WebSockets pass through, and X-Forwarded-For/Proto/Host are set, which the nodes trust from this
//   proxy's address only (their ReverseProxy:KnownProxies).
var builder = WebApplication.CreateBuilder(args);
// A line per request and per health probe would bury what matters: failed probes and errors are warnings.
builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning).AddFilter("Yarp", LogLevel.Warning);

var nodes = builder.Configuration.GetSection("Gateway:Nodes").Get<string[]>() ?? [];
if (nodes.Length == 0 || nodes.Any(n => !Uri.TryCreate(n, UriKind.Absolute, out _)))
{
    throw new InvalidOperationException(
        "Gateway:Nodes must list each node's base address, e.g. --Gateway:Nodes:0=http://10.0.0.11:5080 --Gateway:Nodes:1=http://10.0.0.12:5080.");
}
var healthCheck = TimeSpan.FromSeconds(builder.Configuration.GetValue("Gateway:HealthCheckSeconds", 5.0));

var cluster = new ClusterConfig
{
    ClusterId = "nodes",
    // Round robin spreads new browsers evenly; affinity then keeps each on its node.
    LoadBalancingPolicy = LoadBalancingPolicies.RoundRobin,
    SessionAffinity = new SessionAffinityConfig
    {
        Enabled = true,
        Policy = "Cookie",
        // The pinned node is down: send the browser to another and re-pin it there. Its circuit is lost
        // (the page reloads itself on the new node); its sign-in is not, as every node reads every node's cookies.
        FailurePolicy = "Redistribute",
        AffinityKeyName = builder.Configuration["Gateway:AffinityCookie"] ?? "carecoordination.node",
        Cookie = new SessionAffinityCookieConfig
        {
            HttpOnly = true,
            IsEssential = true,
            SameSite = SameSiteMode.Lax,
            SecurePolicy = CookieSecurePolicy.SameAsRequest,
        },
    },
    HealthCheck = new HealthCheckConfig
    {
        Active = new ActiveHealthCheckConfig
        {
            Enabled = true,
            Interval = healthCheck,
            // A dead node refuses at once; a slow answer under load is not a failure until this long.
            Timeout = TimeSpan.FromSeconds(Math.Max(5, healthCheck.TotalSeconds)),
            Policy = "ConsecutiveFailures",
            Path = "/health",
        },
        Passive = new PassiveHealthCheckConfig
        {
            Enabled = true,
            Policy = "TransportFailureRate",
            ReactivationPeriod = healthCheck * 2,
        },
    },
    // Two failed probes in a row take a node out: one slow answer does not.
    Metadata = new Dictionary<string, string> { [ConsecutiveFailuresHealthPolicyOptions.ThresholdMetadataName] = "2" },
    Destinations = nodes.Select((address, i) => (Id: $"node-{i + 1}", Address: address))
        .ToDictionary(d => d.Id, d => new DestinationConfig { Address = d.Address }),
};
var route = new RouteConfig { RouteId = "everything", ClusterId = cluster.ClusterId, Match = new RouteMatch { Path = "{**path}" } };

builder.Services.AddReverseProxy().LoadFromMemory([route], [cluster]);

var app = builder.Build();
app.MapReverseProxy();
app.Run();
