// cuDNN (libcudnn.so.9, or .8) through its legacy API: raw imports, cudnnStatus_t, CudnnException, the Check
// helper, the enums and perf-result structs of cudnn_*_v9.h, and SafeHandles for the handle and descriptors.
// In cuDNN 9 libcudnn.so.9 is a shim that exports the whole API and opens its sub-libraries on demand.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace SimClr.Kernels.Cuda.Native;

/// <summary>cudnnStatus_t as numbered by cuDNN 9 (cuDNN 8 used 1..14; its names come from cudnnGetErrorString).</summary>
public enum CudnnStatus
{
    Success = 0,
    NotInitialized = 1001,
    SublibraryVersionMismatch = 1002,
    SerializationVersionMismatch = 1003,
    Deprecated = 1004,
    LicenseError = 1005,
    RuntimeInProgress = 1006,
    RuntimeFpOverflow = 1007,
    SublibraryLoadingFailed = 1008,
    BadParam = 2000,
    BadParamNullPointer = 2002,
    BadParamMisalignedPointer = 2003,
    BadParamNotFinalized = 2004,
    BadParamOutOfBound = 2005,
    BadParamSizeInsufficient = 2006,
    BadParamStreamMismatch = 2007,
    BadParamShapeMismatch = 2008,
    NotSupported = 3000,
    InternalError = 4000,
    ExecutionFailed = 5000,
}

public enum CudnnDataType { Float = 0, Double = 1, Half = 2, BFloat16 = 9 }
public enum CudnnTensorFormat { Nchw = 0, Nhwc = 1 }
public enum CudnnConvolutionMode { Convolution = 0, CrossCorrelation = 1 }
/// <summary>cudnnMathType_t: Fma restricts FP32 convolutions to FMA kernels (no TF32); TensorOp allows TF32.</summary>
public enum CudnnMathType { Default = 0, TensorOp = 1, TensorOpAllowConversion = 2, Fma = 3 }
public enum CudnnBatchNormMode { PerActivation = 0, Spatial = 1, SpatialPersistent = 2 }
public enum CudnnPoolingMode { Max = 0, AverageCountIncludePadding = 1, AverageCountExcludePadding = 2, MaxDeterministic = 3 }
public enum CudnnNanPropagation { NotPropagate = 0, Propagate = 1 }
public enum CudnnActivationMode { Sigmoid = 0, Relu = 1, Tanh = 2, ClippedRelu = 3, Elu = 4, Identity = 5, Swish = 6 }
public enum CudnnDeterminism { NonDeterministic = 0, Deterministic = 1 }

/// <summary>cudnnConvolutionFwdAlgoPerf_t (the bwd-data and bwd-filter structs have the same layout).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct CudnnConvolutionAlgoPerf
{
    public int Algorithm;
    public CudnnStatus Status;
    public float TimeMs;
    public nuint Memory;
    public CudnnDeterminism Determinism;
    public CudnnMathType MathType;
    private int _reserved0, _reserved1, _reserved2;
}

/// <summary>A cuDNN call failed.</summary>
public sealed class CudnnException(CudnnStatus status, string statusName, string nativeMessage, string call)
    : NativeCallException("cuDNN", statusName, (int)status, nativeMessage, call)
{
    public CudnnStatus Status { get; } = status;
}

