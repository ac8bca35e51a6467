using Microsoft.Data.Sqlite;

namespace CareCoordination.Bench.Push;

/// <summary>
/// When each change committed, seen from outside both servers the same way: a thread of the driver reads the
/// store's change table every millisecond (SQLite WAL: a reader sees a transaction the moment it commits) and
/// notes the time each new seq became visible. Delivery latency is then commit -> board, whatever a server does
/// before its commit, and neither server is asked to report on itself.
/// </summary>
public sealed class CommitWatch : IDisposable
{
    private readonly Dictionary<long, long> _visibleAt = [];
    private readonly object _gate = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly Thread _thread;

    public CommitWatch(string storeFile)
    {
        _thread = new Thread(() => Watch(storeFile)) { IsBackground = true, Name = "commit watch", Priority = ThreadPriority.AboveNormal };
        _thread.Start();
    }

    /// <summary>UTC ticks at which seq was first seen committed, if it was.</summary>
    public bool TryGet(long seq, out long ticks)
    {
        lock (_gate)
        {
            return _visibleAt.TryGetValue(seq, out ticks);
        }
    }

    private void Watch(string storeFile)
    {
        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = storeFile, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT seq FROM change WHERE seq > $after ORDER BY seq";
        var after = command.CreateParameter();
        after.ParameterName = "$after";
        command.Parameters.Add(after);
        using (var max = connection.CreateCommand())
        {
            max.CommandText = "SELECT COALESCE(MAX(seq), 0) FROM change";
            after.Value = (long)max.ExecuteScalar()!;
        }
        command.Prepare();
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                using var reader = command.ExecuteReader();
                var now = DateTimeOffset.UtcNow.UtcTicks;
                while (reader.Read())
                {
                    var seq = reader.GetInt64(0);
                    lock (_gate)
                    {
                        _visibleAt[seq] = now;
                    }
                    after.Value = seq;
                }
            }
            catch (SqliteException)
            {
                // Busy for a moment (a checkpoint): look again on the next tick.
            }
            Thread.Sleep(1);
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _thread.Join();
        _stop.Dispose();
    }
}
