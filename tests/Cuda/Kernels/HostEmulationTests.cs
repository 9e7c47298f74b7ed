// Executes the CUDA kernels without a GPU: the drivers in HostEmulation/ compile kernels/*.cu as C++ against
// a small emulation of the CUDA execution model (cuda_emu.h: one cooperative fiber per CUDA thread, real
// block and warp barriers, shared memory per block, threads scheduled in either order) and check every kernel against double-precision
// references of the CPU twin's formulas with the launch configurations CudaBackend uses. This is what makes
// the kernels' index math, tiling, partial tiles and reductions run in CI; the CPU-vs-CUDA tests then check
// the real thing on a device. Needs g++ with C++20 (skipped, with the reason, where it is missing).
using System.Diagnostics;

namespace SimClr.Tests.Cuda.Kernels;

public class HostEmulationTests
{
    public static TheoryData<string> Drivers() => ["ntxent_emu", "cosine_lars_emu", "elementwise_emu", "pool_emu", "syncbn_emu"];

    [Theory]
    [MemberData(nameof(Drivers))]
    public void KernelsMatchDoubleReferencesUnderEmulation(string driver)
    {
        var folder = EmulationFolder();
        var compiler = FindCompiler();
        var output = Directory.CreateTempSubdirectory("simclr-emu-");
        try
        {
            var binary = Path.Combine(output.FullName, driver);
            var (buildCode, buildLog) = Run(compiler, ["-std=c++20", "-O2", "-Wall", "-Wno-unknown-pragmas", "-o", binary, Path.Combine(folder, $"{driver}.cpp")]);
            Assert.True(buildCode == 0, $"compiling {driver}.cpp failed:\n{buildLog}");

            // Once with the block's threads scheduled in increasing order, once in decreasing order: a missing
            // barrier shows up as stale shared memory in at least one of them.
            foreach (var reverse in new[] { "0", "1" })
            {
                var (code, log) = Run(binary, [], ("SIMCLR_EMU_REVERSE", reverse));
                Assert.True(code == 0 && log.Contains("ALL OK"), $"{driver} (SIMCLR_EMU_REVERSE={reverse}) reported failures:\n{log}");
            }
        }
        finally
        {
            output.Delete(recursive: true);
        }
    }

    /// <summary>tests/Cuda/Kernels/HostEmulation of the source tree this test assembly was built from.</summary>
    private static string EmulationFolder()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "Cuda", "Kernels", "HostEmulation");
            if (File.Exists(Path.Combine(dir.FullName, "kernels", "common.cuh")) && Directory.Exists(candidate)) return candidate;
        }
        Assert.Skip($"the source tree (kernels/ and tests/Cuda/Kernels/HostEmulation/) is not above {AppContext.BaseDirectory}");
        return "";
    }

    private static string FindCompiler()
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (var dir in path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, "g++");
            if (File.Exists(candidate)) return candidate;
        }
        Assert.Skip("g++ is not on PATH: the host emulation of the CUDA kernels needs a C++20 compiler");
        return "";
    }

    private static (int Code, string Log) Run(string file, string[] arguments, params (string Name, string Value)[] environment)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in arguments) start.ArgumentList.Add(a);
        foreach (var (name, value) in environment) start.Environment[name] = value;
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {file}");
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout + stderr.Result);
    }
}
