// The commands that train or evaluate: pretrain (then linear probe + kNN for SimCLR and for a random-init
// encoder of the same architecture and seed), linear-eval and knn on a saved checkpoint.
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using SimClr.Kernels;
using SimClr.Layers;
using SimClr.Training.Checkpoints;
using SimClr.Training.Config;
using SimClr.Training.Data;
using SimClr.Training.Distributed;
using SimClr.Training.Evaluation;
using SimClr.Training.Pretraining;
using SimClr.Training.Runs;

namespace SimClr.Training.Cli;

public static partial class Commands
{
    /// <summary>Under mpirun/srun every rank comes here: rank 0 runs the command below, the others PretrainWorker.</summary>
    public static int Pretrain(RunConfig requested, CliContext ctx) =>
        DataParallelLaunch.Run(ctx, launch => launch.IsWriter ? Pretrain(requested, ctx, launch) : PretrainWorker.Run(launch, ctx));

    private static int Pretrain(RunConfig requested, CliContext ctx, DataParallelLaunch launch)
    {
        var wall = Stopwatch.StartNew();
        var config = requested;
        SafeTensorsFile? resumeFile = null;
        CheckpointInfo? resumeInfo = null;
        if (requested.Resume is { } resumePath)
        {
            (resumeFile, resumeInfo) = Checkpoint.Read(resumePath);
            // The trajectory (model, data, optimizer, schedule, seed) comes from the checkpoint; only how this
            // session runs and reports comes from the command line.
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
        config = launch.Adopt(config, resumeInfo?.Config, ctx.Output);

        var data = LoadData(config);
        config = config.Resolve(data.Train.Shape.Height);
        if (config.BatchSize > data.Train.Count)
            throw UserError.Option("--batch-size", $"{config.BatchSize} exceeds the {data.Train.Count} training images of {data.Train.Name}");
        int pairsPerRank = launch.LocalPairs(config.BatchSize);
        var spec = config.AugmentSpec();
        using var backend = BackendFactory.Create(launch.Device(DeviceRequest.Parse(config.Device)), ctx.Output);
        var run = RunDirectory.Open(config, resuming: resumeInfo is not null);
        launch.Announce(config, resumeInfo?.Position ?? new TrainingPosition(0, 0, 0), resumeInfo?.BestMetric ?? double.NaN, run);
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
        using var parallel = launch.Join(backend, model, momentum, config.SyncBn, ctx.Output);
        run.WriteConfig(config);
        var metrics = new MetricsLog(run.MetricsPath, resuming: resumeInfo is not null);
        if (resumeInfo is not null) metrics.TruncateAfter(start.Step);

        ctx.Output.WriteLine($"pretraining {Describe(config)} on {data.Train} ({backend.Info.Description})");
        ctx.Output.WriteLine($"run directory: {run.Root}");
        if (resumeInfo is not null) ctx.Output.WriteLine($"resuming from {config.Resume} at {start}");
        int stepsPerEpoch = EpochOrder.StepsPerEpoch(data.Train.Count, config.BatchSize);
        var trainer = new Pretrainer(backend, config, data, run, metrics);
        var result = ProgressView.Run(config.Progress, ctx.Output, "pretrain", (long)stepsPerEpoch * config.Epochs, start.Step,
            sink => trainer.Run(model, momentum, start, best, sink, ctx.Cancel, ctx.Hooks, parallel));
        Plots.Write(run.Root, metrics.Records);

        var summary = new JsonObject
        {
            ["status"] = result.Status.ToString().ToLowerInvariant(),
            ["dataset"] = data.Train.Name,
            ["arch"] = config.Arch.ToString().ToLowerInvariant(),
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

    public static int LinearEval(RunConfig requested, string checkpointPath, CliContext ctx) => EvaluateCheckpoint(requested, checkpointPath, ctx, EvalKind.Linear);

    public static int Knn(RunConfig requested, string checkpointPath, CliContext ctx) => EvaluateCheckpoint(requested, checkpointPath, ctx, EvalKind.Knn);

    private enum EvalKind { Linear, Knn }

    private static int EvaluateCheckpoint(RunConfig requested, string checkpointPath, CliContext ctx, EvalKind kind)
    {
        var (file, info) = Checkpoint.Read(checkpointPath);
        // The encoder is the checkpoint's; the data and the evaluation settings are this command line's.
        var config = info.Config with
        {
            Dataset = requested.Dataset,
            DataPath = requested.DataPath,
            TrainSubset = requested.TrainSubset,
            TestSubset = requested.TestSubset,
            ShapesCount = requested.ShapesCount,
            KnnK = requested.KnnK,
            KnnTemperature = requested.KnnTemperature,
            LinearEpochs = requested.LinearEpochs,
            LinearLr = requested.LinearLr,
            LinearWeightDecay = requested.LinearWeightDecay,
            LinearBatchSize = requested.LinearBatchSize,
            Device = requested.Device,
        };
        var data = LoadData(config);
        if (data.Train.Shape.Height != info.Config.ImageSize || data.Train.Shape.Width != info.Config.ImageSize)
            ctx.Output.WriteLine($"note: the encoder was pretrained on {info.Config.ImageSize} px images; evaluating on {data.Train.Shape.Height}x{data.Train.Shape.Width}");
        config = config with { ImageSize = data.Train.Shape.Height };
        using var backend = BackendFactory.Create(DeviceRequest.Parse(config.Device), ctx.Output);
        int evalBatch = Math.Min(config.BatchSize, 128);
        using var model = ModelState.Build(backend, config, data.Train.Shape.Height, data.Train.Shape.Width, evalBatch);
        ModelState.Load(file, model.Parameters, momentum: null);
        ctx.Output.WriteLine($"evaluating {checkpointPath} ({Describe(config)}, {info.Position}) on {data.Train.Name} / {data.Test.Name}");
        var trained = FeatureExtractor.Extract(backend, model, config, data);
        model.Parameters.Initialize(config.Seed);
        var random = FeatureExtractor.Extract(backend, model, config, data);
        int classes = data.Train.ClassCount;
        if (kind == EvalKind.Linear)
        {
            var a = LinearProbe.Evaluate(trained.Train, trained.Test, classes, ProbeOptions(config));
            var r = LinearProbe.Evaluate(random.Train, random.Test, classes, ProbeOptions(config));
            ctx.Output.WriteLine(Invariant($"linear evaluation: SimCLR top-1 {a.Top1:P2} top-5 {a.Top5:P2} | random-init encoder top-1 {r.Top1:P2} top-5 {r.Top5:P2}"));
        }
        else
        {
            var a = KnnClassifier.Evaluate(backend, trained.Train, trained.Test, classes, config.KnnK, config.KnnTemperature);
            var r = KnnClassifier.Evaluate(backend, random.Train, random.Test, classes, config.KnnK, config.KnnTemperature);
            ctx.Output.WriteLine(Invariant($"kNN (k={config.KnnK}, τ={config.KnnTemperature}): SimCLR top-1 {a.Top1:P2} | random-init encoder top-1 {r.Top1:P2}"));
        }
        return (int)ExitCode.Ok;
    }

    private sealed record EvalResult(Accuracy Linear, Accuracy Knn);

    private static EvalResult Evaluate(IBackend<float> backend, SimClrModel<float> model, RunConfig config, DatasetSplits data)
    {
        var (train, test) = FeatureExtractor.Extract(backend, model, config, data);
        int classes = data.Train.ClassCount;
        return new EvalResult(
            LinearProbe.Evaluate(train, test, classes, ProbeOptions(config)),
            KnnClassifier.Evaluate(backend, train, test, classes, config.KnnK, config.KnnTemperature));
    }

    private static LinearProbeOptions ProbeOptions(RunConfig c) =>
        new(c.LinearEpochs, c.LinearLr, c.LinearWeightDecay, c.LinearBatchSize, 0.9, c.Seed);

    private static void PrintComparison(TextWriter o, RunConfig config, DatasetSplits data, EvalResult simclr, EvalResult random)
    {
        o.WriteLine();
        o.WriteLine($"Evaluation on {data.Test.Name} ({data.Test.Count} images, {data.Train.ClassCount} classes), frozen encoder features h:");
        o.WriteLine($"  {"",-26}{"linear top-1",14}{"linear top-5",14}{"kNN top-1",12}");
        o.WriteLine(Invariant($"  {$"SimCLR ({config.Epochs} epochs)",-26}{simclr.Linear.Top1,14:P1}{simclr.Linear.Top5,14:P1}{simclr.Knn.Top1,12:P1}"));
        o.WriteLine(Invariant($"  {"random-init encoder",-26}{random.Linear.Top1,14:P1}{random.Linear.Top5,14:P1}{random.Knn.Top1,12:P1}"));
        o.WriteLine(Invariant($"SimCLR linear top-1 {simclr.Linear.Top1:P1} vs random-init {random.Linear.Top1:P1} ({100 * (simclr.Linear.Top1 - random.Linear.Top1):+0.0;-0.0} points)"));
    }

    internal static DatasetSplits LoadData(RunConfig c)
    {
        DatasetSplits splits;
        try
        {
            splits = DatasetCatalog.Load(new DatasetOptions(c.Dataset, c.DataPath, c.ImageSize, c.ShapesCount, Math.Max(c.ShapesCount / 4, 120), c.Seed));
        }
        catch (DatasetException e)
        {
            throw new UserError(e.Message, ExitCode.BadInput);
        }
        var train = c.TrainSubset > 0 ? splits.Train.Take(c.TrainSubset) : splits.Train;
        var test = c.TestSubset > 0 ? splits.Test.Take(c.TestSubset) : splits.Test;
        if (!train.IsLabeled || !test.IsLabeled)
            throw new UserError($"{train.Name}: evaluation needs labeled train and test splits", ExitCode.BadInput);
        if (train.Count == 0 || test.Count == 0)
            throw new UserError($"{train.Name}: the train and test splits must not be empty", ExitCode.BadInput);
        return new DatasetSplits(train, test, splits.Unlabeled);
    }

    private static string Describe(RunConfig c) => Invariant(
        $"{c.Arch.ToString().ToLowerInvariant()} (width {c.Width}, {c.Stem} stem), batch {c.BatchSize}, {c.Epochs} epochs, τ {c.Temperature}, peak lr {c.PeakLearningRate():G4} ({c.LrScaling}), {c.Augment} augmentation");

    private static double Finite(double v) => double.IsFinite(v) ? v : 0;

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
