// cuBLAS (libcublas.so.13/12/11): raw imports under the exported `_v2` names, cublasStatus_t, CublasException,
// the Check helper and the handle. All matrices are column-major here; CudaBackend turns row-major calls
// into column-major ones by computing Cᵀ = op(B)ᵀ·op(A)ᵀ.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace SimClr.Kernels.Cuda.Native;

/// <summary>cublasStatus_t.</summary>
public enum CublasStatus
{
    Success = 0,
    NotInitialized = 1,
    AllocFailed = 3,
    InvalidValue = 7,
    ArchMismatch = 8,
    MappingError = 11,
    ExecutionFailed = 13,
    InternalError = 14,
    NotSupported = 15,
    LicenseError = 16,
}

/// <summary>cublasOperation_t.</summary>
public enum CublasOperation { N = 0, T = 1, C = 2 }

/// <summary>cublasMath_t: Default is strict FP32 for SGEMM; Tf32TensorOp lets FP32 GEMMs use TF32 tensor cores.</summary>
public enum CublasMath { Default = 0, TensorOp = 1, Pedantic = 2, Tf32TensorOp = 3 }

/// <summary>cublasComputeType_t (for cublasGemmEx).</summary>
public enum CublasComputeType { Compute32F = 68, Compute32FPedantic = 69, Compute32FFastTf32 = 77, Compute32FFast16BF = 75, Compute32FFast16F = 74 }

/// <summary>cudaDataType_t (library_types.h).</summary>
public enum CudaDataType { R32F = 0, R16F = 2, R16BF = 14 }

/// <summary>A cuBLAS call failed.</summary>
public sealed class CublasException(CublasStatus status, string statusName, string nativeMessage, string call)
    : NativeCallException("cuBLAS", statusName, (int)status, nativeMessage, call)
{
    public CublasStatus Status { get; } = status;
}

public static unsafe partial class Cublas
{
    static Cublas() => NativeLibraries.EnsureResolver();

    /// <summary>CUBLAS_GEMM_DEFAULT.</summary>
    public const int GemmDefaultAlgorithm = -1;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Check(CublasStatus status, [CallerArgumentExpression(nameof(status))] string call = "")
    {
        if (status != CublasStatus.Success) Throw(status, call);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Throw(CublasStatus status, string call) => throw new CublasException(status, StatusName(status), Message(status), call);

    public static string StatusName(CublasStatus status) =>
        Enum.IsDefined(status) ? $"CUBLAS_STATUS_{Nvrtc.ToUpperSnake(status.ToString())}" : $"cublasStatus_t {(int)status}";

    private static string Message(CublasStatus status)
    {
        if (!NativeLibraries.IsLoaded(CudaLibrary.Cublas)) return "no message (libcublas is not loaded)";
        try { return Marshal.PtrToStringUTF8(cublasGetStatusString(status)) ?? ""; }
        catch (EntryPointNotFoundException) { return "no message (this cuBLAS predates cublasGetStatusString)"; }
    }

    // ---- raw imports ------------------------------------------------------------------------------
    [LibraryImport(NativeLibraries.CublasName)] internal static partial CublasStatus cublasCreate_v2(nint* handle);
    [LibraryImport(NativeLibraries.CublasName)] internal static partial CublasStatus cublasDestroy_v2(nint handle);
    [LibraryImport(NativeLibraries.CublasName)] internal static partial CublasStatus cublasSetStream_v2(nint handle, nint stream);
    [LibraryImport(NativeLibraries.CublasName)] internal static partial CublasStatus cublasSetWorkspace_v2(nint handle, void* workspace, nuint bytes);
    [LibraryImport(NativeLibraries.CublasName)] internal static partial CublasStatus cublasGetVersion_v2(nint handle, int* version);
    [LibraryImport(NativeLibraries.CublasName)] internal static partial CublasStatus cublasGetProperty(int libraryPropertyType, int* value);
    [LibraryImport(NativeLibraries.CublasName)] internal static partial CublasStatus cublasSetMathMode(nint handle, CublasMath mode);
    [LibraryImport(NativeLibraries.CublasName)] internal static partial nint cublasGetStatusString(CublasStatus status);
    [LibraryImport(NativeLibraries.CublasName)]
    internal static partial CublasStatus cublasSgemm_v2(nint handle, CublasOperation transA, CublasOperation transB, int m, int n, int k,
        float* alpha, float* a, int lda, float* b, int ldb, float* beta, float* c, int ldc);
    [LibraryImport(NativeLibraries.CublasName)]
    internal static partial CublasStatus cublasGemmEx(nint handle, CublasOperation transA, CublasOperation transB, int m, int n, int k,
        void* alpha, void* a, CudaDataType aType, int lda, void* b, CudaDataType bType, int ldb, void* beta, void* c, CudaDataType cType, int ldc,
        CublasComputeType computeType, int algorithm);
    [LibraryImport(NativeLibraries.CublasName)]
    internal static partial CublasStatus cublasSgemv_v2(nint handle, CublasOperation trans, int m, int n, float* alpha, float* a, int lda,
        float* x, int incx, float* beta, float* y, int incy);
    [LibraryImport(NativeLibraries.CublasName)]
    internal static partial CublasStatus cublasSger_v2(nint handle, int m, int n, float* alpha, float* x, int incx, float* y, int incy, float* a, int lda);
}

/// <summary>A cuBLAS handle; destroyed only by Dispose (a finalizer just reports the leak).</summary>
public sealed class CublasHandle : CudaHandle
{
    private CublasHandle(nint context) : base(context) { }

    public static unsafe CublasHandle Create(nint context)
    {
        NativeLibraries.Require(CudaLibrary.Cublas);
        var h = new CublasHandle(context);
        nint handle;
        Cublas.Check(Cublas.cublasCreate_v2(&handle));
        h.Set(handle);
        return h;
    }

    protected override CuResult Destroy(nint value) =>
        Cublas.cublasDestroy_v2(value) == CublasStatus.Success ? CuResult.Success : CuResult.Unknown;
}
