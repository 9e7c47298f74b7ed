// The CUDA driver API (libcuda.so.1): raw imports under their exact C export names (the `_v2` names are
// what cuda.h's macros resolve to), the CUresult enum, CudaException, the Check helper, thin C#-named
// calls and the SafeHandles of driver objects. Handles release only when disposed; a handle that reaches
// its finalizer reports the leak and leaves the driver alone, because the context may already be gone.
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace SimClr.Kernels.Cuda.Native;

/// <summary>CUresult (cuda.h). Names come from cuGetErrorName at run time; these cover the ones we act on.</summary>
public enum CuResult
{
    Success = 0,
    InvalidValue = 1,
    OutOfMemory = 2,
    NotInitialized = 3,
    Deinitialized = 4,
    ProfilerDisabled = 5,
    StubLibrary = 34,
    DeviceUnavailable = 46,
    NoDevice = 100,
    InvalidDevice = 101,
    DeviceNotLicensed = 102,
    InvalidImage = 200,
    InvalidContext = 201,
    NoBinaryForGpu = 209,
    InvalidPtx = 218,
    JitCompilerNotFound = 221,
    UnsupportedPtxVersion = 222,
    InvalidSource = 300,
    FileNotFound = 301,
    InvalidHandle = 400,
    IllegalState = 401,
    NotFound = 500,
    NotReady = 600,
    IllegalAddress = 700,
    LaunchOutOfResources = 701,
    LaunchTimeout = 702,
    ContextIsDestroyed = 709,
    Assert = 710,
    HardwareStackError = 714,
    IllegalInstruction = 715,
    MisalignedAddress = 716,
    InvalidAddressSpace = 717,
    InvalidPc = 718,
    LaunchFailed = 719,
    NotPermitted = 800,
    NotSupported = 801,
    StreamCaptureUnsupported = 900,
    StreamCaptureInvalidated = 901,
    StreamCaptureWrongThread = 908,
    Unknown = 999,
}

/// <summary>CUdevice_attribute values used by the backend and `info`.</summary>
public enum CuDeviceAttribute
{
    MaxThreadsPerBlock = 1,
    MaxSharedMemoryPerBlock = 8,
    WarpSize = 10,
    ClockRate = 13,
    MultiprocessorCount = 16,
    ComputeCapabilityMajor = 75,
    ComputeCapabilityMinor = 76,
    MaxSharedMemoryPerBlockOptin = 97,
}

/// <summary>CUfunction_attribute values a launcher reads (the static shared memory) or sets.</summary>
public enum CuFunctionAttribute
{
    SharedSizeBytes = 1,
    MaxDynamicSharedSizeBytes = 8,
}

/// <summary>CUstreamCaptureMode.</summary>
public enum CuStreamCaptureMode { Global = 0, ThreadLocal = 1, Relaxed = 2 }

/// <summary>A driver call failed. Sticky errors (a kernel faulted) leave the context unusable.</summary>
public sealed class CudaException(CuResult status, string statusName, string nativeMessage, string call)
    : NativeCallException("CUDA driver", statusName, (int)status, nativeMessage, call, HintFor(status))
{
    public CuResult Status { get; } = status;

    /// <summary>The context is corrupted: the process must stop using CUDA (report the last checkpoint and exit).</summary>
    public bool IsSticky => Status is CuResult.IllegalAddress or CuResult.Assert or CuResult.HardwareStackError
        or CuResult.IllegalInstruction or CuResult.MisalignedAddress or CuResult.InvalidAddressSpace
        or CuResult.InvalidPc or CuResult.LaunchFailed or CuResult.LaunchTimeout;

    private static string? HintFor(CuResult status) => status switch
    {
        CuResult.OutOfMemory => "The GPU is out of memory: lower the batch size (or the image size) and retry",
        CuResult.IllegalAddress or CuResult.Assert or CuResult.LaunchFailed or CuResult.MisalignedAddress or CuResult.IllegalInstruction =>
            "This error is sticky: the CUDA context is unusable and the process must restart",
        CuResult.NoBinaryForGpu => "No code in the module matches this GPU's architecture",
        _ => null,
    };
}

