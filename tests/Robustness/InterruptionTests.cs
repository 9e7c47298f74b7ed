// Interruption: the epoch that Ctrl-C cut in two reports its loss over all its steps after the resume (the
// checkpoint stores the readings so far), and a second Ctrl-C, which ends the process at once, still leaves
// only whole files: every checkpoint loads, config and summary parse, every metrics line is a record, every
// plot is a complete PNG. What a kill can leave is a temporary file, and the next start removes it.
using System.Diagnostics;
using System.Text.Json.Nodes;
using SimClr.Tests.Data;
using SimClr.Tests.Training;
using SimClr.Training.Cli;
using SimClr.Training.Config;
using SimClr.Training.Pretraining;

namespace SimClr.Tests.Robustness;

public class InterruptionTests(StraightRun straightRun)
{
    private static List<(int Epoch, double Loss)> EpochLosses(string runDir) =>
        TinyRun.Records(runDir).Where(o => (string)o["kind"]! == "epoch").Select(o => ((int)o["epoch"]!, (double)o["loss"]!)).ToList();

    [Fact]
    public void TheInterruptedEpochsLossRecordCoversAllItsStepsAfterAResume()
    {
        using var tmp = new TempDir();
        string straight = straightRun.Dir, cut = tmp.File("cut");
        using var cancel = new CancellationTokenSource();
        var hooks = new TrainingHooks { AfterStep = (step, _) => { if (step == 8) cancel.Cancel(); } };
        Assert.Equal((int)ExitCode.Interrupted, Cli.Run(hooks, cancel.Token, TinyRun.Args(cut)).Code);
        var info = Hostile.AssertLoads(TinyRun.Checkpoint(cut, 8));
        Assert.Equal(2, info.PartialEpoch.Count);
        var resumed = Cli.Run("pretrain", "--resume", TinyRun.Checkpoint(cut, 8), "--progress", "quiet");
        Assert.True(resumed.Code == 0, resumed.Err);

        var expected = EpochLosses(straight);
        Assert.Equal(2, expected.Count);
        Assert.Equal(expected, EpochLosses(cut));
        // The epoch-2 mean over its last four steps alone differs: the comparison can fail.
        var steps = TinyRun.StepLosses(straight);
        Assert.NotEqual(expected[1].Loss, steps.Skip(8).Average(s => s.Loss));
    }

    /// <summary>Every file a run folder holds is whole (temporary files aside, which the next start removes).</summary>
    private static void AssertOnlyWholeFiles(string dir)
    {
        RunConfig.FromJson(File.ReadAllText(Path.Combine(dir, "config.json")), "config.json").Validate();
        foreach (var line in File.ReadAllLines(Path.Combine(dir, "metrics.jsonl")))
            Assert.NotNull(JsonNode.Parse(line)!["kind"]);
        string summary = Path.Combine(dir, "summary.json");
        if (File.Exists(summary)) Assert.NotNull(JsonNode.Parse(File.ReadAllText(summary))!["status"]);
        foreach (var png in Directory.GetFiles(dir, "*.png"))
        {
            var bytes = File.ReadAllBytes(png);
            Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], bytes[..4]);
            Assert.Equal("IEND"u8.ToArray(), bytes[^8..^4]);
        }
        foreach (var ck in Directory.GetFiles(Path.Combine(dir, "checkpoints"), "*.safetensors"))
            Hostile.AssertLoads(ck);
    }

    [Fact]
    public async Task ASecondCtrlCStillLeavesOnlyWholeFiles()
    {
        if (!File.Exists(Child.WithCtrlC[0])) Assert.Skip($"{Child.WithCtrlC[0]} is missing");
        using var tmp = new TempDir();
        foreach (int gapMs in new[] { 0, 2, 10, 40 })
        {
            string dir = tmp.File($"run-{gapMs}");
            using var p = Child.Start(TinyRun.Args(dir, 40), Child.WithCtrlC);
            var stdout = p.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
            var stderr = p.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
            // Wait until the first checkpoint exists, so the first Ctrl-C lands mid-run and the second during its save.
            var clock = Stopwatch.StartNew();
            while (!File.Exists(TinyRun.Checkpoint(dir, 6)) && !p.HasExited && clock.Elapsed < TimeSpan.FromMinutes(2)) Thread.Sleep(5);
            if (p.HasExited) Assert.Fail($"the run ended early: {await stderr}");
            Native.Kill(p.Id, Native.SigInt);
            Thread.Sleep(gapMs);
            Native.Kill(p.Id, Native.SigInt);
            Assert.True(p.WaitForExit(TimeSpan.FromMinutes(2)), "the run did not stop after two Ctrl-C");
            await Task.WhenAll(stdout, stderr);
            Assert.True(p.ExitCode != 0, $"exit {p.ExitCode} after two Ctrl-C: {await stdout} {await stderr}");
            AssertOnlyWholeFiles(dir);

            // The run continues from its newest checkpoint, and that start removes what the kill left.
            string latest = Directory.GetFiles(Path.Combine(dir, "checkpoints"), "step-*.safetensors").Order(StringComparer.Ordinal).Last();
            var more = Child.Run(["pretrain", "--resume", latest, "--stop-after", (Hostile.AssertLoads(latest).Position.Epoch + 1).ToString(), "--progress", "quiet", "--device", "cpu"]);
            Assert.True(more.Code == 0, more.Err);
            Assert.Empty(Hostile.TempFiles(dir));
            Assert.Empty(Hostile.TempFiles(Path.Combine(dir, "checkpoints")));
            AssertOnlyWholeFiles(dir);
        }
    }
}
