// The write rule on real failing disks: a small tmpfs that fills up, and one remounted read-only (chmod does
// not stop root, a read-only mount does). Each failure must be one line naming the path and what to free or
// change, exit CannotWrite, and leave every earlier file whole: config, metrics records, checkpoints. Where
// mounting is not allowed (not root, no CAP_SYS_ADMIN) these tests skip and say so; CI runs as root.
using System.Text.Json.Nodes;
using SimClr.Tests.Data;
using SimClr.Tests.Training;
using SimClr.Training.Cli;
using SimClr.Training.Config;
using SimClr.Training.Io;
using SimClr.Training.Runs;

namespace SimClr.Tests.Robustness;

public class WriteRuleTests(EpochOneRun epochOne)
{
    /// <summary>The size of one tiny-run checkpoint, measured on the ordinary disk, sizes the small disks below.</summary>
    private long CheckpointBytes() => new FileInfo(epochOne.Checkpoint).Length;

    [Fact]
    public void AFullDiskIsOneLineAndEveryEarlierFileStaysWhole()
    {
        long checkpoint = CheckpointBytes();
        // Room for config, metrics, plots and one checkpoint, not for a second beside it.
        using var disk = Tmpfs.TryMount(checkpoint * 3 / 2 + (256 << 10), out string why);
        if (disk is null) Assert.Skip(why);
        string dir = Path.Combine(disk.Path, "run");

        var r = Cli.Run(TinyRun.Args(dir, 3));
        Hostile.AssertOneLine(r, (int)ExitCode.CannotWrite, TinyRun.Checkpoint(dir, 12), "disk is full", "free space");
        Hostile.AssertLoads(TinyRun.Checkpoint(dir, 6));
        Assert.Equal(5UL, RunConfig.FromJson(File.ReadAllText(Path.Combine(dir, "config.json")), "config.json").Seed);
        var records = TinyRun.Records(dir);
        Assert.Equal(12, records.Count(o => (string)o["kind"]! == "step"));
        Assert.Empty(Hostile.TempFiles(dir));
        Assert.Empty(Hostile.TempFiles(Path.Combine(dir, "checkpoints")));

        // Nothing was lost: the kept checkpoint continues into a copy on a disk with room.
        using var tmp = new TempDir();
        var resumed = Cli.Run("pretrain", "--resume", TinyRun.Checkpoint(dir, 6), "--out", tmp.File("more"), "--progress", "quiet");
        Assert.True(resumed.Code == 0, resumed.Err);
        Assert.Contains("continuing into a copy", resumed.Out);
        Assert.Equal(18, TinyRun.Records(tmp.File("more")).Count(o => (string)o["kind"]! == "step"));
    }

    [Fact]
    public void AFullDiskBeforeTheFirstCheckpointKeepsConfigAndMetrics()
    {
        long checkpoint = CheckpointBytes();
        using var disk = Tmpfs.TryMount(checkpoint / 2, out string why);
        if (disk is null) Assert.Skip(why);
        string dir = Path.Combine(disk.Path, "run");
        var r = Cli.Run(TinyRun.Args(dir, 2));
        Hostile.AssertOneLine(r, (int)ExitCode.CannotWrite, TinyRun.Checkpoint(dir, 6), "disk is full");
        Assert.Equal(6, TinyRun.Records(dir).Count(o => (string)o["kind"]! == "step"));
        Assert.NotNull(RunConfig.FromJson(File.ReadAllText(Path.Combine(dir, "config.json")), "config.json"));
        Assert.Empty(Directory.GetFiles(Path.Combine(dir, "checkpoints")));
    }

