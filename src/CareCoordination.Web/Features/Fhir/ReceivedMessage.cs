using CareCoordination.Auth;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;

namespace CareCoordination.Features.Fhir;

/// <summary>
/// The body of the FHIR write this HTTP request carries, exactly as received: captured where it is read (FhirRequests),
/// kept where a referral is written (SubmitReferral, CancelReferral, AddReferrersUpdate, RecordDischarge and the pages' own), in that
/// command's transaction, so that what a partner sent is never lost and a refused write keeps nothing. The message that
/// made a referral is named on the referral (KeepWithReferralAsync, migration 0039); one that changed it is linked to it in
/// fhir_received_referral (KeepAsync). Scoped: one per request; on a page (a Blazor circuit) nothing is captured and
/// keeping does nothing.
/// </summary>
public sealed class ReceivedMessage(TimeProvider clock, Database database)
{
    private Captured? _captured;

    /// <summary>
    /// The row this request's body was written to, once it has been: a batch's later entries (each its own transaction) find
    /// it by its id and receipt. The receipt, unique to the request, tells a row that committed from a rolled-back one's id
    /// handed out again (SQLite's AUTOINCREMENT gives a rolled-back id out again); no index of receipts is needed (0041).
    /// </summary>
    private long? _keptId;

    private sealed record Captured(string Receipt, byte[] Body, string ContentType, string Interaction, string? BundleId, DateTimeOffset ReceivedAt)
    {
        /// <summary>Packed once however many of the request's entries keep or find it (Store/Packing.cs: the as-sent view unpacks it).</summary>
        public byte[] Packed => field ??= Packing.Pack(Body);
    }

    /// <summary>
    /// Called once the body has been read and parsed: a body that cannot be read is refused, and nothing is kept. The body is
    /// packed here, before the write's turn, where it held up every other writer (issue 14).
    /// </summary>
    internal void Capture(HttpRequest request, byte[] body, string? bundleId)
    {
        _captured = new Captured(Guid.CreateVersion7().ToString("N"), body, request.ContentType ?? "", $"{request.Method} {request.Path}", bundleId,
            clock.GetUtcNow());
        _ = _captured.Packed;
    }

    /// <summary>
    /// Keeps the body (once per request, however many referrals it makes) and links it to the referral, in the command's
    /// transaction, unless the referral names it as the message that made it. A batch's entries are each their own
    /// transaction: the first to commit keeps the body, the rest link to it.
    /// </summary>
    public async Task KeepAsync(Work work, long referralId)
    {
        if (_captured is null)
        {
            return;
        }
        if (database.Provider == StoreProvider.PostgreSQL)
        {
            // One round trip instead of three (issue 14: each is a wait of the submission's on PostgreSQL).
            var row = new DynamicParameters(Row(work));
            row.Add("ReferralId", referralId);
            _keptId = await work.Connection.ExecuteScalarAsync<long>(KeepPostgres, row, work.Transaction);
            return;
        }
        var receivedId = await KeepBodyAsync(work);
        await work.Connection.ExecuteAsync(
            """
            INSERT INTO fhir_received_referral (received_id, referral_id)
            SELECT @receivedId, @referralId
            WHERE NOT EXISTS (SELECT 1 FROM fhir_received_referral WHERE received_id = @receivedId AND referral_id = @referralId)
              AND NOT EXISTS (SELECT 1 FROM referral WHERE id = @referralId AND received_id = @receivedId)
            """, new { receivedId, referralId }, work.Transaction);
    }

