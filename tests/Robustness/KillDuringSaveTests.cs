// kill -9 during checkpoint saves, for real: the program runs as a child process that saves after every
// epoch (two steps each), a watcher sees the save's temporary file appear and kills the process at once with
// SIGKILL. A kill counts as "during a save" when the temporary file is still there afterwards, so the rename
// had not happened. After every kill the newest checkpoint must load as a whole, and the next start (a resume
// from it) must remove the temporary file the kill left.
using System.Diagnostics;
using SimClr.Tests.Data;
using SimClr.Tests.Training;
using SimClr.Training.Checkpoints;

namespace SimClr.Tests.Robustness;

public class KillDuringSaveTests
{
    private const int RequiredKillsDuringSave = 20, MaxAttempts = 80;

    [Fact]
    public async Task KilledDuringSavesTheNewestCheckpointAlwaysLoads()
    {
        // On a tmpfs (where this host may mount one) fsync costs nothing, so the test spends its time on kills, not
        // on waiting for a disk; elsewhere it runs in the temporary folder, only slower.
        using var tmp = new TempDir();
        using var disk = Tmpfs.TryMount(256 << 20, out _);
        string dir = Path.Combine(disk?.Path ?? tmp.Path, "run");
        string checkpoints = Path.Combine(dir, "checkpoints");
        // Width 1/8 makes each checkpoint 1.5 MB, so a save lasts long enough to be caught in the middle.
        string[] run = ["pretrain", "--shapes-count", "32", "--image-size", "16", "--batch-size", "16", "--width", "0.125", "--head-out", "16",
            "--epochs", "100000", "--warmup-epochs", "1", "--eval", "none", "--progress", "quiet", "--seed", "3", "--device", "cpu", "--keep-last", "2"];
        int killedDuringSave = 0, attempts = 0;
        long lastStep = -1;
        var rng = new Random(7);
        for (; killedDuringSave < RequiredKillsDuringSave && attempts < MaxAttempts; attempts++)
        {
            string? latest = new CheckpointStore(checkpoints, 2).Latest();
            string[] args = latest is null ? [.. run, "--out", dir] : ["pretrain", "--resume", latest, "--progress", "quiet", "--device", "cpu"];
            // Kill at the first or second save of this process, so the run also makes progress between kills; the
            // first process always completes one save, so there is a checkpoint to resume from.
            int killAt = latest is null ? 2 : rng.Next(1, 3), seen = 0;
            Directory.CreateDirectory(checkpoints);
            using var watcher = new FileSystemWatcher(checkpoints, "*" + SimClr.Training.Io.AtomicFile.TempMarker + "*") { NotifyFilter = NotifyFilters.FileName };
            Process? p = null;
            using var started = new ManualResetEventSlim();
            watcher.Created += (_, e) =>
            {
                if (e.Name?.StartsWith("step-", StringComparison.Ordinal) != true) return;
                started.Wait();
                if (Interlocked.Increment(ref seen) == killAt) p!.Kill();
            };
            watcher.EnableRaisingEvents = true;
            p = Child.Start(args);
            started.Set();
            var stderr = p.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
            var stdout = p.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
            Assert.True(p.WaitForExit(TimeSpan.FromMinutes(2)), "the run was not killed within two minutes");
            watcher.EnableRaisingEvents = false;
            Assert.True(p.ExitCode != 0, $"the run ended by itself: {await stderr}");
            await stdout;

            var temps = Hostile.TempFiles(checkpoints);
            // Every temporary file left is this process's: the start removed those of earlier kills.
            Assert.All(temps, t => Assert.EndsWith(SimClr.Training.Io.AtomicFile.TempMarker + p.Id, t));
            if (temps.Any(t => Path.GetFileName(t).StartsWith("step-", StringComparison.Ordinal))) killedDuringSave++;
            string? newest = new CheckpointStore(checkpoints, 2).Latest();
            Assert.NotNull(newest);
            var info = Hostile.AssertLoads(newest);
            Assert.True(info.Position.Step >= lastStep, $"the newest checkpoint went back from step {lastStep} to {info.Position.Step}");
            lastStep = info.Position.Step;
            p.Dispose();
        }
        TestContext.Current.SendDiagnosticMessage($"kill -9: {attempts} kills, {killedDuringSave} during a save, newest checkpoint at step {lastStep}");
        Assert.True(killedDuringSave >= RequiredKillsDuringSave, $"only {killedDuringSave} of {attempts} kills landed during a save");
    }
}
