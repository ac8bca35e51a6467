using System.Diagnostics;
using CareCoordination.Auth;
using CareCoordination.Changes;
using CareCoordination.Demo;
using CareCoordination.Deployment;
using CareCoordination.Features.BedBureau;
using CareCoordination.Features.Boards;
using CareCoordination.Features.Coordination;
using CareCoordination.Features.Fhir.Profiles;
using CareCoordination.Features.Health;
using CareCoordination.Features.Live;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using FluentValidation;
using Mediator;
using Microsoft.AspNetCore.SignalR;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Radzen;

namespace CareCoordination;

/// <summary>The registrations behind Program.cs, one method per concern.</summary>
public static class HostSetup
{
    public static IServiceCollection AddStore(this IServiceCollection services, IConfiguration configuration)
    {
        TypeHandlers.Register();
        services.AddSingleton(_ => Database.FromConfiguration(configuration));
        services.AddSingleton<Migrator>();
        services.AddSingleton<DemoSeeder>();
        services.AddSingleton<Features.Reports.CodeLists.CodeListLoader>();
        services.AddSingleton<ChangeFeed>();
        services.AddHostedService(sp => sp.GetRequiredService<ChangeFeed>());
        services.AddHostedService<PostgresChangeListener>();
        // Open pages say "Offline since" when this node loses its store, not only when the browser loses the node.
        services.AddOptions<StoreWatchSettings>().Bind(configuration.GetSection("Downtime"))
            .Validate(w => w.ProbeSeconds > 0 && w.ProbeTimeoutSeconds > 0, "Downtime: ProbeSeconds and ProbeTimeoutSeconds must be positive.")
            .ValidateOnStart();
        services.AddSingleton<StoreWatch>();
        services.AddHostedService(sp => sp.GetRequiredService<StoreWatch>());
        // After the app serves: the first referral finds the submission path compiled (issue 16).
        services.AddSingleton<Features.Referrals.SubmissionWarmUp>();
        services.AddHostedService(sp => sp.GetRequiredService<Features.Referrals.SubmissionWarmUp>());
        services.AddStoreHealth(configuration);
        return services;
    }

    // PERF (issue 14, restart): finding the validators loads every type of this assembly, about 70 ms of a restart. Program
    // starts the scan first thing so that it runs beside WebApplication.CreateBuilder; AddUseCases waits for it.
    private static readonly Lazy<Task<List<AssemblyScanner.AssemblyScanResult>>> Validators = new(() =>
        Task.Run(() => AssemblyScanner.FindValidatorsInAssembly(typeof(Program).Assembly, includeInternalTypes: true).ToList()));

    public static void StartFindingValidators() => _ = Validators.Value;

    public static IServiceCollection AddUseCases(this IServiceCollection services)
    {
        services.AddSingleton(TimeProvider.System);
        services.AddSingleton<Work>();
        services.AddSingleton<AuditWriter>();
        // The fhir-profiles/ rules FHIR resources are checked against, read once.
        services.AddSingleton(_ => FhirProfiles.Load());
        // What AddValidatorsFromAssemblyContaining<Program> registers, from the scan Program started beside building the host.
        foreach (var found in Validators.Value.GetAwaiter().GetResult())
        {
            services.TryAddEnumerable(new ServiceDescriptor(found.InterfaceType, found.ValidatorType, ServiceLifetime.Singleton));
            services.TryAdd(new ServiceDescriptor(found.ValidatorType, found.ValidatorType, ServiceLifetime.Singleton));
        }
        services.AddMediator((MediatorOptions options) =>
        {
            // Scoped: handlers and behaviours see the request's (or the circuit's) ActorAccessor.
            options.ServiceLifetime = ServiceLifetime.Scoped;
            // Order matters: who may ask, then is the request well-formed, then one transaction
            // (commands only) around the handler and, innermost, its audit row.
            options.PipelineBehaviors =
            [
                typeof(AuthorisationBehaviour<,>),
                typeof(ValidationBehaviour<,>),
                // Only the equity report's: it waits for start-up's deprivation lookup.
                typeof(Features.Reports.EquityWaitsForDeprivation),
                typeof(TransactionBehaviour<,>),
                typeof(AuditBehaviour<,>),
            ];
        });
        return services;
    }

