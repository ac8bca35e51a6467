using System.Data.Common;
using System.Globalization;
using System.Text;
using CareCoordination.Auth;
using CareCoordination.Store;
using Dapper;

namespace CareCoordination.Pipeline;

public sealed class AuditWriter(Database database)
{
    /// <summary>The longest value any text column of an audit row holds, marker included.</summary>
    public const int MaxValueLength = 1000;

    private const string Insert = """
        INSERT INTO audit_event (at, actor_kind, actor_id, actor_name, organisation_id, action, outcome, entity_type, entity_id, person_id, detail)
        VALUES (@At, @ActorKind, @ActorId, @ActorName, @OrganisationId, @Action, @Outcome, @EntityType, @EntityId, @PersonId, @Detail)
        """;

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
    /// One row per thing the message touched (or one row if it named none), and one per person it named in bulk
    /// (MessageScope.TouchPeople). Subjects from firstSubject on are the message's own; any a message sent inside it has
    /// already audited are not written again, and a message that succeeded, with no detail of its own, whose every
    /// subject was audited so is not written at all. Nor is a message sent inside another (sentInside) that succeeded
    /// and named no one: the outer message's row says it ran.
    /// </summary>
    public async Task WriteAsync(MessageScope scope, string outcome, DbConnection? connection, DbTransaction? transaction, CancellationToken cancellationToken,
        string? action = null, int firstSubject = 0, bool sentInside = false, bool read = false)
    {
        var subjects = Subjects(scope, outcome, firstSubject, sentInside);
        var page = read ? PageOf(scope, outcome, action, subjects) : null;
        if (page is not null)
        {
            subjects = [];
        }
        var people = PeopleOf(scope, outcome, action);
        if (subjects.Count == 0 && people is null && page is null)
        {
            return;
        }
        // Inside a command's transaction (TransactionBehaviour's, the only one a message's scope carries, but for the start-up
        // warm-up's, which is rolled back), its own rows on PostgreSQL wait for its last round trip (HeldRowsStatement), as
        // nothing in that transaction reads them. A read's page or people, written at once, may so come before them by id.
        var hold = connection is not null && database.Provider == StoreProvider.PostgreSQL;
        // PERF (issue 14, reads while writing): on PostgreSQL a write of its own commits with its last statement, one round trip
        // less for every audited read (Database.ExecuteLastAsync); the statement that ends the rows is the one that commits.
        var commitWithLast = connection is null && database.Provider == StoreProvider.PostgreSQL;
        var writeSubjects = !hold && subjects.Count > 0;
        async Task Write(DbConnection on, DbTransaction? within)
        {
            if (page is not null)
            {
                await WriteWithPeopleAsync(on, within, page, ToReadPeople, commitWithLast && !writeSubjects && people is null, cancellationToken);
            }
            if (hold)
            {
                foreach (var subject in subjects)
                {
                    scope.HeldAuditRows.Add(Row(scope, outcome, action, subject));
                }
            }
            else if (subjects.Count > 0 && database.Provider == StoreProvider.PostgreSQL)
            {
                // One statement for the lot: Dapper runs a statement once per row, and on PostgreSQL each is a round trip (a page
                // of 20 search results was 20 of them, issue 14).
                var (sql, parameters) = subjects.Count > 1
                    ? RowsPostgres([.. subjects.Select(s => Row(scope, outcome, action, s))])
                    : (Insert, (object)Row(scope, outcome, action, subjects[0]));
                await ExecuteAsync(on, within, sql, parameters, commitWithLast && people is null, cancellationToken);
            }
            else if (subjects.Count > 0)
            {
                await on.ExecuteAsync(new CommandDefinition(Insert, subjects.Select(s => Row(scope, outcome, action, s)), within, cancellationToken: cancellationToken));
            }
            if (people is not null)
            {
                await WriteWithPeopleAsync(on, within, people, ToAuditPerson, commitWithLast, cancellationToken);
            }
        }
        if (connection is null)
        {
            // A refusal, or an audited read, has no transaction of its own: it takes its turn like any other write, except that
            // a signed-in caller's read of a page goes ahead of the commands queued (issue 14: a screen's read waited behind
            // every submission queued). Not an anonymous caller's (a token request), nor a read of many people (an export),
            // whose rows would hold the commands back.
            var ahead = read && scope.Actor.Kind is (ActorKind.Staff or ActorKind.Partner)
                && subjects.Count + (page?.Count ?? 0) + (people?.Count ?? 0) <= AheadAtMostPeople;
            await (ahead
                ? database.WriteAheadAsync((own, ownTransaction) => Write(own, ownTransaction), cancellationToken)
                : database.WriteAsync((own, ownTransaction) => Write(own, ownTransaction), cancellationToken));
            return;
        }
        await Write(connection, transaction);
    }

