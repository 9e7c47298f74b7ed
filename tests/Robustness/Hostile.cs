// Plumbing for the hostile-input tests: FIFOs and signals (libc), small tmpfs mounts that fill up or turn
// read-only for real (root only; elsewhere the tests skip and say why), the program run as a child process
// (for kill -9, SIGINT, and runs without root's permission override), and the one-line error check every
// refusal must pass.
using System.Diagnostics;
using System.Runtime.InteropServices;
using SimClr.Training.Checkpoints;
using SimClr.Training.Pretraining;

namespace SimClr.Tests.Robustness;

internal static partial class Native
{
    public const int SigInt = 2;

    [LibraryImport("libc", EntryPoint = "mkfifo", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int MkFifo(string path, uint mode);

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    public static partial uint GetEuid();

    public static bool IsRoot => GetEuid() == 0;

    public static string Fifo(string path)
    {
        if (MkFifo(path, 0x1A4 /* 0644 */) != 0) throw new IOException($"mkfifo {path}: errno {Marshal.GetLastPInvokeError()}");
        return path;
    }
}

internal static class Hostile
{
    /// <summary>Every refusal: a non-zero exit, exactly one line on stderr starting "error:", naming <paramref name="named"/>.</summary>
    public static void AssertOneLine((int Code, string Out, string Err) r, int expectedCode, params string[] named)
    {
        Assert.True(r.Code == expectedCode, $"exit {r.Code}, expected {expectedCode}; stderr: {r.Err}");
        var lines = r.Err.TrimEnd().Split('\n');
        Assert.True(lines.Length == 1, $"expected one error line, got {lines.Length}: {r.Err}");
        Assert.StartsWith("error:", r.Err);
        Assert.DoesNotContain("   at ", r.Err);
        foreach (var n in named) Assert.True(r.Err.Contains(n, StringComparison.Ordinal), $"the error does not name '{n}': {r.Err}");
    }

    /// <summary>A whole checkpoint that every reader accepts: container, metadata, and the model's own tensors.</summary>
    public static CheckpointInfo AssertLoads(string path)
    {
        var (file, info) = Checkpoint.Read(path);
        using var backend = new SimClr.Kernels.Cpu.CpuBackend<float>();
        var config = info.Config;
        using var model = ModelState.Build(backend, config, config.ImageSize, config.ImageSize, 2);
        using var momentum = model.Parameters.AllocateStateBuffer();
        ModelState.Load(file, model.Parameters, momentum);
        return info;
    }

    /// <summary>Runs <paramref name="body"/>, failing the test instead of hanging when it does not return (a FIFO opened blocking).</summary>
    public static T WithinAMinute<T>(Func<T> body)
    {
        var task = Task.Factory.StartNew(body, TaskCreationOptions.LongRunning);
        Assert.True(((IAsyncResult)task).AsyncWaitHandle.WaitOne(TimeSpan.FromMinutes(1)), "the program hung (it must refuse a FIFO at once, not wait on it)");
        return task.GetAwaiter().GetResult();
    }

    public static string[] TempFiles(string folder) =>
        Directory.Exists(folder) ? Directory.GetFiles(folder, "*" + SimClr.Training.Io.AtomicFile.TempMarker + "*") : [];
}

/// <summary>A tmpfs of a fixed size mounted on a fresh folder (root only), unmounted when disposed.</summary>
internal sealed class Tmpfs : IDisposable
{
    private Tmpfs(string path) => Path = path;

    public string Path { get; }

    /// <summary>Mounts one, or returns null and why not (not root, no mount permission in this container).</summary>
    public static Tmpfs? TryMount(long bytes, out string why)
    {
        why = "";
        if (!OperatingSystem.IsLinux() || !Native.IsRoot) { why = "mounting a tmpfs needs root on Linux (CI runs as root)"; return null; }
        string dir = Directory.CreateTempSubdirectory("simclr-tmpfs-").FullName;
        var (code, err) = Sh("mount", "-t", "tmpfs", "-o", $"size={bytes}", "tmpfs", dir);
        if (code != 0)
        {
            Directory.Delete(dir);
            why = $"mount -t tmpfs failed here ({err.Trim()}); the container lacks CAP_SYS_ADMIN";
            return null;
        }
        return new Tmpfs(dir);
    }

    public void RemountReadOnly()
    {
        var (code, err) = Sh("mount", "-o", "remount,ro", Path);
        if (code != 0) throw new IOException($"remount,ro {Path}: {err}");
    }

    public void RemountWritable()
    {
        var (code, err) = Sh("mount", "-o", "remount,rw", Path);
        if (code != 0) throw new IOException($"remount,rw {Path}: {err}");
    }

    public void Dispose()
    {
        Sh("umount", "-l", Path);
        try { Directory.Delete(Path, recursive: true); }
        catch (IOException) { }
    }

    private static (int Code, string Err) Sh(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, err);
    }
}

/// <summary>The program as a child process: the apphost built next to the tests.</summary>
internal static class Child
{
    public static string Exe => Path.Combine(AppContext.BaseDirectory, "SimClr.Training");

    /// <summary>Runs the program with SIGINT's default action, even when this test host inherited it ignored
    /// (a background job of a non-interactive shell does), so a Ctrl-C reaches the program's handler.</summary>
    public static readonly string[] WithCtrlC = ["/usr/bin/env", "--default-signal=INT"];

    /// <summary>Starts the program (optionally under <paramref name="wrapper"/>, e.g. setpriv) with output captured.</summary>
    public static Process Start(IEnumerable<string> args, params string[] wrapper)
    {
        var psi = new ProcessStartInfo(wrapper.Length > 0 ? wrapper[0] : Exe)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var w in wrapper.Skip(1)) psi.ArgumentList.Add(w);
        if (wrapper.Length > 0) psi.ArgumentList.Add(Exe);
        foreach (var a in args) psi.ArgumentList.Add(a);
        return Process.Start(psi)!;
    }

    public static (int Code, string Out, string Err) Run(IEnumerable<string> args, params string[] wrapper)
    {
        using var p = Start(args, wrapper);
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromMinutes(3)))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"{Exe} {string.Join(' ', args)} did not finish within 3 minutes (a hang)");
        }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    /// <summary>What makes file modes apply to the child: nothing for a normal user, setpriv dropping the
    /// permission override for root; null (with why) where root cannot drop it.</summary>
    public static string[]? WithoutPermissionOverride(out string why)
    {
        why = "";
        if (!Native.IsRoot) return [];
        if (!File.Exists("/usr/bin/setpriv")) { why = "setpriv (util-linux) is missing"; return null; }
        return ["/usr/bin/setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"];
    }
}
