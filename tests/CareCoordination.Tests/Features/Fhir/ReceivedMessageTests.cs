using CareCoordination.Auth;
using CareCoordination.Features.Fhir;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using CareCoordination.Tests.Support;
using Dapper;
using Microsoft.AspNetCore.Http;

namespace CareCoordination.Tests.Features.Fhir;

/// <summary>
/// The body a request carried is kept once however many of its entries keep it, and only by this request: a batch's later
/// entry finds the row an earlier entry kept by its id and the request's receipt (no index of receipts, migration 0041).
/// </summary>
public abstract class ReceivedMessageTests(ITestStore store) : IAsyncLifetime
{
    private Database _database = null!;

    public async Task InitializeAsync() => _database = await store.MigratedAsync();

    public async Task DisposeAsync() => await _database.DisposeAsync();

    [Fact]
    public async Task AnEntryAfterOneThatRolledBack_KeepsTheBodyAgain_NeverAnotherRequestsRowWithTheSameId_AndLaterEntriesShareIt()
    {
        await using var connection = await _database.OpenAsync();
        var world = await StoreWorld.CreateAsync(connection);
        var (received, work, body) = Request(world, "batch-1");

        // The first entry keeps the body, then its transaction rolls back.
        var first = await InTransactionAsync(connection, work, commit: false, () => KeepForReferralAsync(received, work));
        // Another request's message is written next: SQLite hands the rolled-back id out again.
        var other = await connection.ExecuteScalarAsync<long>(
            """
            INSERT INTO fhir_received (receipt, organisation_id, sender, interaction, content_type, body, body_encoding, body_bytes, received_at)
            VALUES ('another-request', @OrganisationId, 'epr', 'POST /fhir', 'application/fhir+json', @body, 'identity', 2, @now) RETURNING id
            """, new { world.OrganisationId, body = "{}"u8.ToArray(), now = DateTimeOffset.UtcNow });
        if (_database.Provider == StoreProvider.Sqlite)
        {
            Assert.Equal(first, other);
        }

        var second = await InTransactionAsync(connection, work, commit: true, () => KeepForReferralAsync(received, work));
        var third = await InTransactionAsync(connection, work, commit: true, () => KeepForReferralAsync(received, work));

        Assert.NotEqual(other, second);
        Assert.Equal(second, third);
        var kept = await connection.QuerySingleAsync<(byte[] Body, string Encoding)>(
            "SELECT body, body_encoding FROM fhir_received WHERE bundle_id = 'batch-1'");
        Assert.Equal(body, Packing.Unpack(kept.Body, kept.Encoding));
    }

    [Fact]
    public async Task ChangingTheReferralItMade_InTheSameRequest_LinksNothingMore()
    {
        await using var connection = await _database.OpenAsync();
        var world = await StoreWorld.CreateAsync(connection);
        var (received, work, _) = Request(world, "made-then-changed");

        var referral = await InTransactionAsync(connection, work, commit: true, async () =>
        {
            var made = await KeepForReferralAsync(received, work);
            var id = await world.AddReferralAsync(connection, "9434765919");
            await connection.ExecuteAsync("UPDATE referral SET received_id = @made WHERE id = @id", new { made, id }, work.Transaction);
            await received.KeepAsync(work, id);
            return id;
        });

        Assert.Equal(0, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM fhir_received_referral WHERE referral_id = @referral", new { referral }));
        Assert.Equal(1, await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM fhir_received WHERE bundle_id = 'made-then-changed'"));
    }

    /// <summary>
    /// What a referral's INSERT does with the body (SubmitReferral): the WITH that keeps it, and the id it names, read as the
    /// INSERT returns it and told back to the message.
    /// </summary>
    private static async Task<long?> KeepForReferralAsync(ReceivedMessage received, Work work)
    {
        var parameters = new TemplateParameters(new { });
        var (with, id) = await received.KeepWithReferralAsync(work, parameters);
        var kept = await work.Connection.ExecuteScalarAsync<long?>($"{with}SELECT {id}", parameters, work.Transaction);
        received.Kept(kept);
        return kept;
    }

    private (ReceivedMessage Received, Work Work, byte[] Body) Request(StoreWorld world, string bundleId)
    {
        var received = new ReceivedMessage(TimeProvider.System, _database);
        var http = new DefaultHttpContext();
        http.Request.Method = "POST";
        http.Request.Path = "/fhir";
        http.Request.ContentType = "application/fhir+json";
        var body = System.Text.Encoding.UTF8.GetBytes($$"""{"resourceType":"Bundle","id":"{{bundleId}}","type":"batch"}""");
        received.Capture(http.Request, body, bundleId);
        var actor = new Actor(ActorKind.Partner, "epr", "epr", null, world.OrganisationId, new HashSet<string>());
        Work.Enter(new MessageScope(actor, DateTimeOffset.UtcNow, "SubmitReferral"));
        return (received, new Work(), body);
    }

    private async Task<T> InTransactionAsync<T>(System.Data.Common.DbConnection connection, Work work, bool commit, Func<Task<T>> entry)
    {
        await using var transaction = await _database.BeginWriteAsync(connection);
        (work.Scope.Connection, work.Scope.Transaction) = (connection, transaction);
        try
        {
            return await entry();
        }
        finally
        {
            if (commit)
            {
                await transaction.CommitAsync();
            }
            else
            {
                await transaction.RollbackAsync();
            }
            (work.Scope.Connection, work.Scope.Transaction) = (null, null);
        }
    }
}

public sealed class ReceivedMessageOnSqliteTests() : ReceivedMessageTests(new SqliteTestStore());

public sealed class ReceivedMessageOnPostgresTests() : ReceivedMessageTests(new PostgresTestStore());
