// The golden tests' bridge to PyTorch: Debian's /usr/bin/python3 with python3-torch 1.13 and
// python3-torchvision 0.14 (.ci/run installs them; the pyenv python3 first on PATH has no torch). A test
// writes its inputs as safetensors plus a job.json, runs one script of tests/Golden/python/ once per test
// class, and compares what the script wrote with named tolerances. A missing torch is a failure with the
// reason, never a skip: the chain of references starts here. SIMCLR_TORCH_PYTHON names another interpreter.
using System.Diagnostics;
using System.Text.Json;
using SimClr.Training.Checkpoints;

namespace SimClr.Tests.Golden;

internal static class TorchPython
{
    public static string Interpreter => Environment.GetEnvironmentVariable("SIMCLR_TORCH_PYTHON") is { Length: > 0 } p ? p : "/usr/bin/python3";

    public static string RepoRoot { get; } = TestHost.FolderHolding("SimClr.Native.sln")
        ?? throw new InvalidOperationException("SimClr.Native.sln not found above " + AppContext.BaseDirectory);

    public static string Script(string name) => Path.Combine(RepoRoot, "tests", "Golden", "python", name);

    /// <summary>Runs <paramref name="script"/> (a path) with <paramref name="args"/> in <paramref name="workDir"/>,
    /// with the repository's python/ on PYTHONPATH; fails the test with the script's stderr when it fails.</summary>
    public static string Run(string script, string workDir, params string[] args)
    {
        var psi = new ProcessStartInfo(Interpreter) { WorkingDirectory = workDir, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(script);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["PYTHONPATH"] = Path.Combine(RepoRoot, "python");
        // No __pycache__ in the source tree, and no thread oversubscription beside the parallel .NET tests.
        psi.Environment["PYTHONDONTWRITEBYTECODE"] = "1";
        psi.Environment["OMP_NUM_THREADS"] = "2";
        Process p;
        try { p = Process.Start(psi)!; }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new Xunit.Sdk.XunitException($"{Interpreter} cannot be started ({e.Message}); .ci/run installs Debian's python3-torch and python3-torchvision");
        }
        using (p)
        {
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            p.WaitForExit();
            if (p.ExitCode != 0)
                throw new Xunit.Sdk.XunitException($"{Interpreter} {Path.GetFileName(script)} exited {p.ExitCode} (torch comes from Debian's python3-torch, which .ci/run installs):\n{stderr.Result}\n{stdout.Result}");
            return stdout.Result;
        }
    }

    public static void WriteJob(string path, object job) => File.WriteAllText(path, JsonSerializer.Serialize(job));
}

/// <summary>Tensor-by-tensor comparison with a named tolerance: the error is max|actual − expected| over the
/// tensor divided by max|expected| (so tiny entries are judged on the tensor's own scale, as PyTorch's
/// gradcheck-style reports do).</summary>
internal static class Golden
{
    public static double RelativeToMax(ReadOnlySpan<double> expected, ReadOnlySpan<double> actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        double diff = 0, scale = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            diff = Math.Max(diff, Math.Abs(actual[i] - expected[i]));
            scale = Math.Max(scale, Math.Abs(expected[i]));
        }
        return scale > 0 ? diff / scale : diff;
    }

    /// <summary>Asserts <paramref name="actual"/> matches <paramref name="expected"/> within <paramref name="tolerance"/>
    /// and returns the error, so a test can report the largest one it saw.</summary>
    public static double AssertClose(string what, ReadOnlySpan<double> expected, ReadOnlySpan<double> actual, double tolerance)
    {
        double err = RelativeToMax(expected, actual);
        Assert.True(err <= tolerance, $"{what}: max |ours − torch| / max |torch| = {err:E2} exceeds {tolerance:E0}");
        return err;
    }

    /// <summary>A float32 or float64 tensor's values, widened to double.</summary>
    public static double[] Values(SafeTensorsFile f, string name) => f.Tensors[name].DType == SafeDType.F64
        ? f.Read<double>(name)
        : [.. f.Read<float>(name).Select(v => (double)v)];
}
