using CareCoordination.Auth;
using CareCoordination.Changes;
using CareCoordination.Store;
using Dapper;
using MailKit.Net.Smtp;
using MailKit.Security;
using Mediator;
using Microsoft.Extensions.Options;
using MimeKit;
using Outcome = CareCoordination.Features.Carers.RecordCarerMessageOutcome.Outcome;

namespace CareCoordination.Features.Carers;

/// <summary>The SMTP server carers' e-mails go through. No Host: e-mail is off, and each message is recorded as not sent.</summary>
public sealed class SmtpSettings
{
    public string? Host { get; set; }
    public int Port { get; set; } = 587;
    /// <summary>StartTls by default: a carer's e-mail names a person, so it never crosses the network in clear unless told to.</summary>
    public SecureSocketOptions SecureSocketOptions { get; set; } = SecureSocketOptions.StartTls;
    public string From { get; set; } = "";
    public string FromName { get; set; } = "CareCoordination";
    public string? UserName { get; set; }
    public string? Password { get; set; }
    public int TimeoutSeconds { get; set; } = 30;

    public bool IsConfigured => !string.IsNullOrWhiteSpace(Host);

    public string? Invalid() => !IsConfigured ? null
        : !CarerEmail.IsValid(From) ? "Smtp:From must be the address carers' e-mails come from, like care.updates@council.example.org."
        : Port is < 1 or > 65535 ? "Smtp:Port must be between 1 and 65535."
        : TimeoutSeconds < 1 ? "Smtp:TimeoutSeconds must be positive."
        : null;
}

/// <summary>What carers are told to contact, and how the sender paces its attempts.</summary>
public sealed class CarerMessageSettings
{
    /// <summary>Who a carer contacts with questions, e.g. "the Community Coordination Centre on 01632 960 000". Unset: the referring team.</summary>
    public string? Contact { get; set; }
    public int RetryFirstSeconds { get; set; } = 60;
    public int RetryMaxSeconds { get; set; } = 3600;
    public int MaxAttempts { get; set; } = 10;
    public int PollSeconds { get; set; } = 15;
    /// <summary>How long a node holds a message it is sending before another node may take it over.</summary>
    public int ClaimSeconds { get; set; } = 300;

    public string? Invalid() =>
        RetryFirstSeconds < 1 || RetryMaxSeconds < RetryFirstSeconds ? "CarerMessages: RetryFirstSeconds must be positive and RetryMaxSeconds at least that."
        : MaxAttempts < 1 ? "CarerMessages:MaxAttempts must be at least 1."
        : PollSeconds < 1 ? "CarerMessages:PollSeconds must be positive."
        : ClaimSeconds < 60 ? "CarerMessages:ClaimSeconds must be at least 60, longer than one attempt to send."
        : null;
}

