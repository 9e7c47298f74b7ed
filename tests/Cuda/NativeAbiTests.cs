// The ABI facts the bindings rely on, pinned to the numbers in the real headers (cuda.h 12.6, cudnn_graph.h /
// cudnn_ops.h / cudnn_cnn.h 9.6, cublas_api.h 12.6 and 13.0, library_types.h, nvrtc.h), so that an edit to an
// enum or a struct cannot silently change what crosses into native code. None of this needs a GPU; the export
// check runs against whichever libraries this machine has (NVRTC on most) and skips the others.
using System.Reflection;
using System.Runtime.InteropServices;
using SimClr.Kernels;
using SimClr.Kernels.Cuda.Native;

namespace SimClr.Tests.Cuda;

public class NativeAbiTests
{
    [Fact]
    public void ConvolutionPerfResultHasTheHeaderLayout()
    {
        // { int algo; int status; float time; size_t memory; int determinism; int mathType; int reserved[3]; }
        Assert.Equal(48, Marshal.SizeOf<CudnnConvolutionAlgoPerf>());
        Assert.Equal(0, (int)Marshal.OffsetOf<CudnnConvolutionAlgoPerf>(nameof(CudnnConvolutionAlgoPerf.Algorithm)));
        Assert.Equal(4, (int)Marshal.OffsetOf<CudnnConvolutionAlgoPerf>(nameof(CudnnConvolutionAlgoPerf.Status)));
        Assert.Equal(8, (int)Marshal.OffsetOf<CudnnConvolutionAlgoPerf>(nameof(CudnnConvolutionAlgoPerf.TimeMs)));
        Assert.Equal(16, (int)Marshal.OffsetOf<CudnnConvolutionAlgoPerf>(nameof(CudnnConvolutionAlgoPerf.Memory)));
        Assert.Equal(24, (int)Marshal.OffsetOf<CudnnConvolutionAlgoPerf>(nameof(CudnnConvolutionAlgoPerf.Determinism)));
        Assert.Equal(28, (int)Marshal.OffsetOf<CudnnConvolutionAlgoPerf>(nameof(CudnnConvolutionAlgoPerf.MathType)));
    }

    [Fact]
    public void KernelArgumentStructsMatchTheDeviceStructs()
    {
        Assert.Equal(24, Marshal.SizeOf<ParamSegment>()); // { i64 offset; i64 length; int flags; int pad; }
        Assert.Equal(16, Marshal.SizeOf<ImageSetShape>()); // { int count, height, width, channels; }
        Assert.Equal(22 * 4, Marshal.SizeOf<AugmentSpec>()); // 2 ints + 20 floats
    }

    [Fact]
    public void DriverEnumsMatchCudaH()
    {
        Assert.Equal(34, (int)CuResult.StubLibrary);
        Assert.Equal(46, (int)CuResult.DeviceUnavailable);
        Assert.Equal(209, (int)CuResult.NoBinaryForGpu);
        Assert.Equal(218, (int)CuResult.InvalidPtx);
        Assert.Equal(222, (int)CuResult.UnsupportedPtxVersion);
        Assert.Equal(700, (int)CuResult.IllegalAddress);
        Assert.Equal(719, (int)CuResult.LaunchFailed);
        Assert.Equal(908, (int)CuResult.StreamCaptureWrongThread);
        Assert.Equal(16, (int)CuDeviceAttribute.MultiprocessorCount);
        Assert.Equal(75, (int)CuDeviceAttribute.ComputeCapabilityMajor);
        Assert.Equal(76, (int)CuDeviceAttribute.ComputeCapabilityMinor);
        Assert.Equal(97, (int)CuDeviceAttribute.MaxSharedMemoryPerBlockOptin);
        Assert.Equal(8, (int)CuFunctionAttribute.MaxDynamicSharedSizeBytes);
        Assert.Equal(1, (int)CuStreamCaptureMode.ThreadLocal);
        Assert.Equal(1u, Driver.StreamNonBlocking);
        Assert.Equal(2u, Driver.EventDisableTiming);
        Assert.Equal(1u, Driver.HostAllocPortable);
    }

