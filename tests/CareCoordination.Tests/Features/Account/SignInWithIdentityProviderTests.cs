using System.Net;
using System.Text.Json;
using CareCoordination.Auth;
using CareCoordination.Features.Admin;
using CareCoordination.Pipeline;
using CareCoordination.Tests.Support;
using Dapper;
using Microsoft.AspNetCore.Authentication.OpenIdConnect;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace CareCoordination.Tests.Features.Account;

/// <summary>
/// Staff sign-in through an OpenID Connect provider, driven end to end: the real host's handler, a stub provider
/// on loopback, the challenge, the provider's login, its form post back and the callback. An identity signs in
/// only as the account an administrator linked it to (issuer and subject); a matching username or email is never enough.
/// </summary>
public abstract class SignInWithIdentityProviderTests(IdentityProviderAppFactory app)
{
    private const string Action = "SignInWithIdentityProvider";

    private sealed record Account(long Id, string Username, string DisplayName, string Email);

    private sealed record LinkColumns
    {
        public string? Issuer { get; init; }
        public string? Subject { get; init; }
        public DateTimeOffset? LinkedAt { get; init; }
        public long? LinkedBy { get; init; }
    }

    private sealed record AuditRow
    {
        public string Outcome { get; init; } = "";
        public string? Detail { get; init; }
        public string? EntityType { get; init; }
        public long? EntityId { get; init; }
    }

    private async Task<Account> NewAccountAsync()
    {
        var tag = Guid.NewGuid().ToString("N")[..8];
        var account = new Account(0, "sso-" + tag, "Kerensa Pascoe " + tag, $"Kerensa.Pascoe.{tag}@westmoor.example");
        await using var connection = await app.OpenAsync();
        var id = await connection.ExecuteScalarAsync<long>(
            """
            INSERT INTO staff_user (username, display_name, email, role, organisation_id, active, created_at)
            SELECT @Username, @DisplayName, @Email, 'coordinator', organisation_id, TRUE, created_at FROM staff_user WHERE username = 'coordinator'
            RETURNING id
            """, new { account.Username, account.DisplayName, account.Email });
        return account with { Id = id };
    }

    /// <summary>The person behind the account as the provider knows them: the old matching code would have let this in by username or email alone.</summary>
    private static StubIdentity PersonOf(Account account, bool emailVerified = true) =>
        new("subject-" + Guid.NewGuid().ToString("N"), account.Email.ToLowerInvariant(), emailVerified, account.Username, account.DisplayName);

    private async Task<long> OpenRequestAsync(StubIdentity who)
    {
        await using var connection = await app.OpenAsync();
        return await connection.QuerySingleAsync<long>(
            "SELECT id FROM sign_in_link_request WHERE subject = @Subject AND status IN ('pending', 'refused')", new { who.Subject });
    }

    private async Task<long> RequestCountAsync(StubIdentity who)
    {
        await using var connection = await app.OpenAsync();
        return await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM sign_in_link_request WHERE subject = @Subject", new { who.Subject });
    }

    private async Task<LinkColumns> LinkOfAsync(Account account)
    {
        await using var connection = await app.OpenAsync();
        return await connection.QuerySingleAsync<LinkColumns>(
            "SELECT oidc_issuer AS Issuer, oidc_subject AS Subject, oidc_linked_at AS LinkedAt, oidc_linked_by AS LinkedBy FROM staff_user WHERE id = @Id",
            new { account.Id });
    }

    private async Task<IReadOnlyList<AuditRow>> AuditOfAsync(StubIdentity who)
    {
        await using var connection = await app.OpenAsync();
        return (await connection.QueryAsync<AuditRow>(
            "SELECT outcome AS Outcome, detail AS Detail, entity_type AS EntityType, entity_id AS EntityId FROM audit_event WHERE action = @Action AND detail LIKE @subject ORDER BY id",
            new { Action, subject = $"%subject {who.Subject}%" })).ToList();
    }

    private async Task SetActiveAsync(Account account, bool active)
    {
        await using var connection = await app.OpenAsync();
        await connection.ExecuteAsync("UPDATE staff_user SET active = @active WHERE id = @Id", new { active, account.Id });
    }