    /// <summary>
    /// A read of several records of one kind (a page of search results): one row naming the kind (entity_type, no
    /// entity_id), and each person the page disclosed named against it in audit_read_person (0033; on PostgreSQL one array in
    /// audit_read_people, 0040). A row per record, with
    /// its three indexes, was the largest part of the audit trail's growth: 20 rows for each poll of a partner's task list
    /// (issue 14). A read of one record, or of several kinds (a person's story), keeps a row per record.
    /// </summary>
    private static BulkPeople? PageOf(MessageScope scope, string outcome, string? action, List<AuditSubject> subjects)
    {
        if (subjects.Count < 2 || subjects[0].EntityType.Length == 0 || subjects.Any(s => s.EntityType != subjects[0].EntityType))
        {
            return null;
        }
        var people = subjects.Where(s => s.PersonId is not null).Select(s => s.PersonId!.Value).Distinct().ToArray();
        Array.Sort(people);
        return new BulkPeople(Row(scope, outcome, action, subjects[0].EntityType, null, null), IdList(people), people.Length);
    }

    /// <summary>
    /// How a read's people are written after its row, from one parameter holding their ids (@People, "1,2,3"): on PostgreSQL
    /// in the same statement as the row, whose id is the CTE a; on SQLite after it, with its id as @AuditId.
    /// </summary>
    private sealed record PeopleInsert(string Postgres, string Sqlite);

    private static readonly PeopleInsert ToAuditPerson = new(
        "INSERT INTO audit_person (audit_id, person_id) SELECT a.id, p.id FROM a, unnest(string_to_array(@People, ',')::bigint[]) AS p (id)",
        "INSERT INTO audit_person (audit_id, person_id) SELECT @AuditId, value FROM json_each('[' || @People || ']')");

    private static readonly PeopleInsert ToReadPeople = new(ReadPeople.InsertPostgres, ReadPeople.InsertSqlite);

    /// <summary>
    /// The read's row, then its people (audit_person, or a page read's: ReadPeople); on PostgreSQL in one statement, so one round
    /// trip, which commits the write when it is the <paramref name="last"/>.
    /// </summary>
    private async Task WriteWithPeopleAsync(DbConnection on, DbTransaction? within, BulkPeople read, PeopleInsert people, bool last, CancellationToken cancellationToken)
    {
        if (database.Provider == StoreProvider.PostgreSQL)
        {
            var parameters = new DynamicParameters(read.Row);
            parameters.Add("People", read.People);
            await ExecuteAsync(on, within, $"WITH a AS ({Insert} RETURNING id)\n{people.Postgres}", parameters, last, cancellationToken);
            return;
        }
        var auditId = await on.ExecuteScalarAsync<long>(new CommandDefinition(Insert + " RETURNING id", read.Row, within, cancellationToken: cancellationToken));
        if (read.People.Length > 0)
        {
            await on.ExecuteAsync(new CommandDefinition(people.Sqlite, new { AuditId = auditId, read.People }, within, cancellationToken: cancellationToken));
        }
    }