/// <summary>
/// Delivers queued carers' messages, off every request path, on every node: a node claims a message in one guarded
/// statement before it sends, so two nodes never send the same one at once. Each outcome is recorded through
/// RecordCarerMessageOutcome. Due times and claims are on the app's clock, so a test moves time to make a retry due.
/// </summary>
/// <remarks>
/// At least once, not exactly once: a node that dies after the server took the message but before the outcome was
/// recorded leaves a claim that runs out, and another node sends it again. The Message-Id is the same each time, so a
/// mail system that notices repeats can drop the second.
/// </remarks>
public sealed class CarerMessageSender(IServiceScopeFactory scopes, Database database, ChangeFeed feed, TimeProvider clock,
    IOptionsMonitor<SmtpSettings> smtp, IOptionsMonitor<CarerMessageSettings> settings, ILogger<CarerMessageSender> logger) : BackgroundService
{
    private const int Batch = 20;

    private readonly Wake _wake = new();

    /// <summary>Look for due messages now rather than at the next poll.</summary>
    public void Poke() => _wake.Poke();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // A message queued on any node (heard through the change feed) is sent at once.
        using var queued = feed.Subscribe(change =>
        {
            if (change.Kind == "carer-message.queued")
            {
                Poke();
            }
            return ValueTask.CompletedTask;
        });
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                try
                {
                    while (await SendDueAsync(stoppingToken) == Batch)
                    {
                    }
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    logger.LogError(ex, "Sending carers' messages failed; trying again shortly");
                }
                await _wake.WaitAsync(TimeSpan.FromSeconds(settings.CurrentValue.PollSeconds), stoppingToken);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    /// <summary>Claims and sends the messages due now, one at a time; answers how many it looked at.</summary>
    private async Task<int> SendDueAsync(CancellationToken cancellationToken)
    {
        var now = clock.GetUtcNow();
        List<long> due;
        await using (var connection = await database.OpenAsync(cancellationToken))
        {
            due = (await connection.QueryAsync<long>(
                """
                SELECT id FROM carer_message
                WHERE status = 'queued' AND next_attempt_at <= @now AND (claimed_until IS NULL OR claimed_until < @now)
                ORDER BY next_attempt_at, id LIMIT @Batch
                """, new { now, Batch })).ToList();
        }
        foreach (var id in due)
        {
            var claim = Guid.NewGuid().ToString("N");
            var claimed = await database.WriteAsync((connection, transaction) => connection.ExecuteAsync(
                """
                UPDATE carer_message SET claimed_by = @claim, claimed_until = @until
                WHERE id = @id AND status = 'queued' AND next_attempt_at <= @now AND (claimed_until IS NULL OR claimed_until < @now)
                """, new { claim, until = now.AddSeconds(settings.CurrentValue.ClaimSeconds), id, now }, transaction), cancellationToken);
            if (claimed == 1)
            {
                await DeliverAsync(id, claim, cancellationToken);
            }
        }
        return due.Count;
    }

    private async Task DeliverAsync(long id, string claim, CancellationToken cancellationToken)
    {
        LetterFacts? facts;
        await using (var connection = await database.OpenAsync(cancellationToken))
        {
            facts = await connection.QuerySingleOrDefaultAsync<LetterFacts>(
                """
                SELECT m.referral_id AS ReferralId, m.kind AS Kind, m.place AS Place, m.on_date AS OnDate, rp.given_name AS PersonGivenName,
                       c.name AS CarerName, c.email AS CarerEmail, c.agreed AS Agreed, o.name AS ReferringOrganisation
                FROM carer_message m
                JOIN referral r ON r.id = m.referral_id
                JOIN referral_person rp ON rp.referral_id = r.id
                JOIN organisation o ON o.id = r.organisation_id
                LEFT JOIN referral_carer c ON c.referral_id = r.id
                WHERE m.id = @id
                """, new { id });
        }
        var mail = smtp.CurrentValue;
        RecordCarerMessageOutcome.Command outcome;
        string? logged = null;
        if (facts is not { Agreed: true, CarerEmail: not null })
        {
            outcome = new(id, claim, Outcome.NotSent, "the person's agreement to tell the carer is not recorded.");
        }
        else if (!mail.IsConfigured)
        {
            outcome = new(id, claim, Outcome.NotSent, "e-mail is not configured (Smtp:Host).");
        }
        else
        {
            var (subject, body) = CarerLetter.Compose(facts, settings.CurrentValue.Contact);
            var error = await SendAsync(mail, mail.Host!, id, new MailboxAddress(facts.CarerName, facts.CarerEmail), subject, body, cancellationToken);
            outcome = error is null
                ? new(id, claim, Outcome.Sent, SentTo: facts.CarerEmail, Subject: subject, Body: body)
                : new(id, claim, Outcome.Failed, error.Value.Reason, error.Value.Permanent);
            logged = error?.Logged;
        }
        await using var scope = scopes.CreateAsyncScope();
        scope.ServiceProvider.GetRequiredService<ActorAccessor>().ActAsSystem();
        var status = await scope.ServiceProvider.GetRequiredService<IMediator>().Send(outcome, cancellationToken);
        if (outcome.Result == Outcome.Failed)
        {
            logger.LogWarning("Carer message {Id}: {Error} Now {Status}.", id, logged ?? outcome.Error, status ?? "taken over by another node");
        }
    }

    /// <summary>
    /// One attempt: null when the server took the message, else why not (kept with the message, for the staff who follow it),
    /// whether trying again could help, and what to log in its place, if anything. A server's refusal is logged by its codes
    /// alone: its words often name the recipient ("5.1.1 &lt;carer@...&gt;: Recipient address rejected"), and a log is no
    /// place for a carer's address.
    /// </summary>
    private static async Task<(string Reason, bool Permanent, string? Logged)?> SendAsync(SmtpSettings mail, string host, long id, MailboxAddress to, string subject,
        string body, CancellationToken cancellationToken)
    {
        var message = new MimeMessage
        {
            Subject = subject,
            Body = new TextPart(MimeKit.Text.TextFormat.Plain) { Text = body },
            // The same for every attempt at this message: a repeat after a lost answer can be recognised downstream.
            MessageId = $"carer-message-{id}@{mail.From[(mail.From.IndexOf('@', StringComparison.Ordinal) + 1)..]}",
        };
        message.From.Add(new MailboxAddress(mail.FromName, mail.From));
        message.To.Add(to);
        using var client = new SmtpClient { Timeout = mail.TimeoutSeconds * 1000 };
        try
        {
            await client.ConnectAsync(host, mail.Port, mail.SecureSocketOptions, cancellationToken);
            if (!string.IsNullOrEmpty(mail.UserName))
            {
                await client.AuthenticateAsync(mail.UserName, mail.Password ?? "", cancellationToken);
            }
            await client.SendAsync(message, cancellationToken);
            await client.DisconnectAsync(true, cancellationToken);
            return null;
        }
        catch (SmtpCommandException refused)
        {
            // 5xx: the server will never take it (no such mailbox, relaying denied); 4xx: it may later.
            return ($"The e-mail server refused it ({(int)refused.StatusCode} {refused.Message.Trim()}).", (int)refused.StatusCode >= 500,
                $"The e-mail server refused it ({(int)refused.StatusCode}, {refused.ErrorCode}).");
        }
        catch (AuthenticationException failed)
        {
            return ($"The e-mail server did not accept the sign-in (Smtp:UserName, Smtp:Password): {failed.Message}", false, null);
        }
        catch (Exception failed) when (failed is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return ($"The e-mail server could not be reached ({failed.Message.Trim()}).", false, null);
        }
    }
}

public static class CarerMessagesSetup
{
    /// <summary>Carers' e-mails: the SMTP server, the content and pacing settings, and the sender on this node.</summary>
    public static IServiceCollection AddCarerMessages(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<SmtpSettings>().Bind(configuration.GetSection("Smtp"))
            .Validate(s => s.Invalid() is null, "Smtp: see the settings in appsettings.sample.json (From must be an e-mail address when Host is set).")
            .ValidateOnStart();
        services.AddOptions<CarerMessageSettings>().Bind(configuration.GetSection("CarerMessages"))
            .Validate(s => s.Invalid() is null, "CarerMessages: see the settings' limits in appsettings.sample.json.")
            .ValidateOnStart();
        services.AddSingleton<CarerMessageSender>();
        services.AddHostedService(sp => sp.GetRequiredService<CarerMessageSender>());
        return services;
    }
}
