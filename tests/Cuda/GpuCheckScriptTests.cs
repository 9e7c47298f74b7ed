// scripts/gpu-check.sh (gpu-check.sh in the unpacked GPU bundle) on a machine without a usable GPU: it must
// exit 2 within a minute, print exactly one line saying why, and leave summary.md (and nothing beyond the
// handful of small files the device tool brings back) in OUTDIR. The GPU host's run is the real check; this
// keeps the no-device path honest in CI. From a checkout the script needs the Release build of the solution.
using System.Diagnostics;
using SimClr.Tests.Data;

namespace SimClr.Tests.Cuda;

public class GpuCheckScriptTests
{
    [Fact]
    public async Task WithoutAGpuItExitsTwoWithinAMinuteWithOneLineAndASummary()
    {
        if (CudaTestSupport.UnavailableReason() is null) Assert.Skip("a CUDA backend opens here: gpu-check would run its full eight minutes");
        string? script = TestHost.FolderHolding("gpu-check.sh") is { } bundle ? Path.Combine(bundle, "gpu-check.sh")
            : TestHost.FolderHolding(Path.Combine("scripts", "gpu-check.sh")) is { } checkout ? Path.Combine(checkout, "scripts", "gpu-check.sh") : null;
        if (script is null) Assert.Skip($"neither gpu-check.sh (bundle) nor scripts/gpu-check.sh (checkout) is above {AppContext.BaseDirectory}");
        var root = Path.GetDirectoryName(Path.GetDirectoryName(script))!;
        if (Path.GetFileName(Path.GetDirectoryName(script)) == "scripts" && !File.Exists(Path.Combine(root, "benchmarks", "bin", "Release", "net10.0", "SimClr.Benchmarks.dll")))
            Assert.Skip("the checkout's Release build is missing (dotnet build SimClr.Native.sln -c Release), which gpu-check runs");

        using var dir = new TempDir();
        var outDir = dir.Sub("out");
        var start = new ProcessStartInfo("bash", [script, outDir]) { RedirectStandardOutput = true, RedirectStandardError = true };
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(start)!;
        var cancel = TestContext.Current.CancellationToken;
        var stderr = process.StandardError.ReadToEndAsync(cancel);
        var stdout = await process.StandardOutput.ReadToEndAsync(cancel);
        Assert.True(process.WaitForExit(TimeSpan.FromSeconds(90)), "gpu-check did not finish within 90 s");
        clock.Stop();

        Assert.True(process.ExitCode == 2, $"exit {process.ExitCode}\n{stdout}\n{await stderr}");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"took {clock.Elapsed.TotalSeconds:F0} s");
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var line = Assert.Single(lines);
        Assert.StartsWith("gpu-check: no usable CUDA device: ", line);
        var summary = File.ReadAllText(Path.Combine(outDir, "summary.md"));
        Assert.Contains(line["gpu-check: ".Length..], summary);
        Assert.Contains("| device | no usable CUDA device |", summary);
        var files = Directory.GetFiles(outDir, "*", SearchOption.AllDirectories);
        Assert.InRange(files.Length, 1, 8);
        Assert.Empty(Directory.GetDirectories(outDir));
    }
}
