using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.AspNetCore.SignalR.Client;

namespace CareCoordination.Bench.Load;

/// <summary>
/// One capacity board on the server's /hubs/live (the product's, or the bare app's of the same shape), counting the triage
/// tasks it is told of: every acknowledged submission makes one ("task.created" on the capacity topic), so after the load
/// the board must have heard of each. A missed push fails the run; how fast pushes are is the push bench's figure.
/// </summary>
public sealed class LiveBoard : IAsyncDisposable
{
    private readonly HubConnection _connection;
    private readonly ConcurrentDictionary<long, bool> _tasks = new();

    private LiveBoard(HubConnection connection) => _connection = connection;

    public int TasksHeard => _tasks.Count;

    public static async Task<LiveBoard> ConnectAsync(Uri server, string? token)
    {
        var connection = new HubConnectionBuilder()
            .WithUrl(new Uri(server, "/hubs/live"), options =>
            {
                if (token is not null)
                {
                    options.AccessTokenProvider = () => Task.FromResult<string?>(token);
                }
            })
            .Build();
        var board = new LiveBoard(connection);
        connection.On<JsonElement>("change", change =>
        {
            if (change.GetProperty("kind").GetString() == "task.created")
            {
                board._tasks.TryAdd(change.GetProperty("id").GetInt64(), true);
            }
        });
        await connection.StartAsync();
        await connection.InvokeAsync<long>("Subscribe", "capacity");
        return board;
    }

    /// <summary>Waits (up to 15 s) until the board has heard of this many tasks; answers how many it heard.</summary>
    public async Task<int> AwaitAsync(long expected)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (_tasks.Count < expected && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
        }
        return _tasks.Count;
    }

    public ValueTask DisposeAsync() => _connection.DisposeAsync();
}
