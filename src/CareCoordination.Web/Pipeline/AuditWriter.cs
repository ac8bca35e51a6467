using System.Data.Common;
using System.Globalization;
using CareCoordination.Auth;
using CareCoordination.Store;
using Dapper;

namespace CareCoordination.Pipeline;

public sealed class AuditWriter(Database database)
{
    /// <summary>The longest value any text column of an audit row holds, marker included.</summary>
    public const int MaxValueLength = 1000;

    private const string Columns =
        "INSERT INTO audit_event (at, actor_kind, actor_id, actor_name, organisation_id, action, outcome, entity_type, entity_id, person_id, detail) VALUES ";

    /// <summary>
    /// The most rows one statement writes. A message can touch hundreds of thousands of subjects (the client-level events
    /// export names every person it exports), and one statement per row made the audit most of the export's time; the rows
    /// go in statements of 512, 256, ... 1 rows, so there are only ten texts to compile and keep, and the parameters
    /// (3 a row plus 8 shared) stay far below SQLite's and PostgreSQL's limits.
    /// </summary>
    internal const int MaxRowsPerStatement = 512;

    private static readonly string[] Inserts = [.. Enumerable.Range(0, System.Numerics.BitOperations.Log2(MaxRowsPerStatement) + 1).Select(power => InsertOf(1 << power))];

    private static string InsertOf(int rows) => Columns + string.Join(", ", Enumerable.Range(0, rows).Select(i => string.Create(CultureInfo.InvariantCulture,
        $"(@At, @ActorKind, @ActorId, @ActorName, @OrganisationId, @Action, @Outcome, @EntityType{i}, @EntityId{i}, @PersonId{i}, @Detail)")));

    /// <summary>
    /// A refused message (denied, invalid) is written on its own connection, because its transaction, if it
    /// had one, never began. A message sent inside a command (a FHIR transaction's entries) is refused while
    /// the outer command's write transaction is open: writing then would wait on that very transaction (SQLite)
    /// or be rolled back with it, so the row is held and written once the outer transaction has ended.
    /// </summary>
    public Task WriteRefusalAsync(MessageScope scope, string outcome, string action, CancellationToken cancellationToken)
    {
        if (scope.Transaction is not null)
        {
            scope.DeferredRefusals.Add((outcome, action));
            return Task.CompletedTask;
        }
        return WriteAsync(scope, outcome, null, null, cancellationToken, action);
    }

    internal async Task WriteDeferredAsync(MessageScope scope, CancellationToken cancellationToken)
    {
        foreach (var (outcome, action) in scope.DeferredRefusals)
        {
            await WriteAsync(scope, outcome, null, null, cancellationToken, action);
        }
        scope.DeferredRefusals.Clear();
    }

    /// <summary>
    /// One row per thing the message touched (or one row if it named none). Subjects from firstSubject on are
    /// the message's own; any a message sent inside it has already audited are not written again.
    /// </summary>
    public async Task WriteAsync(MessageScope scope, string outcome, DbConnection? connection, DbTransaction? transaction, CancellationToken cancellationToken,
        string? action = null, int firstSubject = 0)
    {
        var subjects = Subjects(scope, firstSubject);
        if (connection is null)
        {
            // A refusal has no transaction of its own: it takes its turn like any other write.
            await database.WriteAsync((own, ownTransaction) =>
                InsertAsync(scope, outcome, action, subjects, own, ownTransaction, cancellationToken), cancellationToken);
            return;
        }
        await InsertAsync(scope, outcome, action, subjects, connection, transaction, cancellationToken);
    }

    private static async Task InsertAsync(MessageScope scope, string outcome, string? action, List<AuditSubject> subjects,
        DbConnection connection, DbTransaction? transaction, CancellationToken cancellationToken)
    {
        var shared = new
        {
            At = scope.Now,
            ActorKind = scope.Actor.Kind.ToString().ToLowerInvariant(),
            ActorId = Cap(scope.Actor.Id),
            ActorName = Cap(scope.Actor.Name),
            scope.Actor.OrganisationId,
            Action = Cap(action ?? scope.Action),
            Outcome = outcome,
            Detail = Cap(scope.AuditDetail),
        };
        for (var written = 0; written < subjects.Count;)
        {
            // The largest power of two that fits what is left (at most MaxRowsPerStatement).
            var power = Math.Min(Inserts.Length - 1, System.Numerics.BitOperations.Log2((uint)(subjects.Count - written)));
            var rows = 1 << power;
            var parameters = new DynamicParameters(shared);
            for (var i = 0; i < rows; i++)
            {
                var s = subjects[written + i];
                var index = i.ToString(CultureInfo.InvariantCulture);
                parameters.Add("EntityType" + index, s.EntityType.Length == 0 ? null : Cap(s.EntityType), System.Data.DbType.String);
                parameters.Add("EntityId" + index, s.EntityType.Length == 0 ? null : s.EntityId, System.Data.DbType.Int64);
                parameters.Add("PersonId" + index, s.PersonId, System.Data.DbType.Int64);
            }
            await connection.ExecuteAsync(new CommandDefinition(Inserts[power], parameters, transaction, cancellationToken: cancellationToken));
            written += rows;
        }
    }

    /// <summary>The subjects this message audits now: its own not yet audited, or none named (one row with no subject).</summary>
    private static List<AuditSubject> Subjects(MessageScope scope, int firstSubject)
    {
        var own = new List<AuditSubject>();
        for (var i = firstSubject; i < scope.Subjects.Count; i++)
        {
            if (scope.AuditedSubjects.Add(i))
            {
                own.Add(scope.Subjects[i]);
            }
        }
        return own.Count > 0 ? own : [new AuditSubject("", 0, null)];
    }

    /// <summary>
    /// Anonymous callers choose some of these values (a client id, a username): each is cut to MaxValueLength with
    /// a marker saying how long it was, and control characters are replaced, since PostgreSQL text cannot hold NUL
    /// and a line break in a value would make the trail read as if it said something else.
    /// </summary>
    internal static string? Cap(string? value)
    {
        if (value is null || (value.Length <= MaxValueLength && !value.Any(char.IsControl)))
        {
            return value;
        }
        var marker = value.Length > MaxValueLength ? $"… [cut: {value.Length.ToString("N0", CultureInfo.InvariantCulture)} characters]" : "";
        var keep = Math.Min(value.Length, MaxValueLength - marker.Length);
        // Never keep half of a surrogate pair: an unpaired surrogate is not valid UTF-8 for the store.
        if (keep < value.Length && char.IsHighSurrogate(value[keep - 1]))
        {
            keep--;
        }
        return string.Create(keep, value, (span, source) =>
        {
            for (var i = 0; i < span.Length; i++)
            {
                span[i] = char.IsControl(source[i]) ? '\uFFFD' : source[i];
            }
        }) + marker;
    }
}
