// The pretrain command as a real two-process job (`mpirun -np 2`, Open MPI, CPU ranks) against one process with the
// same global batch, on the built-in shapes: 32 images of 16 px, global batch 16 (8 pairs per rank), 2 epochs of 2
// steps. The reference is the single process through the synchronized code path (--sync-bn on over a group of one):
// the same arithmetic, so the only differences are the reduction orders of the split (the conv weight gradients
// summed per rank and then added, the batch norm sums added per rank, NT-Xent's columns in rank-major order).
// - every step loss and every tensor of the final checkpoint (parameters, BN statistics, momentum) agree to 1e-5
//   (measured ≤ 3.5e-6; the learning rate is small because fp32 training of a ReLU network drifts apart by
//   ReLU decisions that flip at the last bit of an activation, after which two runs are no longer comparable, and
//   the default single-process path, whose BN sums in another order, is checked on the losses);
// - only rank 0 writes: the run directory holds what a single run writes, and the log is rank 0's alone;
// - a run stopped after epoch 1 and resumed under mpirun gives the uninterrupted job's final checkpoint bit for bit;
//   resumed by one process it continues (the README says what changes) and says so;
// - a killed rank ends the job at once, and a stalled rank (SIGSTOP) ends it by rank 0's collective timeout with exit
//   code 4; both messages name the rank, the timeout's points at the last checkpoint, and a resume from it works.
using System.Diagnostics;
using System.Text.Json.Nodes;
using SimClr.Kernels.Distributed;
using SimClr.Tests.Training;
using SimClr.Training.Checkpoints;
using SimClr.Training.Distributed;

namespace SimClr.Tests.Distributed;

/// <summary>The runs the comparisons share: one process (synchronized path and default path) and two ranks.</summary>
public sealed class MpiPretrainFixture : IDisposable
{
    public static string[] Args(string outDir, int epochs = 2, params string[] extra) =>
    [
        "pretrain", "--shapes-count", "32", "--image-size", "16", "--batch-size", "16", "--width", "0.125", "--head-out", "16",
        "--epochs", epochs.ToString(), "--warmup-epochs", "1", "--lr-scaling", "sqrt", "--base-lr", "0.001", "--loss-every", "1",
        "--eval", "none", "--progress", "plain", "--device", "cpu", "--keep-last", "5", "--seed", "5", "--out", outDir, .. extra,
    ];

    public string Root { get; } = Directory.CreateTempSubdirectory("simclr-mpi-").FullName;
    public string Single => Path.Combine(Root, "single");
    public string SingleDefault => Path.Combine(Root, "single-default");
    public string TwoRanks => Path.Combine(Root, "two");
    public MpiResult TwoRanksResult { get; }
    public string SingleLog { get; }

    public MpiPretrainFixture()
    {
        MpiLauncher.RequireMpirun();
        var single = Cli.Run(Args(Single, 2, "--sync-bn", "on"));
        Assert.True(single.Code == 0, single.Err);
        SingleLog = single.Out;
        Assert.Equal(0, Cli.Run(Args(SingleDefault)).Code);
        TwoRanksResult = MpiLauncher.Run(2, MpiLauncher.TrainingProgram, Args(TwoRanks), TimeSpan.FromMinutes(5));
        Assert.True(TwoRanksResult.ExitCode == 0, TwoRanksResult.ToString());
    }

    public void Dispose() => Directory.Delete(Root, recursive: true);
}

public class MpiPretrainTests(MpiPretrainFixture runs) : IClassFixture<MpiPretrainFixture>
{
    private static List<(long Step, double Loss)> StepLosses(string run) =>
        File.ReadLines(Path.Combine(run, "metrics.jsonl")).Select(l => JsonNode.Parse(l)!.AsObject())
            .Where(o => (string)o["kind"]! == "step").Select(o => ((long)o["step"]!, (double)o["loss"]!)).ToList();

    private static string Checkpoint(string run, long step) => Path.Combine(run, "checkpoints", $"step-{step:D8}.safetensors");

    private static void AssertLossesClose(string expected, string actual, double tolerance, string what)
    {
        var a = StepLosses(expected);
        var b = StepLosses(actual);
        Assert.Equal(a.Select(x => x.Step), b.Select(x => x.Step));
        for (int i = 0; i < a.Count; i++)
            Assert.True(Math.Abs(a[i].Loss - b[i].Loss) <= tolerance * Math.Abs(a[i].Loss), $"{what}: step {a[i].Step} loss {b[i].Loss:R} vs {a[i].Loss:R}");
    }

