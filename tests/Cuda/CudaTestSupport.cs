// Shared plumbing for GPU tests: one CudaBackend per set of options for the whole run (opening cuBLAS and cuDNN
// costs seconds), a skip with the concrete reason where CUDA is missing, and CPU-twin helpers that move
// random data to both backends and compare results. Tests that use the GPU belong to the "CUDA" collection,
// which runs its classes one at a time because a backend has a single stream and is not thread-safe, and
// carry [Trait("Requires", "CUDA")] (NVRTC-only tests: "NVRTC"), which is how scripts/gpu-check.sh selects
// them; Backend() and RequireNvrtc() fail a test that lacks its trait, so the selection cannot drift.
// SIMCLR_REQUIRE_CUDA=1 (set by gpu-check) turns every would-be skip for lack of CUDA into a failure that
// names the reason, so a GPU host with a library problem cannot report "0 failed". A backend that throws
// while opening (cuBLAS or cuDNN handle creation, say) is tried once: every CUDA test then fails with the
// first error instead of retrying it.
using SimClr.Kernels;
using SimClr.Kernels.Cpu;
using SimClr.Kernels.Cuda;
using SimClr.Kernels.Cuda.Native;

namespace SimClr.Tests.Cuda;

[CollectionDefinition(CudaTestSupport.Collection, DisableParallelization = true)]
public sealed class CudaCollection;

/// <summary>Opens one backend per set of options at most once. "Unavailable" (no driver, library or device) is a
/// reason to skip; "Broken" (the open threw anything else) is a failure, reported in full the first time and
/// by reference afterwards, never retried.</summary>
internal sealed class BackendGate<TBackend>(Func<CudaBackendOptions, TBackend> open) where TBackend : class
{
    private readonly Lock _gate = new();
    private readonly Dictionary<CudaBackendOptions, TBackend> _open = [];
    private readonly Dictionary<CudaBackendOptions, string> _broken = [];
    private string? _unavailable;

    public int Attempts { get; private set; }

    public (TBackend? Backend, string? Unavailable, string? Broken) Get(CudaBackendOptions options)
    {
        lock (_gate)
        {
            if (_open.TryGetValue(options, out var backend)) return (backend, null, null);
            if (_unavailable is not null) return (null, _unavailable, null);
            if (_broken.TryGetValue(options, out var broken)) return (null, null, $"{broken} (reported in full by the first CUDA test that asked; not retried)");
            Attempts++;
            try
            {
                backend = open(options);
            }
            catch (CudaNotAvailableException e)
            {
                _unavailable = $"no CUDA: {e.Message}";
                return (null, _unavailable, null);
            }
            catch (CudaException e) when (e.Status is CuResult.NoDevice or CuResult.StubLibrary or CuResult.DeviceUnavailable or CuResult.NotInitialized)
            {
                _unavailable = $"no CUDA device: {e.Message}";
                return (null, _unavailable, null);
            }
            catch (Exception e)
            {
                _broken[options] = $"the CUDA backend ({options}) failed to open: {e.GetType().Name}: {e.Message}";
                return (null, null, $"{_broken[options]}\n{e}");
            }
            _open[options] = backend;
            return (backend, null, null);
        }
    }
}

public static class CudaTestSupport
{
    /// <summary>Put GPU test classes in this collection: <c>[Collection(CudaTestSupport.Collection)]</c>.</summary>
    public const string Collection = "CUDA";

    /// <summary>The trait that selects device tests: <c>[Trait(CudaTestSupport.Requires, CudaTestSupport.Cuda)]</c>.</summary>
    public const string Requires = "Requires";
    public const string Cuda = "CUDA";
    public const string NvrtcOnly = "NVRTC";

    /// <summary>Set to 1 to make every skip for lack of CUDA (or NVRTC) a failure.</summary>
    public const string RequireVariable = "SIMCLR_REQUIRE_CUDA";

    public static bool CudaRequired => Environment.GetEnvironmentVariable(RequireVariable) == "1";

    private static readonly BackendGate<CudaBackend> Gate = new(options => new CudaBackend(0, options));

    /// <summary>The shared backend for math <paramref name="mode"/>, or Assert.Skip with the reason CUDA is unavailable
    /// (for example "no CUDA: CUDA driver (libcuda) not found: tried libcuda.so.1 in …"), a failure under
    /// SIMCLR_REQUIRE_CUDA=1, and a failure whenever the backend threw while opening.</summary>
    public static CudaBackend Backend(CudaMathMode mode = CudaMathMode.Fp32) => Backend(new CudaBackendOptions { MathMode = mode });

