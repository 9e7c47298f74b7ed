// NCCL (libnccl.so.2, NCCL 2.x), bound exactly as nccl.h declares it: ncclResult_t, ncclDataType_t and
// ncclRedOp_t with their header values, ncclUniqueId as its 128 bytes (passed BY VALUE to ncclCommInitRank),
// ncclComm_t and cudaStream_t as pointers (a CUDA runtime stream is the driver's CUstream). The library is found
// like cuDNN (NativeLibraries: SIMCLR_CUDA_LIBRARY_PATH, the loader's path, CUDA_PATH, /usr/local/cuda and the
// nvidia/nccl/lib folder of NVIDIA's nvidia-nccl-cu12 wheel). Raw imports under their C names, NcclException,
// one Check helper, and the communicator handle, destroyed only by Dispose (a finalizer just reports the leak).
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using SimClr.Kernels.Cuda.Native;

namespace SimClr.Kernels.Distributed.Native;

/// <summary>ncclResult_t.</summary>
public enum NcclResult
{
    Success = 0,
    UnhandledCudaError = 1,
    SystemError = 2,
    InternalError = 3,
    InvalidArgument = 4,
    InvalidUsage = 5,
    RemoteError = 6,
    InProgress = 7,
    Timeout = 8,
}

/// <summary>ncclDataType_t (the types this program sends).</summary>
public enum NcclDataType { Int8 = 0, Uint8 = 1, Int32 = 2, Uint32 = 3, Int64 = 4, Uint64 = 5, Float16 = 6, Float32 = 7, Float64 = 8, Bfloat16 = 9 }

/// <summary>ncclRedOp_t (built-in operations).</summary>
public enum NcclRedOp { Sum = 0, Prod = 1, Max = 2, Min = 3, Avg = 4 }

/// <summary>ncclUniqueId: NCCL_UNIQUE_ID_BYTES (128) opaque bytes.</summary>
[StructLayout(LayoutKind.Sequential, Size = Nccl.UniqueIdBytes)]
public unsafe struct NcclUniqueId
{
    public fixed byte Internal[Nccl.UniqueIdBytes];
}

/// <summary>An NCCL call failed.</summary>
public sealed class NcclException(NcclResult status, string nativeMessage, string call)
    : NativeCallException("NCCL", Nccl.StatusName(status), (int)status, nativeMessage, call)
{
    public NcclResult Status { get; } = status;
}

public static unsafe partial class Nccl
{
    static Nccl() => NativeLibraries.EnsureResolver();

    public const int UniqueIdBytes = 128;

    /// <summary>Loads libnccl (once) or throws CudaNotAvailableException naming what was tried.</summary>
    public static LoadedLibrary Load() => NativeLibraries.Require(CudaLibrary.Nccl);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Check(NcclResult status, [CallerArgumentExpression(nameof(status))] string call = "")
    {
        if (status != NcclResult.Success) Throw(status, call);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Throw(NcclResult status, string call) => throw new NcclException(status, Message(status), call);

    public static string StatusName(NcclResult status) =>
        status == NcclResult.Success ? "ncclSuccess" : Enum.IsDefined(status) ? $"nccl{status}" : $"ncclResult_t {(int)status}";

    private static string Message(NcclResult status)
    {
        if (!NativeLibraries.IsLoaded(CudaLibrary.Nccl)) return "no message (libnccl is not loaded)";
        return Marshal.PtrToStringUTF8(ncclGetErrorString(status)) ?? "";
    }

    /// <summary>NCCL_VERSION_CODE of the loaded library as major.minor.patch.</summary>
    public static Version LibraryVersion()
    {
        Load();
        int code;
        Check(ncclGetVersion(&code));
        // NCCL_VERSION(X,Y,Z): X·1000 + Y·100 + Z up to 2.8, X·10000 + Y·100 + Z from 2.9 on.
        return code >= 10000 ? new Version(code / 10000, code / 100 % 100, code % 100) : new Version(code / 1000, code / 100 % 10, code % 100);
    }

    /// <summary>The element type of T for NCCL.</summary>
    public static NcclDataType DataType<T>() where T : unmanaged =>
        typeof(T) == typeof(float) ? NcclDataType.Float32 : typeof(T) == typeof(double) ? NcclDataType.Float64 : typeof(T) == typeof(int) ? NcclDataType.Int32
        : typeof(T) == typeof(long) ? NcclDataType.Int64 : typeof(T) == typeof(byte) ? NcclDataType.Uint8
        : throw new ArgumentException($"NCCL: element type {typeof(T).Name} is not one of float, double, int, long, byte");

    // ---- raw imports: exact C names ---------------------------------------------------------------
    [LibraryImport(NativeLibraries.NcclName)] internal static partial NcclResult ncclGetVersion(int* version);
    [LibraryImport(NativeLibraries.NcclName)] internal static partial NcclResult ncclGetUniqueId(NcclUniqueId* uniqueId);
    [LibraryImport(NativeLibraries.NcclName)] internal static partial NcclResult ncclCommInitRank(nint* comm, int nranks, NcclUniqueId commId, int rank);
    [LibraryImport(NativeLibraries.NcclName)] internal static partial NcclResult ncclCommDestroy(nint comm);
    [LibraryImport(NativeLibraries.NcclName)] internal static partial NcclResult ncclCommAbort(nint comm);
    [LibraryImport(NativeLibraries.NcclName)] internal static partial NcclResult ncclCommGetAsyncError(nint comm, NcclResult* asyncError);
    [LibraryImport(NativeLibraries.NcclName)] internal static partial nint ncclGetErrorString(NcclResult result);
    [LibraryImport(NativeLibraries.NcclName)]
    internal static partial NcclResult ncclAllReduce(void* sendBuffer, void* receiveBuffer, nuint count, NcclDataType datatype, NcclRedOp op, nint comm, nint stream);
    [LibraryImport(NativeLibraries.NcclName)]
    internal static partial NcclResult ncclAllGather(void* sendBuffer, void* receiveBuffer, nuint sendCount, NcclDataType datatype, nint comm, nint stream);
    [LibraryImport(NativeLibraries.NcclName)]
    internal static partial NcclResult ncclBroadcast(void* sendBuffer, void* receiveBuffer, nuint count, NcclDataType datatype, int root, nint comm, nint stream);
}

/// <summary>An ncclComm_t, destroyed by Dispose with its device's context current.</summary>
public sealed class NcclCommHandle : CudaHandle
{
    private NcclCommHandle(nint context) : base(context) { }

    /// <summary>ncclCommInitRank; the caller has made the device's context current and every rank calls it together.</summary>
    public static unsafe NcclCommHandle InitRank(nint context, int ranks, in NcclUniqueId id, int rank)
    {
        var h = new NcclCommHandle(context);
        nint comm;
        Nccl.Check(Nccl.ncclCommInitRank(&comm, ranks, id, rank));
        h.Set(comm);
        return h;
    }

    /// <summary>Ends the communicator's outstanding work at once (a peer died); the handle is then released.</summary>
    public void Abort()
    {
        if (IsInvalid || IsClosed) return;
        Nccl.ncclCommAbort(DangerousGetHandle());
        SetHandleAsInvalid();
    }

    protected override CuResult Destroy(nint value) =>
        Nccl.ncclCommDestroy(value) == NcclResult.Success ? CuResult.Success : CuResult.Unknown;
}
