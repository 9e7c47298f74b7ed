// Starts real multi-process jobs with Open MPI's mpirun for the tests: the test executable itself (one test on
// every rank, which then plays that rank's part) or the training program. As root (CI) it adds --allow-run-as-root; it always adds
// --oversubscribe, since CI has 2 cores. Without mpirun the tests skip, except in CI (CI set), where a missing
// Open MPI is a failure: .ci/run installs openmpi-bin.
using System.Diagnostics;
using System.Text;

namespace SimClr.Tests.Distributed;

public sealed record MpiResult(int ExitCode, string Output, TimeSpan Elapsed)
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
    public static MpiResult Run(int ranks, string program, IEnumerable<string> arguments, TimeSpan limit, IReadOnlyDictionary<string, string>? environment = null)
    {
        using var job = Start(ranks, program, arguments, environment);
        return job.Wait(limit);
    }

    /// <summary>Starts the job and returns at once; the output is collected as it comes.</summary>
    public static MpiJob Start(int ranks, string program, IEnumerable<string> arguments, IReadOnlyDictionary<string, string>? environment = null)
    {
        var mpirun = RequireMpirun();
        var start = new ProcessStartInfo(mpirun) { RedirectStandardOutput = true, RedirectStandardError = true };
        if (IsRoot()) start.ArgumentList.Add("--allow-run-as-root");
        foreach (var a in new[] { "--oversubscribe", "-np", ranks.ToString(System.Globalization.CultureInfo.InvariantCulture) }) start.ArgumentList.Add(a);
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
            start.ArgumentList.Add("-x");
            start.ArgumentList.Add(name);
        }
        start.ArgumentList.Add(program);
        foreach (var a in arguments) start.ArgumentList.Add(a);
        return new MpiJob(start, $"mpirun -np {ranks} {Path.GetFileName(program)}");
    }

    /// <summary>The path of this build's training program (next to the test assembly).</summary>
    public static string TrainingProgram => Path.Combine(AppContext.BaseDirectory, "SimClr.Training");

    /// <summary>The process id of <paramref name="rank"/> of the job whose environment holds <paramref name="marker"/>
    /// (an environment entry passed with -x), or null while it has not started.</summary>
    public static int? RankProcess(string marker, int rank)
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out int pid)) continue;
            string environ;
            try { environ = File.ReadAllText(Path.Combine(dir, "environ")); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { continue; }
            var entries = environ.Split('\0');
            if (entries.Contains(marker) && entries.Contains($"OMPI_COMM_WORLD_RANK={rank}")) return pid;
        }
        return null;
    }

    /// <summary>Runs one test method of this test assembly on every rank (where it sees UnderMpirun and plays its rank's part).</summary>
    public static MpiResult RunTest(int ranks, string method, TimeSpan limit, IReadOnlyDictionary<string, string>? environment = null) =>
        Run(ranks, Path.Combine(AppContext.BaseDirectory, "SimClr.Tests"), ["-method", method, "-noLogo", "-noColor"], limit, environment);

    private static bool IsRoot()
    {
        try { return File.ReadAllText("/proc/self/status").Split('\n').FirstOrDefault(l => l.StartsWith("Uid:", StringComparison.Ordinal))?.Split('\t', StringSplitOptions.RemoveEmptyEntries).ElementAtOrDefault(1) == "0"; }
        catch (IOException) { return false; }
    }
}

/// <summary>A running mpirun job; disposing it kills what is left of it.</summary>
internal sealed class MpiJob : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly string _what;

    public MpiJob(ProcessStartInfo start, string what)
    {
        _what = what;
        _process = Process.Start(start) ?? throw new InvalidOperationException("mpirun did not start");
        _process.OutputDataReceived += (_, e) => Append(e.Data);
        _process.ErrorDataReceived += (_, e) => Append(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    private void Append(string? line)
    {
        if (line is not null) lock (_output) _output.AppendLine(line);
    }

    public string Output
    {
        get { lock (_output) return _output.ToString(); }
    }

    public bool HasExited => _process.HasExited;

    public MpiResult Wait(TimeSpan limit)
    {
        if (!_process.WaitForExit(limit))
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
            Assert.Fail($"{_what} did not finish within {limit.TotalSeconds} s:\n{Output}");
        }
        _process.WaitForExit();
        return new MpiResult(_process.ExitCode, Output, _clock.Elapsed);
    }

    public void Dispose()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.Dispose();
    }
}
