using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using CareCoordination.Auth;
using CareCoordination.Features.Referrals;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Mediator;

namespace CareCoordination.Features.Coordination;

/// <summary>
/// A referral "as sent": every FHIR message a partner sent that made or changed it, exactly as received, with who sent it,
/// when, and its Bundle id, so a coordinator can check what the form shows against what the partner's system said.
/// The coordination centre's working roles only (the raw message holds all a partner sent, not just what the form keeps);
/// every open is audited as a read of the person's record.
/// </summary>
public static class AsSent
{
    [AllowRoles(Roles.Coordinator, Roles.BedBureau)]
    public sealed record Query(long ReferralId) : IQuery<Result>, IAudited;

    public sealed record Result(long ReferralId, string PersonName, IReadOnlyList<Message> Messages);

    public sealed record Message
    {
        public long Id { get; init; }
        public DateTimeOffset ReceivedAt { get; init; }
        public string Sender { get; init; } = "";
        public string? PartnerName { get; init; }
        public string Organisation { get; init; } = "";
        public string Interaction { get; init; } = "";
        public string ContentType { get; init; } = "";
        public string? BundleId { get; init; }
        public int BodyBytes { get; init; }
        /// <summary>Exactly the bytes received.</summary>
        public byte[] Body { get; init; } = [];

        /// <summary>How <see cref="Body"/> was stored; the handler unpacks it.</summary>
        public string BodyEncoding { get; init; } = Packing.Identity;

        /// <summary>The body indented for reading; as received when it cannot be re-indented. Text, to be shown encoded, never as markup.</summary>
        public string Pretty
        {
            get
            {
                // A byte order mark may precede JSON text (RFC 8259 8.1): it is kept in Body, not shown.
                var text = Encoding.UTF8.GetString(Body).TrimStart('\uFEFF');
                try
                {
                    return JsonNode.Parse(text)?.ToJsonString(Indented) ?? text;
                }
                catch (Exception error) when (error is JsonException or ArgumentException or InvalidOperationException)
                {
                    return text;
                }
            }
        }

        // Relaxed escaping: a name such as O'Neill or a "<" reads as sent (the page encodes it as text anyway).
        private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
    }

    /// <summary>
    /// (referral_id, received_id) of every message kept for @Id, whichever way it is linked: named on the referral as the
    /// one that made it (migration 0039), or linked as one that changed it. Each a seek: the referral's key, the link's index.
    /// </summary>
    internal const string MessagesOf = """
        SELECT id AS referral_id, received_id FROM referral WHERE id = @Id AND received_id IS NOT NULL
        UNION ALL
        SELECT referral_id, received_id FROM fhir_received_referral WHERE referral_id = @Id
        """;

    public sealed class Handler(Database database, Work work) : IQueryHandler<Query, Result>
    {
        public async ValueTask<Result> Handle(Query query, CancellationToken cancellationToken)
        {
            await using var connection = await database.OpenAsync(cancellationToken);
            var referral = await ReferralAccess.FindAsync(connection, null, query.ReferralId, work.Scope.Actor);
            var personName = await connection.ExecuteScalarAsync<string>(
                "SELECT given_name || ' ' || family_name FROM person WHERE id = @PersonId", new { referral.PersonId });
            var messages = await connection.QueryAsync<Message>(
                $"""
                SELECT m.id AS Id, m.received_at AS ReceivedAt, m.sender AS Sender, pc.name AS PartnerName, o.name AS Organisation,
                       m.interaction AS Interaction, m.content_type AS ContentType, m.bundle_id AS BundleId, m.body_bytes AS BodyBytes, m.body AS Body,
                       m.body_encoding AS BodyEncoding
                FROM ({MessagesOf}) l
                JOIN fhir_received m ON m.id = l.received_id
                JOIN organisation o ON o.id = m.organisation_id
                LEFT JOIN partner_client pc ON pc.id = m.partner_client_id
                ORDER BY m.received_at, m.id
                """, new { referral.Id });
            work.Scope.AuditDetail = "read the referral as sent";
            work.Scope.Touch("referral", referral.Id, referral.PersonId);
            return new Result(referral.Id, personName ?? "",
                [.. messages.Select(m => m with { Body = Packing.Unpack(m.Body, m.BodyEncoding), BodyEncoding = Packing.Identity })]);
        }
    }
}