    /// <summary>Signs in at the provider with a fresh browser: where the host sends them, and who /api/me then says they are (null: nobody).</summary>
    private async Task<(string? Landing, string? SignedInAs)> SignInAsync(StubIdentity who)
    {
        using var browser = app.CreateProviderBrowser();
        var callback = await browser.SignInAsync(who);
        Assert.Equal(HttpStatusCode.Redirect, callback.StatusCode);
        var me = await browser.App.GetAsync("/api/me");
        var name = me.StatusCode == HttpStatusCode.OK
            ? JsonDocument.Parse(await me.Content.ReadAsStringAsync()).RootElement.GetProperty("name").GetString()
            : null;
        Assert.True(name is not null || me.StatusCode == HttpStatusCode.Unauthorized, $"/api/me answered {me.StatusCode}");
        return (callback.Headers.Location?.OriginalString, name);
    }

    private static (string?, string?) SignedIn(Account account) => ("/", account.DisplayName);

    private static (string?, string?) TurnedAway(string why) => ($"/signin?external={why}", null);

    /// <summary>The first sign-in asks; an administrator approves; from then on it signs in.</summary>
    private async Task<StubIdentity> LinkAsync(Account account)
    {
        var who = PersonOf(account);
        Assert.Equal(TurnedAway("awaiting-approval"), await SignInAsync(who));
        await app.SendAsync(new ApproveSignInLink.Command(await OpenRequestAsync(who)), await app.StaffAsync("admin"));
        return who;
    }

    [Fact]
    public async Task FirstSignIn_WithAVerifiedEmail_WaitsForAnAdministrator_ThenSignsInOnceApproved()
    {
        var account = await NewAccountAsync();
        var who = PersonOf(account);

        Assert.Equal(TurnedAway("awaiting-approval"), await SignInAsync(who));
        // Asking again does not make a second request.
        Assert.Equal(TurnedAway("awaiting-approval"), await SignInAsync(who));

        using (var browser = app.CreateProviderBrowser())
        {
            var page = await browser.App.GetStringAsync(TurnedAway("awaiting-approval").Item1);
            Assert.Contains("An administrator must approve the link first", page, StringComparison.Ordinal);
        }
        var admin = await app.StaffAsync("admin");
        var waiting = Assert.Single((await app.SendAsync<StaffSignInLinks.Result>(new StaffSignInLinks.Query(), admin)).Requests, r => r.Subject == who.Subject);
        Assert.Equal(("pending", account.Id, app.IdentityProvider.Issuer, who.Email, 2), (waiting.Status, waiting.StaffUserId, waiting.Issuer, waiting.Email, waiting.Attempts));
        Assert.Equal(new LinkColumns(), await LinkOfAsync(account));

        await app.SendAsync(new ApproveSignInLink.Command(waiting.Id), admin);

        var link = await LinkOfAsync(account);
        Assert.Equal((app.IdentityProvider.Issuer, who.Subject, long.Parse(admin.FindFirst(System.Security.Claims.ClaimTypes.NameIdentifier)!.Value, System.Globalization.CultureInfo.InvariantCulture)),
            (link.Issuer, link.Subject, link.LinkedBy ?? 0));
        Assert.NotNull(link.LinkedAt);
        var listed = Assert.Single((await app.SendAsync<StaffSignInLinks.Result>(new StaffSignInLinks.Query(), admin)).Links, l => l.StaffUserId == account.Id);
        Assert.Equal((who.Subject, "Sam Whitfield"), (listed.Subject, listed.LinkedBy));
        Assert.Equal(SignedIn(account), await SignInAsync(who));
    }

    [Fact]
    public async Task AnotherSubject_WithTheSameUsernameAndVerifiedEmail_IsRefused()
    {
        var account = await NewAccountAsync();
        var person = await LinkAsync(account);
        var impostor = person with { Subject = "subject-" + Guid.NewGuid().ToString("N") };

        Assert.Equal(TurnedAway("refused"), await SignInAsync(impostor));

        Assert.Equal(0, await RequestCountAsync(impostor));
        Assert.Equal(person.Subject, (await LinkOfAsync(account)).Subject);
        Assert.Equal(SignedIn(account), await SignInAsync(person));
    }

