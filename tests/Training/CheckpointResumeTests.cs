using System.Text.Json.Nodes;
using SimClr.Layers;
using SimClr.Training.Checkpoints;
using SimClr.Training.Cli;
using SimClr.Training.Pretraining;

[assembly: AssemblyFixture(typeof(SimClr.Tests.Training.EpochOneRun))]
[assembly: AssemblyFixture(typeof(SimClr.Tests.Training.StraightRun))]

namespace SimClr.Tests.Training;

/// <summary>A tiny pretraining run shared by the checkpoint tests: 96 shapes of 16 px, batch 16 (6 steps per
/// epoch), ResNet-18 at width 1/8, no evaluation.</summary>
internal static class TinyRun
{
    public static string[] Args(string outDir, int epochs = 2, params string[] extra) =>
    [
        "pretrain", "--shapes-count", "96", "--image-size", "16", "--batch-size", "16", "--width", "0.125", "--head-out", "16",
        "--epochs", epochs.ToString(), "--warmup-epochs", "1", "--lr-scaling", "sqrt", "--base-lr", "0.15",
        "--eval", "none", "--progress", "quiet", "--seed", "5", "--device", "cpu", "--out", outDir, .. extra,
    ];

    public static string NewDir(string tag) => Path.Combine(Path.GetTempPath(), $"simclr-{tag}-{Guid.NewGuid():N}");

    /// <summary>Every record of a run's metrics.jsonl, in order.</summary>
    public static List<JsonObject> Records(string runDir) =>
        [.. File.ReadLines(Path.Combine(runDir, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!.AsObject())];

    public static List<(long Step, double Loss)> StepLosses(string runDir) =>
        Records(runDir).Where(o => (string)o["kind"]! == "step").Select(o => ((long)o["step"]!, (double)o["loss"]!)).ToList();

    public static string Checkpoint(string runDir, long step) => Path.Combine(runDir, "checkpoints", $"step-{step:D8}.safetensors");
}

/// <summary>A TinyRun pretrained once per test run, on first use, for the tests that only read it or work on a
/// copy of its folder, instead of pretraining the same steps again each. Nothing writes into <see cref="Dir"/>.</summary>
public abstract class SharedTinyRun(string tag, params string[] extra) : IDisposable
{
    private readonly Lazy<string> dir = new(() =>
    {
        string d = TinyRun.NewDir(tag);
        var r = Cli.Run(TinyRun.Args(d, 2, extra));
        if (r.Code != 0) throw new InvalidOperationException($"pretraining the shared run {string.Join(' ', TinyRun.Args(d, 2, extra))} failed: {r.Err}");
        return d;
    });

    public string Dir => dir.Value;

