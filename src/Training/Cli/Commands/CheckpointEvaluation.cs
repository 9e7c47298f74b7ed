// linear-eval and knn on a saved checkpoint: the encoder is the checkpoint's, the data and the evaluation
// settings are the command line's (with --init-from instead, the encoder is a torchvision state_dict's). Each
// protocol runs twice, on the checkpoint's encoder and on a random-init encoder of the same architecture and
// seed, so the printed gap is what pretraining bought. Each phase (features, probe or vote) has a progress
// row; Ctrl-C stops the evaluation and exits 130.
using SimClr.Layers;
using SimClr.Training.Checkpoints;
using SimClr.Training.Config;
using SimClr.Training.Data;
using SimClr.Training.Evaluation;
using SimClr.Training.Interop;
using SimClr.Training.Pretraining;
using SimClr.Training.Runs;
using static SimClr.Training.Cli.Commands.CommandSupport;

namespace SimClr.Training.Cli.Commands;

internal enum EvalKind { Linear, Knn }

internal static class CheckpointEvaluation
{
    public static int Run(RunConfig requested, string? checkpointPath, CliContext ctx, EvalKind kind)
    {
        if ((checkpointPath is null) == (requested.InitFrom is null))
            throw UserError.Option("--checkpoint", "give exactly one encoder: --checkpoint (written by pretrain) or --init-from (torchvision weights)");
        if (checkpointPath is null) return RunInitFrom(requested, ctx, kind);
        var (file, info) = Checkpoint.Read(checkpointPath);
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
            Verbosity = requested.Verbosity,
        };
        var data = LoadData(config);
        if (data.Train.Shape.Height != info.Config.ImageSize || data.Train.Shape.Width != info.Config.ImageSize)
            ctx.Output.WriteLine($"note: the encoder was pretrained on {info.Config.ImageSize} px images; evaluating on {data.Train.Shape.Height}x{data.Train.Shape.Width}");
        config = config with { ImageSize = data.Train.Shape.Height };
        return Evaluate(config, data, model => ModelState.Load(file, model.Parameters, momentum: null), $"{checkpointPath} ({Describe(config)}, {info.Position})", ctx, kind);
    }

    /// <summary>The same protocols on a torchvision encoder: the data options describe the data, --init-from the model.</summary>
    private static int RunInitFrom(RunConfig requested, CliContext ctx, EvalKind kind)
    {
        var data = LoadData(requested);
        var config = requested.Resolve(data.Train.Shape.Height);
        return Evaluate(config, data, model => TorchvisionWeights.ApplyInitFrom(config, model.Parameters, ctx.Output), $"{config.InitFrom} ({Describe(config)})", ctx, kind);
    }

    private static int Evaluate(RunConfig config, DatasetSplits data, Action<SimClrModel<float>> load, string source, CliContext ctx, EvalKind kind)
    {
        using var backend = BackendFactory.Create(DeviceRequest.Parse(config.Device), ctx.Output, config.Verbosity);
        int evalBatch = Math.Min(config.BatchSize, 128);
        using var model = ModelState.Build(backend, config, data.Train.Shape.Height, data.Train.Shape.Width, evalBatch);
        load(model);
        ctx.Output.WriteLine($"evaluating {source} on {data.Train.Name} / {data.Test.Name}");
        int classes = data.Train.ClassCount;
        try
        {
            var (a, r) = ProgressView.Phases(ProgressMode.Auto, ctx.Output, host =>
            {
                Accuracy Protocol(string encoder)
                {
                    var features = EvaluationProgress.Features(host, $"features ({encoder})", backend, model, config, data, ctx.Cancel);
                    return kind == EvalKind.Linear
                        ? EvaluationProgress.Linear(host, $"linear probe ({encoder})", features, classes, PretrainCommand.ProbeOptions(config), ctx.Cancel)
                        : EvaluationProgress.Knn(host, $"kNN ({encoder})", backend, features, classes, config, ctx.Cancel);
                }
                var trained = Protocol("checkpoint");
                model.Parameters.Initialize(config.Seed);
                return (trained, Protocol("random init"));
            });
            ctx.Output.WriteLine(kind == EvalKind.Linear
                ? Invariant($"linear evaluation: SimCLR top-1 {a.Top1:P2} top-5 {a.Top5:P2} | random-init encoder top-1 {r.Top1:P2} top-5 {r.Top5:P2}")
                : Invariant($"kNN (k={config.KnnK}, τ={config.KnnTemperature}): SimCLR top-1 {a.Top1:P2} | random-init encoder top-1 {r.Top1:P2}"));
        }
        catch (OperationCanceledException) when (ctx.Cancel.IsCancellationRequested)
        {
            ctx.Output.WriteLine("evaluation stopped (Ctrl-C)");
            return (int)ExitCode.Interrupted;
        }
        return (int)ExitCode.Ok;
    }
}
