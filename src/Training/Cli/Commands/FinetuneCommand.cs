// finetune: the paper's semi-supervised protocol on a saved encoder (FineTuner): a class-balanced labelled
// subset of the training split, the whole encoder plus a new linear layer trained on it, top-1/top-5 on the test
// split; then the same protocol, on the same subset, from a random-init encoder of the same architecture and seed.
// The run directory (--out, default ./runs/<UTC time>-finetune) gets label-subset.txt (the training indices used,
// so --label-subset repeats the run on exactly these images), summary.json and embedding.png of the fine-tuned
// encoder's test features. The starting point is an EncoderSource: a checkpoint (--checkpoint) or torchvision
// weights (--init-from), and everything after it is the same.
using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using SimClr.Training.Cli.Options;
using SimClr.Training.Config;
using SimClr.Training.Data;
using SimClr.Training.Evaluation;
using SimClr.Training.Runs;
using static SimClr.Training.Cli.Commands.CommandSupport;

namespace SimClr.Training.Cli.Commands;

internal static class FinetuneCommand
{
    public const string Summary = "Fine-tune a checkpoint's whole encoder plus a new linear layer on a labelled subset (the paper's 1 % / 10 % protocol), beside a random-init encoder";

    public static Command Create(CliContext ctx)
    {
        var command = new Command("finetune", Summary + ". Protocol (SimCLR appendix B.5): Nesterov momentum 0.9, learning rate 0.05·B/256 with a cosine decay and no warmup, "
            + "no weight decay, random resized crops (the checkpoint's crop range) and horizontal flips only, 60 epochs for 1 % of the labels and 30 for 10 %, "
            + "BN in training mode over the whole batch (the paper: batch 4096), the new layer starting at zero; the test split is classified whole with BN's running statistics. "
            + "Images of another size than the checkpoint's input are resized to it.");
        var checkpoint = new CheckpointOption("Checkpoint whose encoder is fine-tuned (a safetensors file written by pretrain); or give --init-from");
        var data = new DataOptions(DataRole.Evaluation);
        var init = new InitFromOptions();
        var finetune = new FinetuneOptions();
        var options = new OptionSet(data, init, new SeedOptions(DefaultsFrom.Checkpoint), new DeviceOptions(), new ProgressOptions());
        var output = new EvalOutputOption("Run directory for label-subset.txt, summary.json and embedding.png (default ./runs/<UTC time>-finetune)");
        checkpoint.AddTo(command);
        options.AddTo(command);
        finetune.AddTo(command);
        output.AddTo(command);
        command.SetAction(r =>
        {
            var rule = finetune.SubsetRule(r);
            var (source, config, images) = CheckpointEvaluation.Prepare(r, r.GetValue(checkpoint.Checkpoint), init, data, options, ctx.Output);
            return Run(r, source, config, images, finetune, rule, r.GetValue(output.Out), ctx);
        });
        return command;
    }

    private static int Run(ParseResult r, EncoderSource source, RunConfig config, DatasetSplits data, FinetuneOptions finetune,
        (double? Fraction, int? PerClass, string? File) rule, string? outDir, CliContext ctx)
    {
        var subset = rule.File is { } file
            ? LabelSubset.Read(file, data.Train.Count)
            : LabelSubset.Draw(data.Train.Labels, data.Train.ClassCount, rule.Fraction, rule.PerClass, config.Seed);
        double share = (double)subset.Count / data.Train.Count;
        var settings = finetune.Settings(r, share, subset.Count, config.Seed);
        var output = EvaluationOutput.Open(outDir ?? Path.Combine("runs", DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture) + "-finetune"), "finetune")!;
        string subsetPath = Path.Combine(output.Root, "label-subset.txt");
        subset.Write(subsetPath, data.Train.Name);

