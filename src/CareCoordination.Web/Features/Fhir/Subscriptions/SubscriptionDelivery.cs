using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using CareCoordination.Auth;
using CareCoordination.Changes;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Microsoft.Extensions.Options;

namespace CareCoordination.Features.Fhir.Subscriptions;

/// <summary>
/// Delivers subscriptions' notifications, off every request path: a command only writes its change row, and this service
/// reads the change table afterwards. Each subscription has its own loop on the node that holds its lease, so a dead or
/// hanging endpoint holds up only its own notifications; within one subscription they go one at a time, in event-number order.
/// Pacing (back-off, heartbeats, leases) is on the wall clock, not the app's TimeProvider: it is about real endpoints and nodes.
/// </summary>
public sealed class SubscriptionDelivery(Database database, ChangeFeed feed, AuditWriter audit, Revocation revocation, TimeProvider clock,
    IOptionsMonitor<SubscriptionSettings> settingsMonitor, PatientIds patientIds, ILogger<SubscriptionDelivery> logger) : BackgroundService
{
    private static readonly TimeProvider Wall = TimeProvider.System;

    private readonly ILogger _logger = logger;
    private readonly IOptionsMonitor<SubscriptionSettings> _settings = settingsMonitor;
    private readonly string _node = $"{Environment.MachineName}/{Guid.NewGuid():N}";
    private readonly ConcurrentDictionary<long, Worker> _workers = new();
    private readonly Wake _wake = new();
    private readonly HttpClient _http = GuardedClient(settingsMonitor);

    /// <summary>A subscription was made or changed on this node: look now rather than at the next poll.</summary>
    public void Poke()
    {
        _wake.Poke();
        foreach (var worker in _workers.Values)
        {
            worker.Poke();
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Every committed change (this node's, or another's heard through NOTIFY) wakes the workers to number it.
        using var changes = feed.Subscribe(_ =>
        {
            foreach (var worker in _workers.Values)
            {
                worker.Poke();
            }
            return ValueTask.CompletedTask;
        });
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                try
                {
                    await ClaimAsync(stoppingToken);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    _logger.LogError(ex, "Looking for subscriptions to deliver failed");
                }
                await _wake.WaitAsync(TimeSpan.FromSeconds(_settings.CurrentValue.PollSeconds), stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            // A worker's loop catches its own failures; should one escape (or end cancelled), the leases are still handed back.
            await Task.WhenAll(_workers.Values.Select(w => w.Running)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            await ReleaseLeasesAsync();
        }
    }

    /// <summary>Starts a loop for each subscription no node is delivering (or this node's lease on it ran out).</summary>
    private async Task ClaimAsync(CancellationToken cancellationToken)
    {
        foreach (var (id, worker) in _workers)
        {
            if (worker.Running.IsCompleted)
            {
                _workers.TryRemove(id, out _);
            }
        }
        var now = Wall.GetUtcNow();
        List<long> free;
        await using (var connection = await database.OpenAsync(cancellationToken))
        {
            free = (await connection.QueryAsync<long>(
                "SELECT id FROM fhir_subscription WHERE status <> 'off' AND (lease_owner IS NULL OR lease_owner = @_node OR lease_until < @now)",
                new { _node, now })).ToList();
        }
        foreach (var id in free.Where(id => !_workers.ContainsKey(id)))
        {
            if (await RenewLeaseAsync(id, cancellationToken))
            {
                var worker = new Worker(this, id, cancellationToken);
                _workers[id] = worker;
                worker.Start();
            }
        }
    }

    /// <summary>Takes or keeps the lease: only if it is free, expired or already this node's, and the subscription is not off.</summary>
    private async Task<bool> RenewLeaseAsync(long id, CancellationToken cancellationToken)
    {
        var now = Wall.GetUtcNow();
        return await database.WriteAsync((connection, transaction) => connection.ExecuteAsync(
            """
            UPDATE fhir_subscription SET lease_owner = @_node, lease_until = @until
            WHERE id = @id AND status <> 'off' AND (lease_owner IS NULL OR lease_owner = @_node OR lease_until < @now)
            """, new { _node, until = now.AddSeconds(_settings.CurrentValue.LeaseSeconds), id, now }, transaction), cancellationToken) == 1;
    }

    private async Task ReleaseLeasesAsync()
    {
        try
        {
            await database.WriteAsync((connection, transaction) =>
                connection.ExecuteAsync("UPDATE fhir_subscription SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = @_node", new { _node }, transaction));
        }
        catch (Exception ex)
        {
            // Leases run out by themselves; another node takes over then.
            _logger.LogWarning(ex, "Releasing subscription leases failed");
        }
    }

    /// <summary>
    /// Numbers the subscription's new events: its organisation's Task changes after the last change it looked at, through
    /// its filter. Change writers are serialised until commit, so every change up to the largest committed one can be read.
    /// </summary>
    private async Task NumberAsync(FhirSubscriptionRow row, CancellationToken cancellationToken)
    {
        long horizon;
        await using (var reader = await database.OpenAsync(cancellationToken))
        {
            horizon = await ChangeLog.LastSeqAsync(reader, cancellationToken);
        }
        if (horizon <= row.ChangesThrough)
        {
            return;
        }
        var filter = TaskFilter.Parse(row.FilterCriteria).Filter ?? TaskFilter.None;
        await database.WriteAsync(async (connection, transaction) =>
        {
            await database.LockAsync(connection, transaction, $"fhir_subscription:{row.Id}");
            var state = await connection.QuerySingleOrDefaultAsync<(long ChangesThrough, long EventsNumbered)>(
                "SELECT changes_through, events_numbered FROM fhir_subscription WHERE id = @Id AND lease_owner = @_node", new { row.Id, _node }, transaction);
            if (state == default)
            {
                return;
            }
            var changes = (await connection.QueryAsync<(long Seq, long EntityId, DateTimeOffset At, string? Data)>(
                """
                SELECT seq, entity_id, at, data FROM change
                WHERE seq > @ChangesThrough AND seq <= @horizon AND entity_type = 'triage_task' AND organisation_id = @OrganisationId
                ORDER BY seq LIMIT 500
                """, new { state.ChangesThrough, horizon, row.OrganisationId }, transaction)).ToList();
            var number = state.EventsNumbered;
            var events = changes.Where(c => filter.Matches(c.Data))
                .Select(c => new { SubscriptionId = row.Id, EventNumber = ++number, ChangeSeq = c.Seq, TaskId = c.EntityId, c.At }).ToList();
            await connection.ExecuteAsync(
                "INSERT INTO fhir_subscription_event (subscription_id, event_number, change_seq, task_id, at) VALUES (@SubscriptionId, @EventNumber, @ChangeSeq, @TaskId, @At)",
                events, transaction);
            await connection.ExecuteAsync("UPDATE fhir_subscription SET changes_through = @through, events_numbered = @number WHERE id = @Id",
                new { through = changes.Count == 500 ? changes[^1].Seq : horizon, number, row.Id }, transaction);
        }, cancellationToken);
    }

    private async Task<FhirSubscriptionRow?> LoadAsync(long id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<FhirSubscriptionRow>(FhirSubscriptionRow.Select + " WHERE id = @id AND lease_owner = @_node", new { id, _node });
    }

    /// <summary>One step of a subscription: number, then send what is due. Returns how long it may rest.</summary>
    private async Task<TimeSpan> StepAsync(long id, CancellationToken cancellationToken)
    {
        var options = _settings.CurrentValue;
        var poll = TimeSpan.FromSeconds(Math.Min(options.PollSeconds, options.LeaseSeconds / 3.0));
        var row = await LoadAsync(id, cancellationToken);
        if (row is null || row.Status == "off")
        {
            return Timeout.InfiniteTimeSpan;
        }
        if (await WithdrawnAsync(row, cancellationToken) is { } withdrawn)
        {
            await TurnOffAsync(row, withdrawn);
            return Timeout.InfiniteTimeSpan;
        }
        await NumberAsync(row, cancellationToken);
        row = await LoadAsync(id, cancellationToken);
        if (row is null)
        {
            return Timeout.InfiniteTimeSpan;
        }
        var now = Wall.GetUtcNow();
        if (row.NextAttemptAt is { } next && next > now)
        {
            return Min(next - now, poll);
        }
        if (row.HandshakeAt is null)
        {
            await SendAsync(row, "handshake", [], cancellationToken);
            return TimeSpan.Zero;
        }
        if (row.DeliveredThrough < row.EventsNumbered)
        {
            await using var connection = await database.OpenAsync(cancellationToken);
            var pending = (await connection.QueryAsync<SubscriptionEvent>(SubscriptionEvent.Select + " WHERE subscription_id = @Id AND event_number > @DeliveredThrough ORDER BY event_number LIMIT 1",
                new { row.Id, row.DeliveredThrough })).ToList();
            await connection.DisposeAsync();
            await SendAsync(row, "event-notification", pending, cancellationToken);
            return TimeSpan.Zero;
        }
        if (row.HeartbeatSeconds is { } period)
        {
            var due = (row.LastSentAt ?? row.HandshakeAt.Value).AddSeconds(period);
            if (due <= now)
            {
                await SendAsync(row, "heartbeat", [], cancellationToken);
                return TimeSpan.Zero;
            }
            return Min(due - now, poll);
        }
        return poll;
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    /// <summary>
    /// Why nothing more may be sent for the subscription, or null. A subscription outlives the token that made it: its client,
    /// as it is now, must still be active and of the subscription's organisation (a deactivated client's tokens stop at once,
    /// Revocation, and so must its notifications, which may carry persons' details), and for full-resource still allowed to
    /// read Tasks. Asked before every step.
    /// </summary>
    private async Task<string?> WithdrawnAsync(FhirSubscriptionRow row, CancellationToken cancellationToken)
    {
        var partner = new Actor(ActorKind.Partner, row.ClientId, row.ClientId, null, row.OrganisationId, new HashSet<string>());
        var standing = await revocation.CheckPartnerAsync(partner, cancellationToken);
        if (standing.Revoked)
        {
            return "Turned off: the partner client that made it was deactivated or moved to another organisation, so nothing more is sent for it.";
        }
        partner = partner with { Scopes = standing.Scopes.Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal) };
        return Backport.MayReceive(row.Content, partner) ? null
            : "Turned off: the partner client that made it may no longer read Tasks, which full-resource notifications carry.";
    }

    /// <summary>Ends the subscription's delivery, saying why where its partner reads it (Subscription.error), if this node still holds it.</summary>
    private async Task TurnOffAsync(FhirSubscriptionRow row, string reason)
    {
        _logger.LogWarning("Subscription {Id} of partner client {ClientId}: {Reason}", row.Id, row.ClientId, reason);
        await database.WriteAsync((store, transaction) => store.ExecuteAsync(
            """
            UPDATE fhir_subscription SET status = 'off', next_attempt_at = NULL, last_error = @reason
            WHERE id = @Id AND lease_owner = @_node AND status <> 'off' AND version = @Version
            """, new { reason, row.Id, _node, row.Version }, transaction), CancellationToken.None);
    }

    /// <summary>
    /// Posts one notification and records the outcome (only while this node still holds the lease). Once posting has begun
    /// it is not cut short by the node stopping: the post (within its timeout), its audit and its outcome are finished and
    /// recorded, so the node that takes the lease over does not send the same events again (a rolling restart delivered an
    /// event twice when the stop cancelled the post or the write of delivered_through).
    /// </summary>
    private async Task SendAsync(FhirSubscriptionRow row, string type, IReadOnlyList<SubscriptionEvent> events, CancellationToken cancellationToken)
    {
        IReadOnlyDictionary<long, FhirTriageTask> tasks = new Dictionary<long, FhirTriageTask>();
        if (row.Content == Backport.FullResource && events.Count > 0)
        {
            await using var connection = await database.OpenAsync(cancellationToken);
            tasks = await SubscriptionEvents.TasksAsync(connection, row.OrganisationId, events.Select(e => e.TaskId));
        }
        // A handshake tells the subscription as it stands (requested); anything else is sent as it will stand once it succeeds.
        var shown = type == "handshake" ? row : row with { Status = "active" };
        var bundle = SubscriptionMapping.Notification(shown, row.ServerBase, type, events, row.Content, tasks, patientIds, Wall.GetUtcNow());
        string? error;
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(Math.Min(row.TimeoutSeconds, _settings.CurrentValue.RequestTimeoutSeconds)));
            using var request = new HttpRequestMessage(HttpMethod.Post, row.Endpoint)
            {
                Content = new StringContent(FhirMapping.Serialize(bundle), Encoding.UTF8, row.PayloadType),
            };
            if (row.ChannelHeader is { } header)
            {
                var colon = header.IndexOf(':', StringComparison.Ordinal);
                request.Headers.TryAddWithoutValidation(header[..colon].Trim(), header[(colon + 1)..].Trim());
            }
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            error = response.IsSuccessStatusCode ? null : $"The endpoint answered {(int)response.StatusCode} to the {type}.";
        }
        catch (OperationCanceledException)
        {
            error = $"The endpoint did not answer the {type} within {row.TimeoutSeconds} seconds.";
        }
        catch (HttpRequestException failed)
        {
            error = $"The {type} could not be sent: {failed.Message}";
        }
        if (tasks.Count > 0)
        {
            await AuditDisclosureAsync(row, tasks.Values, error is null ? "success" : "failed", CancellationToken.None);
        }
        var now = Wall.GetUtcNow();
        // The outcome speaks for the version it was sent for: a partner who changed the subscription meanwhile (off, then
        // on again) asked for a new handshake, which an answer to the old one must not stand in for.
        if (error is null)
        {
            var delivered = events.Count > 0 ? events[^1].EventNumber : row.DeliveredThrough;
            await database.WriteAsync(async (store, transaction) =>
            {
                var recorded = await store.ExecuteAsync(
                    """
                    UPDATE fhir_subscription SET status = 'active', failures = 0, next_attempt_at = NULL, last_error = NULL, last_sent_at = @now,
                        handshake_at = COALESCE(handshake_at, @now), delivered_through = @delivered
                    WHERE id = @Id AND lease_owner = @_node AND status <> 'off' AND version = @Version
                    """, new { now, delivered, row.Id, _node, row.Version }, transaction);
                if (recorded == 0 && events.Count > 0)
                {
                    // The events did reach the partner whatever became of the subscription since.
                    await store.ExecuteAsync("UPDATE fhir_subscription SET delivered_through = @delivered WHERE id = @Id AND delivered_through < @delivered",
                        new { delivered, row.Id }, transaction);
                }
            }, CancellationToken.None);
            return;
        }
        var options = _settings.CurrentValue;
        var failures = row.Failures + 1;
        var backOff = Math.Min(options.RetryMaxSeconds, options.RetryFirstSeconds * Math.Pow(2, Math.Min(failures - 1, 30)));
        // A failed handshake is an error at once (the IG); notifications only after several failures in a row.
        var status = type == "handshake" || failures >= options.ErrorAfterFailures ? "error" : row.Status;
        _logger.LogWarning("Subscription {Id}: {Error} Try {Failures}; next in {Seconds} s.", row.Id, error, failures, backOff);
        await database.WriteAsync((store, transaction) => store.ExecuteAsync(
            """
            UPDATE fhir_subscription SET status = @status, failures = @failures, next_attempt_at = @next, last_error = @error
            WHERE id = @Id AND lease_owner = @_node AND status <> 'off' AND version = @Version
            """, new { status, failures, next = now.AddSeconds(backOff), error, row.Id, _node, row.Version }, transaction), CancellationToken.None);
    }

    /// <summary>
    /// A full-resource notification sends a person's details (the Task names them) to the partner: audited as that partner
    /// client's, like its own read of the Task, so it finds what it was sent in its AuditEvent trail.
    /// </summary>
    private async Task AuditDisclosureAsync(FhirSubscriptionRow row, IEnumerable<FhirTriageTask> tasks, string outcome, CancellationToken cancellationToken)
    {
        var partner = new Actor(ActorKind.Partner, row.ClientId, row.ClientId, null, row.OrganisationId, new HashSet<string>());
        var scope = new MessageScope(partner, clock.GetUtcNow(), "NotifySubscription") { AuditDetail = $"Subscription/{row.Id}" };
        foreach (var task in tasks)
        {
            scope.Touch("triage_task", task.Id, task.PersonId);
        }
        await audit.WriteAsync(scope, outcome, null, null, cancellationToken);
    }

    /// <summary>
    /// Redirects are not followed, and every connection is checked against the address it actually reaches, so a name
    /// that resolves (or is re-pointed) to an internal address cannot make this server call inside its own network.
    /// </summary>
    private static HttpClient GuardedClient(IOptionsMonitor<SubscriptionSettings> settings) => new(new SocketsHttpHandler
    {
        AllowAutoRedirect = false,
        UseCookies = false,
        PooledConnectionLifetime = TimeSpan.FromMinutes(2),
        ConnectTimeout = TimeSpan.FromSeconds(10),
        ConnectCallback = async (context, cancellationToken) =>
        {
            var addresses = await Dns.GetHostAddressesAsync(context.DnsEndPoint.Host, cancellationToken);
            var allowed = addresses.Where(settings.CurrentValue.MayConnect).ToArray();
            if (allowed.Length == 0)
            {
                throw new HttpRequestException($"{context.DnsEndPoint.Host} is on an address this server does not send to.");
            }
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(allowed, context.DnsEndPoint.Port, cancellationToken);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    })
    {
        Timeout = Timeout.InfiniteTimeSpan,
    };

    public override void Dispose()
    {
        _http.Dispose();
        base.Dispose();
    }

    /// <summary>One subscription's loop on this node, for as long as this node holds its lease.</summary>
    private sealed class Worker(SubscriptionDelivery delivery, long id, CancellationToken stopping)
    {
        private readonly Wake _pokes = new();

        public Task Running { get; private set; } = Task.CompletedTask;

        public void Poke() => _pokes.Poke();

        public void Start() => Running = Task.Run(RunAsync, CancellationToken.None);

        private async Task RunAsync()
        {
            try
            {
                var renewed = DateTimeOffset.MinValue;
                while (!stopping.IsCancellationRequested)
                {
                    TimeSpan rest;
                    try
                    {
                        // Renewed once a third of the lease has gone, not on every step: on SQLite each renewal is a write.
                        // Nothing is sent while a renewal has failed: the lease may have gone to another node meanwhile.
                        if (Wall.GetUtcNow() - renewed > TimeSpan.FromSeconds(delivery._settings.CurrentValue.LeaseSeconds / 3.0))
                        {
                            if (!await delivery.RenewLeaseAsync(id, stopping))
                            {
                                return;
                            }
                            renewed = Wall.GetUtcNow();
                        }
                        rest = await delivery.StepAsync(id, stopping);
                    }
                    catch (Exception ex) when (ex is not OperationCanceledException || !stopping.IsCancellationRequested)
                    {
                        delivery._logger.LogError(ex, "Delivering subscription {Id} failed; trying again shortly", id);
                        // Soon enough to renew the lease before it runs out.
                        var options = delivery._settings.CurrentValue;
                        rest = TimeSpan.FromSeconds(Math.Min(options.PollSeconds, options.LeaseSeconds / 3.0));
                    }
                    if (rest == Timeout.InfiniteTimeSpan)
                    {
                        return;
                    }
                    if (rest > TimeSpan.Zero)
                    {
                        await _pokes.WaitAsync(rest, stopping);
                    }
                }
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
            }
        }
    }
}