/// <summary>Driver API calls. Every status goes through <see cref="Check"/>.</summary>
public static unsafe partial class Driver
{
    static Driver() => NativeLibraries.EnsureResolver();

    /// <summary>Throws <see cref="CudaException"/> for any status but Success, naming the call.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Check(CuResult status, [CallerArgumentExpression(nameof(status))] string call = "")
    {
        if (status != CuResult.Success) Throw(status, call);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Throw(CuResult status, string call) => throw new CudaException(status, StatusName(status), Message(status), call);

    /// <summary>"CUDA_ERROR_…" from the driver when it is loaded, else derived from the enum name.</summary>
    public static string StatusName(CuResult status)
    {
        if (NativeLibraries.IsLoaded(CudaLibrary.Driver))
        {
            nint text;
            if (cuGetErrorName(status, &text) == CuResult.Success && text != 0) return Marshal.PtrToStringUTF8(text) ?? status.ToString();
        }
        if (status == CuResult.Success) return "CUDA_SUCCESS";
        return Enum.IsDefined(status) ? $"CUDA_ERROR_{Nvrtc.ToUpperSnake(status.ToString())}" : $"CUresult {(int)status}";
    }

    private static string Message(CuResult status)
    {
        if (!NativeLibraries.IsLoaded(CudaLibrary.Driver)) return "no message (libcuda.so.1 is not loaded)";
        nint text;
        return cuGetErrorString(status, &text) == CuResult.Success && text != 0 ? Marshal.PtrToStringUTF8(text) ?? "" : "unrecognized error code";
    }

    // ---- raw imports: exact C names -----------------------------------------------------------------
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuInit(uint flags);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuDriverGetVersion(int* version);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuGetErrorName(CuResult error, nint* text);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuGetErrorString(CuResult error, nint* text);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuDeviceGetCount(int* count);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuDeviceGet(int* device, int ordinal);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuDeviceGetName(byte* name, int length, int device);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuDeviceGetAttribute(int* value, CuDeviceAttribute attribute, int device);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuDeviceTotalMem_v2(nuint* bytes, int device);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuDevicePrimaryCtxRetain(nint* context, int device);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuDevicePrimaryCtxRelease_v2(int device);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuCtxSetCurrent(nint context);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuCtxGetCurrent(nint* context);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuCtxSynchronize();
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuMemGetInfo_v2(nuint* free, nuint* total);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuMemAlloc_v2(ulong* pointer, nuint bytes);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuMemFree_v2(ulong pointer);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuMemsetD8_v2(ulong pointer, byte value, nuint count);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuMemsetD32_v2(ulong pointer, uint value, nuint count);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuMemsetD8Async(ulong pointer, byte value, nuint count, nint stream);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuMemsetD32Async(ulong pointer, uint value, nuint count, nint stream);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuMemcpyHtoD_v2(ulong dst, void* src, nuint bytes);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuMemcpyDtoH_v2(void* dst, ulong src, nuint bytes);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuMemcpyDtoD_v2(ulong dst, ulong src, nuint bytes);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuMemcpyHtoDAsync_v2(ulong dst, void* src, nuint bytes, nint stream);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuMemcpyDtoHAsync_v2(void* dst, ulong src, nuint bytes, nint stream);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuMemcpyDtoDAsync_v2(ulong dst, ulong src, nuint bytes, nint stream);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuMemHostAlloc(void** pointer, nuint bytes, uint flags);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuMemFreeHost(void* pointer);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuStreamCreate(nint* stream, uint flags);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuStreamDestroy_v2(nint stream);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuStreamSynchronize(nint stream);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuStreamWaitEvent(nint stream, nint evt, uint flags);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuStreamBeginCapture_v2(nint stream, CuStreamCaptureMode mode);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuStreamEndCapture(nint stream, nint* graph);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuEventCreate(nint* evt, uint flags);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuEventDestroy_v2(nint evt);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuEventRecord(nint evt, nint stream);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuEventQuery(nint evt);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuEventSynchronize(nint evt);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuEventElapsedTime(float* milliseconds, nint start, nint end);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuModuleLoadData(nint* module, void* image);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuModuleUnload(nint module);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuModuleGetFunction(nint* function, nint module, byte* name);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuFuncSetAttribute(nint function, CuFunctionAttribute attribute, int value);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuFuncGetAttribute(int* value, CuFunctionAttribute attribute, nint function);
    [LibraryImport(NativeLibraries.DriverName)]
    internal static partial CuResult cuLaunchKernel(nint function, uint gridX, uint gridY, uint gridZ, uint blockX, uint blockY, uint blockZ,
        uint sharedBytes, nint stream, void** kernelParams, void** extra);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuGraphInstantiateWithFlags(nint* graphExec, nint graph, ulong flags);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuGraphLaunch(nint graphExec, nint stream);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuGraphExecDestroy(nint graphExec);
    [LibraryImport(NativeLibraries.DriverName)] internal static partial CuResult cuGraphDestroy(nint graph);

    // ---- thin C#-named calls ------------------------------------------------------------------------
    public const uint StreamNonBlocking = 1;
    public const uint EventDisableTiming = 2;
    public const uint HostAllocPortable = 1;

    /// <summary>Loads libcuda and initializes the driver; throws CudaNotAvailableException when the driver or a device is absent.</summary>
    public static void Initialize()
    {
        NativeLibraries.Require(CudaLibrary.Driver);
        var status = cuInit(0);
        // A driver without a usable GPU is "CUDA not available", not a failed call.
        if (status is CuResult.NoDevice or CuResult.StubLibrary or CuResult.DeviceUnavailable or CuResult.InvalidDevice)
            throw new CudaNotAvailableException($"no CUDA device: cuInit returned {StatusName(status)} ({Message(status)})");
        Check(status, "cuInit(0)");
    }

    /// <summary>Driver version as (major, minor), e.g. (12, 4).</summary>
    public static (int Major, int Minor) DriverVersion()
    {
        int v;
        Check(cuDriverGetVersion(&v));
        return (v / 1000, v % 1000 / 10);
    }

    public static int DeviceCount()
    {
        int n;
        Check(cuDeviceGetCount(&n));
        return n;
    }

    public static int Device(int ordinal)
    {
        int d;
        Check(cuDeviceGet(&d, ordinal));
        return d;
    }

    public static string DeviceName(int device)
    {
        byte* name = stackalloc byte[256];
        Check(cuDeviceGetName(name, 256, device));
        return Marshal.PtrToStringUTF8((nint)name) ?? "";
    }

    public static int DeviceAttribute(int device, CuDeviceAttribute attribute)
    {
        int v;
        Check(cuDeviceGetAttribute(&v, attribute, device));
        return v;
    }

    public static long DeviceTotalMemory(int device)
    {
        nuint bytes;
        Check(cuDeviceTotalMem_v2(&bytes, device));
        return (long)bytes;
    }

    public static (long Free, long Total) MemoryInfo()
    {
        nuint free, total;
        Check(cuMemGetInfo_v2(&free, &total));
        return ((long)free, (long)total);
    }

    public static void SetCurrent(nint context) => Check(cuCtxSetCurrent(context));

    public static void Synchronize() => Check(cuCtxSynchronize());

    public static ulong MemAlloc(long bytes)
    {
        ulong p;
        // A zero-byte request still gets a distinct, freeable pointer so that storages are uniform.
        Check(cuMemAlloc_v2(&p, (nuint)Math.Max(bytes, 1)));
        return p;
    }

    public static void MemsetD8Async(ulong pointer, byte value, long count, nint stream) => Check(cuMemsetD8Async(pointer, value, (nuint)count, stream));
    public static void MemsetD32Async(ulong pointer, uint value, long count, nint stream) => Check(cuMemsetD32Async(pointer, value, (nuint)count, stream));
    public static void CopyHostToDeviceAsync(ulong dst, void* src, long bytes, nint stream) => Check(cuMemcpyHtoDAsync_v2(dst, src, (nuint)bytes, stream));
    public static void CopyDeviceToHostAsync(void* dst, ulong src, long bytes, nint stream) => Check(cuMemcpyDtoHAsync_v2(dst, src, (nuint)bytes, stream));
    public static void CopyDeviceToDeviceAsync(ulong dst, ulong src, long bytes, nint stream) => Check(cuMemcpyDtoDAsync_v2(dst, src, (nuint)bytes, stream));
    public static void StreamSynchronize(nint stream) => Check(cuStreamSynchronize(stream));
}

/// <summary>A driver object owned by one context. Released only by Dispose (after making its context
/// current); a finalizer only reports the leak.</summary>
public abstract class CudaHandle : SafeHandle
{
    private bool _explicitDispose;

