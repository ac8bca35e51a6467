using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Http.Connections;
using Microsoft.AspNetCore.SignalR.Client;

namespace CareCoordination.Bench.Push;

/// <summary>What a board reads of a pushed change: only what the measurement needs, so the client parses little.</summary>
public sealed class PushedChange
{
    [JsonPropertyName("seq")]
    public long Seq { get; set; }

    [JsonPropertyName("at")]
    public DateTimeOffset At { get; set; }

    [JsonPropertyName("topic")]
    public string? Topic { get; set; }
}

/// <summary>
/// One board: one HubConnection over WebSockets (negotiation skipped, as a browser board would after its first
/// connection), subscribed to capacity, keeping each change's seq, when it arrived and the time the server gave it.
/// </summary>
public sealed class Board : IAsyncDisposable
{
    private readonly HubConnection _connection;
    private readonly object _gate = new();
    private readonly List<(long Seq, long Received, long At)> _received = new(1024);

    private Board(HubConnection connection) => _connection = connection;

    public long SubscribedAt { get; private set; }

    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _received.Count;
            }
        }
    }

    public static async Task<Board> ConnectAsync(Uri hub, string token, string topic)
    {
        var connection = new HubConnectionBuilder()
            .WithUrl(hub, options =>
            {
                options.Transports = HttpTransportType.WebSockets;
                options.SkipNegotiation = true;
                options.AccessTokenProvider = () => Task.FromResult<string?>(token);
            })
            .Build();
        var board = new Board(connection);
        connection.On<PushedChange>("change", change =>
        {
            // Taken first: what follows is bookkeeping, not delivery.
            var received = DateTimeOffset.UtcNow.UtcTicks;
            lock (board._gate)
            {
                board._received.Add((change.Seq, received, change.At.UtcTicks));
            }
        });
        await connection.StartAsync();
        board.SubscribedAt = await connection.InvokeAsync<long>("Subscribe", topic);
        return board;
    }

    public (long Seq, long Received, long At)[] Received()
    {
        lock (_gate)
        {
            return [.. _received];
        }
    }

    public void Forget()
    {
        lock (_gate)
        {
            _received.Clear();
        }
    }

    public Task<T> InvokeAsync<T>(string method, params object?[] args) => _connection.InvokeCoreAsync<T>(method, args);

    public ValueTask DisposeAsync() => _connection.DisposeAsync();
}
