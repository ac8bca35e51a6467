using System.Collections.Concurrent;
using CareCoordination.Features.Fhir.Subscriptions;
using CareCoordination.Tests.Support;
using Dapper;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;

namespace CareCoordination.Tests.Features.Fhir;

/// <summary>
/// A subscription's loop on its node outlives a store error while it renews its lease. It used to end there, unlogged, and
/// nothing was delivered until the node next looked for subscriptions to deliver, or, at a stop, the error skipped the
/// hand-back of the node's leases so another node waited for them to run out.
/// </summary>
public sealed class FhirSubscriptionLeaseTests(FhirSubscriptionLeaseTests.Factory app) : IClassFixture<FhirSubscriptionLeaseTests.Factory>
{
    [Fact]
    public async Task ALeaseRenewalThatFails_IsLogged_AndDeliveryCarriesOnOnceTheStoreAnswers()
    {
        _ = app.Services;
        var received = new ConcurrentQueue<long>();
        await using var receiver = await TwoNodes.ReceiverAsync(received);
        await TwoNodes.SubscribeAsync(app, receiver, "lease renewal");
        await TwoNodes.UntilAsync(() => HandshakeDone(), "the handshake");

        // Renewals (the lease given to a node) fail; handing the lease back does not.
        await ExecuteAsync(
            """
            CREATE TRIGGER lease_renewal_fails BEFORE UPDATE OF lease_until ON fhir_subscription
            WHEN NEW.lease_owner IS NOT NULL BEGIN SELECT RAISE(ABORT, 'the lease renewal failed'); END
            """);
        await TwoNodes.UntilAsync(() => app.Logged.GetSnapshot().Any(e => e.Category == typeof(SubscriptionDelivery).FullName && e.Level == LogLevel.Error
            && e.Exception?.Message.Contains("the lease renewal failed", StringComparison.Ordinal) == true), "the failed renewal to be logged");
        await ExecuteAsync("DROP TRIGGER lease_renewal_fails");

        // The next look for subscriptions is a minute away: only the loop that carried on can send this.
        await TwoNodes.ReferAsync(app);
        await TwoNodes.UntilAsync(() => received.Contains(1), "the referral's event after the store answered again");
        Assert.Equal([1L], received.ToList());

        bool HandshakeDone()
        {
            using var connection = app.OpenAsync().GetAwaiter().GetResult();
            return connection.ExecuteScalar<string>("SELECT status FROM fhir_subscription WHERE reason = 'lease renewal'") == "active";
        }
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var connection = await app.OpenAsync();
        await connection.ExecuteAsync(sql);
    }

    /// <summary>Leases renewed every second; the look for new subscriptions a minute apart (a subscription made wakes it).</summary>
    public sealed class Factory : SubscriptionAppFactory
    {
        public FakeLogCollector Logged => Services.GetRequiredService<FakeLogCollector>();

        protected override void ConfigureWebHost(IWebHostBuilder builder)
        {
            base.ConfigureWebHost(builder);
            builder.UseSetting("Subscriptions:RequestTimeoutSeconds", "1");
            builder.UseSetting("Subscriptions:LeaseSeconds", "3");
            builder.UseSetting("Subscriptions:PollSeconds", "60");
            builder.ConfigureServices(services => services.AddFakeLogging());
        }
    }
}
