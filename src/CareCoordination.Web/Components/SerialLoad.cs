namespace CareCoordination.Components;

/// <summary>
/// How a live page reloads: one load at a time, and a change that arrives during a load asks for exactly
/// one more. A burst of fifty changes costs two loads, and an older load never lands after a newer one.
/// </summary>
/// <remarks>
/// Asked only on a page's dispatcher, which runs one thing at a time: nothing runs between the runner's last look for an
/// ask and its standing down, so no ask is missed there. Asked from several threads at once, one could be.
/// </remarks>
public sealed class SerialLoad(Func<Task> load)
{
    private int _running;
    private int _pending;

    public async Task RunAsync()
    {
        if (Interlocked.Exchange(ref _running, 1) == 1)
        {
            Interlocked.Exchange(ref _pending, 1);
            return;
        }
        try
        {
            do
            {
                Interlocked.Exchange(ref _pending, 0);
                await load();
            }
            while (Interlocked.Exchange(ref _pending, 0) == 1);
        }
        finally
        {
            Interlocked.Exchange(ref _running, 0);
        }
    }
}
