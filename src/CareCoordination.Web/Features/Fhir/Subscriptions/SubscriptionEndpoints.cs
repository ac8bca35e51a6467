using System.Globalization;
using Hl7.Fhir.Model;
using Mediator;
using Microsoft.Extensions.Options;
using FhirSubscription = Hl7.Fhir.Model.Subscription;

namespace CareCoordination.Features.Fhir.Subscriptions;

/// <summary>
/// /fhir/Subscription: topic-based subscriptions as the Subscriptions R5 Backport IG has them in R4. Create, read, search,
/// update and delete of the caller's own, and the IG's $status and $events. Delivery is SubscriptionDelivery's.
/// </summary>
public static class SubscriptionEndpoints
{
    internal static void MapSubscriptions(this RouteGroupBuilder fhir)
    {
        fhir.MapPost("/Subscription", async (HttpRequest request, HttpResponse response, FhirRequests body, IOptionsMonitor<SubscriptionSettings> settings,
            IMediator mediator, SubscriptionDelivery delivery, CancellationToken cancellationToken) =>
        {
            var subscription = await body.ReadAsync<FhirSubscription>(request, cancellationToken);
            var asked = SubscriptionRequest.From(subscription, settings.CurrentValue, FhirEndpoints.BaseUrl(request));
            var row = await mediator.Send(new CreateSubscription.Command(asked), cancellationToken);
            delivery.Poke();
            response.Headers.Location = $"{FhirEndpoints.BaseUrl(request)}/Subscription/{FhirMapping.Id(row.Id)}/_history/{row.Version.ToString(CultureInfo.InvariantCulture)}";
            response.Headers.ETag = FhirMapping.ETag(row.Version);
            return FhirEndpoints.Fhir(SubscriptionMapping.ToSubscription(row), StatusCodes.Status201Created);
        });

        fhir.MapGet("/Subscription/{id}", async (string id, IMediator mediator, HttpResponse response, CancellationToken cancellationToken) =>
        {
            var row = await mediator.Send(new ReadSubscription.Query(FhirEndpoints.ParseId(id, "Subscription")), cancellationToken);
            return FhirEndpoints.Read(response, SubscriptionMapping.ToSubscription(row), row.Version);
        });

        fhir.MapGet("/Subscription", async (HttpRequest request, IMediator mediator, CancellationToken cancellationToken) =>
        {
            var search = new FhirSearch(request.Query, "status");
            var page = await mediator.Send(new SearchSubscriptions.Query(search.Codes("status", SearchSubscriptions.StatusCodes), search.Count, search.Offset) { WithTotal = search.WithTotal }, cancellationToken);
            return FhirEndpoints.SearchSet(request, search, page, row => SubscriptionMapping.ToSubscription(row));
        });

        fhir.MapPut("/Subscription/{id}", async (string id, HttpRequest request, HttpResponse response, FhirRequests body, IOptionsMonitor<SubscriptionSettings> settings,
            IMediator mediator, SubscriptionDelivery delivery, CancellationToken cancellationToken) =>
        {
            var subscriptionId = FhirEndpoints.ParseId(id, "Subscription");
            var ifMatch = request.Headers.IfMatch.ToString();
            int? expected = string.IsNullOrWhiteSpace(ifMatch) ? null
                : FhirWriter.ParseIfMatch(ifMatch) ?? throw new Pipeline.PreconditionFailed($"If-Match '{ifMatch}' names no version of Subscription/{id}: send W/\"{{version}}\".");
            var subscription = await body.ReadAsync<FhirSubscription>(request, cancellationToken);
            if (subscription.Id is { } bodyId && bodyId != id)
            {
                throw new InvalidResource("Subscription.id", $"The body is Subscription/{bodyId}, not Subscription/{id}.");
            }
            var asked = SubscriptionRequest.From(subscription, settings.CurrentValue, FhirEndpoints.BaseUrl(request));
            var row = await mediator.Send(new UpdateSubscription.Command(subscriptionId, asked, expected), cancellationToken);
            delivery.Poke();
            return FhirEndpoints.Read(response, SubscriptionMapping.ToSubscription(row), row.Version);
        });

        fhir.MapDelete("/Subscription/{id}", async (string id, IMediator mediator, CancellationToken cancellationToken) =>
        {
            await mediator.Send(new DeleteSubscription.Command(FhirEndpoints.ParseId(id, "Subscription")), cancellationToken);
            return Results.NoContent();
        });

        fhir.MapGet("/Subscription/{id}/$status", async (string id, HttpRequest request, IMediator mediator, CancellationToken cancellationToken) =>
        {
            var row = await mediator.Send(new ReadSubscription.Query(FhirEndpoints.ParseId(id, "Subscription")), cancellationToken);
            return FhirEndpoints.Fhir(SubscriptionMapping.StatusSet(row, FhirEndpoints.BaseUrl(request)));
        });

        fhir.MapGet("/Subscription/{id}/$events", async (string id, HttpRequest request, IMediator mediator, TimeProvider clock, PatientIds patientIds,
            CancellationToken cancellationToken) =>
        {
            var since = EventNumber(request, "eventsSinceNumber");
            var until = EventNumber(request, "eventsUntilNumber");
            var content = request.Query["content"].ToString();
            if (content.Length > 0 && !Backport.Contents.Contains(content))
            {
                throw new InvalidResource("content", $"content is one of {string.Join(", ", Backport.Contents)}.");
            }
            var result = await mediator.Send(new SubscriptionEvents.Query(FhirEndpoints.ParseId(id, "Subscription"), since, until,
                content.Length > 0 ? content : null), cancellationToken);
            return FhirEndpoints.Fhir(SubscriptionMapping.Notification(result.Subscription, FhirEndpoints.BaseUrl(request), "query-event", result.Events,
                result.Content, result.Tasks, patientIds, clock.GetUtcNow()));
        });
    }

