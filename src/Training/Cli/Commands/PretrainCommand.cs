// pretrain (also what runs with no command): SimCLR pretraining, then a linear probe and a kNN vote on the
// frozen encoder, for the pretrained encoder and for a random-init encoder of the same architecture and seed.
// With --resume the trajectory (model, data, optimizer, schedule, seed) comes from the checkpoint, and so do the
// session settings (--eval, --keep-last, ...) unless the command line gives them. With --config a run's
// config.json is the starting point instead of the defaults, and flags given beside it override it.
// The pretraining images may be unlabeled (an image folder without classes, or STL-10's unlabeled_X.bin added);
// the kNN monitor and the final evaluation then use --eval-dataset, or are skipped with a note.
using System.CommandLine;
using System.Diagnostics;
using System.Text.Json.Nodes;
using SimClr.Kernels;
using SimClr.Layers;
using SimClr.Training.Checkpoints;
using SimClr.Training.Cli.Options;
using SimClr.Training.Config;
using SimClr.Training.Data;
using SimClr.Training.Evaluation;
using SimClr.Training.Pretraining;
using SimClr.Training.Runs;
using static SimClr.Training.Cli.Commands.CommandSupport;

namespace SimClr.Training.Cli.Commands;

internal static class PretrainCommand
{
    public const string Summary = "Pretrain an encoder with SimCLR, then evaluate it (linear probe + kNN) beside a random-init encoder";

    /// <summary>Gives <paramref name="root"/> pretrain's options and action (pretrain is what runs with no
    /// command), and adds the explicit <c>pretrain</c> command over the same options.</summary>
    public static void Register(RootCommand root, CliContext ctx)
    {
        var data = new DataOptions();
        var (options, run, configFile) = Options(data);
        var pretrain = new Command("pretrain", Summary);
        foreach (var command in new Command[] { root, pretrain })
        {
            options.AddTo(command);
            configFile.AddTo(command);
            command.SetAction(r =>
            {
                (SafeTensorsFile, CheckpointInfo)? resumed = null;
                RunConfig start;
                if (r.GetValue(run.Resume) is { } resumePath)
                {
                    if (OptionGroup.Given(r, configFile.Config)) throw UserError.Option("--config", "cannot be combined with --resume: a resumed run keeps its checkpoint's settings");
                    resumed = Checkpoint.Read(resumePath);
                    start = resumed.Value.Item2.Config with { Out = null, Name = null, Resume = resumePath };
                    var ignored = r.CommandResult.Command.Options.Where(o => OptionGroup.Given(r, o) && !PretrainRunOptions.Session.Contains(o.Name)).Select(o => o.Name).ToList();
                    if (ignored.Count > 0)
                        ctx.Output.WriteLine($"note: {string.Join(", ", ignored)} ignored with --resume: the run continues with its checkpoint's settings");
                }
                else start = r.GetValue(configFile.Config) is { } path ? ConfigFile.Load(path) : data.Defaults(r);
                var config = options.Apply(r, start);
                config.Validate();
                return Run(config, ctx, resumed);
            });
        }
        root.Add(pretrain);
    }

    /// <summary>pretrain's option groups (the data group, all groups, the run group with --resume, and --config).</summary>
    internal static (OptionSet All, PretrainRunOptions Run, ConfigOption Config) Options(DataOptions data)
    {
        var run = new PretrainRunOptions();
        var all = new OptionSet(data, new EvalDataOptions(), new ModelOptions(), new OptimizerOptions(), new SeedOptions(), new AugmentOptions(),
            new KnnOptions(), new LinearEvalOptions(), new DeviceOptions(), new RunDirectoryOptions(), new ProgressOptions(), run);
        return (all, run, new ConfigOption());
    }

    public static int Run(RunConfig requested, CliContext ctx) =>
        Run(requested, ctx, requested.Resume is { } path ? Checkpoint.Read(path) : null);

