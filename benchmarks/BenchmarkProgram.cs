// Dispatch from the command line to a suite, and the shared tail of every run: print the markdown
// table, write the JSON, exit 0 (1 if a benchmark threw). A GPU suite on a machine without CUDA prints
// why and exits 0, so scripts that run every suite work everywhere.
namespace SimClr.Benchmarks;

public static class BenchmarkProgram
{
    public static int Run(string[] args)
    {
        BenchOptions options;
        try
        {
            if (args is ["-h" or "--help" or "help", ..]) { Console.WriteLine(BenchOptions.Usage); return 0; }
            options = BenchOptions.Parse(args);
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            Console.Error.WriteLine(BenchOptions.Usage);
            return 2;
        }

        SuiteReport? report = options.Suite switch
        {
            SuiteKind.Cpu => CpuSuite.Run(options),
            SuiteKind.Kernels => GpuSuites.Kernels(options),
            SuiteKind.Collectives => CollectivesSuite.Run(options),
            _ => GpuSuites.Step(options),
        };
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
