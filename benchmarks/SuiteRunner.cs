// Runs a list of cases on one backend with one clock and turns each into a report row. A case that
// the backend does not implement yet is reported as skipped with the backend's own message, and one
// that throws is recorded as a failure (the program then exits 1), so one missing or broken op never
// hides the figures of the others.
using SimClr.Kernels;

namespace SimClr.Benchmarks;

public static class SuiteRunner
{
    public static void RunCases(SuiteReport report, IBackend<float> backend, IBenchClock clock, IEnumerable<OpCase> cases,
        BenchOptions options, string memoryKind)
    {
        var settings = MeasureSettings.For(options);
        var roof = report.Roofline ?? throw new InvalidOperationException("measure the roofline before running cases");
        foreach (var c in cases)
        {
            if (!options.Selects(c.Key)) continue;
            Console.Error.Write($"  {c.Key} ... ");
            using var buffers = new CaseBuffers(backend);
            try
            {
                var body = c.Setup(buffers);
                var timing = Measure.Run(clock, body.Run, settings);
                var row = BenchResult.From(c.Key, c.Group, c.Shape, timing, body.Work, roof, buffers.Bytes, memoryKind, body.Note);
                report.Add(row);
                Console.Error.WriteLine($"{row.MedianMs:G4} ms");
            }
            catch (NotSupportedException e)
            {
                report.Notes.Add($"skipped {c.Key}: {e.Message}");
                Console.Error.WriteLine($"skipped ({e.Message})");
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // One failing op must not hide the others' figures; the run still exits non-zero.
                report.Failures.Add($"{c.Key}: {e.GetType().Name}: {e.Message}");
                Console.Error.WriteLine($"FAILED ({e.GetType().Name}: {e.Message})");
            }
        }
    }
}