    private static int Run(RunConfig requested, CliContext ctx, (SafeTensorsFile File, CheckpointInfo Info)? resumed)
    {
        var wall = Stopwatch.StartNew();
        var config = requested;
        SafeTensorsFile? resumeFile = null;
        CheckpointInfo? resumeInfo = null;
        if (requested.Resume is { } resumePath && resumed is { } r)
        {
            (resumeFile, resumeInfo) = r;
            config = resumeInfo.Config with
            {
                Resume = resumePath,
                Device = requested.Device,
                Progress = requested.Progress,
                StopAfter = requested.StopAfter,
                Eval = requested.Eval,
                LossEvery = requested.LossEvery,
                KeepLast = requested.KeepLast,
                Out = requested.Out ?? Path.GetDirectoryName(Path.GetDirectoryName(Path.GetFullPath(resumePath))),
            };
            if (resumeInfo.Position.Epoch >= config.Epochs)
                throw UserError.File(resumePath, $"the run already finished all {config.Epochs} epochs; nothing to resume");
        }

        var data = LoadPretraining(config, ctx.Output);
        if (!data.IsLabeled && config.Eval != EvalMode.None)
        {
            ctx.Output.WriteLine($"note: {data.Pretrain.Name} has no labels, so the kNN monitor and the final evaluation are skipped (give --eval-dataset and --eval-data to evaluate on labelled data)");
            config = config with { Eval = EvalMode.None };
        }
        config = config.Resolve(data.Pretrain.Shape.Height);
        if (config.BatchSize > data.Pretrain.Count)
            throw UserError.Option("--batch-size", $"{config.BatchSize} exceeds the {data.Pretrain.Count} training images of {data.Pretrain.Name}");
        var spec = config.AugmentSpec();
        using var backend = BackendFactory.Create(DeviceRequest.Parse(config.Device), ctx.Output);
        var run = RunDirectory.Open(config, resuming: resumeInfo is not null);
        using var model = ModelState.Build(backend, config, spec.OutHeight, spec.OutWidth, config.BatchSize);
        using var momentum = model.Parameters.AllocateStateBuffer();
        var start = new TrainingPosition(0, 0, 0);
        double best = double.NaN;
        if (resumeFile is not null && resumeInfo is not null)
        {
            ModelState.Load(resumeFile, model.Parameters, momentum);
            start = resumeInfo.Position;
            best = resumeInfo.BestMetric;
        }
        run.WriteConfig(config);
        var metrics = new MetricsLog(run.MetricsPath, resuming: resumeInfo is not null);
        if (resumeInfo is not null) metrics.TruncateAfter(start.Step);

        ctx.Output.WriteLine($"pretraining {Describe(config)} on {data.Pretrain} ({backend.Info.Description})");
        ctx.Output.WriteLine($"run directory: {run.Root}");
        if (resumeInfo is not null) ctx.Output.WriteLine($"resuming from {config.Resume} at {start}");
        int stepsPerEpoch = EpochOrder.StepsPerEpoch(data.Pretrain.Count, config.BatchSize);
        var trainer = new Pretrainer(backend, config, data, run, metrics);
        var result = ProgressView.Run(config.Progress, ctx.Output, "pretrain", (long)stepsPerEpoch * config.Epochs, start.Step,
            sink => trainer.Run(model, momentum, start, best, sink, ctx.Cancel, ctx.Hooks));
        Plots.Write(run.Root, metrics.Records);

        var summary = new JsonObject
        {
            ["status"] = result.Status.ToString().ToLowerInvariant(),
            ["dataset"] = data.Pretrain.Name,
            ["eval_dataset"] = config.Eval == EvalMode.None ? null : data.Train.Name,
            ["arch"] = CliEnumConverter.Name(config.Arch),
            ["width"] = config.Width,
            ["epochs"] = result.Position.Epoch,
            ["steps"] = result.Position.Step,
            ["batch_size"] = config.BatchSize,
            ["images_per_second"] = Finite(result.ImagesPerSecond),
            ["device"] = backend.Info.Name,
            ["checkpoint"] = result.LastCheckpoint,
        };
        switch (result.Status)
        {
            case PretrainStatus.Diverged:
                run.WriteSummary(summary);
                throw new UserError(result.Problem!, ExitCode.Diverged);
            case PretrainStatus.Interrupted:
                summary["wall_seconds"] = wall.Elapsed.TotalSeconds;
                run.WriteSummary(summary);
                ctx.Output.WriteLine($"interrupted; continue with --resume {result.LastCheckpoint}");
                return (int)ExitCode.Interrupted;
            case PretrainStatus.Paused:
                summary["wall_seconds"] = wall.Elapsed.TotalSeconds;
                run.WriteSummary(summary);
                return (int)ExitCode.Ok;
        }

        if (config.Eval == EvalMode.Full)
        {
            var simclr = Evaluate(backend, model, config, data);
            EmbeddingPlot.Write(Path.Combine(run.Root, "embedding.png"), simclr.Test.Features, simclr.Test.Labels, data.Test.ClassNames,
                "SimCLR encoder features h", simclr.Train.Features, simclr.Train.Labels);
            model.Parameters.Initialize(config.Seed);
            var random = Evaluate(backend, model, config, data);
            summary["linear_top1"] = simclr.Linear.Top1;
            summary["linear_top5"] = simclr.Linear.Top5;
            summary["knn_top1"] = simclr.Knn.Top1;
            summary["random_linear_top1"] = random.Linear.Top1;
            summary["random_linear_top5"] = random.Linear.Top5;
            summary["random_knn_top1"] = random.Knn.Top1;
            metrics.Append(new MetricRecord("eval", result.Position.Step, result.Position.Epoch, new Dictionary<string, double>
            {
                ["linear_top1"] = simclr.Linear.Top1, ["linear_top5"] = simclr.Linear.Top5, ["knn_top1"] = simclr.Knn.Top1,
                ["random_linear_top1"] = random.Linear.Top1, ["random_linear_top5"] = random.Linear.Top5, ["random_knn_top1"] = random.Knn.Top1,
            }));
            PrintComparison(ctx.Output, config, data, simclr, random);
        }
        summary["wall_seconds"] = wall.Elapsed.TotalSeconds;
        run.WriteSummary(summary);
        ctx.Output.WriteLine($"done in {wall.Elapsed.TotalSeconds:F0} s; summary: {run.SummaryPath}");
        return (int)ExitCode.Ok;
    }

