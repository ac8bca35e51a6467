using System.Threading.Channels;

namespace CareCoordination.Changes;

/// <summary>
/// A background loop's alarm: it sleeps until poked or until its poll interval runs out, whichever comes first. Pokes
/// while it is awake collapse into one, so a burst of changes costs one extra pass, not one per change.
/// </summary>
internal sealed class Wake
{
    private readonly Channel<bool> _pokes = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });

    public void Poke() => _pokes.Writer.TryWrite(true);

    /// <summary>Returns when poked or after <paramref name="timeout"/>; throws only when <paramref name="stopping"/> is cancelled.</summary>
    public async Task WaitAsync(TimeSpan timeout, CancellationToken stopping)
    {
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(stopping);
        wait.CancelAfter(timeout);
        try
        {
            await _pokes.Reader.ReadAsync(wait.Token);
        }
        catch (OperationCanceledException) when (!stopping.IsCancellationRequested)
        {
        }
    }
}