    /// <summary>Every tensor within <paramref name="tolerance"/> of the reference, relative to its largest entry (0: bit for bit).</summary>
    private static void AssertCheckpointsClose(string expected, string actual, double tolerance)
    {
        var a = SafeTensorsFile.Load(expected);
        var b = SafeTensorsFile.Load(actual);
        Assert.Equal(a.Tensors.Keys.Order(), b.Tensors.Keys.Order());
        foreach (var (name, t) in a.Tensors)
        {
            if (t.DType == SafeDType.I64) { Assert.Equal(a.Read<long>(name), b.Read<long>(name)); continue; }
            var x = a.Read<float>(name);
            var y = b.Read<float>(name);
            double scale = Math.Max(x.Max(v => Math.Abs((double)v)), 1e-30), worst = 0;
            for (int i = 0; i < x.Length; i++) worst = Math.Max(worst, Math.Abs((double)x[i] - y[i]) / scale);
            Assert.True(tolerance == 0 ? x.SequenceEqual(y) : worst <= tolerance, $"{name}: relative difference {worst:E2} > {tolerance:E1}");
        }
    }

    [Fact]
    public void TwoRanksMatchOneProcessWithTheSameGlobalBatch()
    {
        Assert.Equal(4, StepLosses(runs.TwoRanks).Count);
        AssertLossesClose(runs.Single, runs.TwoRanks, 1e-5, "2 ranks vs 1 process");
        AssertLossesClose(runs.SingleDefault, runs.TwoRanks, 1e-5, "2 ranks vs the default single-process path");
        AssertCheckpointsClose(Checkpoint(runs.Single, 4), Checkpoint(runs.TwoRanks, 4), 1e-5);
        Assert.Contains("data parallel: 2 ranks (mpirun)", runs.TwoRanksResult.Output);
    }

    [Fact]
    public void OnlyRankZeroWrites()
    {
        // The TensorBoard file's name carries its creation time: compare it by its prefix.
        static string[] Files(string run) => [.. Directory.EnumerateFiles(run, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(run, f))
            .Select(f => f.StartsWith(SimClr.Training.Runs.TensorBoardLog.FilePrefix, StringComparison.Ordinal) ? SimClr.Training.Runs.TensorBoardLog.FilePrefix + "*" : f)
            .Order()];
        Assert.Equal(Files(runs.Single), Files(runs.TwoRanks));
        // One rank reports: the plain progress lines and the epoch lines appear once.
        Assert.Single(runs.TwoRanksResult.Output.Split('\n'), l => l.StartsWith("pretraining ", StringComparison.Ordinal));
        Assert.Single(runs.TwoRanksResult.Output.Split('\n'), l => l.StartsWith("epoch 2/2", StringComparison.Ordinal));
    }

    [Fact]
    public void ResumeIsExactAtTheSameWorldSizeAndWorksOnOneProcess()
    {
        string split = Path.Combine(runs.Root, "split"), single = Path.Combine(runs.Root, "resumed-single");
        var first = MpiLauncher.Run(2, MpiLauncher.TrainingProgram, MpiPretrainFixture.Args(split, 2, "--stop-after", "1"), TimeSpan.FromMinutes(5));
        Assert.True(first.ExitCode == 0, first.ToString());
        var midway = Checkpoint(split, 2);
        Assert.True(File.Exists(midway), first.ToString());
        Directory.CreateDirectory(single);
        File.Copy(Path.Combine(split, "metrics.jsonl"), Path.Combine(single, "metrics.jsonl"));
        Directory.CreateDirectory(Path.Combine(single, "checkpoints"));
        File.Copy(midway, Checkpoint(single, 2));

        var second = MpiLauncher.Run(2, MpiLauncher.TrainingProgram, ["pretrain", "--resume", midway, "--progress", "plain", "--keep-last", "5"], TimeSpan.FromMinutes(5));
        Assert.True(second.ExitCode == 0, second.ToString());
        AssertCheckpointsClose(Checkpoint(runs.TwoRanks, 4), Checkpoint(split, 4), tolerance: 0);
        Assert.Equal(StepLosses(runs.TwoRanks), StepLosses(split));

        var onOne = Cli.Run(["pretrain", "--resume", Checkpoint(single, 2), "--progress", "plain", "--keep-last", "5"]);
        Assert.True(onOne.Code == 0, onOne.Err);
        Assert.Contains("note: resuming a 2-rank run on 1 rank(s): the global batch, data order and augmentations are unchanged; " +
            "batch norm statistics stay those of the whole global batch, so the run continues the same trajectory up to float reduction order", onOne.Out);
        AssertLossesClose(runs.TwoRanks, single, 1e-5, "resumed on one process");
    }

