using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Mediator;

namespace CareCoordination.Features.Fhir.Subscriptions;

/// <summary>
/// GET /fhir/Subscription/{id}/$events: the events a partner missed (after downtime, or a gap in the event numbers it
/// received), replayed from the numbered events kept for the subscription, with their Tasks as they are now.
/// </summary>
public static class SubscriptionEvents
{
    /// <summary>One answer holds at most this many events: ask again from the last number for more.</summary>
    public const int MaxEvents = 100;

    /// <param name="Content">empty, id-only or full-resource; null for the subscription's own.</param>
    [AllowPartnerScope("system/Subscription.r")]
    public sealed record Query(long Id, long? SinceNumber, long? UntilNumber, string? Content = null) : IQuery<Result>, IAudited;

    /// <param name="Content">What the answer carries: the Tasks (and so their persons) only for full-resource.</param>
    public sealed record Result(FhirSubscriptionRow Subscription, IReadOnlyList<SubscriptionEvent> Events, string Content,
        IReadOnlyDictionary<long, FhirTriageTask> Tasks);

    public sealed class Handler(Database database, Work work) : IQueryHandler<Query, Result>
    {
        public async ValueTask<Result> Handle(Query query, CancellationToken cancellationToken)
        {
            await using var connection = await database.OpenAsync(cancellationToken);
            var row = await ReadSubscription.FindOwnAsync(connection, null, work.Scope.Actor, query.Id);
            var events = (await connection.QueryAsync<SubscriptionEvent>(
                SubscriptionEvent.Select + " WHERE subscription_id = @Id AND event_number >= @Since AND event_number <= @Until ORDER BY event_number LIMIT @MaxEvents",
                new { row.Id, Since = query.SinceNumber ?? 1, Until = query.UntilNumber ?? long.MaxValue, MaxEvents })).ToList();
            // The Tasks are read, and audited as disclosed, only when the answer carries them, as a delivery does: an id-only or
            // empty answer names no person.
            var content = query.Content ?? row.Content;
            Backport.RequireMayReceive(content, work.Scope.Actor);
            var tasks = content == Backport.FullResource ? await TasksAsync(connection, row.OrganisationId, events.Select(e => e.TaskId)) : new Dictionary<long, FhirTriageTask>();
            work.Scope.Touch("fhir_subscription", row.Id);
            foreach (var task in tasks.Values)
            {
                work.Scope.Touch("triage_task", task.Id, task.PersonId);
            }
            return new Result(row, events, content, tasks);
        }
    }

    /// <summary>The Tasks of these ids, of this organisation's referrals only (the visibility ReadTask gives a partner).</summary>
    public static async Task<IReadOnlyDictionary<long, FhirTriageTask>> TasksAsync(System.Data.Common.DbConnection connection, long organisationId, IEnumerable<long> taskIds)
    {
        var tasks = new Dictionary<long, FhirTriageTask>();
        foreach (var id in taskIds.Distinct())
        {
            var task = await connection.QuerySingleOrDefaultAsync<FhirTriageTask>(FhirTriageTask.Select + " AND t.id = @id AND r.organisation_id = @organisationId",
                new { id, organisationId });
            if (task is not null)
            {
                tasks[id] = task;
            }
        }
        return tasks;
    }
}
