// Shared plumbing for GPU tests: one CudaBackend per math mode for the whole run (opening cuBLAS and cuDNN
// costs seconds), a skip with the concrete reason where CUDA is missing, and CPU-twin helpers that move
// random data to both backends and compare results. Tests that use the GPU belong to the "CUDA" collection,
// which runs its classes one at a time because a backend has a single stream and is not thread-safe.
using SimClr.Kernels;
using SimClr.Kernels.Cpu;
using SimClr.Kernels.Cuda;
using SimClr.Kernels.Cuda.Native;

namespace SimClr.Tests.Cuda;

[CollectionDefinition(CudaTestSupport.Collection, DisableParallelization = true)]
public sealed class CudaCollection;

public static class CudaTestSupport
{
    /// <summary>Put GPU test classes in this collection: <c>[Collection(CudaTestSupport.Collection)]</c>.</summary>
    public const string Collection = "CUDA";

    /// <summary>The trait that selects device tests: <c>[Trait(CudaTestSupport.Requires, CudaTestSupport.Cuda)]</c>.</summary>
    public const string Requires = "Requires";
    public const string Cuda = "CUDA";

    /// <summary>Set to 1 to make every skip for lack of CUDA (or NVRTC) a failure.</summary>
    public const string RequireVariable = "SIMCLR_REQUIRE_CUDA";

    private static readonly Lock Gate = new();
    private static readonly Dictionary<CudaMathMode, CudaBackend> Backends = [];
    private static string? s_unavailable;

    /// <summary>The shared backend for <paramref name="mode"/>, or Assert.Skip with the reason CUDA is unavailable
    /// (for example "no CUDA: CUDA driver (libcuda) not found: tried libcuda.so.1 in …").</summary>
    public static CudaBackend Backend(CudaMathMode mode = CudaMathMode.Fp32)
    {
        var backend = TryBackend(mode, out var reason);
        if (backend is null) Assert.Skip(reason!);
        return backend;
    }

    /// <summary>The reason CUDA cannot be used here, or null when a backend opens.</summary>
    public static string? UnavailableReason()
    {
        TryBackend(CudaMathMode.Fp32, out var reason);
        return reason;
    }

    private static CudaBackend? TryBackend(CudaMathMode mode, out string? reason)
    {
        lock (Gate)
        {
            reason = s_unavailable;
            if (reason is not null) return null;
            if (Backends.TryGetValue(mode, out var backend)) return backend;
            try
            {
                backend = new CudaBackend(0, mode);
            }
            catch (CudaNotAvailableException e)
            {
                reason = s_unavailable = $"no CUDA: {e.Message}";
                return null;
            }
            catch (CudaException e) when (e.Status is CuResult.NoDevice or CuResult.StubLibrary or CuResult.DeviceUnavailable or CuResult.NotInitialized)
            {
                reason = s_unavailable = $"no CUDA device: {e.Message}";
                return null;
            }
            Backends[mode] = backend;
            return backend;
        }
    }

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

    private static Tensor<float> Upload(IBackend<float> backend, float[] values)
    {
        var t = backend.Allocate<float>(values.Length).AsTensor();
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
