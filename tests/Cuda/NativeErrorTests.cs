// Error paths of the native boundary that need no GPU: the resolver's message for a missing library, the
// Check helpers' messages (status name, native message, call text) for fake statuses, CUDA-less start-up
// (a clear CudaNotAvailableException, an `info` report instead of a crash). The last tests need a GPU and
// check that a bad launch or a bad argument surfaces as an exception naming the problem.
using SimClr.Kernels;
using SimClr.Kernels.Cuda;
using SimClr.Kernels.Cuda.Native;

namespace SimClr.Tests.Cuda;

[Collection(CudaTestSupport.Collection)]
public class NativeErrorTests
{
    [Fact]
    public void MissingLibraryMessageNamesFilesAndFolders()
    {
        var plan = new NativeLibraries.SearchPlan(["/nonexistent/first"], ["/nonexistent/second"]);
        var e = Assert.Throws<CudaNotAvailableException>(() =>
            NativeLibraries.Load(CudaLibrary.Cudnn, ["libsimclr-missing.so.9", "libsimclr-missing.so.8"], plan));
        Assert.Contains("cuDNN", e.Message);
        Assert.Contains("libsimclr-missing.so.9, libsimclr-missing.so.8", e.Message);
        Assert.Contains("/nonexistent/first", e.Message);
        Assert.Contains("/nonexistent/second", e.Message);
        Assert.Contains("default loader path", e.Message);
        Assert.Contains(NativeLibraries.PathVariable, e.Message);
        // Folders are listed in search order: the environment's first, then the loader, then the fixed ones.
        Assert.True(e.Message.IndexOf("/nonexistent/first", StringComparison.Ordinal) < e.Message.IndexOf("default loader path", StringComparison.Ordinal));
        Assert.True(e.Message.IndexOf("default loader path", StringComparison.Ordinal) < e.Message.IndexOf("/nonexistent/second", StringComparison.Ordinal));
    }

