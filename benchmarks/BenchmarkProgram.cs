// Dispatch from the command line to a suite (or the `device` probe, or the CPU step `profile`), and the shared tail of every run:
// print the markdown table, write the JSON, exit 0 (1 if a benchmark threw). A GPU suite on a machine
// without CUDA prints why and exits 0, so scripts that run every suite work everywhere, except under
// SIMCLR_REQUIRE_CUDA=1 (gpu-check), where it exits 3; a backend that exists but fails to open always exits 1.
namespace SimClr.Benchmarks;

public static class BenchmarkProgram
{
    /// <summary>Exit code of a GPU suite without CUDA under SIMCLR_REQUIRE_CUDA=1 (2 means a usage error).</summary>
    public const int NoCudaRequired = 3;

    public static int Run(string[] args)
    {
        BenchOptions options;
        try
        {
            if (args is ["-h" or "--help" or "help", ..]) { Console.WriteLine(BenchOptions.Usage); return 0; }
            if (args is ["device", .. var rest]) return DeviceProbe.Run(rest is ["--json", var path] ? path : null);
            if (args is ["profile", .. var profileArgs]) return StepProfile.Run(profileArgs);
            options = BenchOptions.Parse(args);
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            Console.Error.WriteLine(BenchOptions.Usage);
            return 2;
        }

        SuiteReport? report;
        try
        {
            report = options.Suite switch
            {
                SuiteKind.Cpu => CpuSuite.Run(options),
                SuiteKind.Kernels => GpuSuites.Kernels(options),
                SuiteKind.Collectives => CollectivesSuite.Run(options),
                _ => GpuSuites.Step(options),
            };
        }
        catch (GpuUnavailableException e)
        {
            Console.WriteLine(e.Message);
            if (e.Broken) return 1;
            return Environment.GetEnvironmentVariable("SIMCLR_REQUIRE_CUDA") == "1" ? NoCudaRequired : 0;
        }
        if (report is null) return 0;
        // In an MPI job every rank ran the suite; rank 0 reports for it.
        if (report.Suite == "collectives" && report.AutosavePath is null) return 0;

        report.LoadAfter = Environments.LoadAverage();
        Console.WriteLine(report.ToMarkdown());
        report.WriteJson(options.JsonPath);
        Console.WriteLine($"JSON written to {Path.GetFullPath(options.JsonPath)}");
        if (report.Failures.Count > 0)
        {
            Console.Error.WriteLine($"{report.Failures.Count} benchmark(s) failed: see the FAILED lines above");
            return 1;
        }
        return 0;
    }
}

/// <summary>A GPU suite cannot run: no usable CUDA here (Broken = false), or the backend threw while opening (true).</summary>
public sealed class GpuUnavailableException(string message, bool broken) : Exception(message)
{
    public bool Broken { get; } = broken;
}
