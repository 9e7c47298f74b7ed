// A deadline for operations that block inside native code and cannot time out by themselves: MPI's blocking
// collectives (which Open MPI runs through its tuned algorithms, faster than the non-blocking ones) and the host's
// wait on a CUDA stream that holds NCCL collectives. Arming is four field writes and disarming one, so it costs
// nothing per collective; a background thread looks every Timeout/20 (10 ms to 1 s) and, when an operation has
// been armed for longer than Timeout, calls the expiry action with one message naming the rank, the operation and
// the hint (the last checkpoint). The action does not return in the program: it ends the whole job (MPI_Abort).
using System.Diagnostics;

namespace SimClr.Kernels.Distributed;

public sealed class CollectiveWatchdog : IDisposable
{
    private readonly Action<string> _expire;
    private readonly Thread _thread;
    private readonly ManualResetEventSlim _stop = new();
    private long _armedAt;
    private Collective _collective;
    private long _elements;
    private string _elementType = "";
    private int _fired;

    /// <summary>Watches operations of <paramref name="rank"/>; <paramref name="expire"/> receives the message.</summary>
    public CollectiveWatchdog(int rank, TimeSpan timeout, Action<string> expire)
    {
        if (timeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(timeout), "the collective timeout must be positive");
        ArgumentNullException.ThrowIfNull(expire);
        Rank = rank;
        Timeout = timeout;
        _expire = expire;
        _thread = new Thread(Watch) { IsBackground = true, Name = "collective watchdog" };
        _thread.Start();
    }

    public int Rank { get; }
    public TimeSpan Timeout { get; }

    /// <summary>Appended to the expiry message, read when it fires (e.g. "the last checkpoint is …").</summary>
    public Func<string>? Hint { get; set; }

    /// <summary>Starts the deadline of one operation; disposing the result ends it.</summary>
    public Armed Arm(Collective collective, long elements = 0, string elementType = "")
    {
        _collective = collective;
        _elements = elements;
        _elementType = elementType;
        Volatile.Write(ref _armedAt, Math.Max(1, Stopwatch.GetTimestamp()));
        return new Armed(this);
    }

    /// <summary>The armed deadline of one operation.</summary>
    public readonly struct Armed(CollectiveWatchdog owner) : IDisposable
    {
        public void Dispose() => Volatile.Write(ref owner._armedAt, 0);
    }

    private void Watch()
    {
        var poll = TimeSpan.FromTicks(Math.Clamp(Timeout.Ticks / 20, TimeSpan.TicksPerMillisecond * 10, TimeSpan.TicksPerSecond));
        while (!_stop.Wait(poll))
        {
            long armed = Volatile.Read(ref _armedAt);
            if (armed == 0 || Stopwatch.GetElapsedTime(armed) < Timeout) continue;
            string what = _collective switch
            {
                Collective.DeviceWait => "the wait for the GPU stream (its NCCL collectives)",
                _ when _elements == 0 => _collective.ToString(),
                _ => $"{_collective} of {_elements} {_elementType} elements",
            };
            if (Volatile.Read(ref _armedAt) != armed || Interlocked.Exchange(ref _fired, 1) != 0) continue;
            string hint = Hint?.Invoke() is { Length: > 0 } h ? " " + h : "";
            _expire($"rank {Rank}: {what} did not complete within {Timeout.TotalSeconds:G4} s: another rank stopped answering, died or runs different collectives; " +
                $"ending the job.{hint}");
        }
    }

    public void Dispose()
    {
        _stop.Set();
        if (Thread.CurrentThread != _thread) _thread.Join();
        _stop.Dispose();
    }
}
