// The library resolver's search, on fake site-packages trees laid out like NVIDIA's real wheels (no GPU, no
// real libraries): CUDA 13 wheels (nvidia-cublas, nvidia-cuda-nvrtc, nvidia-cuda-runtime) share
// nvidia/cu13/lib with libcublas.so.13, libcublasLt.so.13, libnvrtc.so.13 and libnvrtc-builtins.so.13.0;
// nvidia-cudnn-cu13 keeps nvidia/cudnn/lib/libcudnn.so.9 and its sub-libraries; nvidia-nccl-cu13 keeps
// nvidia/nccl/lib; CUDA 12 wheels use one folder per library (nvidia/cublas/lib/libcublas.so.12, ...).
// Also: library majors newer than the driver are passed over with the reason, and a cuDNN built for a newer
// CUDA than the driver is refused.
using SimClr.Kernels.Cuda.Native;
using SimClr.Tests.Data;

namespace SimClr.Tests.Cuda;

public class LibraryResolverTests
{
    /// <summary>prefix/lib/python3.12/site-packages/nvidia/... with empty files where the wheels put libraries.</summary>
    private static string FakeVenv(TempDir dir, bool cuda12Wheels)
    {
        string prefix = Path.Combine(dir.Path, "venv");
        string nvidia = Path.Combine(prefix, "lib", "python3.12", "site-packages", "nvidia");
        var files = new List<string>
        {
            "cu13/lib/libcublas.so.13", "cu13/lib/libcublasLt.so.13", "cu13/lib/libnvrtc.so.13", "cu13/lib/libnvrtc-builtins.so.13.0",
            "cu13/lib/libcudart.so.13", "cudnn/lib/libcudnn.so.9", "cudnn/lib/libcudnn_graph.so.9", "cudnn/lib/libcudnn_ops.so.9",
            "cudnn/lib/libcudnn_cnn.so.9", "cudnn/lib/libcudnn_engines_precompiled.so.9", "nccl/lib/libnccl.so.2",
        };
        if (cuda12Wheels) files.AddRange(["cublas/lib/libcublas.so.12", "cublas/lib/libcublasLt.so.12", "cuda_nvrtc/lib/libnvrtc.so.12", "cuda_nvrtc/lib/libnvrtc-builtins.so.12.6"]);
        foreach (var f in files)
        {
            var full = Path.Combine(nvidia, f);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            File.WriteAllText(full, "not an ELF file");
        }
        return prefix;
    }

    private static string Lib(string prefix, string wheelFolder) => Path.Combine(prefix, "lib", "python3.12", "site-packages", "nvidia", wheelFolder, "lib");

    [Fact]
    public void WheelFoldersOfACuda13VenvAreFound()
    {
        using var dir = new TempDir();
        var prefix = FakeVenv(dir, cuda12Wheels: false);
        var folders = NativeLibraries.WheelLibraryFolders([prefix], []);
        Assert.Equal([Lib(prefix, "cu13"), Lib(prefix, "cudnn"), Lib(prefix, "nccl")], folders);
        // PYTHONPATH-style site-packages entries are searched as well, without duplicates.
        var sitePackages = Path.Combine(prefix, "lib", "python3.12", "site-packages");
        Assert.Equal(folders, NativeLibraries.WheelLibraryFolders([prefix], [sitePackages]));
    }

    [Fact]
    public void EachLibraryIsFoundInItsWheelFolderNewestFirst()
    {
        using var dir = new TempDir();
        var prefix = FakeVenv(dir, cuda12Wheels: true);
        var folders = NativeLibraries.WheelLibraryFolders([prefix], []);
        string First(CudaLibrary library) => folders.SelectMany(f => NativeLibraries.ExistingFiles(NativeLibraries.Candidates(library), f)).First();
        // The folders sort cu13 before cublas/cuda_nvrtc, so a CUDA 13 driver gets the CUDA 13 libraries.
        Assert.Equal(Path.Combine(Lib(prefix, "cu13"), "libcublas.so.13"), First(CudaLibrary.Cublas));
        Assert.Equal(Path.Combine(Lib(prefix, "cu13"), "libnvrtc.so.13"), First(CudaLibrary.Nvrtc));
        Assert.Equal(Path.Combine(Lib(prefix, "cudnn"), "libcudnn.so.9"), First(CudaLibrary.Cudnn));
        // What is loaded first so that each opens its dependencies from the same folder.
        Assert.Equal([Path.Combine(Lib(prefix, "cu13"), "libcublasLt.so.13")], NativeLibraries.Siblings(CudaLibrary.Cublas, Lib(prefix, "cu13"), "libcublas.so.13"));
        Assert.Equal([Path.Combine(Lib(prefix, "cu13"), "libnvrtc-builtins.so.13.0")], NativeLibraries.Siblings(CudaLibrary.Nvrtc, Lib(prefix, "cu13"), "libnvrtc.so.13"));
        var cudnnSiblings = NativeLibraries.Siblings(CudaLibrary.Cudnn, Lib(prefix, "cudnn"), "libcudnn.so.9").Select(Path.GetFileName).ToList();
        Assert.Equal(["libcudnn_graph.so.9", "libcudnn_engines_precompiled.so.9", "libcudnn_ops.so.9", "libcudnn_cnn.so.9"], cudnnSiblings);
    }