    [Fact]
    public void CudnnEnumsMatchTheVersion9Headers()
    {
        Assert.Equal(1001, (int)CudnnStatus.NotInitialized);
        Assert.Equal(2000, (int)CudnnStatus.BadParam);
        Assert.Equal(2008, (int)CudnnStatus.BadParamShapeMismatch);
        Assert.Equal(3000, (int)CudnnStatus.NotSupported);
        Assert.Equal(4000, (int)CudnnStatus.InternalError);
        Assert.Equal(5000, (int)CudnnStatus.ExecutionFailed);
        Assert.Equal(0, (int)CudnnDataType.Float);
        Assert.Equal(9, (int)CudnnDataType.BFloat16);
        Assert.Equal(0, (int)CudnnTensorFormat.Nchw);
        Assert.Equal(1, (int)CudnnConvolutionMode.CrossCorrelation);
        Assert.Equal(1, (int)CudnnMathType.TensorOp);
        Assert.Equal(3, (int)CudnnMathType.Fma);
        Assert.Equal(1, (int)CudnnBatchNormMode.Spatial);
        Assert.Equal(3, (int)CudnnPoolingMode.MaxDeterministic);
        Assert.Equal(1, (int)CudnnNanPropagation.Propagate);
    }

    [Fact]
    public void CublasAndNvrtcEnumsMatchTheirHeaders()
    {
        Assert.Equal(7, (int)CublasStatus.InvalidValue);
        Assert.Equal(16, (int)CublasStatus.LicenseError);
        Assert.Equal(1, (int)CublasOperation.T);
        Assert.Equal(0, (int)CublasMath.Default);
        Assert.Equal(2, (int)CublasMath.Pedantic);
        Assert.Equal(3, (int)CublasMath.Tf32TensorOp);
        Assert.Equal(68, (int)CublasComputeType.Compute32F);
        Assert.Equal(77, (int)CublasComputeType.Compute32FFastTf32);
        Assert.Equal(0, (int)CudaDataType.R32F);
        Assert.Equal(14, (int)CudaDataType.R16BF);
        Assert.Equal(-1, Cublas.GemmDefaultAlgorithm);
        Assert.Equal(6, (int)NvrtcResult.Compilation);
        Assert.Equal(11, (int)NvrtcResult.InternalError);
    }

    public static TheoryData<string> Libraries() => new(nameof(CudaLibrary.Driver), nameof(CudaLibrary.Cublas), nameof(CudaLibrary.Cudnn));

    /// <summary>Every [LibraryImport] of a binding class names a symbol that the installed library exports
    /// (the `_v2` names included); cuDNN 8 lacks only cudnnGetLastErrorString, which the binding tolerates.</summary>
    [Theory]
    [MemberData(nameof(Libraries))]
    [Trait(CudaTestSupport.Requires, CudaTestSupport.Cuda)]
    public void EveryImportIsExportedByTheInstalledLibrary(string name) => ImportsAreExported(Enum.Parse<CudaLibrary>(name));

    /// <summary>The NVRTC row of the check above, apart: NVRTC loads without a GPU (CI installs it), so this
    /// row runs there instead of being folded into the grouped CUDA skip.</summary>
    [Fact]
    [Trait(CudaTestSupport.Requires, CudaTestSupport.NvrtcOnly)]
    public void EveryNvrtcImportIsExportedByTheInstalledLibrary()
    {
        NvrtcCompileTests.RequireNvrtc();
        ImportsAreExported(CudaLibrary.Nvrtc);
    }

    private static void ImportsAreExported(CudaLibrary library)
    {
        var name = library.ToString();
        LoadedLibrary loaded;
        try { loaded = NativeLibraries.Require(library); }
        catch (CudaNotAvailableException e) { CudaTestSupport.Unavailable($"{name} is not installed: {e.Message}"); return; }
        var binding = library switch
        {
            CudaLibrary.Driver => typeof(Driver),
            CudaLibrary.Nvrtc => typeof(Nvrtc),
            CudaLibrary.Cublas => typeof(Cublas),
            _ => typeof(Cudnn),
        };
        var imports = binding.GetMethods(BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public)
            .Select(m => (Method: m, Attribute: m.GetCustomAttribute<LibraryImportAttribute>()))
            .Where(x => x.Attribute is not null)
            .Select(x => x.Attribute!.EntryPoint ?? x.Method.Name)
            .Distinct()
            .ToList();
        Assert.NotEmpty(imports);
        var optional = new HashSet<string> { "cudnnGetLastErrorString", "cublasGetStatusString", "cublasSetWorkspace_v2" };
        var missing = imports.Where(i => !NativeLibrary.TryGetExport(loaded.Handle, i, out _) && !optional.Contains(i)).ToList();
        Assert.True(missing.Count == 0, $"{loaded.Path} does not export: {string.Join(", ", missing)}");
    }
}