    /// <summary>Copies the run folder, file for file, to <paramref name="runDir"/> (which must not exist) and returns it.</summary>
    public string CopyTo(string runDir)
    {
        foreach (var file in Directory.GetFiles(Dir, "*", SearchOption.AllDirectories))
        {
            string target = Path.Combine(runDir, Path.GetRelativePath(Dir, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
        return runDir;
    }

    public void Dispose()
    {
        if (dir.IsValueCreated) Directory.Delete(dir.Value, true);
    }
}

/// <summary><c>TinyRun.Args(dir, 2, "--stop-after", "1")</c>: the run stopped after epoch 1, its checkpoint at step 6.</summary>
public sealed class EpochOneRun() : SharedTinyRun("epoch-one", "--stop-after", "1")
{
    public string Checkpoint => TinyRun.Checkpoint(Dir, 6);
}

/// <summary><c>TinyRun.Args(dir)</c>: both epochs straight through (12 steps), the reference the resumed runs must match.</summary>
public sealed class StraightRun() : SharedTinyRun("straight");

public class CheckpointResumeTests(EpochOneRun epochOne, StraightRun straightRun)
{
    private static void AssertSameTensors(string expectedPath, string actualPath)
    {
        var a = SafeTensorsFile.Load(expectedPath);
        var b = SafeTensorsFile.Load(actualPath);
        Assert.Equal(a.Tensors.Keys.Order(), b.Tensors.Keys.Order());
        foreach (var (name, t) in a.Tensors)
        {
            if (t.DType == SafeDType.I64) Assert.Equal(a.Read<long>(name), b.Read<long>(name));
            else
            {
                var x = a.Read<float>(name);
                var y = b.Read<float>(name);
                for (int i = 0; i < x.Length; i++)
                    if (BitConverter.SingleToInt32Bits(x[i]) != BitConverter.SingleToInt32Bits(y[i]))
                        Assert.Fail($"{name}[{i}]: straight run {x[i]:R}, resumed run {y[i]:R}");
            }
        }
    }

    [Fact]
    public void ResumeAfterOneEpochReproducesTheStraightRunExactly()
    {
        string straight = straightRun.Dir, split = epochOne.CopyTo(TinyRun.NewDir("split"));
        try
        {
            Assert.True(File.Exists(TinyRun.Checkpoint(split, 6)));
            Assert.False(File.Exists(TinyRun.Checkpoint(split, 12)));
            var second = Cli.Run("pretrain", "--resume", TinyRun.Checkpoint(split, 6), "--progress", "quiet", "--device", "cpu");
            Assert.True(second.Code == 0, second.Err);

            var expected = TinyRun.StepLosses(straight);
            Assert.Equal(12, expected.Count);
            Assert.Equal(expected, TinyRun.StepLosses(split));
            // The loss moved: the run trains, and the comparison is not between constants.
            Assert.NotEqual(expected[0].Loss, expected[^1].Loss);
            AssertSameTensors(TinyRun.Checkpoint(straight, 12), TinyRun.Checkpoint(split, 12));
        }
        finally { Directory.Delete(split, true); }
    }

    [Fact]
    public void CtrlCMidEpochSavesACheckpointAndResumeContinuesExactly()
    {
        string straight = straightRun.Dir, cut = TinyRun.NewDir("cut");
        try
        {
            using var cancel = new CancellationTokenSource();
            var hooks = new TrainingHooks { AfterStep = (step, _) => { if (step == 8) cancel.Cancel(); } };
            var (code, _, _) = Cli.Run(hooks, cancel.Token, TinyRun.Args(cut));
            Assert.Equal((int)ExitCode.Interrupted, code);
            string saved = TinyRun.Checkpoint(cut, 8);
            var (_, info) = SimClr.Training.Checkpoints.Checkpoint.Read(saved);
            Assert.Equal(new TrainingPosition(1, 8, 2), info.Position);

            var resumed = Cli.Run("pretrain", "--resume", saved, "--progress", "quiet", "--device", "cpu");
            Assert.True(resumed.Code == 0, resumed.Err);
            Assert.Equal(TinyRun.StepLosses(straight), TinyRun.StepLosses(cut));
            AssertSameTensors(TinyRun.Checkpoint(straight, 12), TinyRun.Checkpoint(cut, 12));
        }
        finally { Directory.Delete(cut, true); }
    }

    [Fact]
    public void CtrlCInsideALongStepAbandonsItWithTheStateFromBeforeTheStepAndResumeRepeatsItExactly()
    {
        string straight = straightRun.Dir, between = TinyRun.NewDir("between"), inside = TinyRun.NewDir("inside");
        try
        {
            // Reference: Ctrl-C after step 8, between steps: the checkpoint holds the state after step 8.
            using (var cancel = new CancellationTokenSource())
            {
                var hooks = new TrainingHooks { AfterStep = (step, _) => { if (step == 8) cancel.Cancel(); } };
                Assert.Equal((int)ExitCode.Interrupted, Cli.Run(hooks, cancel.Token, TinyRun.Args(between)).Code);
            }
            // Ctrl-C inside step 9, with every step counted as long: step 9 is abandoned, and its checkpoint is
            // the state from before it, the same as the reference's after step 8.
            using (var cancel = new CancellationTokenSource())
            {
                var hooks = new TrainingHooks { InsideStep = step => { if (step == 9) cancel.Cancel(); }, AbandonAfter = TimeSpan.MinValue };
                var (code, output, _) = Cli.Run(hooks, cancel.Token, [.. TinyRun.Args(inside).Select(a => a == "quiet" ? "plain" : a)]);
                Assert.Equal((int)ExitCode.Interrupted, code);
                Assert.Contains("abandoned step 9", output);
            }
            string saved = TinyRun.Checkpoint(inside, 8);
            Assert.False(File.Exists(TinyRun.Checkpoint(inside, 9)));
            var (_, info) = SimClr.Training.Checkpoints.Checkpoint.Read(saved);
            Assert.Equal(new TrainingPosition(1, 8, 2), info.Position);
            AssertSameTensors(TinyRun.Checkpoint(between, 8), saved);
            Assert.Equal(saved, (string)System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(inside, "summary.json")))!["last_checkpoint"]!);

            var resumed = Cli.Run("pretrain", "--resume", saved, "--progress", "quiet");
            Assert.True(resumed.Code == 0, resumed.Err);
            Assert.Equal(TinyRun.StepLosses(straight), TinyRun.StepLosses(inside));
            AssertSameTensors(TinyRun.Checkpoint(straight, 12), TinyRun.Checkpoint(inside, 12));
        }
        finally
        {
            foreach (var d in new[] { between, inside }) if (Directory.Exists(d)) Directory.Delete(d, true);
        }
    }

    [Fact]
    public void CtrlCInsideAShortStepLetsItFinish()
    {
        string dir = TinyRun.NewDir("short");
        try
        {
            using var cancel = new CancellationTokenSource();
            var hooks = new TrainingHooks { InsideStep = step => { if (step == 9) cancel.Cancel(); }, AbandonAfter = TimeSpan.MaxValue };
            Assert.Equal((int)ExitCode.Interrupted, Cli.Run(hooks, cancel.Token, TinyRun.Args(dir)).Code);
            var (_, info) = SimClr.Training.Checkpoints.Checkpoint.Read(TinyRun.Checkpoint(dir, 9));
            Assert.Equal(new TrainingPosition(1, 9, 3), info.Position);
            Assert.False(File.Exists(TinyRun.Checkpoint(dir, 8)));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Theory]
    [InlineData("monitor")]
    [InlineData("final")]
    public void CtrlCDuringEvaluationStopsItAndExits130(string when)
    {
        string dir = TinyRun.NewDir("evalstop");
        try
        {
            using var cancel = new CancellationTokenSource();
            // "monitor": Ctrl-C after the last step lands in the kNN monitor of the last epoch; "final": in the
            // evaluation that follows pretraining.
            var hooks = when == "monitor"
                ? new TrainingHooks { AfterStep = (step, _) => { if (step == 12) cancel.Cancel(); } }
                : new TrainingHooks { BeforeEvaluation = cancel.Cancel };
            string[] args = [.. TinyRun.Args(dir).Select(a => a switch { "none" => "full", "quiet" => "plain", _ => a }), "--knn-every", "0", "--linear-epochs", "2"];
            var (code, output, err) = Cli.Run(hooks, cancel.Token, args);
            Assert.True(code == (int)ExitCode.Interrupted, err);
            var summary = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "summary.json")))!.AsObject();
            Assert.Equal("interrupted", (string)summary["status"]!);
            Assert.Null(summary["linear_top1"]);
            Assert.Equal(TinyRun.Checkpoint(dir, 12), (string)summary["last_checkpoint"]!);
            Assert.Contains(when == "monitor" ? "stopped during the kNN monitor after epoch 2" : "evaluation stopped", output);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void NonFiniteLossStopsTheRunKeepsTheLastGoodCheckpointAndNamesTheStep()
    {
        string dir = TinyRun.NewDir("nan");
        try
        {
            // A fault after step 8 (epoch 2): one weight becomes NaN, so step 9's loss is NaN.
            var hooks = new TrainingHooks
            {
                AfterStep = (step, store) =>
                {
                    if (step != 8) return;
                    var w = store.GetHost("conv1.weight");
                    w[0] = float.NaN;
                    store.SetHost("conv1.weight", w);
                },
            };
            var (code, _, err) = Cli.Run(hooks, TinyRun.Args(dir, 3));
            Assert.Equal((int)ExitCode.Diverged, code);
            Assert.Contains("step 9", err);
            Assert.Contains(TinyRun.Checkpoint(dir, 6), err);
            Assert.Single(err.TrimEnd().Split('\n'));
            Assert.True(File.Exists(TinyRun.Checkpoint(dir, 6)));
            Assert.Equal([TinyRun.Checkpoint(dir, 6)], Directory.GetFiles(Path.Combine(dir, "checkpoints"), "step-*"));
            // The kept checkpoint is good: finite weights that load.
            var f = SafeTensorsFile.Load(TinyRun.Checkpoint(dir, 6));
            Assert.All(f.Read<float>("conv1.weight"), v => Assert.True(float.IsFinite(v)));
            Assert.Equal("diverged", (string)JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "summary.json")))!["status"]!);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void CorruptOrMismatchedCheckpointsAreRefusedWithoutTouchingTheRun()
    {
        string dir = epochOne.CopyTo(TinyRun.NewDir("corrupt"));
        try
        {
            string good = TinyRun.Checkpoint(dir, 6);
            var before = Robustness.Fixtures.Snapshot(dir);

            string truncated = Path.Combine(dir, "truncated.safetensors");
            var bytes = File.ReadAllBytes(good);
            File.WriteAllBytes(truncated, bytes[..(bytes.Length - 100)]);
            var r = Cli.Run("pretrain", "--resume", truncated, "--progress", "quiet", "--device", "cpu");
            Assert.Equal((int)ExitCode.BadInput, r.Code);
            Assert.Contains(truncated, r.Err);
            Assert.Contains("truncated", r.Err);
            Assert.Single(r.Err.TrimEnd().Split('\n'));

            // Same tensors, but the stored config claims a wider encoder: names match, shapes do not.
            string mismatched = Robustness.Fixtures.Rewrite(good, Path.Combine(dir, "mismatched.safetensors"),
                metadata: (k, v) => k == "config" ? v.Replace("\"width\": 0.125", "\"width\": 0.25") : v);
            foreach (var args in new[] { new[] { "knn", "--checkpoint", mismatched, "--device", "cpu" }, ["pretrain", "--resume", mismatched, "--progress", "quiet", "--device", "cpu"] })
            {
                var m = Cli.Run(args);
                Assert.True(m.Code == (int)ExitCode.BadInput, m.Err);
                Assert.Contains(mismatched, m.Err);
                Assert.True(m.Err.Contains("conv1.weight"), m.Err);
                Assert.Contains("shape", m.Err);
            }

            // An exported encoder is not a training checkpoint.
            string exported = Path.Combine(dir, "encoder.safetensors");
            Assert.Equal(0, Cli.Run("export", "--checkpoint", good, "--output", exported).Code);
            var e = Cli.Run("pretrain", "--resume", exported, "--device", "cpu");
            Assert.Equal((int)ExitCode.BadInput, e.Code);
            Assert.Contains("not a training checkpoint", e.Err);

            foreach (var (path, content) in before)
                Assert.Equal(content, File.ReadAllBytes(path));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void ExportWritesExactlyTorchvisionResNet18Names()
    {
        string dir = TinyRun.NewDir("export");
        try
        {
            Assert.Equal(0, Cli.Run(TinyRun.Args(dir, 1)).Code);
            string output = Path.Combine(dir, "resnet18.safetensors");
            var r = Cli.Run("export", "--checkpoint", TinyRun.Checkpoint(dir, 6), "--output", output);
            Assert.True(r.Code == 0, r.Err);
            var f = SafeTensorsFile.Load(output);
            var expected = TorchvisionResNet18(baseWidth: 8);
            Assert.Equal(expected.Keys.Order(), f.Tensors.Keys.Order());
            foreach (var (name, shape) in expected)
            {
                Assert.Equal(shape, f.Tensors[name].Shape);
                Assert.Equal(name.EndsWith("num_batches_tracked") ? SafeDType.I64 : SafeDType.F32, f.Tensors[name].DType);
            }
            // The counters count training forwards: 6 steps.
            Assert.Equal([6L], f.Read<long>("bn1.num_batches_tracked"));

            // The checkpoint evaluates through both evaluation commands.
            // The data, its size and the seed default to the checkpoint's own.
            string[] data = ["--checkpoint", TinyRun.Checkpoint(dir, 6), "--device", "cpu"];
            var linear = Cli.Run(["linear-eval", .. data, "--linear-epochs", "3"]);
            Assert.True(linear.Code == 0, linear.Err);
            Assert.Contains("linear evaluation: SimCLR top-1", linear.Out);
            var knn = Cli.Run(["knn", .. data, "--knn-k", "20"]);
            Assert.True(knn.Code == 0, knn.Err);
            Assert.Contains("kNN (k=20", knn.Out);
        }
        finally { Directory.Delete(dir, true); }
    }

    /// <summary>torchvision.models.resnet18().state_dict() without fc, at base width <paramref name="baseWidth"/>
    /// (64 in torchvision), with the CIFAR stem's 3×3 conv1.</summary>
    private static Dictionary<string, int[]> TorchvisionResNet18(int baseWidth)
    {
        var d = new Dictionary<string, int[]>();
        void Bn(string p, int c)
        {
            d[p + ".weight"] = [c];
            d[p + ".bias"] = [c];
            d[p + ".running_mean"] = [c];
            d[p + ".running_var"] = [c];
            d[p + ".num_batches_tracked"] = [];
        }
        d["conv1.weight"] = [baseWidth, 3, 3, 3];
        Bn("bn1", baseWidth);
        int inC = baseWidth;
        for (int layer = 1; layer <= 4; layer++)
        {
            int c = baseWidth << (layer - 1);
            for (int block = 0; block < 2; block++)
            {
                string p = $"layer{layer}.{block}";
                d[p + ".conv1.weight"] = [c, inC, 3, 3];
                Bn(p + ".bn1", c);
                d[p + ".conv2.weight"] = [c, c, 3, 3];
                Bn(p + ".bn2", c);
                if (block == 0 && layer > 1)
                {
                    d[p + ".downsample.0.weight"] = [c, inC, 1, 1];
                    Bn(p + ".downsample.1", c);
                }
                inC = c;
            }
        }
        return d;
    }
}