    /// <summary>The coordination centre's waiting targets, and the timer that raises re-contact tasks when they are missed.</summary>
    public static IServiceCollection AddCoordination(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<CoordinationTargets>().Bind(configuration.GetSection("Coordination"))
            .Validate(t => t.TakenWithinMinutes > 0 && t.TriagedWithinMinutes >= t.TakenWithinMinutes && t.AmberAtPercent is > 0 and < 100,
                "Coordination targets: TakenWithinMinutes > 0, TriagedWithinMinutes >= TakenWithinMinutes, AmberAtPercent between 1 and 99.")
            .ValidateOnStart();
        SystemTimer<WaitingWell.RaiseRecontacts>.Register(services,
            sp => () => sp.GetRequiredService<IOptionsMonitor<CoordinationTargets>>().CurrentValue.RecontactCheckSeconds,
            "re-contact tasks raised for referrals waiting past target");
        return services;
    }

    /// <summary>The FHIR API's limits, and what reads and writes partners' resources.</summary>
    public static IServiceCollection AddFhir(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<Features.Fhir.FhirSettings>().Bind(configuration.GetSection("Fhir"))
            .Validate(f => f.MaxRequestBytes > 0, "Fhir:MaxRequestBytes must be positive.")
            .Validate(f => f.MaxBundleEntries > 0, "Fhir:MaxBundleEntries must be positive.")
            .ValidateOnStart();
        services.AddScoped<Features.Fhir.FhirRequests>();
        services.AddScoped<Features.Fhir.ReceivedMessage>();
        // Each organisation's Patient ids; its key is loaded at start-up (PrepareStoreAsync).
        services.AddSingleton<Features.Fhir.PatientIds>();
        // The writer resolves absolute references against this server's base, as the caller reached it.
        services.AddHttpContextAccessor();
        services.AddScoped<Features.Fhir.FhirWriter>();
        return services;
    }

    /// <summary>Partners' topic-based subscriptions: their settings and the service that delivers them.</summary>
    public static IServiceCollection AddSubscriptions(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<Features.Fhir.Subscriptions.SubscriptionSettings>().Bind(configuration.GetSection("Subscriptions"))
            .Validate(s => s.Invalid() is null, "Subscriptions: see the settings' limits in appsettings.sample.json.")
            .ValidateOnStart();
        services.AddSingleton<Features.Fhir.Subscriptions.SubscriptionDelivery>();
        services.AddHostedService(sp => sp.GetRequiredService<Features.Fhir.Subscriptions.SubscriptionDelivery>());
        return services;
    }

    public static IServiceCollection AddBoards(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<Features.Reports.EquitySettings>().Bind(configuration.GetSection("Reports:Equity"))
            .Validate(e => e.DisproportionalityThresholdPercent is > 0 and < 100, "Reports:Equity:DisproportionalityThresholdPercent must be between 1 and 99.")
            .ValidateOnStart();
        services.AddOptions<Features.Reports.DeprivationSettings>().Bind(configuration.GetSection("Deprivation"));
        services.AddSingleton<Features.Reports.DeprivationLookup>();
        services.AddSingleton<FlowHistory.Latest>();
        services.AddSingleton<CapacityBoard.Latest>();
        services.AddHealthChecks().AddCheck<Features.Reports.DeprivationLookupHealth>("deprivation-lookup");
        services.AddOptions<BoardSettings>().Bind(configuration.GetSection("Boards"))
            .Validate(b => b.CostPerBedDay >= 0 && b.Escalation.OccupancyPercent.IsOrdered && b.Escalation.MedicallyOptimisedWaiting.IsOrdered
                && b.Escalation.OldestWaitingMinutes.IsOrdered && b.ForecastWeeks is >= 1 and <= 12,
                "Boards: CostPerBedDay must not be negative, each escalation measure's Level2 <= Level3 <= Level4, and ForecastWeeks 1 to 12.")
            .ValidateOnStart();
        return services;
    }