    internal static LinearProbeOptions ProbeOptions(RunConfig c) =>
        new(c.LinearEpochs, c.LinearLr, c.LinearWeightDecay, c.LinearBatchSize, 0.9, c.Seed);

    private sealed record EvalResult(Accuracy Linear, Accuracy Knn, FeatureSet Train, FeatureSet Test);

    private static EvalResult Evaluate(IBackend<float> backend, SimClrModel<float> model, RunConfig config, DatasetSplits data)
    {
        var (train, test) = FeatureExtractor.Extract(backend, model, config, data);
        int classes = data.Train.ClassCount;
        return new EvalResult(
            LinearProbe.Evaluate(train, test, classes, ProbeOptions(config)),
            KnnClassifier.Evaluate(backend, train, test, classes, config.KnnK, config.KnnTemperature),
            train, test);
    }

    /// <summary>The pretraining images of <paramref name="config"/> and the labelled splits its evaluation uses: the
    /// dataset's own, or --eval-dataset's resized to the pretraining images' size (unlabeled splits when neither).</summary>
    private static DatasetSplits LoadPretraining(RunConfig config, TextWriter output)
    {
        var own = LoadImages(config, output);
        if (config.EvalDataset is not { } kind) return own;
        var eval = RequireLabeled(LoadImages(config, output, kind, config.EvalDataPath));
        eval = DatasetResize.To(eval, own.Pretrain.Shape.Height, "the pretraining images' size", out var note);
        if (note is not null) output.WriteLine(note);
        return new DatasetSplits(eval.Train, eval.Test) { Pretrain = own.Pretrain };
    }

    private static void PrintComparison(TextWriter o, RunConfig config, DatasetSplits data, EvalResult simclr, EvalResult random)
    {
        o.WriteLine();
        o.WriteLine($"Evaluation on {data.Test.Name} ({data.Test.Count} images, {data.Train.ClassCount} classes), frozen encoder features h:");
        o.WriteLine($"  {"",-26}{"linear top-1",14}{"linear top-5",14}{"kNN top-1",12}");
        o.WriteLine(Invariant($"  {$"SimCLR ({config.Epochs} epochs)",-26}{simclr.Linear.Top1,14:P1}{simclr.Linear.Top5,14:P1}{simclr.Knn.Top1,12:P1}"));
        o.WriteLine(Invariant($"  {"random-init encoder",-26}{random.Linear.Top1,14:P1}{random.Linear.Top5,14:P1}{random.Knn.Top1,12:P1}"));
        o.WriteLine(Invariant($"SimCLR linear top-1 {simclr.Linear.Top1:P1} vs random-init {random.Linear.Top1:P1} ({100 * (simclr.Linear.Top1 - random.Linear.Top1):+0.0;-0.0} points)"));
    }
}
