using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Reflection;
using System.Text;
using System.Text.Json;
using CareCoordination.Auth;
using CareCoordination.Domain;
using CareCoordination.Features.Referrals;
using CareCoordination.Tests.Support;
using Dapper;
using Microsoft.AspNetCore.Components;
using Microsoft.AspNetCore.Components.Endpoints;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.Http.Connections.Client;
using Microsoft.AspNetCore.Mvc.Testing.Handlers;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.SignalR.Client;
using Microsoft.Extensions.DependencyInjection;

namespace CareCoordination.Tests.Security;

/// <summary>
/// Who sees what, as a table written here by hand and walked through the real host: every page route, API,
/// FHIR interaction and live topic, as each staff role of two trusts, as each trust's partner system and as
/// nobody. The tables are the policy; a route or topic the tables do not name fails the test, so a new
/// surface cannot ship without someone deciding who may use it.
/// </summary>
public abstract class AccessMatrixTests(AppFactory app)
{
    private static readonly ConcurrentDictionary<AppFactory, Lazy<Task<World>>> Worlds = new();

    private static readonly string[] StaffRoles = [Roles.Referrer, Roles.Coordinator, Roles.BedBureau, Roles.Manager, Roles.Admin];

    /// <summary>The coordination centre, the bed bureau and their managers work every trust's referrals.</summary>
    private static readonly string[] CountyWide = [Roles.Coordinator, Roles.BedBureau, Roles.Manager];

    private static readonly string[] CapacityReaders = [Roles.Coordinator, Roles.BedBureau, Roles.Manager, Roles.Admin];

    private Task<World> WorldAsync() => Worlds.GetOrAdd(app, a => new Lazy<Task<World>>(() => World.BuildAsync(a))).Value;

    // ---- Pages ----------------------------------------------------------------------------------------

    /// <summary>
    /// How a page answers: open to anyone; to signed-in staff of some roles; or about one trust's referral, when
    /// it says "not yours" either with a 404 or on a page that explains itself (200). A page whose data loads
    /// only once interactive cannot show its person in the first response, so only its absence is checked.
    /// </summary>
    private sealed record PageRule(bool Anonymous, string[] Roles, bool ReferralOfItsTrust = false,
        HttpStatusCode NotYours = HttpStatusCode.NotFound, bool ShowsPersonInFirstResponse = true);

    private static readonly Dictionary<string, PageRule> Pages = new(StringComparer.Ordinal)
    {
        ["/signin"] = new(true, []),
        ["/not-found"] = new(true, []),
        ["/error"] = new(true, []),
        ["/"] = new(false, StaffRoles),
        ["/denied"] = new(false, StaffRoles),
        ["/referrals"] = new(false, [Roles.Referrer]),
        ["/referrals/new"] = new(false, [Roles.Referrer]),
        // Blank, so any signed-in staff may print it ahead of downtime.
        ["/referrals/blank-form"] = new(false, StaffRoles),
        ["/coordination/paper-referrals"] = new(false, [Roles.Coordinator]),
        ["/referrals/drafts/{DraftId:long}"] = new(false, [Roles.Referrer], ReferralOfItsTrust: true, NotYours: HttpStatusCode.OK, ShowsPersonInFirstResponse: false),
        ["/referrals/{Id:long}"] = new(false, [Roles.Referrer, .. CountyWide], ReferralOfItsTrust: true, NotYours: HttpStatusCode.OK),
        ["/referrals/{Id:long}/summary"] = new(false, [Roles.Referrer, .. CountyWide], ReferralOfItsTrust: true),
        ["/coordination"] = new(false, CountyWide),
        ["/bed-bureau/queue"] = new(false, CountyWide),
        ["/coordination/referrals/{Id:long}"] = new(false, CountyWide, ReferralOfItsTrust: true),
        // The partner's message as received holds all it sent: only the roles that work referrals read it.
        ["/coordination/referrals/{Id:long}/as-sent"] = new(false, [Roles.Coordinator, Roles.BedBureau], ReferralOfItsTrust: true),
        ["/bed-bureau/beds"] = new(false, CapacityReaders),
        ["/boards/capacity"] = new(false, CapacityReaders),
        ["/boards/wall"] = new(false, CapacityReaders),
        ["/admin/beds"] = new(false, [Roles.Admin]),
        ["/admin/hospital-sites"] = new(false, [Roles.Admin]),
        ["/admin/providers"] = new(false, [Roles.Admin, Roles.Manager]),
        ["/admin/services"] = new(false, [Roles.Admin, .. CountyWide]),
        ["/admin/sign-in-links"] = new(false, [Roles.Admin]),
        ["/admin/partners"] = new(false, [Roles.Admin]),
        ["/approvals"] = new(false, [Roles.Manager]),
        ["/reports"] = new(false, [Roles.Manager, Roles.Admin]),
        ["/reports/capacity-tracker"] = new(false, [Roles.Manager, Roles.Admin]),
        ["/reports/waiting-lists"] = new(false, [Roles.Manager, Roles.Admin]),
        ["/reports/decision-pack"] = new(false, [Roles.Manager, Roles.Admin]),
        ["/admin/you-said-we-did"] = new(false, [Roles.Admin]),
        ["/reports/discharge-sitrep"] = new(false, [Roles.Manager, Roles.Admin]),
        ["/reports/discharge-delays"] = new(false, [Roles.Manager, Roles.Admin]),
        ["/reports/client-level-events"] = new(false, [Roles.Manager, Roles.Admin]),
        ["/reports/data-quality"] = new(false, [Roles.Manager, Roles.Admin]),
        ["/reports/equity"] = new(false, [Roles.Manager, Roles.Admin]),
    };

