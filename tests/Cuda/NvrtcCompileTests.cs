// Every embedded kernel module must compile with NVRTC for compute_80 and compute_90. NVRTC needs no GPU,
// so this runs wherever libnvrtc is installed; in CI (CI set) and under SIMCLR_REQUIRE_CUDA=1 a missing
// libnvrtc is a failure, elsewhere a skip. gpu-check runs these ("NVRTC" trait) against the host's NVRTC.
using SimClr.Kernels.Cuda;
using SimClr.Kernels.Cuda.Native;

namespace SimClr.Tests.Cuda;

[Trait(CudaTestSupport.Requires, CudaTestSupport.NvrtcOnly)]
public class NvrtcCompileTests
{
    public static TheoryData<string, string> ModulesAndArchitectures()
    {
        var data = new TheoryData<string, string>();
        foreach (var module in KernelSources.Modules)
            foreach (var arch in new[] { "compute_80", "compute_90" })
                data.Add(module, arch);
        return data;
    }

    /// <summary>Loads NVRTC or skips (fails in CI and under SIMCLR_REQUIRE_CUDA=1) with the resolver's message.</summary>
    internal static void RequireNvrtc()
    {
        CudaTestSupport.RequireTrait(CudaTestSupport.NvrtcOnly, CudaTestSupport.Cuda);
        try
        {
            Nvrtc.Load();
        }
        catch (CudaNotAvailableException e)
        {
            if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CI")))
                Assert.Fail($"CI must compile the kernels, but NVRTC is missing: {e.Message}");
            CudaTestSupport.Unavailable($"NVRTC not installed: {e.Message}");
        }
    }

    [Fact]
    public void KernelSourcesAreEmbedded()
    {
        Assert.NotEmpty(KernelSources.Modules);
        Assert.Contains("common.cuh", KernelSources.Headers.Keys);
        foreach (var module in KernelSources.Modules)
            Assert.Contains("__global__", KernelSources.Source(module));
    }

    [Theory]
    [MemberData(nameof(ModulesAndArchitectures))]
    public void EmbeddedModuleCompiles(string module, string architecture)
    {
        RequireNvrtc();
        var ptx = NvrtcCompiler.Compile(module, architecture);
        Assert.Contains($".target sm_{architecture["compute_".Length..]}", ptx);
        Assert.Contains(".entry", ptx);
    }

    [Fact]
    public void CompileErrorCarriesTheLog()
    {
        RequireNvrtc();
        var headers = new Dictionary<string, string> { ["helper.cuh"] = "__device__ inline float twice(float x) { return 2.0f * x; }\n" };
        const string source = "#include \"helper.cuh\"\nextern \"C\" __global__ void broken(float* y) { y[0] = twice(undeclared_name); }\n";
        var e = Assert.Throws<NvrtcException>(() => Nvrtc.Compile("broken.cu", source, headers, ["--gpu-architecture=compute_80"], Nvrtc.Output.Ptx));
        Assert.Equal(NvrtcResult.Compilation, e.Status);
        Assert.Equal("NVRTC_ERROR_COMPILATION", e.StatusName);
        Assert.Contains("undeclared_name", e.Log);
        Assert.Contains("broken.cu", e.Message);
    }

    [Fact]
    public void NamedHeadersAreVisibleToTheCompiler()
    {
        RequireNvrtc();
        var headers = new Dictionary<string, string> { ["scale.cuh"] = "#define SIMCLR_SCALE 3.0f\n" };
        const string source = "#include \"scale.cuh\"\nextern \"C\" __global__ void scaled(float* y) { y[threadIdx.x] *= SIMCLR_SCALE; }\n";
        var ptx = System.Text.Encoding.UTF8.GetString(Nvrtc.Compile("scaled.cu", source, headers, ["--gpu-architecture=compute_80"], Nvrtc.Output.Ptx));
        Assert.Contains(".entry scaled", ptx);
        // 3.0f as a PTX float literal.
        Assert.Contains("0f40400000", ptx);
    }

    [Fact]
    public void UnknownModuleIsNamedInTheError()
    {
        var e = Assert.Throws<ArgumentException>(() => NvrtcCompiler.Compile("no_such_module", "compute_80"));
        Assert.Contains("no_such_module", e.Message);
    }

    [Fact]
    public void NvrtcReportsItsVersionAndArchitectures()
    {
        RequireNvrtc();
        var (major, _) = Nvrtc.Version();
        Assert.InRange(major, 11, 99);
        Assert.Contains(80, Nvrtc.SupportedArchitectures());
    }

    [Fact]
    public void CacheKeyChangesWithOptionsAndVersion()
    {
        var module = KernelSources.Modules[0];
        var source = KernelSources.Source(module);
        var a = NvrtcCompiler.CacheKey(module, source, ["--gpu-architecture=sm_80"], "11.8");
        Assert.Equal(a, NvrtcCompiler.CacheKey(module, source, ["--gpu-architecture=sm_80"], "11.8"));
        Assert.NotEqual(a, NvrtcCompiler.CacheKey(module, source, ["--gpu-architecture=sm_90"], "11.8"));
        Assert.NotEqual(a, NvrtcCompiler.CacheKey(module, source, ["--gpu-architecture=sm_80"], "12.4"));
        Assert.NotEqual(a, NvrtcCompiler.CacheKey(module, source + " ", ["--gpu-architecture=sm_80"], "11.8"));
    }
}