    /// <summary>A statement of the rows; the <paramref name="last"/> of a write of the writer's own commits it (PostgreSQL).</summary>
    private Task ExecuteAsync(DbConnection on, DbTransaction? within, string sql, object parameters, bool last, CancellationToken cancellationToken) =>
        last && within is not null
            ? database.ExecuteLastAsync(on, within, sql, parameters)
            : on.ExecuteAsync(new CommandDefinition(sql, parameters, within, cancellationToken: cancellationToken));

    /// <summary>A read's row and the ids of the <paramref name="Count"/> people it names ("1,2,3").</summary>
    private sealed record BulkPeople(AuditRow Row, string People, int Count);

    /// <summary>The most people a read's rows may name and still go ahead of the commands queued: a page, not an export.</summary>
    private const int AheadAtMostPeople = 200;

    /// <summary>
    /// The people named in bulk: one audit row for the read (no entity, its detail saying what it held), and each person
    /// named against it in audit_person (0027), from one parameter holding their ids ("1,2,3"). An export of a year names
    /// hundreds of thousands: a statement per person held the write turn for tens of seconds, and a full audit row per
    /// person, with its two indexes, was 3-4x the work of two numbers (issue 13: 0.35-0.53 s against 0.10-0.15 s for a
    /// quarter's 150,000 people, and ten times the bytes written). "Whose record was read" is
    /// audit_event.person_id, or audit_person.person_id joined to its audit_event row.
    /// </summary>
    private static BulkPeople? PeopleOf(MessageScope scope, string outcome, string? action)
    {
        if (scope.People.Count == 0)
        {
            return null;
        }
        var ids = scope.People.ToArray();
        scope.People.Clear();
        // In order, so that the read's rows go into audit_person's key one after the other.
        Array.Sort(ids);
        return new BulkPeople(Row(scope, outcome, action, Nothing), IdList(ids), ids.Length);
    }

    /// <summary>"1,2,3": written into one buffer, not a string per id joined (450,000 ids for a year's CLD export, issue 13).</summary>
    internal static string IdList(long[] ids)
    {
        var text = new StringBuilder(ids.Length * 8);
        Span<char> digits = stackalloc char[20];
        foreach (var id in ids)
        {
            if (text.Length > 0)
            {
                text.Append(',');
            }
            id.TryFormat(digits, out var written, provider: CultureInfo.InvariantCulture);
            text.Append(digits[..written]);
        }
        return text.ToString();
    }

    /// <summary>What the message's audit rows are about: one row each.</summary>
    private static List<AuditSubject> Subjects(MessageScope scope, string outcome, int firstSubject, bool sentInside)
    {
        var own = new List<AuditSubject>();
        for (var i = firstSubject; i < scope.Subjects.Count; i++)
        {
            if (scope.AuditedSubjects.Add(i))
            {
                own.Add(scope.Subjects[i]);
            }
        }
        if (own.Count == 0 && scope.People.Count == 0 && outcome == "success" && scope.AuditDetail is null && firstSubject < scope.Subjects.Count)
        {
            // Everything it touched was audited by the messages it sent (a FHIR transaction's entries), in its own
            // transaction: a row naming nothing would say only that it ran (issue 14, store growth).
            return [];
        }
        if (own.Count == 0 && scope.People.Count == 0 && outcome == "success" && scope.AuditDetail is null && sentInside)
        {
            // A search inside a FHIR transaction (a conditional create's) that found no one disclosed nothing beyond what
            // the transaction's own rows record: two such rows a partner referral were a sixth of the store's growth (issue 14).
            return [];
        }
        // A message that named no one still leaves its row; one that named people in bulk has theirs.
        return own.Count > 0 || scope.People.Count > 0 ? own : [Nothing];
    }

    private static readonly AuditSubject Nothing = new("", 0, null);

