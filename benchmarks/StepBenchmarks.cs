// Whole SimCLR training steps (augment, forward, backward, LARS) over the layers' models.
using SimClr.Kernels;

namespace SimClr.Benchmarks;

public static class StepBenchmarks
{
    public static void RunCpu(SuiteReport report, IBackend<float> backend, IBenchClock clock, BenchOptions options)
    {
        report.Notes.Add("full step: pending the layers' SimCLR model in this branch");
    }
}
