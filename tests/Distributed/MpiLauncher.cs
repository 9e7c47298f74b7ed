// Starts real multi-process jobs with Open MPI's mpirun for the tests: the test executable itself (to run an
// explicit test on every rank) or the training program. As root (CI) it adds --allow-run-as-root; it always adds
// --oversubscribe, since CI has 2 cores. Without mpirun the tests skip, except in CI (CI set), where a missing
// Open MPI is a failure: .ci/run installs openmpi-bin.
using System.Diagnostics;
using System.Text;

namespace SimClr.Tests.Distributed;

internal sealed record MpiResult(int ExitCode, string Output, TimeSpan Elapsed)
{
    public override string ToString() => $"exit {ExitCode} after {Elapsed.TotalSeconds:F1} s:\n{Output}";
}

internal static class MpiLauncher
{
    /// <summary>mpirun's path, or skips (fails in CI).</summary>
    public static string RequireMpirun()
    {
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, "mpirun");
            if (File.Exists(candidate)) return candidate;
        }
        if (!string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CI")))
            Assert.Fail("CI must run the multi-process tests, but mpirun is not on PATH (apt-get install openmpi-bin libopenmpi-dev)");
        Assert.Skip("Open MPI's mpirun is not on PATH (Debian: openmpi-bin, libopenmpi-dev)");
        return "";
    }

    /// <summary>True when this process is a rank of an mpirun job.</summary>
    public static bool UnderMpirun => Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE") is { Length: > 0 };

    /// <summary>Runs <paramref name="program"/> on <paramref name="ranks"/> ranks and waits at most <paramref name="limit"/>.</summary>
    public static MpiResult Run(int ranks, string program, IEnumerable<string> arguments, TimeSpan limit, IReadOnlyDictionary<string, string>? environment = null,
        string? workingDirectory = null)
    {
        var mpirun = RequireMpirun();
        var start = new ProcessStartInfo(mpirun) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory };
        if (Environment.UserName == "root" || IsRoot()) start.ArgumentList.Add("--allow-run-as-root");
        foreach (var a in new[] { "--oversubscribe", "-np", ranks.ToString(System.Globalization.CultureInfo.InvariantCulture) }) start.ArgumentList.Add(a);
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
            start.ArgumentList.Add("-x");
            start.ArgumentList.Add(name);
        }
        // The children must not think they are the test host's own xunit run (its environment is inherited).
        start.Environment.Remove("OMPI_COMM_WORLD_SIZE");
        start.ArgumentList.Add(program);
        foreach (var a in arguments) start.ArgumentList.Add(a);
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(start) ?? throw new InvalidOperationException("mpirun did not start");
        var output = new StringBuilder();
        var gate = new object();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (gate) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (gate) output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        if (!process.WaitForExit(limit))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            lock (gate) Assert.Fail($"mpirun -np {ranks} {program} did not finish within {limit.TotalSeconds} s:\n{output}");
        }
        process.WaitForExit();
        lock (gate) return new MpiResult(process.ExitCode, output.ToString(), clock.Elapsed);
    }

    /// <summary>Runs one explicit test method of this test assembly on every rank.</summary>
    public static MpiResult RunTest(int ranks, string method, TimeSpan limit, IReadOnlyDictionary<string, string>? environment = null) =>
        Run(ranks, Path.Combine(AppContext.BaseDirectory, "SimClr.Tests"), ["-method", method, "-explicit", "only", "-noLogo"], limit, environment);

    private static bool IsRoot()
    {
        try { return File.ReadAllText("/proc/self/status").Split('\n').FirstOrDefault(l => l.StartsWith("Uid:", StringComparison.Ordinal))?.Split('\t', StringSplitOptions.RemoveEmptyEntries).ElementAtOrDefault(1) == "0"; }
        catch (IOException) { return false; }
    }
}
