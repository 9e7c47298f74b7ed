// How CUDA tests behave where CUDA is missing or broken, checked without a GPU: a backend that throws while
// opening is tried once and every later request fails with the first error (no retry, no crash); a missing
// driver is a skip; SIMCLR_REQUIRE_CUDA=1 turns those skips into failures that name the reason (run in a
// child test process over a real GPU test class, so the whole path from the environment variable to the
// reported result is covered); and the fp32 reduction tolerance admits a correct summation order that a fixed
// 1e-5 refuses.
using System.Diagnostics;
using System.Text.Json;
using SimClr.Kernels.Cuda;
using SimClr.Kernels.Cuda.Native;
using SimClr.Tests.Data;

namespace SimClr.Tests.Cuda;

public class CudaTestPolicyTests
{
    private sealed class FakeBackend;

    private static readonly CudaBackendOptions Fp32 = new(), Tf32 = new() { MathMode = CudaMathMode.Tf32 };

    [Fact]
    public void ABackendThatThrowsWhileOpeningIsTriedOnceAndReportedToEveryCaller()
    {
        int opens = 0;
        var gate = new BackendGate<FakeBackend>(_ =>
        {
            opens++;
            throw new CublasException(CublasStatus.NotInitialized, "CUBLAS_STATUS_NOT_INITIALIZED", "cublasCreate failed", "cublasCreate_v2(&handle)");
        });
        var first = gate.Get(Fp32);
        var second = gate.Get(Fp32);
        Assert.Equal(1, opens);
        Assert.Null(first.Backend);
        Assert.Null(first.Unavailable);
        Assert.Contains("failed to open: CublasException", first.Broken);
        Assert.Contains("CUBLAS_STATUS_NOT_INITIALIZED", first.Broken);
        // The first report carries the whole exception (its stack); later ones point back to it.
        Assert.Contains(" at ", first.Broken);
        Assert.Contains("CUBLAS_STATUS_NOT_INITIALIZED", second.Broken);
        Assert.Contains("not retried", second.Broken);
        Assert.Equal(1, gate.Attempts);
    }

    [Fact]
    public void AMissingDriverIsAReasonToSkipAndIsAskedOnce()
    {
        int opens = 0;
        var gate = new BackendGate<FakeBackend>(_ => { opens++; throw new CudaNotAvailableException("CUDA driver (libcuda) not found"); });
        var (backend, unavailable, broken) = gate.Get(Fp32);
        Assert.Null(backend);
        Assert.Null(broken);
        Assert.Equal("no CUDA: CUDA driver (libcuda) not found", unavailable);
        Assert.Equal(unavailable, gate.Get(Tf32).Unavailable);
        Assert.Equal(1, opens);
    }

    [Fact]
    public void AnOpenedBackendIsSharedPerMode()
    {
        var gate = new BackendGate<FakeBackend>(_ => new FakeBackend());
        var a = gate.Get(Fp32).Backend;
        Assert.NotNull(a);
        Assert.Same(a, gate.Get(Fp32).Backend);
        Assert.NotSame(a, gate.Get(Tf32).Backend);
        Assert.Equal(2, gate.Attempts);
    }

    /// <summary>Runs this test assembly again over one GPU class and reads its CTRF report: with
    /// SIMCLR_REQUIRE_CUDA=1 every test must fail naming why CUDA is missing; without it every test skips.</summary>
    [Fact]
    public void RequireCudaTurnsEverySkipOfAGpuClassIntoAFailureNamingTheReason()
    {
        if (CudaTestSupport.UnavailableReason() is null) Assert.Skip("a CUDA backend opens here, so the GPU tests pass instead of skipping");
        using var dir = new TempDir();
        const string gpuClass = "SimClr.Tests.Layers.CudaModelTests";

        var required = RunChild(dir.File("required.json"), gpuClass, require: true);
        Assert.Equal(3, required.Tests);
        Assert.Equal(3, required.Failed);
        Assert.Equal(0, required.Skipped);
        Assert.All(required.Messages, m => Assert.Contains($"{CudaTestSupport.RequireVariable}=1, but this CUDA test cannot run: no CUDA", m));

        // Without the variable the class's three skips are reported as one entry (tests/Support/CudaSkipSummary.cs).
        var relaxed = RunChild(dir.File("relaxed.json"), gpuClass, require: false);
        Assert.Equal(1, relaxed.Tests);
        Assert.Equal(0, relaxed.Failed);
        Assert.Equal(1, relaxed.Skipped);
        Assert.StartsWith($"{gpuClass} (", Assert.Single(relaxed.SkippedNames));
    }