    [Fact]
    public void PageTable_NamesEveryRoutableComponent()
    {
        var routes = typeof(Program).Assembly.GetTypes()
            .SelectMany(t => t.GetCustomAttributes<RouteAttribute>().Select(r => r.Template))
            .ToHashSet(StringComparer.Ordinal);
        Assert.Empty(routes.Except(Pages.Keys));
        Assert.Empty(Pages.Keys.Except(routes));
    }

    [Fact]
    public async Task EveryPage_AnswersEachCaller_AsThePolicySays()
    {
        var world = await WorldAsync();
        var wrong = new List<string>();
        foreach (var (template, rule) in Pages)
        {
            foreach (var caller in world.Callers.Where(c => c.Kind != ActorKind.Partner))
            {
                foreach (var (trust, path) in Concrete(template, world))
                {
                    using var response = await caller.Http.GetAsync(path);
                    var body = await response.Content.ReadAsStringAsync();
                    var (status, sees) = Expected(rule, caller, trust);
                    var shown = trust is { } t && body.Contains(world.FamilyName(t), StringComparison.Ordinal);
                    var checkShown = trust is not null && (rule.ShowsPersonInFirstResponse || !sees);
                    if (response.StatusCode != status || (checkShown && shown != sees))
                    {
                        wrong.Add($"{caller} GET {path}: expected {(int)status}{(trust is null ? "" : sees ? " showing the person" : " without the person")}, "
                            + $"got {(int)response.StatusCode}{(trust is null ? "" : shown ? " showing the person" : " without the person")} {response.Headers.Location}");
                    }
                    if (response.StatusCode is HttpStatusCode.Redirect or HttpStatusCode.Found)
                    {
                        var to = response.Headers.Location?.ToString() ?? "";
                        var expectedTarget = caller.Kind == ActorKind.Anonymous ? "/signin" : "/denied";
                        if (!to.Contains(expectedTarget, StringComparison.Ordinal))
                        {
                            wrong.Add($"{caller} GET {path}: redirected to {to}, expected {expectedTarget}");
                        }
                    }
                }
            }
        }
        Assert.True(wrong.Count == 0, string.Join('\n', wrong));
    }

    private static (HttpStatusCode Status, bool SeesPerson) Expected(PageRule rule, Caller caller, string? trust)
    {
        if (rule.Anonymous)
        {
            return (HttpStatusCode.OK, false);
        }
        if (caller.Kind == ActorKind.Anonymous)
        {
            return (HttpStatusCode.Redirect, false);
        }
        if (!rule.Roles.Contains(caller.Role))
        {
            return (HttpStatusCode.Redirect, false);
        }
        if (!rule.ReferralOfItsTrust || trust is null)
        {
            return (HttpStatusCode.OK, false);
        }
        var sees = CountyWide.Contains(caller.Role) || caller.Trust == trust;
        return (sees ? HttpStatusCode.OK : rule.NotYours, sees);
    }

    /// <summary>The paths a route template stands for: one per trust where it names a referral or draft.</summary>
    private static IEnumerable<(string? Trust, string Path)> Concrete(string template, World world)
    {
        if (!template.Contains('{', StringComparison.Ordinal))
        {
            yield return (null, template);
            yield break;
        }
        foreach (var trust in World.Trusts)
        {
            var id = template.Contains("DraftId", StringComparison.Ordinal) ? world.DraftId[trust] : world.ReferralId[trust];
            var path = System.Text.RegularExpressions.Regex.Replace(template, "\\{[^}]+\\}", id.ToString(System.Globalization.CultureInfo.InvariantCulture));
            yield return (trust, path);
        }
    }

    // ---- APIs (everything routed that is neither a page, /fhir, the hub nor the framework's own) -------------

    private static readonly Dictionary<string, string> Apis = new(StringComparer.Ordinal)
    {
        ["GET /api/me"] = "every signed-in caller, as themselves",
        ["POST /oauth/token"] = "anyone: the credentials are the check",
        ["POST /signout"] = "anyone with the form's antiforgery token",
        ["GET /signin/external"] = "anyone: starts single sign-on",
        ["/health"] = "anyone: a probe",
        ["/hubs/live"] = "signed-in callers, per topic below",
    };

    [Fact]
    public void ApiTable_NamesEveryOtherRoutedEndpoint()
    {
        var routed = app.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.Metadata.GetMetadata<ComponentTypeMetadata>() is null)
            .Select(e => (Pattern: "/" + e.RoutePattern.RawText?.TrimStart('/'), Methods: e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods))
            .Where(e => !e.Pattern.StartsWith("/fhir", StringComparison.Ordinal) && !e.Pattern.StartsWith("/_", StringComparison.Ordinal)
                && !e.Pattern.StartsWith("/hubs/live/", StringComparison.Ordinal) && !IsStaticAsset(e.Pattern))
            .Select(e => e.Methods is { Count: 1 } m ? $"{m[0]} {e.Pattern}" : e.Pattern)
            .ToHashSet(StringComparer.Ordinal);