public static unsafe partial class Cudnn
{
    static Cudnn() => NativeLibraries.EnsureResolver();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Check(CudnnStatus status, [CallerArgumentExpression(nameof(status))] string call = "")
    {
        if (status != CudnnStatus.Success) Throw(status, call);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Throw(CudnnStatus status, string call) => throw new CudnnException(status, StatusName(status), Message(), call);

    /// <summary>The library's own name for the status when loaded ("CUDNN_STATUS_BAD_PARAM"), else from the cuDNN 9 numbering.</summary>
    public static string StatusName(CudnnStatus status)
    {
        if (NativeLibraries.IsLoaded(CudaLibrary.Cudnn) && Marshal.PtrToStringUTF8(cudnnGetErrorString(status)) is { Length: > 0 } name) return name;
        return Enum.IsDefined(status) ? $"CUDNN_STATUS_{Nvrtc.ToUpperSnake(status.ToString())}" : $"cudnnStatus_t {(int)status}";
    }

    private static string Message()
    {
        if (!NativeLibraries.IsLoaded(CudaLibrary.Cudnn)) return "no message (libcudnn is not loaded)";
        try
        {
            byte* text = stackalloc byte[1024];
            text[0] = 0;
            cudnnGetLastErrorString(text, 1024);
            var message = Marshal.PtrToStringUTF8((nint)text);
            return string.IsNullOrEmpty(message) ? "no further detail from cuDNN" : message;
        }
        catch (EntryPointNotFoundException) { return "no further detail (cuDNN 8 has no cudnnGetLastErrorString)"; }
    }

    /// <summary>cudnnGetVersion as (major, minor, patch), decoding both the 8.x (8906) and 9.x (90100) schemes.</summary>
    public static (int Major, int Minor, int Patch) Version()
    {
        NativeLibraries.Require(CudaLibrary.Cudnn);
        long v = (long)cudnnGetVersion();
        return v >= 90000 ? ((int)(v / 10000), (int)(v % 10000 / 100), (int)(v % 100)) : ((int)(v / 1000), (int)(v % 1000 / 100), (int)(v % 100));
    }

    // ---- raw imports ------------------------------------------------------------------------------
    [LibraryImport(NativeLibraries.CudnnName)] internal static partial nuint cudnnGetVersion();
    [LibraryImport(NativeLibraries.CudnnName)] internal static partial nint cudnnGetErrorString(CudnnStatus status);
    [LibraryImport(NativeLibraries.CudnnName)] internal static partial void cudnnGetLastErrorString(byte* message, nuint maxSize);
    [LibraryImport(NativeLibraries.CudnnName)] internal static partial CudnnStatus cudnnCreate(nint* handle);
    [LibraryImport(NativeLibraries.CudnnName)] internal static partial CudnnStatus cudnnDestroy(nint handle);
    [LibraryImport(NativeLibraries.CudnnName)] internal static partial CudnnStatus cudnnSetStream(nint handle, nint stream);

    [LibraryImport(NativeLibraries.CudnnName)] internal static partial CudnnStatus cudnnCreateTensorDescriptor(nint* desc);
    [LibraryImport(NativeLibraries.CudnnName)] internal static partial CudnnStatus cudnnDestroyTensorDescriptor(nint desc);
    [LibraryImport(NativeLibraries.CudnnName)]
    internal static partial CudnnStatus cudnnSetTensor4dDescriptor(nint desc, CudnnTensorFormat format, CudnnDataType dataType, int n, int c, int h, int w);
    [LibraryImport(NativeLibraries.CudnnName)] internal static partial CudnnStatus cudnnCreateFilterDescriptor(nint* desc);
    [LibraryImport(NativeLibraries.CudnnName)] internal static partial CudnnStatus cudnnDestroyFilterDescriptor(nint desc);
    [LibraryImport(NativeLibraries.CudnnName)]
    internal static partial CudnnStatus cudnnSetFilter4dDescriptor(nint desc, CudnnDataType dataType, CudnnTensorFormat format, int k, int c, int h, int w);
    [LibraryImport(NativeLibraries.CudnnName)] internal static partial CudnnStatus cudnnCreateConvolutionDescriptor(nint* desc);
    [LibraryImport(NativeLibraries.CudnnName)] internal static partial CudnnStatus cudnnDestroyConvolutionDescriptor(nint desc);
    [LibraryImport(NativeLibraries.CudnnName)]
    internal static partial CudnnStatus cudnnSetConvolution2dDescriptor(nint desc, int padH, int padW, int strideH, int strideW, int dilationH, int dilationW,
        CudnnConvolutionMode mode, CudnnDataType computeType);
    [LibraryImport(NativeLibraries.CudnnName)] internal static partial CudnnStatus cudnnSetConvolutionMathType(nint desc, CudnnMathType mathType);
    [LibraryImport(NativeLibraries.CudnnName)] internal static partial CudnnStatus cudnnCreatePoolingDescriptor(nint* desc);
    [LibraryImport(NativeLibraries.CudnnName)] internal static partial CudnnStatus cudnnDestroyPoolingDescriptor(nint desc);
    [LibraryImport(NativeLibraries.CudnnName)]
    internal static partial CudnnStatus cudnnSetPooling2dDescriptor(nint desc, CudnnPoolingMode mode, CudnnNanPropagation nan, int windowH, int windowW,
        int padH, int padW, int strideH, int strideW);
    [LibraryImport(NativeLibraries.CudnnName)] internal static partial CudnnStatus cudnnCreateActivationDescriptor(nint* desc);
    [LibraryImport(NativeLibraries.CudnnName)] internal static partial CudnnStatus cudnnDestroyActivationDescriptor(nint desc);
    [LibraryImport(NativeLibraries.CudnnName)]
    internal static partial CudnnStatus cudnnSetActivationDescriptor(nint desc, CudnnActivationMode mode, CudnnNanPropagation nan, double coef);

    [LibraryImport(NativeLibraries.CudnnName)]
    internal static partial CudnnStatus cudnnFindConvolutionForwardAlgorithm(nint handle, nint xDesc, nint wDesc, nint convDesc, nint yDesc,
        int requested, int* returned, CudnnConvolutionAlgoPerf* results);
    [LibraryImport(NativeLibraries.CudnnName)]
    internal static partial CudnnStatus cudnnFindConvolutionBackwardDataAlgorithm(nint handle, nint wDesc, nint dyDesc, nint convDesc, nint dxDesc,
        int requested, int* returned, CudnnConvolutionAlgoPerf* results);
    [LibraryImport(NativeLibraries.CudnnName)]
    internal static partial CudnnStatus cudnnFindConvolutionBackwardFilterAlgorithm(nint handle, nint xDesc, nint dyDesc, nint convDesc, nint dwDesc,
        int requested, int* returned, CudnnConvolutionAlgoPerf* results);
    [LibraryImport(NativeLibraries.CudnnName)]
    internal static partial CudnnStatus cudnnGetConvolutionForwardAlgorithm_v7(nint handle, nint xDesc, nint wDesc, nint convDesc, nint yDesc,
        int requested, int* returned, CudnnConvolutionAlgoPerf* results);
    [LibraryImport(NativeLibraries.CudnnName)]
    internal static partial CudnnStatus cudnnGetConvolutionBackwardDataAlgorithm_v7(nint handle, nint wDesc, nint dyDesc, nint convDesc, nint dxDesc,
        int requested, int* returned, CudnnConvolutionAlgoPerf* results);
    [LibraryImport(NativeLibraries.CudnnName)]
    internal static partial CudnnStatus cudnnGetConvolutionBackwardFilterAlgorithm_v7(nint handle, nint xDesc, nint dyDesc, nint convDesc, nint dwDesc,
        int requested, int* returned, CudnnConvolutionAlgoPerf* results);
    [LibraryImport(NativeLibraries.CudnnName)]
    internal static partial CudnnStatus cudnnGetConvolutionForwardWorkspaceSize(nint handle, nint xDesc, nint wDesc, nint convDesc, nint yDesc,
        int algorithm, nuint* bytes);
    [LibraryImport(NativeLibraries.CudnnName)]
    internal static partial CudnnStatus cudnnGetConvolutionBackwardDataWorkspaceSize(nint handle, nint wDesc, nint dyDesc, nint convDesc, nint dxDesc,
        int algorithm, nuint* bytes);
    [LibraryImport(NativeLibraries.CudnnName)]
    internal static partial CudnnStatus cudnnGetConvolutionBackwardFilterWorkspaceSize(nint handle, nint xDesc, nint dyDesc, nint convDesc, nint dwDesc,
        int algorithm, nuint* bytes);
    [LibraryImport(NativeLibraries.CudnnName)]
    internal static partial CudnnStatus cudnnConvolutionForward(nint handle, float* alpha, nint xDesc, void* x, nint wDesc, void* w, nint convDesc,
        int algorithm, void* workspace, nuint workspaceBytes, float* beta, nint yDesc, void* y);
    [LibraryImport(NativeLibraries.CudnnName)]
    internal static partial CudnnStatus cudnnConvolutionBackwardData(nint handle, float* alpha, nint wDesc, void* w, nint dyDesc, void* dy, nint convDesc,
        int algorithm, void* workspace, nuint workspaceBytes, float* beta, nint dxDesc, void* dx);
    [LibraryImport(NativeLibraries.CudnnName)]
    internal static partial CudnnStatus cudnnConvolutionBackwardFilter(nint handle, float* alpha, nint xDesc, void* x, nint dyDesc, void* dy, nint convDesc,
        int algorithm, void* workspace, nuint workspaceBytes, float* beta, nint dwDesc, void* dw);

    [LibraryImport(NativeLibraries.CudnnName)]
    internal static partial CudnnStatus cudnnBatchNormalizationForwardTraining(nint handle, CudnnBatchNormMode mode, float* alpha, float* beta,
        nint xDesc, void* x, nint yDesc, void* y, nint scaleBiasMeanVarDesc, void* scale, void* bias, double exponentialAverageFactor,
        void* runningMean, void* runningVariance, double epsilon, void* saveMean, void* saveInvVariance);
    [LibraryImport(NativeLibraries.CudnnName)]
    internal static partial CudnnStatus cudnnBatchNormalizationForwardInference(nint handle, CudnnBatchNormMode mode, float* alpha, float* beta,
        nint xDesc, void* x, nint yDesc, void* y, nint scaleBiasMeanVarDesc, void* scale, void* bias, void* estimatedMean, void* estimatedVariance, double epsilon);
    [LibraryImport(NativeLibraries.CudnnName)]
    internal static partial CudnnStatus cudnnBatchNormalizationBackward(nint handle, CudnnBatchNormMode mode, float* alphaDataDiff, float* betaDataDiff,
        float* alphaParamDiff, float* betaParamDiff, nint xDesc, void* x, nint dyDesc, void* dy, nint dxDesc, void* dx, nint scaleBiasDiffDesc,
        void* scale, void* scaleDiff, void* biasDiff, double epsilon, void* savedMean, void* savedInvVariance);

    [LibraryImport(NativeLibraries.CudnnName)]
    internal static partial CudnnStatus cudnnPoolingForward(nint handle, nint poolingDesc, float* alpha, nint xDesc, void* x, float* beta, nint yDesc, void* y);
    [LibraryImport(NativeLibraries.CudnnName)]
    internal static partial CudnnStatus cudnnPoolingBackward(nint handle, nint poolingDesc, float* alpha, nint yDesc, void* y, nint dyDesc, void* dy,
        nint xDesc, void* x, float* beta, nint dxDesc, void* dx);
    [LibraryImport(NativeLibraries.CudnnName)]
    internal static partial CudnnStatus cudnnActivationForward(nint handle, nint activationDesc, float* alpha, nint xDesc, void* x, float* beta, nint yDesc, void* y);
    [LibraryImport(NativeLibraries.CudnnName)]
    internal static partial CudnnStatus cudnnActivationBackward(nint handle, nint activationDesc, float* alpha, nint yDesc, void* y, nint dyDesc, void* dy,
        nint xDesc, void* x, float* beta, nint dxDesc, void* dx);
}

/// <summary>A cuDNN handle bound to one context.</summary>
public sealed class CudnnHandle : CudaHandle
{
    private CudnnHandle(nint context) : base(context) { }

