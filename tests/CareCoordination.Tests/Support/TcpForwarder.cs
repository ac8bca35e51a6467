using System.Net;
using System.Net.Sockets;

namespace CareCoordination.Tests.Support;

/// <summary>
/// A loopback TCP forwarder to a server, whose newest connection a test can cut: the client's side is reset and the server's
/// closed, as a network failure would leave them, with no word from either end to the other (unlike the server ending a session).
/// </summary>
public sealed class TcpForwarder : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly IPEndPoint _target;
    private readonly List<(TcpClient Client, TcpClient Server)> _connections = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;

    public TcpForwarder(IPEndPoint target)
    {
        _target = target;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Cuts the connection opened last.</summary>
    public void CutNewest()
    {
        (TcpClient Client, TcpClient Server) newest;
        lock (_connections)
        {
            newest = _connections[^1];
            _connections.RemoveAt(_connections.Count - 1);
        }
        newest.Client.Client.LingerState = new LingerOption(true, 0);
        newest.Client.Close();
        newest.Server.Close();
    }

    private async Task AcceptAsync()
    {
        try
        {
            while (true)
            {
                var client = await _listener.AcceptTcpClientAsync(_stop.Token);
                var server = new TcpClient();
                await server.ConnectAsync(_target, _stop.Token);
                lock (_connections)
                {
                    _connections.Add((client, server));
                }
                _ = PumpAsync(client.GetStream(), server.GetStream());
                _ = PumpAsync(server.GetStream(), client.GetStream());
            }
        }
        catch (Exception ended) when (ended is OperationCanceledException or ObjectDisposedException or SocketException)
        {
        }
    }

    private static async Task PumpAsync(NetworkStream from, NetworkStream to)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            int read;
            while ((read = await from.ReadAsync(buffer)) > 0)
            {
                await to.WriteAsync(buffer.AsMemory(0, read));
            }
        }
        catch (Exception ended) when (ended is IOException or ObjectDisposedException or SocketException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accepting;
        lock (_connections)
        {
            foreach (var (client, server) in _connections)
            {
                client.Close();
                server.Close();
            }
            _connections.Clear();
        }
        _stop.Dispose();
    }
}