    [Fact]
    public void TheSearchReachesTheWheelFilesAndNamesThem()
    {
        using var dir = new TempDir();
        var prefix = FakeVenv(dir, cuda12Wheels: true);
        var plan = new NativeLibraries.SearchPlan([], NativeLibraries.WheelLibraryFolders([prefix], []), NativeLibraries.LoaderPath.Skipped);
        // The fake files are not ELF: every one the search tries is reported, in order, with the loader's reason.
        var e = Assert.Throws<CudaNotAvailableException>(() => NativeLibraries.Load(CudaLibrary.Cublas, ["libcublas.so.13", "libcublas.so.12"], plan, driverVersion: 13000));
        var cu13 = Path.Combine(Lib(prefix, "cu13"), "libcublas.so.13");
        var cu12 = Path.Combine(Lib(prefix, "cublas"), "libcublas.so.12");
        Assert.Contains($"{cu13}: failed to load", e.Message);
        Assert.Contains($"{cu12}: failed to load", e.Message);
        Assert.True(e.Message.IndexOf(cu13, StringComparison.Ordinal) < e.Message.IndexOf(cu12, StringComparison.Ordinal));
    }

    [Fact]
    public void MajorsNewerThanTheDriverAreNotTried()
    {
        var names = NativeLibraries.Candidates(CudaLibrary.Cublas);
        var (usable, skipped) = NativeLibraries.ForDriver(CudaLibrary.Cublas, names, 12040);
        Assert.Equal(["libcublas.so.12", "libcublas.so.11"], usable);
        Assert.Equal("libcublas.so.13 (needs a CUDA 13 driver; this driver supports CUDA 12.4)", Assert.Single(skipped));

        Assert.Equal(names, NativeLibraries.ForDriver(CudaLibrary.Cublas, names, 13000).Usable);
        // Without a driver (NVRTC-only machines) every name is usable.
        Assert.Equal(names, NativeLibraries.ForDriver(CudaLibrary.Cublas, names, null).Usable);
        Assert.Equal(["libnvrtc.so.12", "libnvrtc.so.11.2"], NativeLibraries.ForDriver(CudaLibrary.Nvrtc, NativeLibraries.Candidates(CudaLibrary.Nvrtc), 12080).Usable);
        // cuDNN's name does not carry the CUDA major: it is asked after loading instead.
        Assert.Equal(NativeLibraries.Candidates(CudaLibrary.Cudnn), NativeLibraries.ForDriver(CudaLibrary.Cudnn, NativeLibraries.Candidates(CudaLibrary.Cudnn), 12040).Usable);
        Assert.Equal(11, NativeLibraries.CudaMajorOf(CudaLibrary.Nvrtc, "libnvrtc.so.11.2"));
        Assert.Null(NativeLibraries.CudaMajorOf(CudaLibrary.Cudnn, "libcudnn.so.9"));
    }

    [Fact]
    public void ASkippedMajorIsNamedWhenNothingElseIsFound()
    {
        using var dir = new TempDir();
        var prefix = FakeVenv(dir, cuda12Wheels: false);
        var plan = new NativeLibraries.SearchPlan([], NativeLibraries.WheelLibraryFolders([prefix], []), NativeLibraries.LoaderPath.Skipped);
        var e = Assert.Throws<CudaNotAvailableException>(() => NativeLibraries.Load(CudaLibrary.Cublas, ["libcublas.so.13", "libsimclr-missing.so.12"], plan, driverVersion: 12040));
        Assert.Contains("Not tried: libcublas.so.13 (needs a CUDA 13 driver; this driver supports CUDA 12.4)", e.Message);
        Assert.DoesNotContain("libcublas.so.13: failed", e.Message);
    }

    [Fact]
    public void ACudnnForANewerCudaThanTheDriverIsRefused()
    {
        Assert.Null(NativeLibraries.CudnnRuntimeRefusal(13000, 13000));
        Assert.Null(NativeLibraries.CudnnRuntimeRefusal(12080, 13000));
        Assert.Null(NativeLibraries.CudnnRuntimeRefusal(12080, 12040));
        var why = NativeLibraries.CudnnRuntimeRefusal(13000, 12040);
        Assert.Equal("this cuDNN is built for CUDA 13.0, newer than the driver's CUDA 12.4 (install the cuDNN for CUDA 12, or a newer driver)", why);
        Assert.Equal("13.0", NativeLibraries.FormatCudaVersion(13000));
    }
}
