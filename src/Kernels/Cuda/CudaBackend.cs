// The CUDA backend's core: one device, its retained primary context (shared with cuBLAS and cuDNN), one
// non-blocking stream on which every op, copy and launch is queued, the cuBLAS and cuDNN handles, device
// memory with an allocation counter, kernel modules (embedded fatbin, else NVRTC) and the launch path used
// by the launchers in CudaBackend.Kernels.cs and CudaBackend.Augment.cs. The backend owns everything it
// creates and disposes what is still alive when it is disposed. It is used from one thread at a time
// (any thread: the context is made current on entry). The dense, convolution, batch-norm and pooling ops
// live in CudaBackend.Blas.cs and CudaBackend.Dnn.cs.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using SimClr.Kernels.Cuda.Native;

namespace SimClr.Kernels.Cuda;

/// <summary>Whether FP32 GEMMs and convolutions may use TF32 tensor cores (faster, ~1e-3 relative error).</summary>
public enum CudaMathMode { Fp32, Tf32 }

/// <summary>How convolution algorithms are chosen, once per shape.
/// Reproducible: cuDNN's heuristics (no timing, so every process picks the same algorithm for the same shape,
/// device and cuDNN), deterministic algorithms only: bitwise-equal steps run to run, which exact resume needs.
/// Fastest: cudnnFind* times the candidates and the fastest wins, deterministic or not (PyTorch's
/// cudnn.benchmark); two processes may pick different algorithms.</summary>
public enum ConvolutionAlgorithms { Reproducible, Fastest }

/// <summary>Which implementation runs max pooling. Cudnn: cudnnPooling* in CUDNN_POOLING_MAX_DETERMINISTIC mode.
/// Kernel: kernels/pool.cu, which gives each window's gradient to the first maximum in row-major scan order,
/// the CPU twin's rule, also when several elements tie.</summary>
public enum MaxPoolImplementation { Cudnn, Kernel }

/// <summary>Choices fixed when a backend opens.</summary>
public sealed record CudaBackendOptions
{
    public CudaMathMode MathMode { get; init; } = CudaMathMode.Fp32;
    public ConvolutionAlgorithms Convolutions { get; init; } = ConvolutionAlgorithms.Reproducible;
    public MaxPoolImplementation MaxPool { get; init; } = MaxPoolImplementation.Cudnn;
}

public sealed partial class CudaBackend : IBackend<float>
{
    private static int s_generation;
    [ThreadStatic] private static nint t_currentContext;
    [ThreadStatic] private static int t_currentGeneration;