    [Fact]
    public void AMetricsAppendThatFailsLeavesTheEarlierRecordsIntact()
    {
        using var disk = Tmpfs.TryMount(16 << 10, out string why);
        if (disk is null) Assert.Skip(why);
        string path = Path.Combine(disk.Path, "metrics.jsonl");
        var log = MetricsLog.Start(path);
        var values = new Dictionary<string, double> { ["loss"] = Math.PI, ["lr"] = Math.E, ["padding"] = 1.0 / 3 };
        int written = 0;
        var e = Assert.Throws<UserError>((Action)(() =>
        {
            for (; ; written++) log.Append(new MetricRecord("step", written, 0, values));
        }));
        Assert.Equal(ExitCode.CannotWrite, e.Code);
        // Each record goes to metrics.jsonl, metrics.csv and the TensorBoard file in turn; whichever append found
        // the disk full is named, and every log still ends on a whole record: the failed record is in none of them
        // or (reaching the earlier logs before a later one failed) only in those.
        Assert.Contains(new[] { path, log.CsvPath, log.EventsPath }, p => e.Message.Contains(p));
        Assert.Contains("disk is full", e.Message);
        var lines = File.ReadAllLines(path);
        Assert.True(written > 10, $"only {written} records fit");
        Assert.InRange(lines.Length, written, written + 1);
        for (int i = 0; i < lines.Length; i++) Assert.Equal(i, (long)JsonNode.Parse(lines[i])!["step"]!);
        Assert.EndsWith("\n", File.ReadAllText(path));
        var csv = File.ReadAllLines(log.CsvPath);
        Assert.InRange(csv.Length - 1, written, written + 1);
        Assert.EndsWith("\n", File.ReadAllText(log.CsvPath));
        var events = SimClr.Tests.Training.EventFileReader.Read(log.EventsPath);
        Assert.InRange(events.Count - 1, written, written + 1);
    }

    [Fact]
    public void AnAtomicWriteThatFailsKeepsTheOldContent()
    {
        using var disk = Tmpfs.TryMount(64 << 10, out string why);
        if (disk is null) Assert.Skip(why);
        string path = Path.Combine(disk.Path, "summary.json");
        AtomicFile.WriteText(path, "{\"old\": true}");
        var e = Assert.Throws<UserError>(() => AtomicFile.Write(path, new byte[1 << 20]));
        Assert.Contains("disk is full", e.Message);
        Assert.Equal("{\"old\": true}", File.ReadAllText(path));
        Assert.Empty(Hostile.TempFiles(disk.Path));

        disk.RemountReadOnly();
        e = Assert.Throws<UserError>(() => AtomicFile.WriteText(path, "{}"));
        Assert.Equal(ExitCode.CannotWrite, e.Code);
        Assert.Contains("read-only", e.Message);
        Assert.Equal("{\"old\": true}", File.ReadAllText(path));
    }

    [Fact]
    public void AReadOnlyRunFolderOnResumeIsOneLineAndAnOutElsewhereContinues()
    {
        using var disk = Tmpfs.TryMount(32 << 20, out string why);
        if (disk is null) Assert.Skip(why);
        string dir = epochOne.CopyTo(Path.Combine(disk.Path, "run"));
        var before = Fixtures.Snapshot(dir);
        disk.RemountReadOnly();

        var r = Cli.Run("pretrain", "--resume", TinyRun.Checkpoint(dir, 6), "--progress", "quiet");
        Hostile.AssertOneLine(r, (int)ExitCode.CannotWrite, dir, "read-only", "--out");

        using var tmp = new TempDir();
        var resumed = Cli.Run("pretrain", "--resume", TinyRun.Checkpoint(dir, 6), "--out", tmp.File("copy"), "--progress", "quiet");
        Assert.True(resumed.Code == 0, resumed.Err);
        Assert.True(File.Exists(TinyRun.Checkpoint(tmp.File("copy"), 12)));
        disk.RemountWritable();
        Fixtures.AssertUnchanged(before, dir);
    }

    [Fact]
    public void TemporaryFilesOfKilledRunsAreRemovedAtTheNextStart()
    {
        using var tmp = new TempDir();
        string dir = epochOne.CopyTo(tmp.File("run"));
        using var gone = System.Diagnostics.Process.Start("true")!;
        gone.WaitForExit();
        string checkpoints = Path.Combine(dir, "checkpoints");
        string staleCheckpoint = Path.Combine(checkpoints, $"step-00000012.safetensors{AtomicFile.TempMarker}{gone.Id}");
        string staleConfig = Path.Combine(dir, $"config.json{AtomicFile.TempMarker}{gone.Id}");
        // A temporary file of a live process (this test host) may be mid-write: it stays.
        string live = Path.Combine(checkpoints, $"best.safetensors{AtomicFile.TempMarker}{Environment.ProcessId}");
        foreach (var p in new[] { staleCheckpoint, staleConfig, live }) File.WriteAllBytes(p, [1, 2, 3]);

        var r = Child.Run(["pretrain", "--resume", TinyRun.Checkpoint(dir, 6), "--progress", "quiet"]);
        Assert.True(r.Code == 0, r.Err);
        Assert.Contains("removed 2 temporary file(s)", r.Out);
        Assert.False(File.Exists(staleCheckpoint));
        Assert.False(File.Exists(staleConfig));
        Assert.True(File.Exists(live));
    }
}