    /// <summary>A job of 12 epochs (24 steps) whose ranks carry SIMCLR_TEST_JOB=<paramref name="id"/>; returns once epoch 1's checkpoint exists.</summary>
    private static MpiJob StartLongJob(string run, string id, IReadOnlyDictionary<string, string>? extra = null)
    {
        var environment = new Dictionary<string, string>(extra ?? new Dictionary<string, string>()) { ["SIMCLR_TEST_JOB"] = id };
        var job = MpiLauncher.Start(2, MpiLauncher.TrainingProgram, MpiPretrainFixture.Args(run, 12), environment);
        var clock = Stopwatch.StartNew();
        while (!File.Exists(Checkpoint(run, 2)))
        {
            if (job.HasExited || clock.Elapsed > TimeSpan.FromMinutes(3)) Assert.Fail($"the job ended or stalled before its first checkpoint:\n{job.Output}");
            Thread.Sleep(100);
        }
        return job;
    }

    [Fact]
    public void AKilledRankEndsTheJobAndTheLastCheckpointResumes()
    {
        string run = Path.Combine(runs.Root, "killed"), id = Guid.NewGuid().ToString("N");
        using var job = StartLongJob(run, id);
        int victim = MpiLauncher.RankProcess($"SIMCLR_TEST_JOB={id}", 1) ?? throw new Xunit.Sdk.XunitException("rank 1's process was not found");
        var killedAt = Stopwatch.StartNew();
        Process.GetProcessById(victim).Kill();
        var result = job.Wait(TimeSpan.FromMinutes(2));
        Assert.NotEqual(0, result.ExitCode);
        Assert.True(killedAt.Elapsed < TimeSpan.FromSeconds(60), $"the job outlived its killed rank by {killedAt.Elapsed.TotalSeconds:F0} s:\n{result}");
        Assert.Contains("process rank 1", result.Output);
        var last = Directory.EnumerateFiles(Path.Combine(run, "checkpoints"), "step-*.safetensors").Order(StringComparer.Ordinal).Last();
        int epochsDone = int.Parse(Path.GetFileNameWithoutExtension(last)["step-".Length..]) / 2;
        var resumed = MpiLauncher.Run(2, MpiLauncher.TrainingProgram, ["pretrain", "--resume", last, "--stop-after", (epochsDone + 1).ToString(), "--progress", "quiet"],
            TimeSpan.FromMinutes(3));
        Assert.True(resumed.ExitCode == 0, resumed.ToString());
    }

    [Fact]
    public void AStalledRankEndsTheJobByTheCollectiveTimeoutNamingTheLastCheckpoint()
    {
        string run = Path.Combine(runs.Root, "stalled"), id = Guid.NewGuid().ToString("N");
        using var job = StartLongJob(run, id, new Dictionary<string, string> { [DataParallelLaunch.TimeoutVariable] = "5" });
        int stalled = MpiLauncher.RankProcess($"SIMCLR_TEST_JOB={id}", 1) ?? throw new Xunit.Sdk.XunitException("rank 1's process was not found");
        var clock = Stopwatch.StartNew();
        Process.Start("kill", ["-STOP", stalled.ToString()])!.WaitForExit();
        try
        {
            var result = job.Wait(TimeSpan.FromMinutes(2));
            Assert.Equal(MpiCommunicator.FailedJobExitCode, result.ExitCode);
            Assert.Matches(@"error: rank 0: \w+ of \d+ \w+ elements did not complete within 5 s", result.Output);
            Assert.Matches(@"Resume with --resume \S+step-\d{8}\.safetensors", result.Output);
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), result.ToString());
        }
        finally
        {
            try { Process.GetProcessById(stalled).Kill(); } catch (ArgumentException) { }
        }
    }
}