        using var backend = BackendFactory.Create(config, ctx.Output);
        var encoderConfig = source.Config with { Seed = config.Seed };
        int classes = data.Train.ClassCount;
        int batch = settings.BatchSize;
        ctx.Output.WriteLine(Invariant($"fine-tuning {source.Description} on {subset.Count} labelled images of {data.Train.Name} ({share:P1}: {subset.Rule}; {subsetPath}), {settings.Epochs} epochs, batch {batch}, peak lr {settings.PeakLearningRate(batch):G4}, testing on {data.Test.Count} images of {data.Test.Name}"));
        using var network = FineTuner.Build(backend, encoderConfig, classes, batch);
        source.LoadEncoder(network.Parameters);
        long steps = (long)EpochOrder.StepsPerEpoch(subset.Count, batch) * settings.Epochs;
        var simclr = ProgressView.Run(config.Progress, ctx.Output, "finetune SimCLR", steps, 0,
            sink => FineTuner.Run(backend, network, encoderConfig, data, subset, settings, sink, "from the SimCLR encoder", ctx.Cancel));
        network.Parameters.Initialize(encoderConfig.Seed);
        network.ZeroClassifier();
        var random = ProgressView.Run(config.Progress, ctx.Output, "finetune random", steps, 0,
            sink => FineTuner.Run(backend, network, encoderConfig, data, subset, settings, sink, "from a random-init encoder", ctx.Cancel));

        ctx.Output.WriteLine();
        ctx.Output.WriteLine($"Fine-tuning on {subset.Count} labels ({share:P1}), {data.Test.Name} ({data.Test.Count} images, {classes} classes):");
        ctx.Output.WriteLine($"  {"",-26}{"top-1",10}{"top-5",10}");
        ctx.Output.WriteLine(Invariant($"  {"SimCLR encoder",-26}{simclr.Test.Top1,10:P1}{simclr.Test.Top5,10:P1}"));
        ctx.Output.WriteLine(Invariant($"  {"random-init encoder",-26}{random.Test.Top1,10:P1}{random.Test.Top5,10:P1}"));
        ctx.Output.WriteLine(Invariant($"fine-tuned SimCLR top-1 {simclr.Test.Top1:P1} vs random-init {random.Test.Top1:P1} ({100 * (simclr.Test.Top1 - random.Test.Top1):+0.0;-0.0} points)"));

        var crops = FineTuner.TrainSpec(encoderConfig);
        var summary = EvaluationOutput.Header("finetune", source, data);
        EvaluationOutput.AddScores(summary, "finetune", simclr.Test, random.Test);
        summary["final_loss"] = Finite(simclr.FinalLoss);
        summary["random_final_loss"] = Finite(random.FinalLoss);
        summary["protocol"] = new JsonObject
        {
            ["name"] = "semi-supervised fine-tuning of the whole encoder plus a new linear layer (SimCLR appendix B.5)",
            ["labelled_images"] = subset.Count,
            ["labelled_share"] = share,
            ["label_subset"] = subset.Rule,
            ["label_subset_file"] = subsetPath,
            ["epochs"] = settings.Epochs,
            ["steps"] = simclr.Steps,
            ["batch_size"] = batch,
            ["base_learning_rate"] = settings.BaseLearningRate,
            ["peak_learning_rate"] = settings.PeakLearningRate(batch),
            ["schedule"] = "cosine to zero, no warmup",
            ["optimizer"] = "SGD with Nesterov momentum",
            ["momentum"] = FineTuneSettings.Momentum,
            ["weight_decay"] = 0.0,
            ["augmentation"] = Invariant($"random resized crop (area {crops.CropAreaMin:G3}–{crops.CropAreaMax:G3}) and horizontal flip"),
            ["batch_norm"] = "training mode over the whole batch; test with running statistics",
            ["classifier_init"] = "zero",
            ["seed"] = config.Seed,
        };
        output.Finish(summary, simclr.TrainFeatures, simclr.TestFeatures, data.Test.ClassNames, "fine-tuned SimCLR encoder features h", ctx.Output);
        return (int)ExitCode.Ok;
    }
}