    private static AuditRow Row(MessageScope scope, string outcome, string? action, AuditSubject s) =>
        s.EntityType.Length == 0 ? Row(scope, outcome, action, null, null, s.PersonId) : Row(scope, outcome, action, s.EntityType, s.EntityId, s.PersonId);

    private static AuditRow Row(MessageScope scope, string outcome, string? action, string? entityType, long? entityId, long? personId) => new(
        At: scope.Now,
        ActorKind: scope.Actor.Kind.ToString().ToLowerInvariant(),
        ActorId: Cap(scope.Actor.Id),
        // A partner client's name is its id (Actor.From): kept once, in actor_id; its readers take actor_name or else actor_id (issue 14).
        ActorName: scope.Actor.Name == scope.Actor.Id ? null : Cap(scope.Actor.Name),
        OrganisationId: scope.Actor.OrganisationId,
        Action: Cap(action ?? scope.Action),
        Outcome: outcome,
        EntityType: Cap(entityType),
        EntityId: entityId,
        PersonId: personId,
        Detail: Cap(scope.AuditDetail));

    /// <summary>
    /// PostgreSQL: the audit rows a command's messages held (every row but a read's people, which are written at once), as
    /// one statement for the command's last round trip, beside its change rows and COMMIT (TransactionBehaviour). Each was
    /// a round trip of its own before its command's last (issue 14: one of a partner referral's 13). Null when none are held.
    /// Its parameters are named Audit*, apart from the change rows' own.
    /// </summary>
    internal static (string Sql, DynamicParameters Parameters)? HeldRowsStatement(MessageScope scope) =>
        scope.HeldAuditRows.Count == 0 ? null : RowsPostgres(scope.HeldAuditRows);

    /// <summary>PostgreSQL: <paramref name="rows"/>, all of one message scope, in one INSERT, in order; its parameters named Audit*.</summary>
    private static (string Sql, DynamicParameters Parameters) RowsPostgres(IReadOnlyList<AuditRow> rows)
    {
        // Who and when are the scope's, the same for every row; the rest differ by message and subject.
        var first = rows[0];
        var parameters = new DynamicParameters(new
        {
            AuditAt = first.At,
            AuditActorKind = first.ActorKind,
            AuditActorId = first.ActorId,
            AuditActorName = first.ActorName,
            AuditOrganisationId = first.OrganisationId,
        });
        parameters.Add("AuditActions", rows.Select(r => r.Action).ToArray());
        parameters.Add("AuditOutcomes", rows.Select(r => r.Outcome).ToArray());
        parameters.Add("AuditEntityTypes", rows.Select(r => r.EntityType).ToArray());
        parameters.Add("AuditEntityIds", rows.Select(r => r.EntityId).ToArray());
        parameters.Add("AuditPersonIds", rows.Select(r => r.PersonId).ToArray());
        parameters.Add("AuditDetails", rows.Select(r => r.Detail).ToArray());
        return (InsertRowsPostgres, parameters);
    }

    private const string InsertRowsPostgres = """
        INSERT INTO audit_event (at, actor_kind, actor_id, actor_name, organisation_id, action, outcome, entity_type, entity_id, person_id, detail)
        SELECT @AuditAt, @AuditActorKind, @AuditActorId, @AuditActorName, @AuditOrganisationId, a.action, a.outcome, a.entity_type, a.entity_id, a.person_id, a.detail
        FROM unnest(@AuditActions, @AuditOutcomes, @AuditEntityTypes, @AuditEntityIds, @AuditPersonIds, @AuditDetails)
            WITH ORDINALITY AS a (action, outcome, entity_type, entity_id, person_id, detail, n)
        ORDER BY a.n
        """;

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

internal sealed record AuditRow(DateTimeOffset At, string ActorKind, string? ActorId, string? ActorName, long? OrganisationId, string? Action,
    string Outcome, string? EntityType, long? EntityId, long? PersonId, string? Detail);
