// Open MPI's C ABI (libmpi.so.40: Open MPI 4.x and 5.x), bound exactly as mpi.h declares it. In Open MPI the
// handles are pointers: MPI_Comm is `struct ompi_communicator_t*`, MPI_Datatype `struct ompi_datatype_t*`,
// MPI_Op `struct ompi_op_t*`, MPI_Request `struct ompi_request_t*`, and the predefined handles are the ADDRESSES
// of global structs that libmpi exports (MPI_COMM_WORLD is &ompi_mpi_comm_world, MPI_FLOAT &ompi_mpi_float,
// MPI_SUM &ompi_mpi_op_sum, MPI_ERRORS_RETURN &ompi_mpi_errors_return). MPI_IN_PLACE is (void*)1. MPICH's
// integer handles are a different ABI, so only Open MPI is supported.
// Raw imports under their C names, the error-class enum, MpiException, one Check helper, and Load, which opens the
// library with RTLD_GLOBAL: Open MPI dlopens its components (mca_pml_ob1.so and others), and some of them expect
// libmpi's symbols to be globally visible without linking to it, which .NET's own loader (RTLD_LOCAL) breaks.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using SimClr.Kernels.Cuda.Native;

namespace SimClr.Kernels.Distributed.Native;

/// <summary>MPI error classes (mpi.h); the ones below 20 are those collectives return.</summary>
public enum MpiError
{
    Success = 0,
    Buffer = 1,
    Count = 2,
    Type = 3,
    Tag = 4,
    Comm = 5,
    Rank = 6,
    Request = 7,
    Root = 8,
    Group = 9,
    Op = 10,
    Topology = 11,
    Dims = 12,
    Arg = 13,
    Unknown = 14,
    Truncate = 15,
    Other = 16,
    Intern = 17,
    InStatus = 18,
    Pending = 19,
}

/// <summary>The thread-support levels of MPI_Init_thread, in mpi.h's order.</summary>
public enum MpiThreadLevel { Single = 0, Funneled = 1, Serialized = 2, Multiple = 3 }

/// <summary>An MPI call returned an error.</summary>
public sealed class MpiException(MpiError error, string nativeMessage, string call)
    : NativeCallException("MPI", Mpi.ErrorName(error), (int)error, nativeMessage, call)
{
    public MpiError Error { get; } = error;
}

/// <summary>Open MPI is not installed or not loadable; the message says what was tried.</summary>
public sealed class MpiNotAvailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>The predefined handles this program uses, read from libmpi's exports.</summary>
public readonly record struct MpiHandles(nint CommWorld, nint Float, nint Double, nint Int32, nint Int64, nint Byte, nint Sum, nint ErrorsReturn);

public static unsafe partial class Mpi
{
    /// <summary>The soname the imports bind to (Open MPI 4.x and 5.x).</summary>
    public const string LibraryName = "libmpi.so.40";

    /// <summary>A full path that replaces the loader's search for libmpi (a cluster's own Open MPI build).</summary>
    public const string PathVariable = "SIMCLR_MPI_LIBRARY";

    /// <summary>MPI_IN_PLACE.</summary>
    public static readonly nint InPlace = 1;

    private const int RtldNow = 0x2, RtldGlobal = 0x100;
    private static readonly Lock Gate = new();
    private static MpiHandles? s_handles;
    private static string? s_path;

    /// <summary>The file libmpi was loaded from, once loaded.</summary>
    public static string? LoadedFrom
    {
        get { lock (Gate) return s_path; }
    }

