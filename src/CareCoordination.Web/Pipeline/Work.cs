using System.Data.Common;
using System.Text.Json;
using CareCoordination.Auth;

namespace CareCoordination.Pipeline;

/// <summary>
/// The state of the message being handled: who asked, when, and for a command its transaction and the
/// changes it records. Kept in an AsyncLocal rather than a DI scope because a Blazor scope is a whole
/// browser tab, which can have two messages in flight at once.
/// </summary>
public sealed class MessageScope(Actor actor, DateTimeOffset now, string action)
{
    private readonly List<PendingChange> _changes = [];
    private readonly List<AuditSubject> _subjects = [];
    private readonly HashSet<long> _people = [];

    public Actor Actor { get; } = actor;
    public DateTimeOffset Now { get; } = now;
    public string Action { get; } = action;
    public DbConnection? Connection { get; internal set; }
    public DbTransaction? Transaction { get; internal set; }

    /// <summary>Set by handlers that act for someone not yet signed in (sign-in, token issue).</summary>
    public string? AuditDetail { get; set; }

    /// <summary>A handler that refuses without throwing (a wrong password) says so here, so the audit row tells the truth.</summary>
    public string Outcome { get; set; } = "success";

    internal IReadOnlyList<PendingChange> Changes => _changes;

    /// <summary>Which subjects have their audit row already: each is audited once, by the message that touched it.</summary>
    internal HashSet<int> AuditedSubjects { get; } = [];

    /// <summary>How many messages sent inside this command are in flight: above zero, the one being handled is one of them.</summary>
    internal int SentInside { get; set; }

    /// <summary>PostgreSQL: this command's audit rows, written in its last round trip (AuditWriter.HeldRowsStatement).</summary>
    internal List<AuditRow> HeldAuditRows { get; } = [];

    /// <summary>Refusals of messages sent inside this command, written after its transaction ends.</summary>
    internal List<(string Outcome, string Action)> DeferredRefusals { get; } = [];
    internal IReadOnlyList<AuditSubject> Subjects => _subjects;

    /// <summary>Appended to the change table in this command's transaction, then pushed to live screens.</summary>
    public void RecordChange(string kind, string entityType, long entityId, long? organisationId, object? data = null)
    {
        if (Transaction is null)
        {
            throw new InvalidOperationException("Only a command records changes.");
        }
        _changes.Add(new PendingChange(kind, entityType, entityId, organisationId,
            data is null ? null : JsonSerializer.Serialize(data, JsonDefaults.Options)));
    }

    /// <summary>Names what this message read or changed, for the audit trail.</summary>
    public void Touch(string entityType, long entityId, long? personId = null) =>
        _subjects.Add(new AuditSubject(entityType, entityId, personId));

    /// <summary>
    /// Names the people whose records a bulk read (an export) disclosed: each once, however many of their records it held,
    /// in audit_person against the read's one audit row, all written in one statement (AuditWriter).
    /// </summary>
    public void TouchPeople(IEnumerable<long> personIds) => _people.UnionWith(personIds);

    /// <summary>
    /// People named by TouchPeople whose audit rows are not yet written. A hash set, ordered only when written (AuditWriter):
    /// a year's CLD export names 450,000 people, and a sorted set built from them, then copied into this one, took 0.1-0.3 s
    /// of the export (issue 13).
    /// </summary>
    internal HashSet<long> People => _people;
}

internal sealed record PendingChange(string Kind, string EntityType, long EntityId, long? OrganisationId, string? Data);

internal sealed record AuditSubject(string EntityType, long EntityId, long? PersonId);

public sealed class Work
{
    private static readonly AsyncLocal<MessageScope?> CurrentScope = new();

    public MessageScope Scope => CurrentScope.Value
        ?? throw new InvalidOperationException("No message is being handled: send it through the mediator.");

    /// <summary>The open transaction's connection: only inside a command.</summary>
    public DbConnection Connection => Scope.Connection ?? throw new InvalidOperationException("Only a command has a transaction.");

    public DbTransaction Transaction => Scope.Transaction ?? throw new InvalidOperationException("Only a command has a transaction.");

    internal static MessageScope? Current => CurrentScope.Value;

    internal static void Enter(MessageScope? scope) => CurrentScope.Value = scope;
}

public static class JsonDefaults
{
    public static JsonSerializerOptions Options { get; } = new(JsonSerializerDefaults.Web);
}