    protected CudaHandle(nint context) : base(0, ownsHandle: true) => Context = context;

    /// <summary>The context that owns this object.</summary>
    public nint Context { get; }

    public override bool IsInvalid => handle == 0;

    internal void Set(nint value) => SetHandle(value);

    protected override void Dispose(bool disposing)
    {
        if (disposing) _explicitDispose = true;
        base.Dispose(disposing);
    }

    protected sealed override bool ReleaseHandle()
    {
        if (!_explicitDispose)
        {
            Trace.TraceWarning($"{GetType().Name} 0x{handle:x} was not disposed; leaking it, because a finalizer must not call CUDA");
            return true;
        }
        if (Context != 0 && Driver.cuCtxSetCurrent(Context) != CuResult.Success) return false;
        return Destroy(handle) == CuResult.Success;
    }

    protected abstract CuResult Destroy(nint value);
}

/// <summary>A retained primary context of one device (shared with the CUDA runtime inside cuBLAS/cuDNN).</summary>
public sealed class PrimaryContextHandle : CudaHandle
{
    private readonly int _device;

    private PrimaryContextHandle(int device) : base(0) => _device = device;

    public static unsafe PrimaryContextHandle Retain(int device)
    {
        var h = new PrimaryContextHandle(device);
        nint ctx;
        Driver.Check(Driver.cuDevicePrimaryCtxRetain(&ctx, device));
        h.Set(ctx);
        return h;
    }

