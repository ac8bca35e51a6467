using CareCoordination;
using CareCoordination.Auth;
using CareCoordination.Components;
using CareCoordination.Deployment;
using CareCoordination.Features.Account;
using CareCoordination.Features.Fhir;
using CareCoordination.Features.Live;
using CareCoordination.Features.Partners;

var builder = WebApplication.CreateBuilder(args);

builder.Services
    .AddStore(builder.Configuration)
    .AddUseCases()
    .AddCoordination(builder.Configuration)
    .AddBedBureau(builder.Configuration)
    .AddBoards(builder.Configuration)
    .AddFhir(builder.Configuration)
    .AddCareAuthentication(builder.Configuration)
    .AddScreens()
    .AddLiveUpdates()
    .AddBehindProxy(builder.Configuration)
    .AddSharedKeyRing(builder.Configuration);

var app = builder.Build();

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
app.MapRazorComponents<App>().AddInteractiveServerRenderMode();

await app.PrepareStoreAsync();
await app.RunAsync();

/// <summary>Visible to the test host.</summary>
public partial class Program;
