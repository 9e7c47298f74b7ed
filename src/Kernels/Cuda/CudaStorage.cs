// Device-side owned objects of the CUDA backend: device memory (CudaStorage), page-locked host memory for
// asynchronous read-back (PinnedStorage), events for timing and polling, and captured graphs. Each is owned
// by the backend that made it: disposing the backend disposes whatever is still alive. None has a finalizer
// that calls CUDA.
using SimClr.Kernels.Cuda.Native;

namespace SimClr.Kernels.Cuda;

/// <summary>Device memory. <see cref="Storage{T}.Address"/> is the device pointer; HostSpan throws.</summary>
public sealed class CudaStorage<T> : Storage<T> where T : unmanaged
{
    private readonly CudaBackend _owner;

    internal CudaStorage(CudaBackend owner, long length, ulong pointer) : base(length)
    {
        _owner = owner;
        DevicePointer = pointer;
    }

    public override DeviceKind Device => DeviceKind.Cuda;

    public ulong DevicePointer { get; }

    /// <summary>The backend that allocated this memory (ops refuse memory of another backend).</summary>
    public CudaBackend Owner => _owner;

    public override nint Address => IsDisposed ? throw new ObjectDisposedException(nameof(CudaStorage<T>)) : (nint)DevicePointer;

    public override Span<T> HostSpan(long offset, long length) =>
        throw new InvalidOperationException("this tensor lives in GPU memory: use backend.Download to read it on the host");

    protected override void Release() => _owner.Free(this, DevicePointer);
}

/// <summary>Page-locked host memory (cuMemHostAlloc): the target of asynchronous downloads.</summary>
public sealed unsafe class PinnedStorage<T> : Storage<T> where T : unmanaged
{
    private readonly CudaBackend _owner;
    private readonly void* _pointer;

    internal PinnedStorage(CudaBackend owner, long length, void* pointer) : base(length)
    {
        _owner = owner;
        _pointer = pointer;
    }

    public override DeviceKind Device => DeviceKind.Cpu;

    public override nint Address => IsDisposed ? throw new ObjectDisposedException(nameof(PinnedStorage<T>)) : (nint)_pointer;

    public override Span<T> HostSpan(long offset, long length)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        if (offset < 0 || length < 0 || offset + length > Length || length > int.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(offset), $"span [{offset}, {offset + length}) outside pinned storage of {Length}");
        return new Span<T>((T*)_pointer + offset, (int)length);
    }

    protected override void Release() => _owner.FreeHost(this, _pointer);
}

/// <summary>Whether an event records timestamps (timing events are slightly more expensive to record).</summary>
public enum EventTiming { Disabled, Enabled }

/// <summary>A CUDA event on the backend's stream: poll or wait for queued work, or time it.</summary>
public sealed class CudaEvent : IDisposable
{
    private readonly CudaBackend _owner;
    private readonly EventHandle _handle;
    private int _disposed;

    internal CudaEvent(CudaBackend owner, EventHandle handle)
    {
        _owner = owner;
        _handle = handle;
    }

    internal nint Value => _handle.DangerousGetHandle();

    /// <summary>Marks the current end of the backend's queue.</summary>
    public void Record() => _owner.RecordEvent(this);

    /// <summary>True when the work queued before the last Record has finished; never blocks.</summary>
    public bool IsComplete
    {
        get
        {
            _owner.EnsureCurrent();
            var status = Driver.cuEventQuery(Value);
            if (status == CuResult.NotReady) return false;
            Driver.Check(status, "cuEventQuery(event)");
            return true;
        }
    }

    public void Synchronize()
    {
        _owner.EnsureCurrent();
        Driver.Check(Driver.cuEventSynchronize(Value));
    }

    /// <summary>Milliseconds between <paramref name="start"/> and this event (both recorded with timing).</summary>
    public unsafe float ElapsedMillisecondsSince(CudaEvent start)
    {
        _owner.EnsureCurrent();
        float ms;
        Driver.Check(Driver.cuEventElapsedTime(&ms, start.Value, Value));
        return ms;
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _owner.EnsureCurrentForRelease();
        _handle.Dispose();
        _owner.Forget(this);
    }
}

/// <summary>A captured, instantiated CUDA graph: replays a fixed-shape sequence of launches with one call.</summary>
public sealed class CudaGraph : IDisposable
{
    private readonly CudaBackend _owner;
    private readonly GraphHandle _graph;
    private readonly GraphExecHandle _exec;
    private int _disposed;

    internal CudaGraph(CudaBackend owner, GraphHandle graph, GraphExecHandle exec)
    {
        _owner = owner;
        _graph = graph;
        _exec = exec;
    }

    /// <summary>Enqueues the whole captured sequence on the backend's stream.</summary>
    public void Launch() => _owner.LaunchGraph(_exec.DangerousGetHandle());

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _owner.EnsureCurrentForRelease();
        _exec.Dispose();
        _graph.Dispose();
        _owner.Forget(this);
    }
}

/// <summary>Grid or block dimensions of a kernel launch.</summary>
public readonly record struct Dim3(uint X, uint Y = 1, uint Z = 1)
{
    /// <summary>Enough blocks of <paramref name="threadsPerBlock"/> to cover <paramref name="count"/> items (at least one).</summary>
    public static Dim3 Cover(long count, int threadsPerBlock)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(threadsPerBlock);
        long blocks = Math.Max(1, (count + threadsPerBlock - 1) / threadsPerBlock);
        if (blocks > int.MaxValue) throw new ArgumentOutOfRangeException(nameof(count), $"{count} items need {blocks} blocks, more than a grid holds");
        return new Dim3((uint)blocks);
    }

    public static implicit operator Dim3(int x) => new(checked((uint)x));
}

/// <summary>A kernel entry point in a loaded module. Valid while its backend lives.</summary>
public readonly struct CudaFunction
{
    internal CudaFunction(nint handle, string module, string name)
    {
        Handle = handle;
        Module = module;
        Name = name;
    }

    internal nint Handle { get; }
    public string Module { get; }
    public string Name { get; }
    public bool IsLoaded => Handle != 0;

    public override string ToString() => $"{Module}.{Name}";
}
