// The NVRTC disk cache and the module-loading fallbacks, without a GPU: NVRTC compiles for real, and a stand-in
// for cuModuleLoadData accepts or refuses the image (a refusal is the driver's CudaException with an image
// status). A cached image that fails to load is rebuilt instead of being fatal; a CUBIN the driver refuses (an
// NVRTC newer than the driver) falls back to PTX and says why; PTX the driver refuses too ends in one message
// naming both versions. Concurrent writers of one cache entry never leave a mixed file or temporary files.
using System.Text;
using SimClr.Kernels.Cuda;
using SimClr.Kernels.Cuda.Native;
using SimClr.Tests.Data;

namespace SimClr.Tests.Cuda;

[Trait(CudaTestSupport.Requires, CudaTestSupport.NvrtcOnly)]
public class KernelCacheTests
{
    /// <summary>A whole ELF64 image: the magic, and a section header table that lies inside the file (a
    /// truncated CUBIN fails this, as the driver refuses it).</summary>
    private static bool IsCubin(byte[] image)
    {
        if (image.Length < 64 || image[0] != 0x7f || image[1] != (byte)'E' || image[2] != (byte)'L' || image[3] != (byte)'F') return false;
        long sectionHeaders = BitConverter.ToInt64(image, 0x28);
        int entrySize = BitConverter.ToUInt16(image, 0x3a), entries = BitConverter.ToUInt16(image, 0x3c);
        return sectionHeaders + (long)entrySize * entries <= image.Length;
    }

    private static bool IsPtx(byte[] image) => image.Length > 0 && image[0] != 0x7f && Encoding.UTF8.GetString(image).Contains(".version", StringComparison.Ordinal);

    private static CudaException Refusal(CuResult status) => new(status, Driver.StatusName(status), "refused by the test's loader", "cuModuleLoadData(&m, image)");

    /// <summary>A loader that takes what a driver takes: a CUBIN (ELF) or PTX, nothing else.</summary>
    private static string StrictLoader(byte[] image) =>
        IsCubin(image) ? "cubin" : IsPtx(image) ? "ptx" : throw Refusal(CuResult.InvalidImage);

    [Fact]
    public void ACorruptCachedImageIsRebuiltNotFatal()
    {
        NvrtcCompileTests.RequireNvrtc();
        using var cache = new TempDir();
        var (first, info) = NvrtcCompiler.LoadForDevice("cosine", 9, 0, StrictLoader, cache.Path);
        Assert.Equal(KernelOrigin.NvrtcCompiled, info.Origin);
        var entry = Assert.Single(Directory.GetFiles(cache.Path));
        var good = File.ReadAllBytes(entry);

        var (_, cached) = NvrtcCompiler.LoadForDevice("cosine", 9, 0, StrictLoader, cache.Path);
        Assert.Equal(KernelOrigin.NvrtcDiskCache, cached.Origin);
        Assert.Null(cached.Fallback);

        // A truncated entry (a crash mid-write by an older build, a full disk) is refused by the driver.
        File.WriteAllBytes(entry, good[..16]);
        var (again, rebuilt) = NvrtcCompiler.LoadForDevice("cosine", 9, 0, StrictLoader, cache.Path);
        Assert.Equal(first, again);
        Assert.Equal(KernelOrigin.NvrtcCompiled, rebuilt.Origin);
        Assert.Contains("was refused (CUDA_ERROR_INVALID_IMAGE) and rebuilt", rebuilt.Fallback);
        Assert.Equal(good, File.ReadAllBytes(entry));
    }

    [Fact]
    public void ARefusedCubinFallsBackToPtxAndSaysWhy()
    {
        NvrtcCompileTests.RequireNvrtc();
        using var cache = new TempDir();
        string PtxOnly(byte[] image) => IsPtx(image) ? "ptx" : throw Refusal(CuResult.UnsupportedPtxVersion);
        var (loaded, info) = NvrtcCompiler.LoadForDevice("lars", 9, 0, PtxOnly, cache.Path);
        Assert.Equal("ptx", loaded);
        Assert.Equal("ptx compute_90", info.Image);
        Assert.Contains("refused NVRTC", info.Fallback);
        Assert.Contains("CUBIN for sm_90", info.Fallback);
        Assert.Contains("loaded PTX instead", info.Fallback);
    }

    [Fact]
    public void PtxTheDriverCannotReadEndsInOneMessageNamingTheVersions()
    {
        NvrtcCompileTests.RequireNvrtc();
        using var cache = new TempDir();
        string Nothing(byte[] image) => throw Refusal(CuResult.UnsupportedPtxVersion);
        var e = Assert.Throws<CudaException>(() => NvrtcCompiler.LoadForDevice("lars", 9, 0, Nothing, cache.Path));
        var (major, minor) = Nvrtc.Version();
        Assert.Contains($"compiled by NVRTC {major}.{minor} as CUBIN or as PTX", e.Message);
        Assert.Contains(NativeLibraries.PathVariable, e.Message);
        Assert.Equal(CuResult.UnsupportedPtxVersion, e.Status);
    }

    [Fact]
    public void AnArchitectureNvrtcDoesNotKnowGetsPtxForAnOlderOne()
    {
        NvrtcCompileTests.RequireNvrtc();
        using var cache = new TempDir();
        // Compute capability 99.9 is newer than any NVRTC: the newest architecture it knows is used as PTX.
        var (loaded, info) = NvrtcCompiler.LoadForDevice("lars", 99, 9, StrictLoader, cache.Path);
        Assert.Equal("ptx", loaded);
        Assert.Equal($"ptx compute_{Nvrtc.SupportedArchitectures().Max()}", info.Image);
        Assert.Contains("cannot build sm_999 code", info.Fallback);
    }

    [Fact]
    public void TemporaryNamesAreUniquePerWriter()
    {
        var names = Enumerable.Range(0, 64).AsParallel().Select(_ => NvrtcCompiler.TemporaryName("/cache/ntxent-abc.cubin")).ToHashSet();
        Assert.Equal(64, names.Count);
        Assert.All(names, n => Assert.StartsWith($"/cache/ntxent-abc.cubin.{Environment.ProcessId}.", n));
    }

    /// <summary>Eight threads write one entry at once, each its own image, many times: the entry must always be
    /// one writer's whole image and no temporary file may be left behind.</summary>
    [Fact]
    public void ConcurrentWritersLeaveOneWholeImage()
    {
        using var cache = new TempDir();
        var entry = Path.Combine(cache.Path, "module-key.cubin");
        var images = Enumerable.Range(0, 8).Select(w => Enumerable.Repeat((byte)(w + 1), 256 * 1024 + w).ToArray()).ToArray();
        for (int round = 0; round < 10; round++)
        {
            Parallel.For(0, images.Length, new ParallelOptions { MaxDegreeOfParallelism = images.Length }, w => NvrtcCompiler.TryWrite(entry, images[w]));
            var written = File.ReadAllBytes(entry);
            Assert.Contains(images, image => image.AsSpan().SequenceEqual(written));
        }
        Assert.Equal([entry], Directory.GetFiles(cache.Path));
    }
}