    /// <summary>The bed bureau's settings, and the timer that returns beds whose reservation was not taken up.</summary>
    public static IServiceCollection AddBedBureau(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<BedBureauSettings>().Bind(configuration.GetSection("BedBureau"))
            .Validate(s => s.ReservationHours > 0 && s.StaleAfterHours > 0, "BedBureau: ReservationHours and StaleAfterHours must be positive.")
            .ValidateOnStart();
        SystemTimer<ExpireReservations.Command>.Register(services,
            sp => () => sp.GetRequiredService<IOptionsMonitor<BedBureauSettings>>().CurrentValue.ReservationCheckSeconds,
            "bed reservations expired and went back to the board");
        return services;
    }

    public static IServiceCollection AddScreens(this IServiceCollection services)
    {
        services.AddRazorComponents().AddInteractiveServerComponents();
        services.AddRadzenComponents();
        services.AddProblemDetails();
        // In this order: at /fhir every exception is answered as an OperationOutcome, elsewhere a domain failure as ProblemDetails,
        // and a page asked for while the store is out of reach says so and asks again by itself.
        services.AddExceptionHandler<Features.Fhir.FhirFailures>();
        services.AddExceptionHandler<FailureResponses>();
        services.AddExceptionHandler<StoreOutageResponses>();
        return services;
    }

    /// <summary>The live hub and what feeds it: board screens and partner systems listen on /hubs/live.</summary>
    public static IServiceCollection AddLiveUpdates(this IServiceCollection services)
    {
        // Checks each call, and sweeps open connections, for an account or partner client whose access was withdrawn.
        services.AddSingleton<LiveHubAccess>();
        services.AddHostedService(sp => sp.GetRequiredService<LiveHubAccess>());
        // PERF (issue 14, restart): the filter is the one instance above. Added by its type, SignalR would also compile a factory
        // for it at start (about 30 ms) that it never calls, since it finds the filter registered.
        services.AddSignalR();
        services.AddOptions<HubOptions>().Configure<LiveHubAccess>((options, access) => options.AddFilter(access));
        services.AddHostedService<LiveBroadcaster>();
        return services;
    }

    /// <summary>
    /// Migrate, load the token key and the Patient id key, seed demo data when asked: before the first request is served. After
    /// the migrations, the code lists and the demo seed go beside the key ring and the keys, which need nothing of them (restart and cold start
    /// are targets: issue 14). The deprivation lookup loads after the first /health: the equity report waits for it.
    /// </summary>
    public static async Task PrepareStoreAsync(this WebApplication app)
    {
        var services = app.Services;
        var logger = services.GetRequiredService<ILoggerFactory>().CreateLogger("CareCoordination.Startup");
        // Restart time is a target (issue 14): each step's share is logged, and the whole from process start once serving.
        var steps = new StartupSteps(logger);
        app.Lifetime.ApplicationStarted.Register(steps.Serving);
        // Before the store is touched: a restore running on it keeps the node from starting, and the node keeps a restore off.
        services.GetRequiredService<Database>().HoldNodeMark();
        await steps.TimeAsync("migrations", () => services.GetRequiredService<Migrator>().ApplyAsync());
        var database = services.GetRequiredService<Database>();
        // Unasked, only a developer's embedded store gets the demo county: a live SQLite node's first start must not fill its
        // empty store with invented people and beds, on every board beside the real ones.
        var seedDemo = app.Configuration.GetValue("Demo:Seed", database.Provider == StoreProvider.Sqlite && app.Environment.IsDevelopment());
        // The equity report's deprivation lookup (the configured published files, else the demo county's illustrative ones)
        // loads once the node serves and has answered its first /health, or a second after it serves: a new store's load
        // (43,200 postcodes here) took the cores from the migrations and the seed (issue 14, cold start). What reads it waits
        // for it (EquityWaitsForDeprivation); nothing else needs it.
        var deprivation = services.GetRequiredService<IOptions<Features.Reports.DeprivationSettings>>().Value;
        if (Features.Reports.DeprivationLookup.FilesFrom(deprivation, seedDemo) is { } files)
        {
            var stopping = app.Lifetime.ApplicationStopping;
            services.GetRequiredService<Features.Reports.DeprivationLookup>().StartLoading(files.Postcodes, files.Index, deprivation.LocalAuthorities, stopping,
                after: services.GetRequiredService<Features.Health.FirstHealthAnswer>()
                    .ServingAndAnsweredAsync(app.Lifetime, services.GetRequiredService<TimeProvider>(), TimeSpan.FromSeconds(1), stopping));
        }
        // Both awaited, so that neither's failure goes unseen. The keys on a thread of their own: SQLite's calls complete before
        // they return, so started inline they would run to the end before the lists began.
        await Task.WhenAll(Task.Run(KeysAsync), ListsAndSeedAsync());

        async Task KeysAsync()
        {
            // The Patient id key is kept as it is, not sealed with the key ring: it needs nothing of the ring, and loads beside it.
            var patientIdKey = steps.TimeAsync("patient id key", () => services.GetRequiredService<Features.Fhir.PatientIds>().LoadAsync());
            // Before the token key is sealed with it: nodes starting together agree on one key ring first.
            await steps.TimeAsync("key ring", app.PrepareKeyRingAsync);
            await steps.TimeAsync("partner token key", () => services.GetRequiredService<PartnerTokens>().LoadAsync());
            await patientIdKey;
        }

        async Task ListsAndSeedAsync()
        {
            // Before the demo seed, whose delays name the lists' codes.
            await steps.TimeAsync("code lists", () => services.GetRequiredService<Features.Reports.CodeLists.CodeListLoader>().LoadAsync());
            if (seedDemo)
            {
                await SeedDemoAsync(app, logger, steps);
            }
        }
    }

