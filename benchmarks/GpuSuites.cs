// The GPU suites (kernels, step). They need the CUDA backend, which is not in this branch yet; until it
// is, they say so and exit 0 as they will on machines without a CUDA device.
namespace SimClr.Benchmarks;

public static class GpuSuites
{
    public static SuiteReport? Kernels(BenchOptions options) => Unavailable(options);
    public static SuiteReport? Step(BenchOptions options) => Unavailable(options);

    private static SuiteReport? Unavailable(BenchOptions options)
    {
        Console.WriteLine($"{options.Suite.ToString().ToLowerInvariant()}: skipped, the CUDA backend is not part of this build yet");
        return null;
    }
}