    private sealed record ChildReport(int Tests, int Failed, int Skipped, List<string> Messages, List<string> SkippedNames);

    private static ChildReport RunChild(string report, string testClass, bool require)
    {
        var host = TestHost.Command(typeof(CudaTestPolicyTests).Assembly.Location)
            ?? throw new InvalidOperationException("cannot find a .NET host to run the test assembly again");
        var start = new ProcessStartInfo(host.FileName) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in host.Arguments) start.ArgumentList.Add(a);
        foreach (var a in new[] { "-noLogo", "-noColor", "-class", testClass, "-result-ctrf", report }) start.ArgumentList.Add(a);
        start.Environment[CudaTestSupport.RequireVariable] = require ? "1" : "0";
        using var child = Process.Start(start)!;
        var stderr = child.StandardError.ReadToEndAsync();
        var stdout = child.StandardOutput.ReadToEnd();
        child.WaitForExit();
        Assert.True(File.Exists(report), $"the child test run wrote no report (exit {child.ExitCode}):\n{stdout}\n{stderr.Result}");
        using var json = JsonDocument.Parse(File.ReadAllText(report));
        var results = json.RootElement.GetProperty("results");
        var summary = results.GetProperty("summary");
        var messages = results.GetProperty("tests").EnumerateArray()
            .Where(t => t.GetProperty("status").GetString() == "failed")
            .Select(t => t.TryGetProperty("message", out var m) ? m.GetString() ?? "" : "").ToList();
        var skipped = results.GetProperty("tests").EnumerateArray()
            .Where(t => t.GetProperty("status").GetString() == "skipped")
            .Select(t => t.GetProperty("name").GetString() ?? "").ToList();
        return new ChildReport(summary.GetProperty("tests").GetInt32(), summary.GetProperty("failed").GetInt32(), summary.GetProperty("skipped").GetInt32(), messages, skipped);
    }

    /// <summary>Plain sequential fp32 dot products over 65 573 terms (LinearBackwardWeights' reduction at the
    /// test's largest batch) against the same sums in double, measured as AssertClose does (max error over max
    /// value, 48 outputs per seed). A correct kernel's error there is within 3× of a fixed 1e-5, no margin for
    /// another summation order; ReductionTolerance admits it with room, and still catches a sum that drops a
    /// single term (the usual tile-edge bug).</summary>
    [Fact]
    public void ReductionToleranceAdmitsCorrectLongFp32SumsAndCatchesAMissingTerm()
    {
        const int length = 65536 + 37, outputs = 48;
        double tolerance = CudaTestSupport.ReductionTolerance(length);
        var errors = new List<double>();
        for (int seed = 0; seed < 5; seed++)
        {
            var rng = new Random(seed);
            double worst = 0, worstDropped = 0, scale = 0;
            for (int o = 0; o < outputs; o++)
            {
                float single = 0, dropped = 0;
                double exact = 0;
                for (int k = 0; k < length; k++)
                {
                    float a = 2 * rng.NextSingle() - 1, b = 2 * rng.NextSingle() - 1;
                    single += a * b;
                    if (k != length / 2) dropped += a * b;
                    exact += (double)a * b;
                }
                worst = Math.Max(worst, Math.Abs(single - exact));
                worstDropped = Math.Max(worstDropped, Math.Abs(dropped - exact));
                scale = Math.Max(scale, Math.Abs(exact));
            }
            errors.Add(worst / scale);
            Assert.True(worstDropped / scale > tolerance, $"seed {seed}: a sum missing one term ({worstDropped / scale:E2}) passes {tolerance:E2}");
        }
        var listed = string.Join(", ", errors.Select(e => e.ToString("E2")));
        Assert.True(errors.Max() > 1e-5 / 3, $"correct sums came out at {listed}, further below 1e-5 than expected");
        Assert.True(errors.Max() * 4 <= tolerance, $"correct sums ({listed}) leave less than 4× margin under {tolerance:E2}");
        Assert.Equal(1e-5, CudaTestSupport.ReductionTolerance(100));
    }
}