    protected override CuResult Destroy(nint value) => Driver.cuDevicePrimaryCtxRelease_v2(_device);
}

public sealed class StreamHandle : CudaHandle
{
    private StreamHandle(nint context) : base(context) { }

    public static unsafe StreamHandle Create(nint context, uint flags = Driver.StreamNonBlocking)
    {
        var h = new StreamHandle(context);
        nint s;
        Driver.Check(Driver.cuStreamCreate(&s, flags));
        h.Set(s);
        return h;
    }

    protected override CuResult Destroy(nint value) => Driver.cuStreamDestroy_v2(value);
}

public sealed class EventHandle : CudaHandle
{
    private EventHandle(nint context) : base(context) { }

    public static unsafe EventHandle Create(nint context, uint flags)
    {
        var h = new EventHandle(context);
        nint e;
        Driver.Check(Driver.cuEventCreate(&e, flags));
        h.Set(e);
        return h;
    }

    protected override CuResult Destroy(nint value) => Driver.cuEventDestroy_v2(value);
}

public sealed class CudaModuleHandle : CudaHandle
{
    private CudaModuleHandle(nint context) : base(context) { }

    /// <summary>Loads a cubin, fatbin or NUL-terminated PTX image.</summary>
    public static unsafe CudaModuleHandle Load(nint context, ReadOnlySpan<byte> image)
    {
        var h = new CudaModuleHandle(context);
        nint m;
        fixed (byte* p = image) Driver.Check(Driver.cuModuleLoadData(&m, p));
        h.Set(m);
        return h;
    }

    protected override CuResult Destroy(nint value) => Driver.cuModuleUnload(value);
}

public sealed class GraphHandle : CudaHandle
{
    internal GraphHandle(nint context, nint graph) : base(context) => Set(graph);
    protected override CuResult Destroy(nint value) => Driver.cuGraphDestroy(value);
}

public sealed class GraphExecHandle : CudaHandle
{
    internal GraphExecHandle(nint context, nint exec) : base(context) => Set(exec);
    protected override CuResult Destroy(nint value) => Driver.cuGraphExecDestroy(value);
}
