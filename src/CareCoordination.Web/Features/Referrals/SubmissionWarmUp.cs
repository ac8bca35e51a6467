using System.Diagnostics;
using System.Globalization;
using System.Text;
using CareCoordination.Auth;
using CareCoordination.Changes;
using CareCoordination.Domain;
using CareCoordination.Features.Coordination;
using CareCoordination.Features.Fhir;
using CareCoordination.Features.Health;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Mediator;

namespace CareCoordination.Features.Referrals;

/// <summary>
/// Once the app serves, sends one referral down the whole submission path, inside a write that is then rolled back:
/// the FHIR parse and mapping of a partner's Bundle, the form's rules, the mediator's pipeline (authorisation,
/// validation, audit), every statement of a form's submission except the change rows (their numbers must have no gap), and the queue's
/// query that shows it. The first real referral after a start then finds all of it compiled (issue 16: it took 1.0-1.5 s
/// to reach the queue, later ones 0.1-0.4 s), but for a partner's writes (the referral keyed by its identifier, with the
/// message it sent), whose statements its first referral compiles: the statements' compile, not the code's. Nothing is
/// kept, nothing is pushed to a screen, and /health never
/// waits for it: it starts once the server has started and has answered its first /health with 200 (or a second after it
/// started, WarmUp:WaitForHealthSeconds). Off with <c>WarmUp:Enabled=false</c>.
/// </summary>
public sealed class SubmissionWarmUp(IServiceProvider services, IHostApplicationLifetime lifetime, IConfiguration configuration,
    FirstHealthAnswer firstHealthAnswer, TimeProvider clock, ILogger<SubmissionWarmUp> logger) : BackgroundService
{
    private readonly TaskCompletionSource<Report?> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>What the warm-up did, or null when it was off, had nothing to warm or failed.</summary>
    public sealed record Report(DateTimeOffset ServingSince, DateTimeOffset Began, int ChangesRolledBack, TimeSpan Took, TimeSpan WriterHeld)
    {
        /// <summary>How long, by the wall clock, it waited after the app served: for the first /health answer, or a second.</summary>
        public TimeSpan WaitedAfterServing { get; init; }
    }

    /// <summary>Completes when the start-up warm-up has run (or was skipped).</summary>
    public Task<Report?> Done => _done.Task;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!configuration.GetValue("WarmUp:Enabled", true))
        {
            _done.TrySetResult(null);
            return;
        }
        try
        {
            var (servingSince, waited) = await ServingAsync(stoppingToken);
            var report = await RunAsync(servingSince, stoppingToken) is { } ran ? ran with { WaitedAfterServing = waited } : null;
            if (report is null)
            {
                logger.LogInformation("Warm-up: no referring organisation yet, nothing to warm");
            }
            else
            {
                logger.LogInformation("Warm-up: began {Waited} ms after the app served; the submission path ran once and was rolled back ({Changes} changes) in {Milliseconds} ms, the store's writer held {Held} ms",
                    (int)waited.TotalMilliseconds, report.ChangesRolledBack, (int)report.Took.TotalMilliseconds, (int)report.WriterHeld.TotalMilliseconds);
            }
            _done.TrySetResult(report);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            _done.TrySetResult(null);
        }
#pragma warning disable CA1031 // A warm-up that fails costs only the first referral's speed: never the app.
        catch (Exception failure)
