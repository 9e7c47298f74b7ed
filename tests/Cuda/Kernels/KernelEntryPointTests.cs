// The modules behind CudaBackend's kernel launchers compile with NVRTC for compute_80 and compute_90 and
// export every entry point the launchers ask for by name (extends NvrtcCompileTests, which compiles every
// module, with the exact `.entry` names; a renamed or mangled kernel fails here instead of at first launch
// on a GPU). Also: common.cuh's Philox4x32-10 compiles to the multiply-high form in a probe kernel. NVRTC
// needs no GPU; in CI a missing libnvrtc is a failure, elsewhere a skip.
using System.Text.RegularExpressions;
using SimClr.Kernels.Cuda;
using SimClr.Kernels.Cuda.Native;

namespace SimClr.Tests.Cuda.Kernels;

public partial class KernelEntryPointTests
{
    /// <summary>The entry points CudaBackend.Kernels.cs and CudaBackend.SyncBatchNorm.cs launch, per module.</summary>
    private static readonly Dictionary<string, string[]> Expected = new()
    {
        ["elementwise"] = ["fill_f32", "copy_f32", "scale_f32", "axpy_f32", "add_f32", "relu_fwd", "relu_bwd", "global_avg_pool_fwd",
            "global_avg_pool_bwd", "l2_normalize_fwd", "l2_normalize_bwd", "softmax_xent_fwd", "softmax_xent_bwd", "mean_reduce"],
        ["ntxent"] = ["ntxent_row_norms", "ntxent_fwd_tiles", "ntxent_fwd_rows", "ntxent_loss_reduce", "ntxent_bwd_tiles", "ntxent_bwd_rows"],
        ["cosine"] = ["cosine_similarity"],
        ["lars"] = ["lars_norms", "lars_update", "sgd_update"],
        ["syncbn"] = ["syncbn_stats", "syncbn_fwd", "syncbn_bwd_reduce", "syncbn_bwd"],
    };

    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var module in Expected.Keys)
            foreach (var arch in new[] { "compute_80", "compute_90" })
                data.Add(module, arch);
        return data;
    }

    [GeneratedRegex(@"\.entry\s+([A-Za-z_][A-Za-z0-9_]*)")]
    private static partial Regex EntryPattern();

    [Theory]
    [MemberData(nameof(Cases))]
    public void ModuleExportsEveryLaunchedKernel(string module, string architecture)
    {
        NvrtcCompileTests.RequireNvrtc();
        var ptx = NvrtcCompiler.Compile(module, architecture);
        var entries = EntryPattern().Matches(ptx).Select(m => m.Groups[1].Value).ToHashSet();
        foreach (var name in Expected[module])
            Assert.True(entries.Contains(name), $"{module}.cu for {architecture} lacks the entry point {name}; it has {string.Join(", ", entries.Order())}");
    }

    [Fact]
    public void EveryLauncherModuleIsEmbedded()
    {
        foreach (var module in Expected.Keys) Assert.Contains(module, KernelSources.Modules);
        Assert.Contains("common.cuh", KernelSources.Headers.Keys);
    }

    [Fact]
    public void CommonHeaderHelpersCompileInAProbeKernel()
    {
        NvrtcCompileTests.RequireNvrtc();
        const string probe = """
            #include "common.cuh"
            extern "C" __global__ void probe(uint4* out, float* f, u64 seed)
            {
                __shared__ float scratch[32];
                out[threadIdx.x] = philox4x32_10(make_uint4(threadIdx.x, 1u, 2u, 3u), philox_key(seed));
                float s = block_reduce_sum(f[threadIdx.x], scratch);
                float m = block_reduce_max(f[threadIdx.x], scratch, SIMCLR_NEG_INF_F);
                LseState st = warp_lse_combine<32>(lse_push(lse_empty(), f[threadIdx.x]));
                f[threadIdx.x] = s + m + lse_value(st) + philox_uniform(out[threadIdx.x].x);
            }
            """;
        var ptx = System.Text.Encoding.UTF8.GetString(Nvrtc.Compile("probe.cu", probe, KernelSources.Headers, ["--gpu-architecture=compute_80", .. NvrtcCompiler.CommonOptions], Nvrtc.Output.Ptx));
        Assert.Contains(".entry probe", ptx);
        // Philox's rounds need the high words of 32x32-bit products.
        Assert.Contains("mul.hi.u32", ptx);
    }
}