    /// <summary>Opens libmpi (once, RTLD_GLOBAL) and reads the predefined handles; throws MpiNotAvailableException
    /// naming what was tried when it cannot.</summary>
    public static MpiHandles Load()
    {
        lock (Gate)
        {
            if (s_handles is { } loaded) return loaded;
            string file = Environment.GetEnvironmentVariable(PathVariable) is { Length: > 0 } p ? p : LibraryName;
            nint handle = dlopen(file, RtldNow | RtldGlobal);
            if (handle == 0)
            {
                string reason = Marshal.PtrToStringUTF8(dlerror()) ?? "unknown error";
                throw new MpiNotAvailableException($"Open MPI (libmpi.so.40) cannot be loaded: {reason}. Install openmpi-bin and libopenmpi-dev, " +
                    $"or set {PathVariable} to the full path of an Open MPI libmpi.so.40");
            }
            nint Export(string name) => NativeLibrary.TryGetExport(handle, name, out var address) ? address
                : throw new MpiNotAvailableException($"{file} does not export {name}: it is not Open MPI (MPICH and others use a different ABI)");
            var handles = new MpiHandles(Export("ompi_mpi_comm_world"), Export("ompi_mpi_float"), Export("ompi_mpi_double"), Export("ompi_mpi_int"),
                Export("ompi_mpi_int64_t"), Export("ompi_mpi_byte"), Export("ompi_mpi_op_sum"), Export("ompi_mpi_errors_return"));
            s_path = file;
            s_handles = handles;
            return handles;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Check(MpiError error, [CallerArgumentExpression(nameof(error))] string call = "")
    {
        if (error != MpiError.Success) Throw(error, call);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Throw(MpiError error, string call) => throw new MpiException(error, ErrorString(error), call);

    public static string ErrorName(MpiError error) =>
        error == MpiError.Success ? "MPI_SUCCESS" : Enum.IsDefined(error) ? $"MPI_ERR_{Nvrtc.ToUpperSnake(error.ToString())}" : $"MPI error {(int)error}";

    private static string ErrorString(MpiError error)
    {
        const int max = 256; // MPI_MAX_ERROR_STRING
        byte* text = stackalloc byte[max + 1];
        int length;
        return MPI_Error_string((int)error, text, &length) == MpiError.Success ? Marshal.PtrToStringUTF8((nint)text, Math.Clamp(length, 0, max)) : "no message";
    }

    /// <summary>The library's own version line (MPI_Get_library_version), e.g. "Open MPI v4.1.4, ...".</summary>
    public static string LibraryVersion()
    {
        Load();
        const int max = 256; // MPI_MAX_LIBRARY_VERSION_STRING
        byte* text = stackalloc byte[max + 1];
        int length;
        Check(MPI_Get_library_version(text, &length));
        return (Marshal.PtrToStringUTF8((nint)text, Math.Clamp(length, 0, max)) ?? "").Split('\n')[0].Trim();
    }

    // ---- raw imports: exact C names ---------------------------------------------------------------
    [LibraryImport(LibraryName)] internal static partial MpiError MPI_Init_thread(int* argc, byte*** argv, MpiThreadLevel required, MpiThreadLevel* provided);
    [LibraryImport(LibraryName)] internal static partial MpiError MPI_Initialized(int* flag);
    [LibraryImport(LibraryName)] internal static partial MpiError MPI_Finalized(int* flag);
    [LibraryImport(LibraryName)] internal static partial MpiError MPI_Finalize();
    [LibraryImport(LibraryName)] internal static partial MpiError MPI_Abort(nint comm, int errorCode);
    [LibraryImport(LibraryName)] internal static partial MpiError MPI_Comm_rank(nint comm, int* rank);
    [LibraryImport(LibraryName)] internal static partial MpiError MPI_Comm_size(nint comm, int* size);
    [LibraryImport(LibraryName)] internal static partial MpiError MPI_Comm_set_errhandler(nint comm, nint errhandler);
    [LibraryImport(LibraryName)] internal static partial MpiError MPI_Error_string(int errorCode, byte* text, int* length);
    [LibraryImport(LibraryName)] internal static partial MpiError MPI_Get_library_version(byte* version, int* length);
    [LibraryImport(LibraryName)] internal static partial MpiError MPI_Allreduce(void* sendBuffer, void* receiveBuffer, int count, nint datatype, nint op, nint comm);
    [LibraryImport(LibraryName)]
    internal static partial MpiError MPI_Allgather(void* sendBuffer, int sendCount, nint sendType, void* receiveBuffer, int receiveCount, nint receiveType, nint comm);
    [LibraryImport(LibraryName)] internal static partial MpiError MPI_Bcast(void* buffer, int count, nint datatype, int root, nint comm);
    [LibraryImport(LibraryName)] internal static partial MpiError MPI_Barrier(nint comm);

    // dlopen and dlerror from libdl (glibc forwards them to libc.so.6 from 2.34 on).
    [LibraryImport("libdl.so.2", StringMarshalling = StringMarshalling.Utf8)] private static partial nint dlopen(string file, int mode);
    [LibraryImport("libdl.so.2")] private static partial nint dlerror();
}