    [Fact]
    public void AFileThatIsNotALibraryIsReported()
    {
        var folder = Directory.CreateTempSubdirectory("simclr-resolver-");
        try
        {
            File.WriteAllText(Path.Combine(folder.FullName, "libsimclr-fake.so.1"), "not an ELF file");
            var plan = new NativeLibraries.SearchPlan([folder.FullName], []);
            var e = Assert.Throws<CudaNotAvailableException>(() => NativeLibraries.Load(CudaLibrary.Cublas, ["libsimclr-fake.so.1"], plan));
            Assert.Contains("failed to load", e.Message);
            Assert.Contains(Path.Combine(folder.FullName, "libsimclr-fake.so.1"), e.Message);
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }

    [Fact]
    public void FolderSearchFindsNvrtcAndRecordsItsPath()
    {
        const string folder = "/usr/lib/x86_64-linux-gnu";
        if (!File.Exists(Path.Combine(folder, "libnvrtc.so.11.2"))) Assert.Skip($"no libnvrtc.so.11.2 in {folder}");
        var loaded = NativeLibraries.Load(CudaLibrary.Nvrtc, ["libnvrtc.so.11.2"], new NativeLibraries.SearchPlan([folder], []));
        Assert.Equal(Path.Combine(folder, "libnvrtc.so.11.2"), loaded.Path);
        Assert.NotEqual(0, loaded.Handle);
    }

    [Fact]
    public void WheelFoldersAreNvidiaLibFolders()
    {
        foreach (var folder in NativeLibraries.WheelLibraryFolders())
        {
            Assert.Equal("lib", Path.GetFileName(folder));
            Assert.Equal("nvidia", Path.GetFileName(Path.GetDirectoryName(Path.GetDirectoryName(folder))));
        }
    }

    [Fact]
    public void DriverCheckNamesStatusAndCall()
    {
        var status = CuResult.OutOfMemory;
        var e = Assert.Throws<CudaException>(() => Driver.Check(status));
        Assert.Equal(CuResult.OutOfMemory, e.Status);
        Assert.Equal("status", e.Call);
        Assert.Contains("OUT_OF_MEMORY", Normalize(e.StatusName));
        Assert.Contains("`status`", e.Message);
        Assert.Contains("lower the batch size", e.Message);
        Assert.False(e.IsSticky);
        Assert.False(string.IsNullOrWhiteSpace(e.NativeMessage));

        var sticky = Assert.Throws<CudaException>(() => Driver.Check(CuResult.IllegalAddress));
        Assert.True(sticky.IsSticky);
        Assert.Equal("CuResult.IllegalAddress", sticky.Call);
        Assert.Contains("ILLEGAL_ADDRESS", Normalize(sticky.StatusName));
    }

    [Fact]
    public void SuccessPassesEveryCheck()
    {
        Driver.Check(CuResult.Success);
        Nvrtc.Check(NvrtcResult.Success);
        Cublas.Check(CublasStatus.Success);
        Cudnn.Check(CudnnStatus.Success);
    }

    [Fact]
    public void NvrtcCheckCarriesTheNativeMessage()
    {
        NvrtcCompileTests.RequireNvrtc();
        var e = Assert.Throws<NvrtcException>(() => Nvrtc.Check(NvrtcResult.InvalidOption));
        Assert.Equal("NVRTC_ERROR_INVALID_OPTION", e.StatusName);
        Assert.Equal("NvrtcResult.InvalidOption", e.Call);
        // With libnvrtc loaded the message is the library's own text for the status.
        Assert.Contains("NVRTC_ERROR_INVALID_OPTION", e.NativeMessage);
    }

    [Fact]
    public void CublasAndCudnnChecksNameTheStatus()
    {
        var blas = Assert.Throws<CublasException>(() => Cublas.Check(CublasStatus.InvalidValue));
        Assert.Equal("CUBLAS_STATUS_INVALID_VALUE", blas.StatusName);
        Assert.Equal(7, blas.StatusCode);
        Assert.Contains("cuBLAS call `CublasStatus.InvalidValue` failed with CUBLAS_STATUS_INVALID_VALUE (7)", blas.Message);

        var dnn = Assert.Throws<CudnnException>(() => Cudnn.Check(CudnnStatus.BadParam));
        Assert.Contains("BAD_PARAM", dnn.StatusName);
        Assert.Equal("CudnnStatus.BadParam", dnn.Call);
    }

    [Fact]
    public void WithoutADriverTheBackendSaysWhy()
    {
        if (NativeLibraries.TryRequire(CudaLibrary.Driver) is not null) Assert.Skip("a CUDA driver is installed here");
        var e = Assert.Throws<CudaNotAvailableException>(() => new CudaBackend());
        Assert.Contains("libcuda.so.1", e.Message);
        Assert.Equal(e.Message, CudaTestSupport.UnavailableReason()?["no CUDA: ".Length..]);
    }

    [Fact]
    public void InfoReportsInsteadOfThrowing()
    {
        var info = CudaInfo.Probe();
        var lines = info.ToLines();
        Assert.StartsWith(info.Available ? "CUDA: available" : "CUDA: not available (", lines[0]);
        Assert.Contains(lines, l => l.Contains("kernels:") && l.Contains(KernelSources.Modules[0]));
        if (NativeLibraries.TryRequire(CudaLibrary.Nvrtc) is { } nvrtc)
        {
            var (major, minor) = Nvrtc.Version();
            Assert.Equal($"{major}.{minor}", info.NvrtcVersion);
            Assert.Contains(lines, l => l.Contains(nvrtc.Path));
        }
        if (NativeLibraries.TryRequire(CudaLibrary.Driver) is null)
            Assert.Contains("no CUDA driver", info.Reason);
    }

    // ---- GPU ---------------------------------------------------------------------------------------

    [Fact]
    [Trait(CudaTestSupport.Requires, CudaTestSupport.Cuda)]
    public unsafe void BadLaunchSurfacesAsCudaException()
    {
        var gpu = CudaTestSupport.Backend();
        var fill = gpu.GetFunction("elementwise", "fill");
        var x = gpu.Allocate<float>(16).AsTensor();
        nint px = x.Address;
        long n = 16;
        float value = 1f;
        void** args = stackalloc void*[] { &px, &n, &value };
        // 4096 threads per block exceeds every GPU's limit of 1024.
        var e = Assert.Throws<CudaException>(() => gpu.Launch(fill, 1, new Dim3(4096), 0, args));
        Assert.Contains("cuLaunchKernel", e.Call);
        Assert.Equal(CuResult.InvalidValue, e.Status);
        x.Storage.Dispose();
    }

    [Fact]
    [Trait(CudaTestSupport.Requires, CudaTestSupport.Cuda)]
    public void MissingKernelNamesModuleAndFunction()
    {
        var gpu = CudaTestSupport.Backend();
        var e = Assert.Throws<CudaException>(() => gpu.GetFunction("elementwise", "no_such_kernel"));
        Assert.Equal(CuResult.NotFound, e.Status);
        Assert.Contains("no_such_kernel", e.Message);
    }

    [Fact]
    [Trait(CudaTestSupport.Requires, CudaTestSupport.Cuda)]
    public void HostTensorsAndWrongLengthsAreRefused()
    {
        var gpu = CudaTestSupport.Backend();
        var host = CudaTestSupport.Host(new float[12]);
        var device = gpu.Allocate<float>(12).AsTensor();
        var e = Assert.Throws<ArgumentException>(() => gpu.Gemm(device, host, device, new GemmShape(3, 4, 3)));
        Assert.Contains("not GPU memory", e.Message);
        Assert.Throws<ArgumentException>(() => gpu.Upload(device, new float[11]));
        Assert.Throws<ArgumentException>(() => gpu.Gemm(device, device, device, new GemmShape(4, 4, 4)));
        Assert.Throws<InvalidOperationException>(() => device.Span.ToArray());
        device.Storage.Dispose();
    }

    private static string Normalize(string name) => name.ToUpperInvariant().Replace("CUDA_ERROR_", "");
}