#pragma warning restore CA1031
        {
            logger.LogWarning(failure, "Warm-up failed: the first referral after this start will be slower; nothing else is affected");
            _done.TrySetResult(null);
        }
    }

    // PERF (issue 14, restart): its first steps (the FHIR model's tables, the pipeline's code) took the CPU the node's first
    // /health answer needed, about 80 ms of a restart. It waits for that answer, or a second when nothing asks
    // (WarmUp:WaitForHealthSeconds). The trade: behind a load balancer that probes often, it runs as the node goes back into
    // service, beside the first referrals rather than before them.
    private Task<(DateTimeOffset ServingSince, TimeSpan Waited)> ServingAsync(CancellationToken stoppingToken) =>
        firstHealthAnswer.ServingAndAnsweredAsync(lifetime, clock,
            TimeSpan.FromSeconds(configuration.GetValue("WarmUp:WaitForHealthSeconds", 1.0)), stoppingToken);

    /// <summary>
    /// One run; also for tests, which check that it leaves nothing behind. The store's writer is held only for the
    /// submission's own statements (a /health write or a real referral waits behind it): the mediator's pipeline, the
    /// rules and the FHIR serialiser are compiled before, and the partner's Bundle is parsed after.
    /// </summary>
    public async Task<Report?> RunAsync(DateTimeOffset servingSince, CancellationToken cancellationToken)
    {
        var began = clock.GetUtcNow();
        var watch = Stopwatch.StartNew();
        await using var scope = services.CreateAsyncScope();
        var database = scope.ServiceProvider.GetRequiredService<Database>();
        var mediator = scope.ServiceProvider.GetRequiredService<IMediator>();
        var form = Form();

        // Before the write: the queue's query (a read, not audited) through the whole pipeline, the form's rules, and
        // the FHIR serialiser and parser on a Bundle of the two resource types a referral is made of.
        var coordinator = new Actor(ActorKind.Staff, null, "start-up warm-up", Roles.Coordinator, null, new HashSet<string>());
        Work.Enter(new MessageScope(coordinator, clock.GetUtcNow(), "warm-up"));
        try
        {
            await mediator.Send(new CoordinationQueue.Query(), cancellationToken);
        }
        finally
        {
            Work.Enter(null);
        }
        var command = new SubmitReferral.Command(form, "warm-up-" + Guid.NewGuid().ToString("N"));
        foreach (var validator in scope.ServiceProvider.GetServices<FluentValidation.IValidator<SubmitReferral.Command>>())
        {
            await validator.ValidateAsync(command, cancellationToken);
        }
        ParseAsPartnerSends(
            FhirMapping.Serialize(new Hl7.Fhir.Model.Patient { Id = "warm-up", BirthDate = "1940-01-01" }),
            FhirMapping.Serialize(new Hl7.Fhir.Model.ServiceRequest
            {
                Id = "warm-up", Status = Hl7.Fhir.Model.RequestStatus.Active, Intent = Hl7.Fhir.Model.RequestIntent.Order,
                Subject = new Hl7.Fhir.Model.ResourceReference("Patient/warm-up"),
            }));

        int? changes = null;
        List<string> stored = [];
        var held = Stopwatch.StartNew();
        try
        {
            await database.WriteAsync(async (connection, transaction) =>
            {
                stored.Clear();
                var organisation = await connection.ExecuteScalarAsync<long?>("SELECT MIN(id) FROM organisation", transaction: transaction);
                if (organisation is null)
                {
                    return;
                }
                var referrer = new Actor(ActorKind.Staff, null, "start-up warm-up", Roles.Referrer, organisation, new HashSet<string>());
                var submission = new MessageScope(referrer, clock.GetUtcNow(), "warm-up") { Connection = connection, Transaction = transaction };
                Work.Enter(submission);
                try
                {
                    // Sent inside this write, the command joins it, as a message sent inside a command does.
                    await mediator.Send(command, cancellationToken);
                    // On PostgreSQL the command's audit rows wait for its last round trip: written here as it would, and rolled back.
                    if (AuditWriter.HeldRowsStatement(submission) is { } audit)
                    {
                        await connection.ExecuteAsync(audit.Sql, audit.Parameters, transaction);
                    }
                    // The change rows are not appended: on PostgreSQL their sequence numbers would be used up by the rollback
                    // and leave a gap in the change feed, which promises none.
                    // The person and the referral as the FHIR read serves them (their current versions come from the live rows).
                    var personId = submission.Changes.FirstOrDefault(c => c.EntityType == "person")?.EntityId;
                    var referralId = submission.Changes.FirstOrDefault(c => c.EntityType == "referral")?.EntityId;
                    if (personId is not null && referralId is not null)
                    {
                        var person = await connection.QuerySingleAsync<FhirPerson>(FhirPerson.Select + " AND p.id = @Id", new { Id = personId }, transaction);
                        var referral = await connection.QuerySingleAsync<FhirReferral>(FhirReferral.Select + " AND r.id = @Id", new { Id = referralId }, transaction);
                        // In the referrer's own Patient ids, as a partner's answer names them: their encryption is warmed too.
                        var patients = services.GetRequiredService<PatientIds>().For(organisation);
                        stored.Add(FhirMapping.Serialize(FhirMapping.ToPatient(person, patients)));
                        stored.Add(FhirMapping.Serialize(FhirMapping.ToServiceRequest(referral, patients)));
                    }
                    changes = submission.Changes.Count;
                }
                finally
                {
                    Work.Enter(null);
                }
                throw new RolledBack();
            }, cancellationToken);
        }
        catch (RolledBack)
        {
            // The write was undone, as intended.
        }
        held.Stop();
        if (stored.Count == 2)
        {
            // After the write: the referral as the store just versioned it, read as a partner's Bundle and mapped onto the form.
            ParseAsPartnerSends(stored[0], stored[1]);
        }
        return changes is { } count ? new Report(servingSince, began, count, watch.Elapsed, held.Elapsed) : null;
    }

    /// <summary>A Patient and a ServiceRequest (JSON) in a transaction Bundle, parsed as /fhir parses a partner's, and mapped onto the form.</summary>
    private static void ParseAsPartnerSends(string patientJson, string requestJson)
    {
        var bundle = new StringBuilder("""{"resourceType":"Bundle","type":"transaction","entry":[""");
        foreach (var (type, json) in new[] { ("Patient", patientJson), ("ServiceRequest", requestJson) })
        {
            bundle.Append(type == "Patient" ? "" : ",")
                .Append(CultureInfo.InvariantCulture, $$"""{"fullUrl":"urn:uuid:{{Guid.NewGuid()}}","resource":""")
                .Append(json)
                .Append(CultureInfo.InvariantCulture, $$$""","request":{"method":"POST","url":"{{{type}}}"}}""");
        }
        bundle.Append("]}");
        var parsed = FhirRequests.Parse<Hl7.Fhir.Model.Bundle>(Encoding.UTF8.GetBytes(bundle.ToString()), "Bundle");
        var patient = parsed.Entry.Select(e => e.Resource).OfType<Hl7.Fhir.Model.Patient>().First();
        var request = parsed.Entry.Select(e => e.Resource).OfType<Hl7.Fhir.Model.ServiceRequest>().First();
        try
        {
            _ = ReferralIntake.ToForm(request, patient);
        }
#pragma warning disable CA1031 // The made-up pair maps only in part; what matters is that the mapping code has run.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }

    /// <summary>A complete referral for a made-up person with an NHS number in the range kept for tests (999).</summary>
    private ReferralForm Form()
    {
        var nine = "";
        while (nine.Length == 0 || NhsNumber.CheckDigit(nine) < 0)
        {
            nine = "999" + Random.Shared.Next(0, 1_000_000).ToString("D6", CultureInfo.InvariantCulture);
        }
        var today = LondonTime.Today(clock);
        return new ReferralForm
        {
            NhsNumber = nine + NhsNumber.CheckDigit(nine), GivenName = "Warm", FamilyName = "Up", DateOfBirth = new DateOnly(1940, 1, 1),
            Sex = "unknown", AddressLine = "1 Start-up Row", Postcode = "WM1 1AA", Ethnicity = "Z", Source = "acute-hospital",
            Pathway = "1", Urgency = "routine", Ward = "Ward 1", MedicallyOptimisedOn = today, ExpectedDischargeOn = today.AddDays(1),
            Needs = ["mobility"], ConsentToShare = true, ConsentGivenBy = "The person", PersonWishes = "To go home.",
            Summary = "Start-up warm-up: rolled back, never stored.",
        };
    }

    private sealed class RolledBack : Exception;
}
