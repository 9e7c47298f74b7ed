// pretrain (also what runs with no command): SimCLR pretraining, then a linear probe and a kNN vote on the
// frozen encoder, for the pretrained encoder and for a random-init encoder of the same architecture and seed.
// The starting config is a --preset, or a run's config.json given with --config, or the per-dataset defaults;
// flags given beside it override it. With --resume the trajectory (model, data, optimizer, schedule, seed)
// comes from the checkpoint, and so do the session settings (--eval, --keep-last, ...) unless the command line
// gives them; where it writes follows RunDirectory's rules (its own run folder, or a copy in a new --out/--name).
// Everything is validated before the run folder is touched. The pretraining images may be unlabeled (an image
// folder without classes, or STL-10's unlabeled_X.bin added); the kNN monitor and the final evaluation then
// use --eval-dataset, or are skipped with a note. Under mpirun/srun rank 0 runs this command and the other
// ranks PretrainWorker.
using System.CommandLine;
using System.Diagnostics;
using System.Text.Json.Nodes;
using SimClr.Kernels;
using SimClr.Layers;
using SimClr.Training.Checkpoints;
using SimClr.Training.Cli.Options;
using SimClr.Training.Config;
using SimClr.Training.Data;
using SimClr.Training.Distributed;
using SimClr.Training.Evaluation;
using SimClr.Training.Interop;
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
        var (options, run, configFile, preset, init) = Options(data);
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
                    if (OptionGroup.Given(r, preset.Name)) throw UserError.Option("--preset", "cannot be combined with --resume: a resumed run keeps its checkpoint's settings");
                    if (OptionGroup.Given(r, init.InitFrom)) throw UserError.Option("--init-from", "cannot be combined with --resume (the checkpoint already holds the weights)");
                    RunConfig.RequirePath(resumePath, "--resume");
                    resumed = Checkpoint.Read(resumePath);
                    start = resumed.Value.Item2.Config with { Out = null, Name = null, Resume = resumePath };
                    var ignored = r.CommandResult.Command.Options.Where(o => OptionGroup.Given(r, o) && !PretrainRunOptions.Session.Contains(o.Name)).Select(o => o.Name).ToList();
                    if (ignored.Count > 0)
                        ctx.Output.WriteLine($"note: {string.Join(", ", ignored)} ignored with --resume: the run continues with its checkpoint's settings");
                }
                else if (r.GetValue(configFile.Config) is { } path)
                {
                    RunConfig.RequirePath(path, "--config");
                    if (OptionGroup.Given(r, preset.Name)) throw UserError.Option("--preset", "cannot be combined with --config: both name the starting config");
                    start = ConfigFile.Load(path);
                }
                else start = preset.Start(r, data);
                var config = options.Apply(r, start);
                config.Validate();
                return Run(config, ctx, resumed);
            });
        }
        root.Add(pretrain);
    }

    /// <summary>pretrain's option groups: all of them, and those the action reads itself.</summary>
    internal sealed record PretrainOptions(OptionSet All, PretrainRunOptions Run, ConfigOption Config, PresetOptions Preset, InitFromOptions InitFrom);

    internal static PretrainOptions Options(DataOptions data)
    {
        var run = new PretrainRunOptions();
        var preset = new PresetOptions();
        var init = new InitFromOptions();
        var all = new OptionSet(preset, data, new EvalDataOptions(), init, new ModelOptions(), new OptimizerOptions(), new SeedOptions(), new AugmentOptions(),
            new KnnOptions(), new LinearEvalOptions(), new DeviceOptions(), new RunDirectoryOptions(), new ProgressOptions(), run);
        return new PretrainOptions(all, run, new ConfigOption(), preset, init);
    }

    /// <summary>Under mpirun/srun every rank comes here: rank 0 runs the command below, the others PretrainWorker.</summary>
    private static int Run(RunConfig requested, CliContext ctx, (SafeTensorsFile File, CheckpointInfo Info)? resumed) =>
        DataParallelLaunch.Run(ctx, launch => launch.IsWriter ? Run(requested, ctx, resumed, launch) : PretrainWorker.Run(launch, ctx));

    private static int Run(RunConfig requested, CliContext ctx, (SafeTensorsFile File, CheckpointInfo Info)? resumed, DataParallelLaunch launch)
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
                Verbosity = requested.Verbosity,
                Progress = requested.Progress,
                StopAfter = requested.StopAfter,
                Eval = requested.Eval,
                LossEvery = requested.LossEvery,
                KeepLast = requested.KeepLast,
                Out = requested.Out,
                Name = requested.Name,
            };
            if (resumeInfo.Position.Epoch >= config.Epochs)
                throw UserError.File(resumePath, $"the run already finished all {config.Epochs} epochs; nothing to resume");
        }
        config = launch.Adopt(config, resumeInfo?.Config, ctx.Output);

        var data = LoadPretraining(config, ctx.Output);
        if (!data.IsLabeled && config.Eval != EvalMode.None)
        {
            ctx.Output.WriteLine($"note: {data.Pretrain.Name} has no labels, so the kNN monitor and the final evaluation are skipped (give --eval-dataset and --eval-data to evaluate on labelled data)");
            config = config with { Eval = EvalMode.None };
        }
        config = config.Resolve(data.Pretrain.Shape.Height);
        if (config.BatchSize > data.Pretrain.Count)
            throw UserError.Option("--batch-size", $"{config.BatchSize} exceeds the {data.Pretrain.Count} training images of {data.Pretrain.Name}");
        int stepsPerEpoch = EpochOrder.StepsPerEpoch(data.Pretrain.Count, config.BatchSize);
        if (resumeInfo is not null) Checkpoint.RequirePosition(config.Resume!, resumeInfo, stepsPerEpoch);
        int pairsPerRank = launch.LocalPairs(config.BatchSize);
        var spec = config.AugmentSpec();
        config.RequireBatchFits(spec.OutHeight, spec.OutWidth);
        using var backend = BackendFactory.Create(launch.Device(DeviceRequest.Parse(config.Device)), ctx.Output, config.Verbosity);
        using var model = ModelState.Build(backend, config, spec.OutHeight, spec.OutWidth, pairsPerRank);
        using var momentum = model.Parameters.AllocateStateBuffer();
        var start = new TrainingPosition(0, 0, 0);
        double best = double.NaN;
        if (resumeFile is not null && resumeInfo is not null)
        {
            ModelState.Load(resumeFile, model.Parameters, momentum);
            start = resumeInfo.Position;
            best = resumeInfo.BestMetric;
        }
        else
        {
            TorchvisionWeights.ApplyInitFrom(config, model.Parameters, ctx.Output);
        }
        // The checkpoint, the data and the options were validated; now the run folder is chosen (a folder holding
        // another run is refused) and only then created or touched.
        var run = RunDirectory.Plan(config);
        if (resumeInfo is not null) config = config with { Out = run.Root };
        foreach (var note in run.Create()) ctx.Output.WriteLine(note);
        launch.Announce(config, start, best, run);
        using var parallel = launch.Join(backend, model, momentum, config.SyncBn, ctx.Output);
        run.WriteConfig(config);
        var metrics = resumeInfo is null ? MetricsLog.Start(run.MetricsPath) : MetricsLog.Resume(run.MetricsPath, start.Step);

        ctx.Output.WriteLine($"pretraining {Describe(config)}");
        ctx.Output.WriteLine($"data: {data.Pretrain}; device: {backend.Info.Description}");
        ctx.Output.WriteLine($"run directory: {run.Root}");
        if (resumeInfo is not null) ctx.Output.WriteLine($"resuming from {config.Resume} at {start}");
        string bestPath = new CheckpointStore(run.CheckpointDir, config.KeepLast).BestPath;
        JsonObject Summary(PretrainResult r, Pretrainer t) => new()
        {
            ["status"] = r.Status.ToString().ToLowerInvariant(),
            ["dataset"] = data.Pretrain.Name,
            ["eval_dataset"] = config.Eval == EvalMode.None ? null : data.Train.Name,
            ["arch"] = CliEnumConverter.Name(config.Arch),
            ["width"] = config.Width,
            ["epochs"] = r.Position.Epoch,
            ["steps"] = r.Position.Step,
            ["batch_size"] = config.BatchSize,
            ["images_per_second"] = Finite(r.ImagesPerSecond),
            ["device"] = backend.Info.Name,
            ["last_checkpoint"] = r.LastCheckpoint,
            ["best_checkpoint"] = File.Exists(bestPath) ? bestPath : null,
            ["best_knn_top1"] = double.IsFinite(t.BestKnnTop1) ? t.BestKnnTop1 : null,
            ["wall_seconds"] = wall.Elapsed.TotalSeconds,
        };
        int Interrupted(PretrainResult r, Pretrainer t)
        {
            run.WriteSummary(Summary(r, t));
            Plots.Write(run.Root, metrics.Records);
            // Through the live display when one is still up (an abandoned step ends the process from inside it).
            ProgressView.Notice(r.LastCheckpoint is { } last ? $"interrupted; continue with --resume {last}" : "interrupted before the first step; nothing to resume", ctx.Output);
            return (int)ExitCode.Interrupted;
        }
        Pretrainer trainer = null!;
        trainer = new Pretrainer(backend, config, data, run, metrics)
        {
            // In a real process the abandoned step cannot be waited for: report, then end the process here.
            OnAbandoned = ctx.EndProcess is { } end ? r => end(Interrupted(r, trainer)) : null,
        };
        var result = ProgressView.Run(config.Progress, ctx.Output, "pretrain", (long)stepsPerEpoch * config.Epochs, start.Step, config.Epochs,
            sink => trainer.Run(model, momentum, start, best, sink, ctx.Cancel, ctx.Hooks, resumeInfo?.PartialEpoch ?? default, parallel));
        Plots.Write(run.Root, metrics.Records);

        switch (result.Status)
        {
            case PretrainStatus.Diverged:
                run.WriteSummary(Summary(result, trainer));
                throw new UserError(result.Problem!, ExitCode.Diverged);
            case PretrainStatus.Interrupted:
                return Interrupted(result, trainer);
            case PretrainStatus.Paused:
                run.WriteSummary(Summary(result, trainer));
                return (int)ExitCode.Ok;
        }

        var summary = Summary(result, trainer);
        if (config.Eval == EvalMode.Full)
        {
            EvalResult simclr, random;
            ctx.Hooks?.BeforeEvaluation?.Invoke();
            try
            {
                (simclr, random) = ProgressView.Phases(config.Progress, ctx.Output, host =>
                {
                    var trained = Evaluate(host, "SimCLR", backend, model, config, data, ctx.Cancel);
                    model.Parameters.Initialize(config.Seed);
                    return (trained, Evaluate(host, "random init", backend, model, config, data, ctx.Cancel));
                });
            }
            catch (OperationCanceledException) when (ctx.Cancel.IsCancellationRequested)
            {
                summary["status"] = "interrupted";
                summary["wall_seconds"] = wall.Elapsed.TotalSeconds;
                run.WriteSummary(summary);
                ctx.Output.WriteLine($"evaluation stopped; pretraining is complete: evaluate {result.LastCheckpoint} with linear-eval or knn --checkpoint");
                return (int)ExitCode.Interrupted;
            }
            EmbeddingPlot.Write(Path.Combine(run.Root, "embedding.png"), simclr.Test.Features, simclr.Test.Labels, data.Test.ClassNames,
                "SimCLR encoder features h", simclr.Train.Features, simclr.Train.Labels);
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
            Plots.Write(run.Root, metrics.Records);
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

    /// <summary>Both protocols on the frozen encoder, one progress row per phase, titled by <paramref name="encoder"/>.</summary>
    private static EvalResult Evaluate(IProgressHost host, string encoder, IBackend<float> backend, SimClrModel<float> model, RunConfig config,
        DatasetSplits data, CancellationToken cancel)
    {
        var features = EvaluationProgress.Features(host, $"features ({encoder})", backend, model, config, data, cancel);
        int classes = data.Train.ClassCount;
        return new EvalResult(
            EvaluationProgress.Linear(host, $"linear probe ({encoder})", features, classes, ProbeOptions(config), cancel),
            EvaluationProgress.Knn(host, $"kNN ({encoder})", backend, features, classes, config, cancel),
            features.Train, features.Test);
    }

    /// <summary>The pretraining images of <paramref name="config"/> and the labelled splits its evaluation uses: the
    /// dataset's own, or --eval-dataset's resized to the pretraining images' size (unlabeled splits when neither).
    /// Every rank of a data-parallel job loads them the same way.</summary>
    internal static DatasetSplits LoadPretraining(RunConfig config, TextWriter output)
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
