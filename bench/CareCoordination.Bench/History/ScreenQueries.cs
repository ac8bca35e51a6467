using CareCoordination.Auth;
using CareCoordination.Changes;
using CareCoordination.Features.BedBureau;
using CareCoordination.Features.Boards;
using CareCoordination.Features.Coordination;
using CareCoordination.Pipeline;
using CareCoordination.Store;
using Dapper;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace CareCoordination.Bench.History;

/// <summary>
/// The queries behind the live screens, run in this process by the product's own handlers on the large store: the pages
/// load them only once interactive (over the Blazor circuit), so a page's GET would not run them. The bare reference is
/// the same store's referral read by its primary key, through the same connection opening.
/// </summary>
public sealed class ScreenQueries(Database database, long organisationId)
{
    private const int Boards = 8;

    private readonly Database _database = database;

    public IEnumerable<(string Name, Func<Task> Run)> Targets(Func<long> anyReferral)
    {
        TypeHandlers.Register();
        var options = new ServiceCollection().AddOptions().BuildServiceProvider();
        var feed = new ChangeFeed(_database, NullLogger<ChangeFeed>.Instance);
        var clock = TimeProvider.System;
        var targets = options.GetRequiredService<IOptionsMonitor<CoordinationTargets>>();
        // Each call the board's figures of their own (a new Latest), as for the fortnight below.
        CapacityBoard.Handler Tiles(CapacityBoard.Latest? shared = null) => new(shared ?? new CapacityBoard.Latest(_database, clock,
            options.GetRequiredService<IOptionsMonitor<BoardSettings>>(), options.GetRequiredService<IOptionsMonitor<BedBureauSettings>>(), targets));
        var queue = new CoordinationQueue.Handler(_database, clock, targets, feed, new Work());
        // Each call a fortnight of its own (a new Latest): the working out itself, as the first board after a change waits for it.
        FlowHistory.Handler Flow(FlowHistory.Latest? shared = null) => new(shared ?? new FlowHistory.Latest(_database, clock));
        var coordinator = new Actor(ActorKind.Staff, "2", "bench coordinator", Roles.Coordinator, organisationId, new HashSet<string>());

        yield return ("bare: SELECT referral by primary key (in process)", async () =>
        {
            await using var connection = await _database.OpenAsync();
            await connection.QuerySingleAsync("SELECT * FROM referral WHERE id = @id", new { id = anyReferral() });
        });
        yield return ("coordination queue (CoordinationQueue, in process)", async () =>
        {
            Work.Enter(new MessageScope(coordinator, clock.GetUtcNow(), "bench"));
            await queue.Handle(new CoordinationQueue.Query(), CancellationToken.None);
        });
        yield return ("capacity board tiles (CapacityBoard, in process)", async () => await Tiles().Handle(new CapacityBoard.Query(), CancellationToken.None));
        yield return ("capacity board fortnight, worked out (FlowHistory, in process)", async () => await Flow().Handle(new FlowHistory.Query(), CancellationToken.None));
        // What the boards open at a change wait for, until the last of them is answered: each working the fortnight out for
        // itself (as before 6 December 2026), or sharing one (FlowHistory.Latest). Each board on a thread-pool thread of its own,
        // as circuits are: Microsoft.Data.Sqlite's async calls complete synchronously, and would otherwise take turns.
        async Task BoardsAsync(Func<FlowHistory.Handler> handler) =>
            await Task.WhenAll(Enumerable.Range(0, Boards).Select(_ => Task.Run(async () => await handler().Handle(new FlowHistory.Query(), CancellationToken.None))));
        yield return ($"fortnight, {Boards} boards at one change, each its own", async () => await BoardsAsync(() => Flow()));
        yield return ($"fortnight, {Boards} boards at one change, shared", async () =>
        {
            var shared = new FlowHistory.Latest(_database, clock);
            await BoardsAsync(() => Flow(shared));
        });
        // The same for the board's tiles (each its own: as before the afternoon of 6 December 2026).
        async Task TileBoardsAsync(Func<CapacityBoard.Handler> handler) =>
            await Task.WhenAll(Enumerable.Range(0, Boards).Select(_ => Task.Run(async () => await handler().Handle(new CapacityBoard.Query(), CancellationToken.None))));
        yield return ($"tiles, {Boards} boards at one change, each its own", async () => await TileBoardsAsync(() => Tiles()));
        yield return ($"tiles, {Boards} boards at one change, shared", async () =>
        {
            var shared = new CapacityBoard.Latest(_database, clock, options.GetRequiredService<IOptionsMonitor<BoardSettings>>(),
                options.GetRequiredService<IOptionsMonitor<BedBureauSettings>>(), targets);
            await TileBoardsAsync(() => Tiles(shared));
        });
    }
}
