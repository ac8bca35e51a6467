using CareCoordination;
using CareCoordination.Auth;
using CareCoordination.Components;
using CareCoordination.Deployment;
using CareCoordination.Features.Account;
using CareCoordination.Features.Carers;
using CareCoordination.Features.Fhir;
using CareCoordination.Features.Live;
using CareCoordination.Features.Partners;
using CareCoordination.Features.Reports;
using CareCoordination.Store;

HostSetup.StartFindingValidators();
// Operator verbs (backup, restore: docs/operations.md) work on the store the app would serve, then exit.
var storeCommand = Backup.Command.Parse(args);
var builder = WebApplication.CreateBuilder(storeCommand?.HostArgs.ToArray() ?? args);
if (storeCommand is not null)
{
    return await storeCommand.RunAsync(builder.Configuration, Console.Out, Console.Error);
}

builder.Services
    .AddStore(builder.Configuration)
    .AddUseCases()
    .AddCoordination(builder.Configuration)
    .AddBedBureau(builder.Configuration)
    .AddBoards(builder.Configuration)
    .AddFhir(builder.Configuration)
    .AddSubscriptions(builder.Configuration)
    .AddCarerMessages(builder.Configuration)
    .AddCareAuthentication(builder.Configuration)
    .AddScreens()
    .AddLiveUpdates()
    .AddBehindProxy(builder.Configuration)
    .AddSharedKeyRing(builder.Configuration);

var app = builder.Build();
// PERF (issue 14, restart): the store's steps (migrations, code lists, key ring, token key, Patient id key, demo seed) need only the services,
// so they run on a pool thread while the pipeline and the endpoints are set up here. Nothing serves until they have ended:
// they are awaited before the host starts (its hosted services and Kestrel).
var storeReady = Task.Run(app.PrepareStoreAsync);
// PERF (issue 14, restart): the live hub's handler compiles an executor for each hub method when made (about 0.1 s);
// made on a pool thread beside the set-up below, MapLiveHub then finds it made rather than making it there.
var liveHubReady = Task.Run(app.Services.GetRequiredService<Microsoft.AspNetCore.SignalR.HubConnectionHandler<LiveHub>>);

app.UseForwardedHeadersFromKnownProxies();
app.UseExceptionHandler("/error", createScopeForErrors: true);
if (!app.Environment.IsDevelopment())
{
    app.UseHsts();
}
// People get a page that explains itself; programs get the bare status (and later, their problem details).
app.UseWhen(context => !AuthenticationSetup.IsMachinePath(context.Request.Path),
    branch => branch.UseStatusCodePagesWithReExecute("/not-found", createScopeForStatusCodePages: true));
app.UseAuthentication();
app.Use((context, next) =>
{
    context.RequestServices.GetRequiredService<ActorAccessor>().Principal = context.User;
    return next(context);
});
app.UseAuthorization();
app.UseAntiforgery();

app.MapStaticAssets().AllowAnonymous();
app.MapHealthChecks("/health").AllowAnonymous();
app.MapIssueToken();
app.MapAccountEndpoints();
app.MapWhoAmI();
app.MapLiveHub();
app.MapFhir();
app.MapReports();
app.MapRazorComponents<App>().AddInteractiveServerRenderMode();

// PERF (issue 14, restart): the pages', static files' and Blazor hub's endpoints are built here, while the store's steps may
// still run, rather than when the host starts after them (about 0.15 s); those sources keep what they built. The minimal
// API sources build theirs again on every read (a few ms here).
foreach (var endpoints in ((IEndpointRouteBuilder)app).DataSources)
{
    _ = endpoints.Endpoints;
}
await Task.WhenAll(liveHubReady, storeReady);
await app.RunAsync();
return 0;

/// <summary>Visible to the test host.</summary>
public partial class Program;