    public static unsafe CudnnHandle Create(nint context)
    {
        NativeLibraries.Require(CudaLibrary.Cudnn);
        var h = new CudnnHandle(context);
        nint handle;
        Cudnn.Check(Cudnn.cudnnCreate(&handle));
        h.Set(handle);
        return h;
    }

    protected override CuResult Destroy(nint value) => Cudnn.cudnnDestroy(value).ToCuResult();
}

/// <summary>The kinds of cuDNN descriptors; each is created and destroyed by its own pair of calls.</summary>
public enum CudnnDescriptorKind { Tensor, Filter, Convolution, Pooling, Activation }

/// <summary>A cuDNN descriptor (host-side object); destroyed only by Dispose.</summary>
public sealed class CudnnDescriptor : CudaHandle
{
    public CudnnDescriptorKind Kind { get; }

    private CudnnDescriptor(CudnnDescriptorKind kind) : base(0) => Kind = kind;

    public static unsafe CudnnDescriptor Create(CudnnDescriptorKind kind)
    {
        var d = new CudnnDescriptor(kind);
        nint desc;
        switch (kind)
        {
            case CudnnDescriptorKind.Tensor: Cudnn.Check(Cudnn.cudnnCreateTensorDescriptor(&desc)); break;
            case CudnnDescriptorKind.Filter: Cudnn.Check(Cudnn.cudnnCreateFilterDescriptor(&desc)); break;
            case CudnnDescriptorKind.Convolution: Cudnn.Check(Cudnn.cudnnCreateConvolutionDescriptor(&desc)); break;
            case CudnnDescriptorKind.Pooling: Cudnn.Check(Cudnn.cudnnCreatePoolingDescriptor(&desc)); break;
            case CudnnDescriptorKind.Activation: Cudnn.Check(Cudnn.cudnnCreateActivationDescriptor(&desc)); break;
            default: throw new ArgumentOutOfRangeException(nameof(kind));
        }
        d.Set(desc);
        return d;
    }