    /// <summary>
    /// Keeps the body (once per request, as KeepAsync) for a referral about to be written, which names it (referral.received_id),
    /// in the referral's own INSERT: the WITH to put before that INSERT, and the expression of the body's id in it. On
    /// PostgreSQL the WITH keeps the body, so that the message is not a round trip of its own (issue 14); on SQLite, and for a
    /// request that carried no body (a page: the id is null), it is kept here and its id is a parameter. The INSERT returns
    /// the id it stored, for <see cref="Kept"/>. Adds what it needs to <paramref name="parameters"/>.
    /// </summary>
    public async Task<(string With, string Id)> KeepWithReferralAsync(Work work, TemplateParameters parameters)
    {
        if (_captured is null || database.Provider != StoreProvider.PostgreSQL)
        {
            parameters.AddId("ReceivedId", await KeepBodyAsync(work));
            return ("", "@ReceivedId");
        }
        parameters.AddDynamicParams(Row(work));
        return (KeptPostgres + "\n", "(SELECT id FROM kept)");
    }

    /// <summary>The body's id as a referral's INSERT stored it (<see cref="KeepWithReferralAsync"/>): the request's later entries find it by it.</summary>
    public void Kept(long? receivedId)
    {
        if (_captured is not null)
        {
            _keptId = receivedId;
        }
    }

    /// <summary>
    /// Keeps the body on SQLite (once per request, as KeepAsync): the id of the kept body, or null when this request carried
    /// none (a page). PostgreSQL keeps it inside the statement that names it (KeepPostgres, KeptPostgres).
    /// </summary>
    private async Task<long?> KeepBodyAsync(Work work)
    {
        if (_captured is null)
        {
            return null;
        }
        var row = Row(work);
        _keptId = (_keptId is null ? null : await work.Connection.ExecuteScalarAsync<long?>(Found, row, work.Transaction))
            ?? await work.Connection.ExecuteScalarAsync<long>(Insert + " RETURNING id", row, work.Transaction);
        return _keptId;
    }

    private object Row(Work work)
    {
        var (message, actor) = (_captured!, work.Scope.Actor);
        return new
        {
            KeptId = _keptId,
            message.Receipt,
            SenderOrganisationId = actor.OrganisationId ?? throw new AccessDenied("Only a member of an organisation sends referrals."),
            ClientId = actor.Kind == ActorKind.Partner ? actor.Id : null,
            Sender = actor.Name,
            message.Interaction,
            message.ContentType,
            message.BundleId,
            Body = message.Packed,
            BodyEncoding = Packing.Zstd,
            BodyBytes = message.Body.Length,
            message.ReceivedAt,
        };
    }

    /// <summary>This request's body as an earlier entry kept it, if that entry committed (or is this transaction).</summary>
    private const string Found = "SELECT id FROM fhir_received WHERE id = @KeptId AND receipt = @Receipt";

    private const string Insert = """
        INSERT INTO fhir_received (receipt, organisation_id, partner_client_id, sender, interaction, content_type, bundle_id, body, body_encoding,
            body_bytes, received_at)
        SELECT @Receipt, @SenderOrganisationId, (SELECT id FROM partner_client WHERE client_id = @ClientId), @Sender, @Interaction, @ContentType, @BundleId,
            @Body, @BodyEncoding, @BodyBytes, @ReceivedAt
        """;

    private const string KeptPostgres = $"""
        WITH found AS ({Found}),
        made AS ({Insert} WHERE NOT EXISTS (SELECT 1 FROM found) RETURNING id),
        kept AS (SELECT id FROM found UNION ALL SELECT id FROM made)
        """;

    /// <summary>The body kept unless an earlier entry of this request kept it, and the referral linked to it, in one statement: the body's id.</summary>
    private const string KeepPostgres = KeptPostgres + "\n" + """
        , linked AS (
            INSERT INTO fhir_received_referral (received_id, referral_id)
            SELECT k.id, @ReferralId FROM kept k
            WHERE NOT EXISTS (SELECT 1 FROM fhir_received_referral l WHERE l.received_id = k.id AND l.referral_id = @ReferralId)
              AND NOT EXISTS (SELECT 1 FROM referral r WHERE r.id = @ReferralId AND r.received_id = k.id)
        )
        SELECT id FROM kept
        """;
}