    private readonly Lock _gate = new();
    private readonly PrimaryContextHandle _context;
    private readonly StreamHandle _stream;
    private readonly HashSet<IDisposable> _children = [];
    private readonly Dictionary<string, CudaModuleHandle> _modules = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Module, string Function), CudaFunction> _functions = [];
    private readonly Dictionary<string, KernelModuleInfo> _moduleInfo = new(StringComparer.Ordinal);
    private readonly int _generation;
    private long _allocations;
    private int _disposed;

    /// <summary>Opens device <paramref name="deviceOrdinal"/>. Throws CudaNotAvailableException when the
    /// driver, a library or the device is missing, with the reason.</summary>
    public CudaBackend(int deviceOrdinal = 0, CudaMathMode mathMode = CudaMathMode.Fp32)
        : this(deviceOrdinal, new CudaBackendOptions { MathMode = mathMode })
    {
    }

    /// <summary>Opens device <paramref name="deviceOrdinal"/> with <paramref name="options"/>.</summary>
    public CudaBackend(int deviceOrdinal, CudaBackendOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var mathMode = options.MathMode;
        Options = options;
        Driver.Initialize();
        int count = Driver.DeviceCount();
        if (count == 0) throw new CudaNotAvailableException("the CUDA driver reports no device");
        if ((uint)deviceOrdinal >= (uint)count)
            throw new CudaNotAvailableException($"CUDA device {deviceOrdinal} does not exist: {count} device(s) present");

        DeviceOrdinal = deviceOrdinal;
        MathMode = mathMode;
        Device = Driver.Device(deviceOrdinal);
        DeviceName = Driver.DeviceName(Device);
        ComputeCapability = (Driver.DeviceAttribute(Device, CuDeviceAttribute.ComputeCapabilityMajor),
            Driver.DeviceAttribute(Device, CuDeviceAttribute.ComputeCapabilityMinor));
        MultiprocessorCount = Driver.DeviceAttribute(Device, CuDeviceAttribute.MultiprocessorCount);
        MaxSharedMemoryPerBlockOptin = Driver.DeviceAttribute(Device, CuDeviceAttribute.MaxSharedMemoryPerBlockOptin);
        TotalMemory = Driver.DeviceTotalMemory(Device);

        _context = PrimaryContextHandle.Retain(Device);
        _generation = Interlocked.Increment(ref s_generation);
        try
        {
            Context = _context.DangerousGetHandle();
            EnsureCurrent();
            _stream = StreamHandle.Create(Context);
            Stream = _stream.DangerousGetHandle();
            InitializeLibraries();
        }
        catch
        {
            DisposeCore();
            throw;
        }
        var (major, minor) = ComputeCapability;
        Info = new BackendInfo(DeviceKind.Cuda, $"cuda:{deviceOrdinal}",
            $"{DeviceName} (sm_{major}{minor}, {TotalMemory / (1L << 30)} GiB), {MathMode} math, {options.Convolutions} convolutions, cuBLAS {CublasVersion}, cuDNN {CudnnVersion}");
    }

    public BackendInfo Info { get; }
    public CudaBackendOptions Options { get; }
    public int DeviceOrdinal { get; }
    public CudaMathMode MathMode { get; }
    public string DeviceName { get; }
    public (int Major, int Minor) ComputeCapability { get; }
    public int MultiprocessorCount { get; }
    public int MaxSharedMemoryPerBlockOptin { get; }
    public long TotalMemory { get; }

    /// <summary>Device allocations made so far (storage, pinned host memory and workspace growth). A training
    /// step after the first must not change it.</summary>
    public long AllocationCount => Interlocked.Read(ref _allocations);

    /// <summary>Where each loaded kernel module came from, and why when the loader fell back.</summary>
    public IReadOnlyDictionary<string, KernelModuleInfo> KernelModules
    {
        get { lock (_gate) return new Dictionary<string, KernelModuleInfo>(_moduleInfo); }
    }

    internal int Device { get; }
    internal nint Context { get; }

    /// <summary>The stream every op and launch is queued on.</summary>
    internal nint Stream { get; }

    // ---- context -----------------------------------------------------------------------------------
    /// <summary>Makes this backend's context current on the calling thread (a no-op when it already is).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void EnsureCurrent()
    {
        if (Volatile.Read(ref _disposed) != 0) ThrowDisposed();
        if (t_currentContext == Context && t_currentGeneration == _generation) return;
        Driver.SetCurrent(Context);
        t_currentContext = Context;
        t_currentGeneration = _generation;
    }

    /// <summary>For releasing children: the context must be current even while the backend is being disposed.</summary>
    internal void EnsureCurrentForRelease()
    {
        if (t_currentContext == Context && t_currentGeneration == _generation) return;
        Driver.SetCurrent(Context);
        t_currentContext = Context;
        t_currentGeneration = _generation;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowDisposed() => throw new ObjectDisposedException(nameof(CudaBackend));

    // ---- memory ------------------------------------------------------------------------------------
    public Storage<U> Allocate<U>(long length) where U : unmanaged
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        EnsureCurrent();
        long bytes = checked(length * Unsafe.SizeOf<U>());
        var storage = new CudaStorage<U>(this, length, Driver.MemAlloc(bytes));
        Interlocked.Increment(ref _allocations);
        Adopt(storage);
        if (bytes > 0) Driver.MemsetD8Async(storage.DevicePointer, 0, bytes, Stream);
        return storage;
    }

    /// <summary>Page-locked host memory for <see cref="DownloadAsync{U}"/>.</summary>
    public unsafe PinnedStorage<U> AllocatePinned<U>(long length) where U : unmanaged
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        EnsureCurrent();
        long bytes = Math.Max(1, checked(length * Unsafe.SizeOf<U>()));
        void* p;
        Driver.Check(Driver.cuMemHostAlloc(&p, (nuint)bytes, Driver.HostAllocPortable));
        Interlocked.Increment(ref _allocations);
        var storage = new PinnedStorage<U>(this, length, p);
        Adopt(storage);
        return storage;
    }

    /// <summary>Copies <paramref name="src"/> into the device tensor (same length); returns when the copy is done.</summary>
    public unsafe void Upload<U>(Tensor<U> dst, ReadOnlySpan<U> src) where U : unmanaged
    {
        var p = DevicePointer(dst, src.Length, nameof(dst));
        if (src.Length != dst.Length) throw new ArgumentException($"upload of {src.Length} elements into a tensor of {dst.Length}", nameof(src));
        EnsureCurrent();
        fixed (U* s = src)
        {
            Driver.CopyHostToDeviceAsync((ulong)p, s, (long)src.Length * sizeof(U), Stream);
            // The caller may reuse src at once, and pageable copies are only staged: wait for this one.
            Driver.StreamSynchronize(Stream);
        }
    }

    /// <summary>Copies the device tensor into <paramref name="dst"/> (same length) after all queued work.</summary>
    public unsafe void Download<U>(Span<U> dst, Tensor<U> src) where U : unmanaged
    {
        var p = DevicePointer(src, dst.Length, nameof(src));
        if (src.Length != dst.Length) throw new ArgumentException($"download of a tensor of {src.Length} elements into {dst.Length}", nameof(dst));
        EnsureCurrent();
        fixed (U* d = dst)
        {
            Driver.CopyDeviceToHostAsync(d, (ulong)p, (long)dst.Length * sizeof(U), Stream);
            Driver.StreamSynchronize(Stream);
        }
    }

    /// <summary>Queues a copy of <paramref name="src"/> into pinned memory and returns at once; record an event
    /// after it and poll the event before reading <paramref name="dst"/>.</summary>
    public unsafe void DownloadAsync<U>(Tensor<U> dst, Tensor<U> src) where U : unmanaged
    {
        if (dst.Storage is not PinnedStorage<U>) throw new ArgumentException("asynchronous downloads need a PinnedStorage target (AllocatePinned)", nameof(dst));
        if (src.Length != dst.Length) throw new ArgumentException($"download of a tensor of {src.Length} elements into {dst.Length}", nameof(dst));
        var p = DevicePointer(src, dst.Length, nameof(src));
        EnsureCurrent();
        Driver.CopyDeviceToHostAsync((void*)dst.Address, (ulong)p, dst.Length * sizeof(U), Stream);
    }

    public void Synchronize()
    {
        EnsureCurrent();
        Driver.StreamSynchronize(Stream);
    }

    /// <summary>The device address of <paramref name="t"/> after checking that it is memory of this backend
    /// holding at least <paramref name="minLength"/> elements. Launchers use it for every pointer argument.</summary>
    internal nint DevicePointer<U>(Tensor<U> t, long minLength, string name) where U : unmanaged
    {
        if (t.IsEmpty) throw new ArgumentException($"{name} is empty but required", name);
        if (t.Storage is not CudaStorage<U> storage) throw new ArgumentException($"{name} is not GPU memory ({t})", name);
        if (!ReferenceEquals(storage.Owner, this)) throw new ArgumentException($"{name} belongs to another CUDA backend", name);
        if (t.Length < minLength) throw new ArgumentException($"{name} holds {t.Length} elements, {minLength} needed", name);
        return t.Address;
    }

    internal unsafe float* Floats(Tensor<float> t, long minLength, [CallerArgumentExpression(nameof(t))] string name = "") =>
        (float*)DevicePointer(t, minLength, name);

    // ---- events and graphs -------------------------------------------------------------------------
    public CudaEvent CreateEvent(EventTiming timing = EventTiming.Disabled)
    {
        EnsureCurrent();
        var e = new CudaEvent(this, EventHandle.Create(Context, timing == EventTiming.Enabled ? 0u : Driver.EventDisableTiming));
        Adopt(e);
        return e;
    }

    internal void RecordEvent(CudaEvent e)
    {
        EnsureCurrent();
        Driver.Check(Driver.cuEventRecord(e.Value, Stream));
    }

    /// <summary>Captures everything <paramref name="work"/> queues on the stream into a replayable graph.
    /// Nothing in <paramref name="work"/> may synchronize, allocate or plan (run it once uncaptured first).</summary>
    public unsafe CudaGraph Capture(Action work)
    {
        ArgumentNullException.ThrowIfNull(work);
        EnsureCurrent();
        Driver.Check(Driver.cuStreamBeginCapture_v2(Stream, CuStreamCaptureMode.ThreadLocal));
        nint graph;
        try
        {
            work();
        }
        catch
        {
            if (Driver.cuStreamEndCapture(Stream, &graph) == CuResult.Success && graph != 0) Driver.cuGraphDestroy(graph);
            throw;
        }
        Driver.Check(Driver.cuStreamEndCapture(Stream, &graph));
        var graphHandle = new GraphHandle(Context, graph);
        nint exec;
        var status = Driver.cuGraphInstantiateWithFlags(&exec, graph, 0);
        if (status != CuResult.Success)
        {
            graphHandle.Dispose();
            Driver.Check(status, "cuGraphInstantiateWithFlags(&exec, graph, 0)");
        }
        var result = new CudaGraph(this, graphHandle, new GraphExecHandle(Context, exec));
        Adopt(result);
        return result;
    }

    internal void LaunchGraph(nint exec)
    {
        EnsureCurrent();
        Driver.Check(Driver.cuGraphLaunch(exec, Stream));
    }

    // ---- kernels -----------------------------------------------------------------------------------
    /// <summary>The entry point <paramref name="function"/> (an extern "C" name) of kernels/<paramref name="module"/>.cu,
    /// loading the module on first use; cached, so launchers may call it on every op.</summary>
    internal unsafe CudaFunction GetFunction(string module, string function)
    {
        lock (_gate)
        {
            if (_functions.TryGetValue((module, function), out var cached)) return cached;
            EnsureCurrent();
            if (!_modules.TryGetValue(module, out var handle))
            {
                handle = LoadModule(module);
                _modules[module] = handle;
            }
            nint f;
            var name = System.Text.Encoding.UTF8.GetBytes(function + "\0");
            fixed (byte* p = name)
            {
                var status = Driver.cuModuleGetFunction(&f, handle.DangerousGetHandle(), p);
                if (status == CuResult.NotFound)
                    throw new CudaException(status, Driver.StatusName(status), $"kernel '{function}' is not in module '{module}' (is it extern \"C\"?)", $"cuModuleGetFunction(&f, {module}, \"{function}\")");
                Driver.Check(status, $"cuModuleGetFunction(&f, {module}, \"{function}\")");
            }
            var result = new CudaFunction(f, module, function);
            _functions[(module, function)] = result;
            return result;
        }
    }

    private CudaModuleHandle LoadModule(string module)
    {
        string? fatbinRefused = null;
        if (KernelSources.Fatbin(module) is { } fatbin)
        {
            try
            {
                var loaded = CudaModuleHandle.Load(Context, fatbin);
                _moduleInfo[module] = new KernelModuleInfo(KernelOrigin.EmbeddedFatbin, "fatbin", null);
                return loaded;
            }
            catch (CudaException e) when (NvrtcCompiler.IsImageRefusal(e.Status))
            {
                fatbinRefused = $"the embedded fatbin was refused ({e.StatusName})";
            }
        }
        var (handle, info) = NvrtcCompiler.LoadForDevice(module, ComputeCapability.Major, ComputeCapability.Minor, image => CudaModuleHandle.Load(Context, image));
        _moduleInfo[module] = fatbinRefused is null ? info : info with { Fallback = info.Fallback is null ? fatbinRefused : $"{fatbinRefused}; {info.Fallback}" };
        return handle;
    }

    /// <summary>A CUfunction attribute of <paramref name="f"/>, e.g. its static shared memory in bytes.</summary>
    internal unsafe int FunctionAttribute(CudaFunction f, CuFunctionAttribute attribute)
    {
        EnsureCurrent();
        int value;
        Driver.Check(Driver.cuFuncGetAttribute(&value, attribute, f.Handle));
        return value;
    }

    /// <summary>Lets <paramref name="f"/> use more than 48 KiB of dynamic shared memory (up to MaxSharedMemoryPerBlockOptin).</summary>
    internal void SetMaxDynamicSharedMemory(CudaFunction f, int bytes)
    {
        EnsureCurrent();
        Driver.Check(Driver.cuFuncSetAttribute(f.Handle, CuFunctionAttribute.MaxDynamicSharedSizeBytes, bytes));
    }

    /// <summary>Queues <paramref name="f"/> on the backend's stream. <paramref name="args"/> points at one pointer per
    /// kernel parameter, each to the argument's value: <c>void** args = stackalloc void*[] { &amp;y, &amp;x, &amp;n };</c>
    /// (device pointers as nint/ulong locals, sizes as int locals). Allocation- and boxing-free.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal unsafe void Launch(CudaFunction f, Dim3 grid, Dim3 block, uint sharedBytes, void** args)
    {
        EnsureCurrent();
        Driver.Check(Driver.cuLaunchKernel(f.Handle, grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z, sharedBytes, Stream, args, null));
    }

    /// <summary>Loads every embedded module now (instead of at first use) so compile errors surface early.</summary>
    public void LoadAllKernels()
    {
        foreach (var module in KernelSources.Modules)
        {
            lock (_gate)
            {
                EnsureCurrent();
                if (!_modules.ContainsKey(module)) _modules[module] = LoadModule(module);
            }
        }
    }

    // ---- ownership -----------------------------------------------------------------------------------
    private void Adopt(IDisposable child)
    {
        lock (_gate) _children.Add(child);
    }

    internal void Forget(IDisposable child)
    {
        lock (_gate) _children.Remove(child);
    }

    internal void Free<U>(CudaStorage<U> storage, ulong pointer) where U : unmanaged
    {
        EnsureCurrentForRelease();
        Forget(storage);
        Driver.Check(Driver.cuMemFree_v2(pointer));
    }

    internal unsafe void FreeHost<U>(PinnedStorage<U> storage, void* pointer) where U : unmanaged
    {
        EnsureCurrentForRelease();
        Forget(storage);
        Driver.Check(Driver.cuMemFreeHost(pointer));
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        DisposeCore();
    }

    private void DisposeCore()
    {
        Volatile.Write(ref _disposed, 1);
        var errors = new List<Exception>();
        void Try(Action release)
        {
            try { release(); }
            catch (NativeCallException e) { errors.Add(e); }
        }

        if (_context is { IsInvalid: false })
        {
            Try(EnsureCurrentForRelease);
            if (_stream is { IsInvalid: false }) Try(() => Driver.StreamSynchronize(Stream));
            // Library handles first: they may refer to memory (cuBLAS workspace) among the children.
            DisposeLibraries(Try);
            IDisposable[] children;
            lock (_gate) children = [.. _children];
            foreach (var child in children) Try(child.Dispose);
            foreach (var module in _modules.Values) Try(module.Dispose);
            _modules.Clear();
            _functions.Clear();
            _stream?.Dispose();
        }
        _context?.Dispose();
        t_currentContext = 0;
        Interlocked.Increment(ref s_generation);
        if (errors.Count > 0) throw new AggregateException("releasing CUDA resources failed", errors);
    }
}
