// The modules behind CudaBackend's kernel launchers compile with NVRTC for compute_80 and compute_90 and
// export every entry point the launchers ask for by name (extends NvrtcCompileTests, which compiles every
// module, with the exact `.entry` names; a renamed or mangled kernel fails here instead of at first launch
// on a GPU). Also: common.cuh's Philox4x32-10 compiles to the multiply-high form in a probe kernel. NVRTC
// needs no GPU; in CI a missing libnvrtc is a failure, elsewhere a skip.
using System.Text.RegularExpressions;
using SimClr.Kernels.Cuda;
using SimClr.Kernels.Cuda.Native;

namespace SimClr.Tests.Cuda.Kernels;

[Trait(CudaTestSupport.Requires, CudaTestSupport.NvrtcOnly)]
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
        ["pool"] = ["maxpool_fwd", "maxpool_bwd"],
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

    [GeneratedRegex(@"(?:GetFunction|Kernel)\((?:ref _k\.\w+,\s*)?""(\w+)"",\s*""(\w+)""\)")]
    private static partial Regex NamedKernel();

    /// <summary>Every ("module", "kernel") pair written in the C# sources, launchers and tests alike, names an
    /// entry point that exists: a test that asks for a misspelt kernel would otherwise only fail on a GPU
    /// (NativeErrorTests once asked for "fill" where the kernel is fill_f32). Names starting with no_such_
    /// are deliberate misses.</summary>
    [Fact]
    public void EveryKernelNamedInTheSourcesExists()
    {
        NvrtcCompileTests.RequireNvrtc();
        string? root = TestHost.FolderHolding(Path.Combine("kernels", "common.cuh"));
        if (root is null || !Directory.Exists(Path.Combine(root, "tests"))) Assert.Skip($"the source tree (kernels/, src/, tests/) is not above {AppContext.BaseDirectory}");
        var named = new[] { "src", "tests", "benchmarks" }
            .SelectMany(folder => Directory.EnumerateFiles(Path.Combine(root, folder), "*.cs", SearchOption.AllDirectories))
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}") && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}"))
            .SelectMany(f => NamedKernel().Matches(File.ReadAllText(f)).Select(m => (File: Path.GetRelativePath(root, f), Module: m.Groups[1].Value, Kernel: m.Groups[2].Value)))
            .Where(n => !n.Kernel.StartsWith("no_such_", StringComparison.Ordinal))
            .ToList();
        Assert.True(named.Count >= 26, $"only {named.Count} kernel names found in the sources");
        var entries = new Dictionary<string, HashSet<string>>();
        foreach (var (file, module, kernel) in named)
        {
            Assert.True(KernelSources.Modules.Contains(module), $"{file} names kernel module '{module}', which is not embedded");
            if (!entries.TryGetValue(module, out var set))
                entries[module] = set = EntryPattern().Matches(NvrtcCompiler.Compile(module, "compute_80")).Select(m => m.Groups[1].Value).ToHashSet();
            Assert.True(set.Contains(kernel), $"{file} asks for kernel '{kernel}' in module '{module}', which exports {string.Join(", ", set.Order())}");
        }
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