    /// <summary>The shared backend opened with <paramref name="options"/> (one per distinct set of options).</summary>
    public static CudaBackend Backend(CudaBackendOptions options)
    {
        RequireTrait(Cuda);
        var (backend, unavailable, broken) = Gate.Get(options);
        if (backend is not null) return backend;
        if (broken is not null) Assert.Fail(broken);
        Unavailable(unavailable!);
        return null!;
    }

    /// <summary>The reason CUDA cannot be used here, or null when a backend opens.</summary>
    public static string? UnavailableReason()
    {
        var (_, unavailable, broken) = Gate.Get(new CudaBackendOptions());
        return unavailable ?? broken;
    }

    /// <summary>Skips with <paramref name="reason"/>, or fails naming it under SIMCLR_REQUIRE_CUDA=1.</summary>
    public static void Unavailable(string reason)
    {
        if (CudaRequired) Assert.Fail($"{RequireVariable}=1, but this CUDA test cannot run: {reason}");
        Assert.Skip(reason);
    }

    /// <summary>Fails a test that needs a device (or NVRTC) but lacks the trait gpu-check selects by.</summary>
    internal static void RequireTrait(params string[] accepted)
    {
        var test = TestContext.Current.Test;
        if (test is null) return;
        if (test.Traits.TryGetValue(Requires, out var values) && values.Any(accepted.Contains)) return;
        Assert.Fail($"{test.TestDisplayName} uses {string.Join(" or ", accepted)} but has no [Trait(\"{Requires}\", \"{accepted[0]}\")]: scripts/gpu-check.sh selects device tests by that trait");
    }

    /// <summary>The relative tolerance of an fp32 reduction of <paramref name="length"/> terms compared with a
    /// reference that sums in another order: rounding errors of a sum grow like u·√length (u = 2⁻²⁴) for
    /// random signs, so a fixed 1e-5 is too tight past a few thousand terms; 8·u·√length leaves room for
    /// both sides' errors and the maximum over many outputs, and never goes below 1e-5.</summary>
    public static double ReductionTolerance(long length) => Math.Max(1e-5, 8 * Math.Pow(2, -24) * Math.Sqrt(length));

    /// <summary>Runs <paramref name="step"/> once to warm up (algorithm search, scratch growth), then three more
    /// times, and asserts the backend allocated no device memory during those three.</summary>
    public static void AssertNoAllocationsAfterWarmUp(CudaBackend gpu, Action step)
    {
        step();
        gpu.Synchronize();
        long before = gpu.AllocationCount;
        for (int i = 0; i < 3; i++) step();
        gpu.Synchronize();
        Assert.Equal(before, gpu.AllocationCount);
    }

    public static CpuBackend<float> CpuTwin { get; } = new();

    /// <summary>Uniform values in [lo, hi) from a fixed seed.</summary>
    public static float[] Random(long length, int seed, float lo = -1f, float hi = 1f)
    {
        var rng = new System.Random(seed);
        var values = new float[length];
        for (long i = 0; i < length; i++) values[i] = lo + (hi - lo) * rng.NextSingle();
        return values;
    }

    public static Tensor<float> Host(float[] values) => Upload(CpuTwin, values);

    public static Tensor<float> Device(CudaBackend gpu, float[] values) => Upload(gpu, values);

    /// <summary>A new tensor of <paramref name="backend"/> holding <paramref name="values"/> (any element type: labels, segments).</summary>
    public static Tensor<U> Upload<U>(IBackend<float> backend, U[] values) where U : unmanaged
    {
        var t = backend.Allocate<U>(values.Length).AsTensor();
        backend.Upload(t, values);
        return t;
    }

    public static float[] Read(IBackend<float> backend, Tensor<float> t)
    {
        var values = new float[t.Length];
        backend.Download(values.AsSpan(), t);
        return values;
    }

    /// <summary>max|actual − expected| / max|expected| (the scale of the result sets the tolerance).</summary>
    public static double RelativeError(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected)
    {
        Assert.Equal(expected.Length, actual.Length);
        double diff = 0, scale = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            if (float.IsNaN(actual[i]) != float.IsNaN(expected[i])) return double.PositiveInfinity;
            diff = Math.Max(diff, Math.Abs((double)actual[i] - expected[i]));
            scale = Math.Max(scale, Math.Abs((double)expected[i]));
        }
        return diff / Math.Max(scale, 1e-30);
    }

    public static void AssertClose(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, string what, double tolerance)
    {
        double error = RelativeError(actual, expected);
        Assert.True(error <= tolerance, $"{what}: relative error {error:E3} exceeds {tolerance:E1}");
    }

    /// <summary>Compares a GPU tensor with its CPU twin.</summary>
    public static void AssertTwin(CudaBackend gpu, Tensor<float> onGpu, Tensor<float> onCpu, string what, double tolerance = 1e-5) =>
        AssertClose(Read(gpu, onGpu), Read(CpuTwin, onCpu), what, tolerance);
}