    /// <summary>A 4-d float tensor descriptor, NCHW.</summary>
    public static CudnnDescriptor Tensor4d(int n, int c, int h, int w)
    {
        var d = Create(CudnnDescriptorKind.Tensor);
        Cudnn.Check(Cudnn.cudnnSetTensor4dDescriptor(d.Value, CudnnTensorFormat.Nchw, CudnnDataType.Float, n, c, h, w));
        return d;
    }

    /// <summary>A float filter descriptor [K, C, H, W].</summary>
    public static CudnnDescriptor Filter4d(int k, int c, int h, int w)
    {
        var d = Create(CudnnDescriptorKind.Filter);
        Cudnn.Check(Cudnn.cudnnSetFilter4dDescriptor(d.Value, CudnnDataType.Float, CudnnTensorFormat.Nchw, k, c, h, w));
        return d;
    }

    /// <summary>The raw descriptor for calls.</summary>
    public nint Value => DangerousGetHandle();

    protected override CuResult Destroy(nint value) => (Kind switch
    {
        CudnnDescriptorKind.Tensor => Cudnn.cudnnDestroyTensorDescriptor(value),
        CudnnDescriptorKind.Filter => Cudnn.cudnnDestroyFilterDescriptor(value),
        CudnnDescriptorKind.Convolution => Cudnn.cudnnDestroyConvolutionDescriptor(value),
        CudnnDescriptorKind.Pooling => Cudnn.cudnnDestroyPoolingDescriptor(value),
        _ => Cudnn.cudnnDestroyActivationDescriptor(value),
    }).ToCuResult();
}

internal static class CudnnStatusExtensions
{
    public static CuResult ToCuResult(this CudnnStatus status) => status == CudnnStatus.Success ? CuResult.Success : CuResult.Unknown;
}