    private static long? EventNumber(HttpRequest request, string name)
    {
        var value = request.Query[name].ToString();
        if (value.Length == 0)
        {
            return null;
        }
        return long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var number) && number > 0
            ? number
            : throw new InvalidResource(name, $"{name} is an event number (1 or more).");
    }

    /// <summary>The Subscription resource, its operations and the topic, in the CapabilityStatement.</summary>
    public static void Describe(CapabilityStatement statement)
    {
        var rest = statement.Rest[0];
        rest.Resource.Add(new CapabilityStatement.ResourceComponent
        {
            Type = nameof(ResourceType.Subscription),
            Profile = Backport.SubscriptionProfile,
            SupportedProfile = [Backport.SubscriptionProfile],
            Documentation = new Markdown(
                $"Topic-based subscriptions (HL7 FHIR Subscriptions R5 Backport, R4). The one topic is {Backport.ReferralTaskChanges}: every change of a "
                + "triage Task of your own organisation's referrals, and nothing else. criteria is the topic; criteria.extension backport-filter-criteria "
                + "may narrow it (Task?status=accepted,rejected&focus=ServiceRequest/{id}). channel.type rest-hook to an https endpoint; channel.payload "
                + "application/fhir+json with backport-payload-content empty, id-only (default) or full-resource; backport-heartbeat-period (seconds), "
                + "backport-timeout (seconds, at most the server's); one channel.header ('Name: value') is sent with every notification. "
                + "A new subscription is requested until its handshake is answered 2xx (then active; else error). Each notification is a history "
                + "Bundle whose first entry is the backport-subscription-status-r4 Parameters, carrying one event in event-number order. Failed "
                + "deliveries retry with back-off; after repeated failures the status is error and delivery carries on trying; PUT it with status "
                + "requested to ask for a new handshake, or off to stop. Every subscription is its own client's only."),
            Interaction =
            [
                new CapabilityStatement.ResourceInteractionComponent { Code = CapabilityStatement.TypeRestfulInteraction.Create },
                new CapabilityStatement.ResourceInteractionComponent { Code = CapabilityStatement.TypeRestfulInteraction.Read },
                new CapabilityStatement.ResourceInteractionComponent { Code = CapabilityStatement.TypeRestfulInteraction.SearchType },
                new CapabilityStatement.ResourceInteractionComponent { Code = CapabilityStatement.TypeRestfulInteraction.Update },
                new CapabilityStatement.ResourceInteractionComponent { Code = CapabilityStatement.TypeRestfulInteraction.Delete },
            ],
            Versioning = CapabilityStatement.ResourceVersionPolicy.Versioned,
            ReadHistory = false,
            UpdateCreate = false,
            ConditionalCreate = false,
            ConditionalUpdate = false,
            ConditionalDelete = CapabilityStatement.ConditionalDeleteStatus.NotSupported,
            SearchParam =
            [
                new CapabilityStatement.SearchParamComponent
                {
                    Name = "status", Type = SearchParamType.Token, Definition = "http://hl7.org/fhir/SearchParameter/Subscription-status",
                    Documentation = new Markdown("requested, active, error or off; several separated by commas"),
                },
            ],
            Operation =
            [
                new CapabilityStatement.OperationComponent
                {
                    Name = "status", Definition = Backport.StatusOperation,
                    Documentation = new Markdown("GET Subscription/{id}/$status: a searchset with the subscription's status Parameters (query-status), events-since-subscription-start included."),
                },
                new CapabilityStatement.OperationComponent
                {
                    Name = "events", Definition = Backport.EventsOperation,
                    Documentation = new Markdown($"GET Subscription/{{id}}/$events?eventsSinceNumber=&eventsUntilNumber=&content=: the notifications kept for the subscription "
                        + $"(query-event), at most {SubscriptionEvents.MaxEvents} at a time, with their Tasks as they are now."),
                },
            ],
        });
        rest.Security!.Description += " Subscriptions: system/Subscription.cruds (d to delete).";
        statement.Instantiates = [.. statement.Instantiates, "http://hl7.org/fhir/uv/subscriptions-backport/CapabilityStatement/backport-subscription-server-r4"];
    }
}