    private static async Task SeedDemoAsync(WebApplication app, ILogger logger, StartupSteps steps)
    {
        var password = app.Configuration["Demo:Password"];
        var secret = app.Configuration["Demo:PartnerSecret"];
        var credentials = new DemoCredentials(
            string.IsNullOrWhiteSpace(password) ? Passwords.Generate() : password,
            string.IsNullOrWhiteSpace(secret) ? Passwords.Generate() : secret);
        var outcome = await steps.TimeAsync("demo seed",
            () => app.Services.GetRequiredService<DemoSeeder>().SeedAsync(credentials, app.Configuration.GetValue("Demo:HistoryDays", DemoSeeder.DefaultHistoryDays)));
        if (outcome == DemoSeedOutcome.Seeded)
        {
            // Printed once, when made: the store keeps only hashes. Secrets that came from configuration are never logged.
            logger.LogWarning(
                "Demo data seeded. Staff accounts referrer, coordinator, bedbureau, manager, admin: password {Password}. Partner client demo-acute-trust: secret {Secret}.",
                string.IsNullOrWhiteSpace(password) ? credentials.Password + " (generated; set Demo:Password to choose one)" : "as configured in Demo:Password",
                string.IsNullOrWhiteSpace(secret) ? credentials.PartnerSecret + " (generated; set Demo:PartnerSecret to choose one)" : "as configured in Demo:PartnerSecret");
        }
    }

    /// <summary>Start-up's steps, timed: each as it ends, and the time from process start until the host serves.</summary>
    private sealed class StartupSteps(ILogger logger)
    {
        public async Task TimeAsync(string step, Func<Task> run) => await TimeAsync(step, async () =>
        {
            await run();
            return true;
        });

        public async Task<T> TimeAsync<T>(string step, Func<Task<T>> run)
        {
            var started = Stopwatch.GetTimestamp();
            var result = await run();
            logger.LogInformation("Start-up: {Step} took {Milliseconds:F0} ms", step, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            return result;
        }

        public void Serving()
        {
            using var process = Process.GetCurrentProcess();
            logger.LogInformation("Start-up: serving {Milliseconds:F0} ms after the process started; {Methods} methods compiled in {JitMilliseconds:F0} ms of JIT, CPU {Cpu:F0} ms",
                (DateTime.Now - process.StartTime).TotalMilliseconds, System.Runtime.JitInfo.GetCompiledMethodCount(), System.Runtime.JitInfo.GetCompilationTime().TotalMilliseconds,
                process.TotalProcessorTime.TotalMilliseconds);
        }
    }
}
