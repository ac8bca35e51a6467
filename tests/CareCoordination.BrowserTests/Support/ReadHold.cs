using Mediator;

namespace CareCoordination.BrowserTests.Support;

/// <summary>
/// Holds back the answer of a read after it has been read, so that a test can make that read land late, as a slow read
/// does on a busy server, and counts how many of the reads it watches ran at one time. Idle until a test arms it.
/// </summary>
public sealed class ReadHold
{
    private readonly Lock _lock = new();
    private Func<object, bool> _watches = _ => false;
    private TaskCompletionSource _held = Done();
    private TaskCompletionSource _release = Done();
    private TaskCompletionSource _secondStarted = Done();
    private TaskCompletionSource _returned = Done();
    private bool _holding;
    private int _started;
    private int _inFlight;
    private int _arming;
    private Exception? _failure;

    /// <summary>The most watched reads running at one time since the hold was armed.</summary>
    public int MostInFlight { get; private set; }

    /// <summary>Watches the reads <paramref name="watches"/> picks, and holds the next of them to finish until <see cref="Disarm"/>.</summary>
    public void Arm<TRead>(Func<TRead, bool> watches) where TRead : IMessage
    {
        lock (_lock)
        {
            ArmHeld(watches, failure: null);
        }
    }

    private void ArmHeld<TRead>(Func<TRead, bool> watches, Exception? failure) where TRead : IMessage
    {
        _watches = message => message is TRead read && watches(read);
        (_holding, _failure, _started, _inFlight, MostInFlight) = (failure is null, failure, 0, 0, 0);
        _arming++;
        (_held, _release, _returned, _secondStarted) = (New(), New(), New(), New());
    }

    /// <summary>Makes the reads <paramref name="watches"/> picks fail with <paramref name="failure"/>, as a store in trouble does, until disarmed.</summary>
    public void Fail<TRead>(Func<TRead, bool> watches, Exception failure) where TRead : IMessage
    {
        lock (_lock)
        {
            ArmHeld(watches, failure);
        }
    }

    /// <summary>Done when a watched read has been read and is being held.</summary>
    public Task Held => _held.Task;

    /// <summary>Done when the held read, released, has returned its answer to whoever asked.</summary>
    public Task Returned => _returned.Task;

    /// <summary>Done when a second watched read has started since the hold was armed.</summary>
    public Task SecondStarted => _secondStarted.Task;

    /// <summary>Releases any read held and watches no more: what a test does last, passed or failed.</summary>
    public void Disarm()
    {
        lock (_lock)
        {
            (_watches, _holding, _failure) = (_ => false, false, null);
            _release.TrySetResult();
        }
    }

    internal bool Watches(object message)
    {
        lock (_lock)
        {
            return _watches(message);
        }
    }

    internal async ValueTask<TResponse> AroundAsync<TResponse>(Func<ValueTask<TResponse>> read)
    {
        TaskCompletionSource? release = null;
        int arming;
        lock (_lock)
        {
            if (_failure is { } failure)
            {
                throw failure;
            }
            arming = _arming;
            MostInFlight = Math.Max(MostInFlight, ++_inFlight);
            if (++_started == 2)
            {
                _secondStarted.TrySetResult();
            }
        }
        try
        {
            var result = await read();
            lock (_lock)
            {
                if (_holding)
                {
                    (_holding, release) = (false, _release);
                    _held.TrySetResult();
                }
            }
            if (release is not null)
            {
                await release.Task;
                _returned.TrySetResult();
            }
            return result;
        }
        finally
        {
            lock (_lock)
            {
                // A read from an earlier arming does not count against this one.
                if (arming == _arming)
                {
                    _inFlight--;
                }
            }
        }
    }

    private static TaskCompletionSource New() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private static TaskCompletionSource Done()
    {
        var done = New();
        done.SetResult();
        return done;
    }
}

/// <summary>Puts <see cref="ReadHold"/> around every message; it passes all but the ones it was armed to watch.</summary>
public sealed class HoldReads<TMessage, TResponse>(ReadHold hold) : IPipelineBehavior<TMessage, TResponse> where TMessage : notnull, IMessage
{
    public async ValueTask<TResponse> Handle(TMessage message, MessageHandlerDelegate<TMessage, TResponse> next, CancellationToken cancellationToken) =>
        hold.Watches(message) ? await hold.AroundAsync(() => next(message, cancellationToken)) : await next(message, cancellationToken);
}