    [Fact]
    public async Task UnverifiedEmail_NeverAsksToLink_AndIsRefused()
    {
        var account = await NewAccountAsync();
        var who = PersonOf(account, emailVerified: false);

        Assert.Equal(TurnedAway("refused"), await SignInAsync(who));

        Assert.Equal(0, await RequestCountAsync(who));
        Assert.Equal(new LinkColumns(), await LinkOfAsync(account));
        Assert.Contains("not verified", Assert.Single(await AuditOfAsync(who)).Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DeactivatedAccount_IsRefused_AndTheRefusalIsAudited()
    {
        var account = await NewAccountAsync();
        var who = await LinkAsync(account);
        await SetActiveAsync(account, false);

        Assert.Equal(TurnedAway("refused"), await SignInAsync(who));

        var refusal = (await AuditOfAsync(who))[^1];
        Assert.Equal(("denied", "staff_user", account.Id), (refusal.Outcome, refusal.EntityType, refusal.EntityId ?? 0));
        Assert.Contains("deactivated", refusal.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnlinkedAccount_IsRefused_AndMustBeApprovedAgain()
    {
        var account = await NewAccountAsync();
        var who = await LinkAsync(account);
        Assert.Equal(SignedIn(account), await SignInAsync(who));

        await app.SendAsync(new UnlinkSignIn.Command(account.Id, "Linked to the wrong person."), await app.StaffAsync("admin"));

        Assert.Equal(new LinkColumns(), await LinkOfAsync(account));
        Assert.Equal(TurnedAway("awaiting-approval"), await SignInAsync(who));
        await using var connection = await app.OpenAsync();
        Assert.Equal("staff.sign-in-unlinked", await connection.ExecuteScalarAsync<string>(
            "SELECT kind FROM change WHERE entity_type = 'staff_user' AND entity_id = @Id ORDER BY seq DESC LIMIT 1", new { account.Id }));
    }

    [Fact]
    public async Task RefusedRequest_KeepsTheIdentityOut_WithoutAskingAgain_UntilApprovedAfterAll()
    {
        var account = await NewAccountAsync();
        var who = PersonOf(account);
        Assert.Equal(TurnedAway("awaiting-approval"), await SignInAsync(who));
        var admin = await app.StaffAsync("admin");
        var request = await OpenRequestAsync(who);

        await app.SendAsync(new RefuseSignInLink.Command(request, "Not expected: Kerensa uses a password."), admin);

        Assert.Equal(TurnedAway("refused"), await SignInAsync(who));
        Assert.Equal(1, await RequestCountAsync(who));
        var refused = Assert.Single((await app.SendAsync<StaffSignInLinks.Result>(new StaffSignInLinks.Query(), admin)).Requests, r => r.Id == request);
        Assert.Equal(("refused", "Sam Whitfield", "Not expected: Kerensa uses a password."), (refused.Status, refused.DecidedBy, refused.DecisionReason));

        await app.SendAsync(new ApproveSignInLink.Command(request), admin);
        Assert.Equal(SignedIn(account), await SignInAsync(who));
    }

    [Fact]
    public async Task TwoIdentities_AskingForOneAccount_OnlyOneIsLinked()
    {
        var account = await NewAccountAsync();
        var first = PersonOf(account);
        var second = PersonOf(account);
        Assert.Equal(TurnedAway("awaiting-approval"), await SignInAsync(first));
        Assert.Equal(TurnedAway("awaiting-approval"), await SignInAsync(second));
        var admin = await app.StaffAsync("admin");

        await app.SendAsync(new ApproveSignInLink.Command(await OpenRequestAsync(first)), admin);
        var secondRequest = await OpenRequestAsync(second);
        var refusal = await Assert.ThrowsAsync<RuleBroken>(() => app.SendAsync(new ApproveSignInLink.Command(secondRequest), admin));

        Assert.Contains("already linked", refusal.Message, StringComparison.Ordinal);
        Assert.Equal(first.Subject, (await LinkOfAsync(account)).Subject);
        Assert.Equal(TurnedAway("awaiting-approval"), await SignInAsync(second));
        // The store holds one account per identity, whatever a command might try.
        var other = await NewAccountAsync();
        await using var connection = await app.OpenAsync();
        var duplicate = await Record.ExceptionAsync(() => connection.ExecuteAsync(
            "UPDATE staff_user SET oidc_issuer = @Issuer, oidc_subject = @Subject WHERE id = @Id", new { app.IdentityProvider.Issuer, first.Subject, other.Id }));
        Assert.True(app.Services.GetRequiredService<CareCoordination.Store.Database>().IsUniqueViolation(duplicate!), duplicate?.ToString());
    }

    [Fact]
    public async Task EverySignInAttempt_IsAudited_WithItsOutcome()
    {
        var account = await NewAccountAsync();
        var who = PersonOf(account);

        await SignInAsync(who);
        await app.SendAsync(new ApproveSignInLink.Command(await OpenRequestAsync(who)), await app.StaffAsync("admin"));
        await SignInAsync(who);
        await SetActiveAsync(account, false);
        await SignInAsync(who);

        var rows = await AuditOfAsync(who);
        Assert.Equal(["denied", "success", "denied"], rows.Select(r => r.Outcome));
        Assert.All(rows, row => Assert.Equal(("staff_user", account.Id), (row.EntityType, row.EntityId ?? 0)));
        Assert.Contains("awaits an administrator", rows[0].Detail, StringComparison.Ordinal);
        Assert.Contains($"signed in as {account.Username}", rows[1].Detail, StringComparison.Ordinal);
        Assert.Contains("deactivated", rows[2].Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnIdTokenForAnotherSignIn_ChangesNothing_AndIsAuditedAsFailed()
    {
        var account = await NewAccountAsync();
        var who = PersonOf(account);
        await using var connection = await app.OpenAsync();
        var before = await connection.ExecuteScalarAsync<long>("SELECT COALESCE(MAX(id), 0) FROM audit_event");

        using var browser = app.CreateProviderBrowser();
        var callback = await browser.SignInAsync(who, nonce: "a-nonce-from-another-sign-in");

        Assert.Equal(TurnedAway("failed").Item1, callback.Headers.Location?.OriginalString);
        Assert.Equal(HttpStatusCode.Unauthorized, (await browser.App.GetAsync("/api/me")).StatusCode);
        Assert.Equal(0, await RequestCountAsync(who));
        var failure = await connection.QuerySingleAsync<AuditRow>(
            "SELECT outcome AS Outcome, detail AS Detail FROM audit_event WHERE id > @before AND action = @Action", new { before, Action });
        Assert.Equal("failed", failure.Outcome);
        Assert.Contains("nonce", failure.Detail, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task CancellingAtTheProvider_IsExplainedOnTheSignInPage_AndAudited()
    {
        await using var connection = await app.OpenAsync();
        var before = await connection.ExecuteScalarAsync<long>("SELECT COALESCE(MAX(id), 0) FROM audit_event");
        using var browser = app.CreateProviderBrowser();

        var callback = await browser.CancelAtTheProviderAsync();

        Assert.Equal(TurnedAway("failed").Item1, callback.Headers.Location?.OriginalString);
        Assert.Contains("did not complete", await browser.App.GetStringAsync(callback.Headers.Location!.OriginalString), StringComparison.Ordinal);
        var failure = await connection.QuerySingleAsync<AuditRow>(
            "SELECT outcome AS Outcome, detail AS Detail FROM audit_event WHERE id > @before AND action = @Action", new { before, Action });
        Assert.Equal("failed", failure.Outcome);
        Assert.Contains("access_denied", failure.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OnlyAnAdministrator_SeesOrDecidesLinkRequests()
    {
        var account = await NewAccountAsync();
        var who = PersonOf(account);
        await SignInAsync(who);
        var request = await OpenRequestAsync(who);

        foreach (var user in new[] { "referrer", "coordinator", "bedbureau", "manager" })
        {
            var staff = await app.StaffAsync(user);
            await Assert.ThrowsAsync<AccessDenied>(() => app.SendAsync(new StaffSignInLinks.Query(), staff));
            await Assert.ThrowsAsync<AccessDenied>(() => app.SendAsync(new ApproveSignInLink.Command(request), staff));
            await Assert.ThrowsAsync<AccessDenied>(() => app.SendAsync(new RefuseSignInLink.Command(request, "No."), staff));
            await Assert.ThrowsAsync<AccessDenied>(() => app.SendAsync(new UnlinkSignIn.Command(account.Id, "No."), staff));
        }
        Assert.Equal(new LinkColumns(), await LinkOfAsync(account));
        Assert.Equal(TurnedAway("awaiting-approval"), await SignInAsync(who));
    }
}

public sealed class SignInWithIdentityProviderOnSqliteTests(IdentityProviderAppFactory app)
    : SignInWithIdentityProviderTests(app), IClassFixture<IdentityProviderAppFactory>;

public sealed class SignInWithIdentityProviderOnPostgresTests(PostgresIdentityProviderAppFactory app)
    : SignInWithIdentityProviderTests(app), IClassFixture<PostgresIdentityProviderAppFactory>;

/// <summary>Its own host: the lock-out it causes must not leak into the other sign-in tests.</summary>
public sealed class SignInWithIdentityProviderThrottleTests(IdentityProviderAppFactory app) : IClassFixture<IdentityProviderAppFactory>
{
    [Fact]
    public async Task RepeatedRefusals_LockTheIdentityOut_EvenOnceItIsLinkedAndActiveAgain()
    {
        await using var connection = await app.OpenAsync();
        var accountId = await connection.ExecuteScalarAsync<long>(
            """
            INSERT INTO staff_user (username, display_name, email, role, organisation_id, active, created_at)
            SELECT 'sso-throttled', 'Jory Tregenza', 'jory.tregenza@westmoor.example', 'coordinator', organisation_id, TRUE, created_at FROM staff_user WHERE username = 'coordinator'
            RETURNING id
            """);
        var who = new StubIdentity("subject-jory", "jory.tregenza@westmoor.example", true, "sso-throttled", "Jory Tregenza");
        // One refusal: the first sign-in asks to be linked, and is approved.
        Assert.Equal("/signin?external=awaiting-approval", await LandingAsync(who));
        var request = await connection.ExecuteScalarAsync<long>("SELECT id FROM sign_in_link_request WHERE subject = 'subject-jory'");
        await app.SendAsync(new ApproveSignInLink.Command(request), await app.StaffAsync("admin"));
        // Four more while the account is deactivated: five in all.
        await connection.ExecuteAsync("UPDATE staff_user SET active = FALSE WHERE id = @accountId", new { accountId });
        for (var i = 0; i < 4; i++)
        {
            Assert.Equal("/signin?external=refused", await LandingAsync(who));
        }
        await connection.ExecuteAsync("UPDATE staff_user SET active = TRUE WHERE id = @accountId", new { accountId });

        Assert.Equal("/signin?external=locked-out", await LandingAsync(who));

        Assert.Equal("denied", await connection.ExecuteScalarAsync<string>(
            "SELECT outcome FROM audit_event WHERE action = 'SignInWithIdentityProvider' AND detail LIKE '%subject subject-jory%too many%' ORDER BY id DESC LIMIT 1"));
        using var browser = app.CreateProviderBrowser();
        var page = await browser.App.GetStringAsync("/signin?external=locked-out");
        Assert.Contains("Too many sign-in attempts", page, StringComparison.Ordinal);
    }

    private async Task<string?> LandingAsync(StubIdentity who)
    {
        using var browser = app.CreateProviderBrowser();
        var callback = await browser.SignInAsync(who);
        Assert.Equal(HttpStatusCode.Redirect, callback.StatusCode);
        if (callback.Headers.Location?.OriginalString == "/")
        {
            Assert.Equal(HttpStatusCode.OK, (await browser.App.GetAsync("/api/me")).StatusCode);
        }
        return callback.Headers.Location?.OriginalString;
    }
}

/// <summary>Keys and endpoints fetched over plain http could be swapped on the way: allowed only from a provider on this machine.</summary>
public sealed class OpenIdConnectSettingsTests(AppFactory app) : IClassFixture<AppFactory>
{
    private OpenIdConnectOptions OptionsFor(string authority)
    {
        using var host = app.WithWebHostBuilder(builder => builder.UseSetting("Auth:OpenIdConnect:Authority", authority)
            .UseSetting("Auth:OpenIdConnect:ClientId", "carecoordination"));
        return host.Services.GetRequiredService<IOptionsMonitor<OpenIdConnectOptions>>().Get(AuthenticationSetup.OpenIdConnect);
    }

    [Theory]
    [InlineData("http://127.0.0.1:5999")]
    [InlineData("http://localhost:5999/realms/test")]
    public void Metadata_OverHttp_FromLoopback_IsAllowed(string authority) => Assert.False(OptionsFor(authority).RequireHttpsMetadata);

    [Fact]
    public void Metadata_OverHttps_IsRequiredEverywhereElse() => Assert.True(OptionsFor("https://login.westmoor.example").RequireHttpsMetadata);

    [Fact]
    public void Metadata_OverHttp_FromAnotherMachine_IsRefused()
    {
        var refusal = Assert.Throws<InvalidOperationException>(() => OptionsFor("http://login.westmoor.example"));
        Assert.Contains("HTTPS", refusal.Message, StringComparison.Ordinal);
    }
}