        Assert.Empty(routed.Except(Apis.Keys));
    }

    private static bool IsStaticAsset(string pattern) =>
        pattern.Contains('.', StringComparison.Ordinal) || pattern.Contains(":file}", StringComparison.Ordinal) || pattern.StartsWith("/lib/", StringComparison.Ordinal) || pattern.StartsWith("/Radzen", StringComparison.OrdinalIgnoreCase)
        || pattern.StartsWith("/CareCoordination", StringComparison.Ordinal);

    /// <summary>
    /// A report's CSV is routed as a file (its path has a dot), so the API table cannot see it: every report's CSV is
    /// walked here instead, and only managers and administrators get the file.
    /// </summary>
    [Fact]
    public async Task EveryReportCsv_IsOnlyForManagersAndAdmins()
    {
        var world = await WorldAsync();
        var wrong = new List<string>();
        Assert.NotEmpty(CareCoordination.Features.Reports.ReportCatalogue.All);
        foreach (var report in CareCoordination.Features.Reports.ReportCatalogue.All)
        {
            foreach (var caller in world.Callers)
            {
                using var response = await caller.Http.GetAsync(report.Path + ".csv");
                // Nobody signed in is sent to sign in, as for any page; everyone else not allowed is refused.
                var allowed = caller.Kind == ActorKind.Staff && caller.Role is Roles.Manager or Roles.Admin;
                var expected = allowed ? HttpStatusCode.OK : caller.Kind == ActorKind.Anonymous ? HttpStatusCode.Redirect : HttpStatusCode.Forbidden;
                var to = response.Headers.Location?.ToString() ?? "";
                if (response.StatusCode != expected || (expected == HttpStatusCode.Redirect && !to.Contains("/signin", StringComparison.Ordinal)))
                {
                    wrong.Add($"{caller} GET {report.Path}.csv: expected {(int)expected}, got {(int)response.StatusCode} {to}");
                }
            }
        }
        Assert.True(wrong.Count == 0, string.Join('\n', wrong));
    }

    [Fact]
    public async Task WhoAmI_TellsEachCallerOnlyWhoTheyAre()
    {
        var world = await WorldAsync();
        foreach (var caller in world.Callers)
        {
            using var response = await caller.Http.GetAsync("/api/me");
            if (caller.Kind == ActorKind.Anonymous)
            {
                Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
                continue;
            }
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{caller}: {(int)response.StatusCode}");
            var me = await response.Content.ReadFromJsonAsync<JsonElement>();
            Assert.Equal(world.OrganisationIds[caller.Trust!], me.GetProperty("organisationId").GetInt64());
            Assert.Equal(caller.Kind == ActorKind.Partner ? "partner" : "staff", me.GetProperty("kind").GetString());
            Assert.Equal(caller.Kind == ActorKind.Partner ? null : caller.Role, me.GetProperty("role").GetString());
        }
    }

    // ---- FHIR ---------------------------------------------------------------------------------------------

    /// <summary>
    /// Which callers a FHIR interaction is for, whether it is about one trust's referral, and whether what it
    /// reads belongs to trust A in a way only partners are held to (its staff directory, its own audit trail).
    /// </summary>
    private sealed record FhirRule(string[] Roles, bool Partners, bool ReferralOfItsTrust, bool PartnersOwnOnly = false);

    private static readonly string[] ReferralReaders = [Roles.Referrer, .. CountyWide];
    private static readonly string[] Everyone = StaffRoles;

    private static readonly Dictionary<string, FhirRule> FhirReads = new(StringComparer.Ordinal)
    {
        ["/fhir/ServiceRequest/{id}"] = new(ReferralReaders, true, true),
        ["/fhir/ServiceRequest/{id}/_history"] = new(ReferralReaders, true, true),
        ["/fhir/ServiceRequest/{id}/_history/{vid}"] = new(ReferralReaders, true, true),
        ["/fhir/Task/{id}"] = new(ReferralReaders, true, true),
        ["/fhir/Task/{id}/_history"] = new(ReferralReaders, true, true),
        ["/fhir/Task/{id}/_history/{vid}"] = new(ReferralReaders, true, true),
        ["/fhir/Patient/{id}"] = new(ReferralReaders, true, true),
        ["/fhir/Patient/{id}/_history"] = new(ReferralReaders, true, true),
        ["/fhir/Patient/{id}/_history/{vid}"] = new(ReferralReaders, true, true),
        ["/fhir/ServiceRequest"] = new(ReferralReaders, true, true),
        ["/fhir/Task"] = new(ReferralReaders, true, true),
        ["/fhir/Patient"] = new(ReferralReaders, true, true),
        ["/fhir/Location/{id}"] = new(CapacityReaders, true, false),
        ["/fhir/Location/{id}/_history"] = new(CapacityReaders, true, false),
        ["/fhir/Location/{id}/_history/{vid}"] = new(CapacityReaders, true, false),
        ["/fhir/Location"] = new(CapacityReaders, true, false),
        ["/fhir/MeasureReport/{id}"] = new(CapacityReaders, true, false),
        ["/fhir/MeasureReport"] = new(CapacityReaders, true, false),
        ["/fhir/HealthcareService/{id}"] = new(CapacityReaders, true, false),
        ["/fhir/HealthcareService"] = new(CapacityReaders, true, false),
        ["/fhir/Organization/{id}"] = new(Everyone, true, false),
        ["/fhir/Organization"] = new(Everyone, true, false),
        ["/fhir/Practitioner/{id}"] = new(Everyone, true, false, PartnersOwnOnly: true),
        ["/fhir/Practitioner"] = new(Everyone, true, false),
        ["/fhir/PractitionerRole/{id}"] = new(Everyone, true, false, PartnersOwnOnly: true),
        ["/fhir/PractitionerRole"] = new(Everyone, true, false),
        ["/fhir/AuditEvent/{id}"] = new([], true, false, PartnersOwnOnly: true),
        ["/fhir/AuditEvent"] = new([], true, false),
        // A subscription is its own client's: trust A's partner made the one read here.
        ["/fhir/Subscription/{id}"] = new([], true, false, PartnersOwnOnly: true),
        ["/fhir/Subscription/{id}/$status"] = new([], true, false, PartnersOwnOnly: true),
        ["/fhir/Subscription/{id}/$events"] = new([], true, false, PartnersOwnOnly: true),
        ["/fhir/Subscription"] = new([], true, false),
        ["/fhir/metadata"] = new(Everyone, true, false),
    };

    /// <summary>The writes: each names who may send it; the cross-trust cases are walked in their own test.</summary>
    private static readonly Dictionary<string, string> FhirWrites = new(StringComparer.Ordinal)
    {
        ["POST /fhir/ServiceRequest"] = "referrers and partners, for their own organisation",
        ["POST /fhir/Patient"] = "referrers and partners with system/Patient.c: their own organisation's record of the person",
        ["PUT /fhir/ServiceRequest/{id}"] = "referrers and partners, their own organisation's referral",
        ["POST /fhir/"] = "transaction or batch: each entry as its own interaction",
        ["POST /fhir/$process-message"] = "referrers and partners, for their own organisation",
        ["POST /fhir/Subscription"] = "partners with system/Subscription.c, for their own organisation's Task changes",
        ["PUT /fhir/Subscription/{id}"] = "partners, their own client's subscription (another's is 404: FhirSubscriptionTests)",
        ["DELETE /fhir/Subscription/{id}"] = "partners, their own client's subscription (another's is 404: FhirSubscriptionTests)",
        ["/fhir/{**rest}"] = "anything else: a 404 OperationOutcome",
    };

    [Fact]
    public void FhirTables_NameEveryFhirRoute()
    {
        var routed = app.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Select(e => (Pattern: "/" + e.RoutePattern.RawText?.TrimStart('/'), Methods: string.Join(',', e.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? [])))
            .Where(e => e.Pattern.StartsWith("/fhir", StringComparison.Ordinal))
            .Select(e => e.Methods is "GET" or "" ? e.Pattern : $"{e.Methods} {e.Pattern}")
            .ToHashSet(StringComparer.Ordinal);

        Assert.Empty(routed.Except(FhirReads.Keys).Except(FhirWrites.Keys));
        Assert.Empty(FhirReads.Keys.Concat(FhirWrites.Keys).Except(routed));
    }

    [Fact]
    public async Task EveryFhirRead_AnswersEachCaller_AsThePolicySays()
    {
        var world = await WorldAsync();
        var wrong = new List<string>();
        foreach (var (template, rule) in FhirReads)
        {
            foreach (var caller in world.Callers)
            {
                foreach (var (trust, path) in world.FhirPaths(template, caller))
                {
                    using var response = await caller.Http.GetAsync(path);
                    var body = await response.Content.ReadAsStringAsync();
                    var allowed = caller.Kind switch
                    {
                        ActorKind.Partner => rule.Partners,
                        ActorKind.Staff => rule.Roles.Contains(caller.Role),
                        _ => template == "/fhir/metadata",
                    };
                    var isSearch = !template.Contains('{', StringComparison.Ordinal);
                    var sees = allowed && (trust is null || caller.Kind == ActorKind.Staff && CountyWide.Contains(caller.Role) || caller.Trust == trust)
                        && !(rule.PartnersOwnOnly && caller.Kind == ActorKind.Partner && caller.Trust != "A");
                    var status = !allowed
                        ? caller.Kind == ActorKind.Anonymous ? HttpStatusCode.Unauthorized : HttpStatusCode.Forbidden
                        : sees || isSearch ? HttpStatusCode.OK : HttpStatusCode.NotFound;
                    if (response.StatusCode != status)
                    {
                        wrong.Add($"{caller} GET {path}: expected {(int)status}, got {(int)response.StatusCode}");
                        continue;
                    }
                    // A search's self link repeats the NHS number it was asked for: what it found is in its entries.
                    var found = isSearch && response.StatusCode == HttpStatusCode.OK ? Entries(body) : body;
                    if (trust is not null && response.StatusCode == HttpStatusCode.OK)
                    {
                        var shown = world.Mentions(found, trust);
                        if (shown != sees)
                        {
                            wrong.Add($"{caller} GET {path}: {(sees ? "does not show" : "shows")} trust {trust}'s referral");
                        }
                    }
                    // Nobody reads another trust's person through any door, however it is asked.
                    if (response.StatusCode == HttpStatusCode.OK && caller.Kind != ActorKind.Anonymous && caller.Trust is { } own
                        && !(caller.Kind == ActorKind.Staff && CountyWide.Contains(caller.Role)) && world.Mentions(found, World.Other(own)))
                    {
                        wrong.Add($"{caller} GET {path}: shows the other trust's person");
                    }
                }
            }
        }
        Assert.True(wrong.Count == 0, string.Join('\n', wrong));
    }

    private static string Entries(string bundle) =>
        JsonDocument.Parse(bundle).RootElement.TryGetProperty("entry", out var entries) ? entries.ToString() : "";

    [Fact]
    public async Task CancellingAnotherTrustsReferral_ThroughFhir_IsNotFound_AndChangesNothing()
    {
        var world = await WorldAsync();
        foreach (var caller in world.Callers.Where(c => c.Trust == "B" && (c.Kind == ActorKind.Partner || c.Role == Roles.Referrer)))
        {
            var id = world.ReferralId["A"];
            using var read = await world.Callers.Single(c => c.Kind == ActorKind.Partner && c.Trust == "A").Http.GetAsync($"/fhir/ServiceRequest/{id}");
            var resource = System.Text.Json.Nodes.JsonNode.Parse(await read.Content.ReadAsStringAsync())!.AsObject();
            resource["status"] = "revoked";
            if (resource["note"] is not System.Text.Json.Nodes.JsonArray notes)
            {
                resource["note"] = notes = [];
            }
            notes.Add(new System.Text.Json.Nodes.JsonObject { ["text"] = "Not ours to cancel." });
            using var put = new HttpRequestMessage(HttpMethod.Put, $"/fhir/ServiceRequest/{id}")
            {
                Content = new StringContent(resource.ToJsonString(), Encoding.UTF8, "application/fhir+json"),
            };
            put.Headers.IfMatch.Add(read.Headers.ETag!);
            using var response = await caller.Http.SendAsync(put);
            Assert.True(response.StatusCode == HttpStatusCode.NotFound, $"{caller}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        }
        await using var connection = await app.OpenAsync();
        Assert.Equal("submitted", await connection.ExecuteScalarAsync<string>("SELECT status FROM referral WHERE id = @id", new { id = world.ReferralId["A"] }));
    }

    /// <summary>
    /// One person referred by both trusts, each writing its own address and carer's number: every door a trust's
    /// referrer or partner can read the person through shows only what that trust said.
    /// </summary>
    [Fact]
    public async Task APersonBothTrustsReferred_IsShownToEachTrust_OnlyAsThatTrustDescribedThem()
    {
        var world = await WorldAsync();
        var nhs = await app.NewNhsNumberAsync();
        var said = new Dictionary<string, (string Address, string Carer)>
        {
            ["A"] = ($"1 Shared {world.FamilyName("A")} Road", "07700 900501"),
            ["B"] = ($"2 Shared {world.FamilyName("B")} Road", "07700 900502"),
        };
        var wrong = new List<string>();
        foreach (var trust in World.Trusts)
        {
            var (_, duplicates) = await world.SendAsync(app, trust, nhs, form =>
            {
                form.AddressLine = said[trust].Address;
                form.CarerContact = said[trust].Carer;
            });
            // Trust B is told an open referral exists, so it does not send a duplicate; not whose it is, nor what it said.
            var told = JsonSerializer.Serialize(duplicates);
            if (trust == "B" && (duplicates is not { Elsewhere: true, Visible.Count: 0 } || told.Contains(world.OrganisationName("A"), StringComparison.Ordinal)
                || told.Contains(said["A"].Address, StringComparison.Ordinal)))
            {
                wrong.Add($"trust B sending a second referral was told: {told}");
            }
        }
        long personId;
        await using (var connection = await app.OpenAsync())
        {
            personId = await connection.ExecuteScalarAsync<long>("SELECT id FROM person WHERE nhs_number = @nhs", new { nhs });
        }

        // Each caller asks for the person by its own organisation's id for them.
        string[] Paths(Caller caller)
        {
            var patient = world.PatientIdFor(caller, personId);
            return
            [
                $"/fhir/Patient/{patient}", $"/fhir/Patient/{patient}/_history", $"/fhir/Patient/{patient}/_history/1",
                $"/fhir/Patient/{patient}/_history/2", $"/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}",
                $"/fhir/ServiceRequest?patient.identifier=https://fhir.nhs.uk/Id/nhs-number|{nhs}&_include=ServiceRequest:patient",
            ];
        }
        foreach (var caller in world.Callers.Where(c => c.Kind == ActorKind.Partner || c.Role == Roles.Referrer))
        {
            var other = said[World.Other(caller.Trust!)];
            foreach (var path in Paths(caller))
            {
                using var response = await caller.Http.GetAsync(path);
                var body = await response.Content.ReadAsStringAsync();
                if (body.Contains(other.Address, StringComparison.Ordinal) || body.Contains(other.Carer, StringComparison.Ordinal))
                {
                    wrong.Add($"{caller} GET {path} ({(int)response.StatusCode}): shows what the other trust wrote about the person");
                }
            }
            // The referral form's look-up: an open referral elsewhere may be known, never its details.
            var found = await Record.ExceptionAsync(async () =>
            {
                var result = await app.SendAsync<FindPerson.Result?>(new FindPerson.Query(nhs), await app.StaffAsync(world.Username(Roles.Referrer, caller.Trust!)));
                var text = JsonSerializer.Serialize(result);
                if (text.Contains(other.Address, StringComparison.Ordinal) || text.Contains(other.Carer, StringComparison.Ordinal)
                    || text.Contains(world.OrganisationName(World.Other(caller.Trust!)), StringComparison.Ordinal))
                {
                    wrong.Add($"referrer of trust {caller.Trust} FindPerson: shows the other trust's details or name: {text}");
                }
            });
            if (found is not null)
            {
                wrong.Add($"referrer of trust {caller.Trust} FindPerson: {found.Message}");
            }
        }
        // The coordination centre works the whole story: it sees what each trust said.
        var coordinator = world.Callers.First(c => c.Role == Roles.Coordinator);
        var history = await (await coordinator.Http.GetAsync($"/fhir/Patient/{world.PatientIdFor(coordinator, personId)}/_history")).Content.ReadAsStringAsync();
        Assert.Contains(said["A"].Address, history, StringComparison.Ordinal);
        Assert.Contains(said["B"].Address, history, StringComparison.Ordinal);
        Assert.True(wrong.Count == 0, string.Join('\n', wrong));
    }

    // ---- Live topics --------------------------------------------------------------------------------------

    private static readonly Dictionary<string, (string[] Roles, bool Partners)> Topics = new(StringComparer.Ordinal)
    {
        ["capacity"] = (CapacityReaders, true),
        ["queue/coordination"] = (CountyWide, false),
        ["queue/bed-bureau"] = (CountyWide, false),
        ["referrals/mine"] = (ReferralReaders, true),
    };

    [Fact]
    public void TopicTable_NamesEveryTopic() =>
        Assert.Equal(Topics.Keys.Order(StringComparer.Ordinal), CareCoordination.Features.Live.LiveTopics.All.Order(StringComparer.Ordinal));

    [Fact]
    public async Task EveryTopic_IsGrantedAsThePolicySays_AndCarriesOnlyWhatTheCallerMaySee()
    {
        var world = await WorldAsync();
        var listeners = new List<(Caller Caller, string Topic, HubConnection Hub, List<JsonElement> Received)>();
        var wrong = new List<string>();
        try
        {
            foreach (var caller in world.Callers)
            {
                if (caller.Kind == ActorKind.Anonymous)
                {
                    await using var anonymous = app.LiveHub(_ => { });
                    var refused = await Record.ExceptionAsync(() => anonymous.StartAsync());
                    if (refused is null)
                    {
                        wrong.Add("anonymous connected to /hubs/live");
                    }
                    continue;
                }
                foreach (var (topic, (roles, partners)) in Topics)
                {
                    var hub = app.LiveHub(caller.ConfigureHub);
                    var received = new List<JsonElement>();
                    hub.On<JsonElement>("change", c => { lock (received) { received.Add(c); } });
                    await hub.StartAsync();
                    var allowed = caller.Kind == ActorKind.Partner ? partners : roles.Contains(caller.Role);
                    var granted = await Record.ExceptionAsync(() => hub.InvokeAsync<long>("Subscribe", topic)) is null;
                    if (granted != allowed)
                    {
                        wrong.Add($"{caller} subscribe {topic}: expected {(allowed ? "granted" : "refused")}, was {(granted ? "granted" : "refused")}");
                    }
                    if (granted)
                    {
                        listeners.Add((caller, topic, hub, received));
                    }
                    else
                    {
                        await hub.DisposeAsync();
                    }
                }
            }

            // Each trust sends a referral while everyone listens; the last one also reaches everyone's topics in seq order.
            var sent = new Dictionary<string, long>
            {
                ["A"] = await world.SubmitAsync(app, "A"),
                ["B"] = await world.SubmitAsync(app, "B"),
            };
            var deadline = DateTime.UtcNow.AddSeconds(15);
            foreach (var listener in listeners.Where(l => l.Topic == "referrals/mine"))
            {
                var mine = sent[listener.Caller.Trust!];
                while (!Snapshot(listener.Received).Any(c => ReferralOf(c) == mine) && DateTime.UtcNow < deadline)
                {
                    await Task.Delay(50);
                }
            }
            foreach (var (caller, topic, _, received) in listeners)
            {
                var changes = Snapshot(received);
                if (topic == "referrals/mine")
                {
                    if (!changes.Any(c => ReferralOf(c) == sent[caller.Trust!]))
                    {
                        wrong.Add($"{caller} on referrals/mine: never heard of its own trust's referral");
                    }
                    if (changes.Any(c => ReferralOf(c) == sent[World.Other(caller.Trust!)]))
                    {
                        wrong.Add($"{caller} on referrals/mine: heard of the other trust's referral");
                    }
                }
                foreach (var change in changes)
                {
                    var text = change.ToString();
                    if (world.Mentions(text, "A") || world.Mentions(text, "B") || text.Contains("Matrix", StringComparison.Ordinal))
                    {
                        wrong.Add($"{caller} on {topic}: a person's details travelled on the topic: {text}");
                    }
                }
            }
        }
        finally
        {
            foreach (var listener in listeners)
            {
                await listener.Hub.DisposeAsync();
            }
        }
        Assert.True(wrong.Count == 0, string.Join('\n', wrong));

        static JsonElement[] Snapshot(List<JsonElement> received)
        {
            lock (received)
            {
                return [.. received];
            }
        }
    }

    private static long? ReferralOf(JsonElement change)
    {
        var entity = change.GetProperty("entityType").GetString();
        if (entity == "referral")
        {
            return change.GetProperty("id").GetInt64();
        }
        return change.GetProperty("data") is { ValueKind: JsonValueKind.Object } data && data.TryGetProperty("referralId", out var id) ? id.GetInt64() : null;
    }

    // ---- The world: two trusts, each with one of every staff role, a partner system and a referral -------------

    private sealed record Caller(ActorKind Kind, string? Trust, string Role, HttpClient Http, Action<HttpConnectionOptions> ConfigureHub)
    {
        public override string ToString() => Kind switch
        {
            ActorKind.Partner => $"partner of trust {Trust}",
            ActorKind.Staff => $"{Role} of trust {Trust}",
            _ => "anonymous",
        };
    }

    private sealed class World
    {
        public static readonly string[] Trusts = ["A", "B"];

        private static readonly Dictionary<string, string> TrustCodes = new() { ["A"] = "RWM", ["B"] = "RSM" };

        private readonly string _tag = Guid.NewGuid().ToString("N")[..6];

        public List<Caller> Callers { get; } = [];
        public Dictionary<string, long> OrganisationIds { get; } = [];
        private readonly Dictionary<string, string> _organisationNames = [];
        public Dictionary<string, long> ReferralId { get; } = [];
        public Dictionary<string, long> DraftId { get; } = [];
        public Dictionary<string, long> TaskId { get; } = [];
        /// <summary>The store's number for each trust's person: each caller reads them by its own organisation's id (PatientIdFor).</summary>
        public Dictionary<string, long> PersonId { get; } = [];
        private CareCoordination.Features.Fhir.PatientIds _patientIds = null!;
        public Dictionary<string, string> NhsNumber { get; } = [];
        private readonly Dictionary<string, System.Security.Claims.ClaimsPrincipal> _referrers = [];
        private string _bedLocationId = "";
        private long _bedId;
        private string _bedVersion = "";
        private string _measureReportId = "";
        private string _serviceId = "";
        private string _organisationId = "";
        private string _practitionerId = "";
        private string _practitionerRoleId = "";
        private string _auditEventId = "";

        private string _subscriptionId = "";

        public static string Other(string trust) => trust == "A" ? "B" : "A";

        public string FamilyName(string trust) => $"Matrix{trust}{_tag}";

        private string Address(string trust) => $"{(trust == "A" ? 11 : 22)} {_tag} Lane";

        /// <summary>Whether a body names the trust's person: their family name, NHS number or address.</summary>
        public bool Mentions(string body, string trust) =>
            body.Contains(FamilyName(trust), StringComparison.Ordinal)
            || body.Contains(NhsNumber[trust], StringComparison.Ordinal)
            || body.Contains(Address(trust), StringComparison.Ordinal);

        public static async Task<World> BuildAsync(AppFactory app)
        {
            var world = new World { _patientIds = app.Services.GetRequiredService<CareCoordination.Features.Fhir.PatientIds>() };
            await using (var connection = await app.OpenAsync())
            {
                foreach (var trust in Trusts)
                {
                    world.OrganisationIds[trust] = await connection.ExecuteScalarAsync<long>("SELECT id FROM organisation WHERE code = @code", new { code = TrustCodes[trust] });
                    world._organisationNames[trust] = await connection.ExecuteScalarAsync<string>("SELECT name FROM organisation WHERE code = @code", new { code = TrustCodes[trust] }) ?? "";
                    foreach (var role in StaffRoles)
                    {
                        await connection.ExecuteAsync(
                            """
                            INSERT INTO staff_user (username, display_name, password_hash, role, organisation_id, active, created_at)
                            VALUES (@username, @username, @hash, @role, @organisation, TRUE, @now)
                            """,
                            new { username = world.Username(role, trust), hash = Passwords.Hash(AppFactory.Password), role, organisation = world.OrganisationIds[trust], now = app.Clock.GetUtcNow() });
                    }
                }
            }

            foreach (var trust in Trusts)
            {
                world._referrers[trust] = await app.StaffAsync(world.Username(Roles.Referrer, trust));
                world.NhsNumber[trust] = await app.NewNhsNumberAsync();
                world.ReferralId[trust] = await world.SubmitAsync(app, trust, world.NhsNumber[trust]);
                var draft = await app.SendAsync<SaveDraft.Result>(new SaveDraft.Command(null, null, world.Form(app, trust, world.NhsNumber[trust])), world._referrers[trust]);
                world.DraftId[trust] = draft.DraftId;
            }
            await using (var connection = await app.OpenAsync())
            {
                foreach (var trust in Trusts)
                {
                    world.TaskId[trust] = await connection.ExecuteScalarAsync<long>("SELECT id FROM triage_task WHERE referral_id = @id", new { id = world.ReferralId[trust] });
                    world.PersonId[trust] = await connection.ExecuteScalarAsync<long>("SELECT person_id FROM referral WHERE id = @id", new { id = world.ReferralId[trust] });
                }
                world._bedId = await connection.ExecuteScalarAsync<long>("SELECT MIN(id) FROM bed");
            }

            foreach (var trust in Trusts)
            {
                foreach (var role in StaffRoles)
                {
                    world.Callers.Add(await StaffCallerAsync(app, world.Username(role, trust), role, trust));
                }
                world.Callers.Add(await PartnerCallerAsync(app, await app.NewPartnerClientAsync(TrustCodes[trust], CareCoordination.Demo.DemoCounty.PartnerScopes, "matrix"), trust));
            }
            var nobody = app.CreateBrowserlessClient();
            world.Callers.Add(new Caller(ActorKind.Anonymous, null, "", nobody, _ => { }));

            // Ids that exist for the directory and capacity reads, found as a partner would find them.
            var partnerA = world.Callers.Single(c => c is { Kind: ActorKind.Partner, Trust: "A" }).Http;
            world._bedLocationId = "bed-" + world._bedId.ToString(System.Globalization.CultureInfo.InvariantCulture);
            world._bedVersion = (await partnerA.GetFromJsonAsync<JsonElement>($"/fhir/Location/{world._bedLocationId}")).GetProperty("meta").GetProperty("versionId").GetString()!;
            world._serviceId = await FirstIdAsync(partnerA, "/fhir/HealthcareService");
            world._organisationId = await FirstIdAsync(partnerA, "/fhir/Organization");
            world._measureReportId = await FirstIdAsync(partnerA, "/fhir/MeasureReport");
            world._practitionerId = await FirstIdAsync(partnerA, "/fhir/Practitioner");
            world._practitionerRoleId = await FirstIdAsync(partnerA, "/fhir/PractitionerRole");
            // A read of its own referral is audited, so the partner has an audit trail of its own to read.
            (await partnerA.GetAsync($"/fhir/ServiceRequest/{world.ReferralId["A"]}")).EnsureSuccessStatusCode();
            world._auditEventId = await FirstIdAsync(partnerA, "/fhir/AuditEvent");
            using (var subscribed = await partnerA.PostAsync("/fhir/Subscription", FhirPayloads.Body(
                $$$"""{"resourceType":"Subscription","status":"requested","reason":"matrix","criteria":"{{{CareCoordination.Features.Fhir.Subscriptions.Backport.ReferralTaskChanges}}}","channel":{"type":"rest-hook","endpoint":"https://receiver.example.org/hook","payload":"application/fhir+json"}}""")))
            {
                subscribed.EnsureSuccessStatusCode();
                world._subscriptionId = (await subscribed.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString()!;
            }
            return world;
        }

        private static async Task<string> FirstIdAsync(HttpClient client, string search)
        {
            var bundle = await client.GetFromJsonAsync<JsonElement>(search);
            Assert.True(bundle.TryGetProperty("entry", out _), $"{search} found nothing to read: {bundle}");
            return bundle.GetProperty("entry")[0].GetProperty("resource").GetProperty("id").GetString()!;
        }

        public string Username(string role, string trust) => $"matrix-{_tag}-{role}-{trust.ToLowerInvariant()}";

        public async Task<long> SubmitAsync(AppFactory app, string trust, string? nhsNumber = null) =>
            (await SendAsync(app, trust, nhsNumber ?? await app.NewNhsNumberAsync())).ReferralId;

        /// <summary>Sends the trust's referral as its referrer would: when shown an open referral, says this is a new need.</summary>
        public async Task<(long ReferralId, OpenReferrals? ShownFirst)> SendAsync(AppFactory app, string trust, string nhsNumber, Action<ReferralForm>? change = null)
        {
            var form = Form(app, trust, nhsNumber);
            change?.Invoke(form);
            var key = Guid.NewGuid().ToString("N");
            var result = await app.SendAsync<SubmitReferral.Result>(new SubmitReferral.Command(form, key), _referrers[trust]);
            if (result.ReferralId is { } id)
            {
                return (id, null);
            }
            var again = await app.SendAsync<SubmitReferral.Result>(new SubmitReferral.Command(form, key, DuplicateAnswer: "new-need"), _referrers[trust]);
            return (again.ReferralId!.Value, result.PossibleDuplicates);
        }

        public string OrganisationName(string trust) => _organisationNames[trust];

        private ReferralForm Form(AppFactory app, string trust, string nhsNumber)
        {
            var form = ReferralForms.Discharge(LondonTime.Today(app.Clock), nhsNumber);
            form.FamilyName = FamilyName(trust);
            form.AddressLine = Address(trust);
            return form;
        }

        /// <summary>
        /// The Patient id the caller's organisation is given for the person (nobody signed in, or staff of no organisation, read
        /// the ids of none).
        /// </summary>
        public string PatientIdFor(Caller caller, long personId) =>
            _patientIds.For(caller.Trust is { } trust ? OrganisationIds[trust] : null).Id(personId);

        /// <summary>
        /// The concrete reads a FHIR route stands for, as this caller would ask for them: per trust where it is about a
        /// referral, the trust's person by the caller's own organisation's id for them.
        /// </summary>
        public IEnumerable<(string? Trust, string Path)> FhirPaths(string template, Caller caller)
        {
            // A referral's first version (what was sent); a bed's current one (seeded beds keep no earlier versions).
            string Fill(string t, object id) => t.Replace("{id}", Convert.ToString(id, System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal)
                .Replace("{vid}", t.StartsWith("/fhir/Location", StringComparison.Ordinal) ? _bedVersion : "1", StringComparison.Ordinal);
            var perTrust = new Dictionary<string, Func<string, string>>(StringComparer.Ordinal)
            {
                ["/fhir/ServiceRequest/"] = t => Fill(template, ReferralId[t]),
                ["/fhir/Task/"] = t => Fill(template, TaskId[t]),
                ["/fhir/Patient/"] = t => Fill(template, PatientIdFor(caller, PersonId[t])),
                ["/fhir/ServiceRequest"] = t => $"/fhir/ServiceRequest?patient.identifier=https://fhir.nhs.uk/Id/nhs-number|{NhsNumber[t]}",
                ["/fhir/Task"] = t => $"/fhir/Task?focus=ServiceRequest/{ReferralId[t]}",
                ["/fhir/Patient"] = t => $"/fhir/Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|{NhsNumber[t]}",
            };
            var key = perTrust.Keys.FirstOrDefault(k => k.EndsWith('/') ? template.StartsWith(k, StringComparison.Ordinal) : template == k);
            if (key is not null)
            {
                foreach (var trust in Trusts)
                {
                    yield return (trust, perTrust[key](trust));
                }
                yield break;
            }
            var ids = new Dictionary<string, string>(StringComparer.Ordinal)
            {
                ["Location"] = _bedLocationId,
                ["MeasureReport"] = _measureReportId,
                ["HealthcareService"] = _serviceId,
                ["Organization"] = _organisationId,
                ["Practitioner"] = _practitionerId,
                ["PractitionerRole"] = _practitionerRoleId,
                ["AuditEvent"] = _auditEventId,
                ["Subscription"] = _subscriptionId,
            };
            var type = template.Split('/')[2];
            yield return (null, ids.TryGetValue(type, out var id) ? Fill(template, id) : template);
        }

        private static async Task<Caller> StaffCallerAsync(AppFactory app, string username, string role, string trust)
        {
            var cookie = await app.SessionCookieAsync(username);
            // No redirect handler: the matrix asserts where a refusal sends people, not the page it lands on.
            var client = app.CreateDefaultClient();
            client.DefaultRequestHeaders.Add("Cookie", cookie);
            return new Caller(ActorKind.Staff, trust, role, client, options => options.Headers["Cookie"] = cookie);
        }

        private static async Task<Caller> PartnerCallerAsync(AppFactory app, string clientId, string trust)
        {
            var client = await app.PartnerAsync(null, clientId, FhirPartner.OtherSecret);
            var token = client.DefaultRequestHeaders.Authorization!.Parameter!;
            return new Caller(ActorKind.Partner, trust, "", client, options => options.AccessTokenProvider = () => Task.FromResult<string?>(token));
        }
    }
}

public sealed class AccessMatrixOnSqliteTests(AppFactory app) : AccessMatrixTests(app), IClassFixture<AppFactory>;

public sealed class AccessMatrixOnPostgresTests(PostgresAppFactory app) : AccessMatrixTests(app), IClassFixture<PostgresAppFactory>;
