// linear-eval, knn and finetune on a saved encoder: a SimCLR checkpoint (--checkpoint) or torchvision weights
// (--init-from). A checkpoint's encoder and its input (architecture, image size, normalization) are the
// checkpoint's; every other setting starts from the checkpoint's config too (the data its run evaluated on, its
// kNN and linear-probe settings, its seed), and the options given on the command line override it. With
// --init-from the command line describes everything but the model, whose arch, width and stem the file's shapes
// give. Each protocol runs twice, on the given encoder and on a random-init encoder of the same architecture and
// seed, so the printed gap is what pretraining bought. Each phase (features, probe or vote) has a progress row;
// Ctrl-C stops the evaluation and exits 130.
// Transfer: images of another size than the encoder's input (Fashion-MNIST's 28 px for a 32 px checkpoint) are
// resized on the host to the input size first (centre square, area averaging when shrinking, bilinear when
// enlarging); grayscale images are replicated to RGB by the augmentation op, and normalized with the
// checkpoint's mean and std.
// With --out the results are written there: summary.json (both encoders' top-1/top-5, the protocol's settings,
// the checkpoint) and embedding.png of the given encoder's test features. A folder whose summary.json another
// command wrote (a pretraining run's, say) is refused rather than overwritten. The folder is created only once
// the encoder and the data were read.
using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using SimClr.Training.Checkpoints;
using SimClr.Training.Cli.Options;
using SimClr.Training.Config;
using SimClr.Training.Data;
using SimClr.Training.Evaluation;
using SimClr.Training.Io;
using SimClr.Training.Pretraining;
using SimClr.Training.Runs;
using static SimClr.Training.Cli.Commands.CommandSupport;

namespace SimClr.Training.Cli.Commands;

internal enum EvalKind { Linear, Knn }

internal static class CheckpointEvaluation
{
    /// <summary>The config an evaluation of <paramref name="source"/> runs with: its own, evaluated on the data its run
    /// evaluated on, with the command line's options over it. Naming another dataset resets where the data is and
    /// which subsets are used, since the checkpoint's describe its own dataset.</summary>
    public static RunConfig Configure(ParseResult r, EncoderSource source, DataOptions data, OptionSet options)
    {
        var own = source.Config;
        var start = own with
        {
            Dataset = own.EvalDataset ?? own.Dataset,
            DataPath = own.EvalDataset is null ? own.DataPath : own.EvalDataPath,
            EvalDataset = null,
            EvalDataPath = null,
            Stl10Unlabeled = 0,
            Out = null,
            Name = null,
            Resume = null,
            Progress = ProgressMode.Auto, // how the run showed progress is the run's; this command's is its own --progress
        };
        if (OptionGroup.Given(r, data.Dataset) && DataOptions.ParseDataset(r.GetValue(data.Dataset)!) != start.Dataset)
        {
            var fresh = new RunConfig();
            start = start with { DataPath = null, TrainSubset = 0, TestSubset = 0, ShapesCount = fresh.ShapesCount, FolderLabels = fresh.FolderLabels };
        }
        var config = options.Apply(r, start);
        config.Validate();
        return config;
    }

    /// <summary>The labelled splits of <paramref name="config"/> at the encoder's input size.</summary>
    public static DatasetSplits LoadAtInputSize(RunConfig config, EncoderSource source, TextWriter output)
    {
        var data = LoadData(config, output);
        data = DatasetResize.To(data, source.Config.ImageSize, $"the input size of {source.Path}", out var note);
        if (note is not null) output.WriteLine(note);
        return data;
    }

    /// <summary>The encoder an evaluation starts from, the config it runs with and its data: exactly one of
    /// --checkpoint and --init-from.</summary>
    public static (EncoderSource Source, RunConfig Config, DatasetSplits Data) Prepare(ParseResult r, string? checkpointPath, InitFromOptions init,
        DataOptions dataOptions, OptionSet options, TextWriter output)
    {
        if ((checkpointPath is null) != OptionGroup.Given(r, init.InitFrom))
            throw UserError.Option("--checkpoint", "give exactly one encoder: --checkpoint (written by pretrain) or --init-from (torchvision weights)");
        if (checkpointPath is not null)
        {
            var source = EncoderSource.FromCheckpoint(checkpointPath);
            if (OptionGroup.Given(r, dataOptions.ImageSize) && r.GetValue(dataOptions.ImageSize) != source.Config.ImageSize)
                throw UserError.Option("--image-size", $"applies to --init-from weights only: the checkpoint's encoder takes {source.Config.ImageSize} px images, and other sizes are resized to it");
            var config = Configure(r, source, dataOptions, options);
            return (source, config, LoadAtInputSize(config, source, output));
        }
        var requested = options.Apply(r, dataOptions.Defaults(r));
        requested.Validate();
        var data = LoadData(requested, output);
        var resolved = requested.Resolve(data.Train.Shape.Height);
        return (EncoderSource.FromInitFrom(resolved, output), resolved, data);
    }

    public static int Run(ParseResult r, string? checkpointPath, InitFromOptions init, DataOptions dataOptions, OptionSet options, string? outDir, CliContext ctx, EvalKind kind)
    {
        string command = kind == EvalKind.Linear ? "linear-eval" : "knn";
        var (source, config, data) = Prepare(r, checkpointPath, init, dataOptions, options, ctx.Output);
        var output = EvaluationOutput.Open(outDir, command);
        using var backend = BackendFactory.Create(config, ctx.Output);
        int size = source.Config.ImageSize;
        using var model = ModelState.Build(backend, config, size, size, Math.Min(config.BatchSize, 128));
        source.LoadEncoder(model.Parameters);
        ctx.Output.WriteLine($"evaluating {source.Description} ({Describe(config)}) on {data.Train.Name} / {data.Test.Name}");
        int classes = data.Train.ClassCount;
        var probe = PretrainCommand.ProbeOptions(config);
        Accuracy a, b;
        (FeatureSet Train, FeatureSet Test) given;
        try
        {
            (a, b, given) = ProgressView.Phases(config.Progress, ctx.Output, host =>
            {
                (Accuracy, (FeatureSet Train, FeatureSet Test)) Protocol(string encoder)
                {
                    var features = EvaluationProgress.Features(host, $"features ({encoder})", backend, model, config, data, ctx.Cancel);
                    return (kind == EvalKind.Linear
                        ? EvaluationProgress.Linear(host, $"linear probe ({encoder})", features, classes, probe, ctx.Cancel)
                        : EvaluationProgress.Knn(host, $"kNN ({encoder})", backend, features, classes, config, ctx.Cancel), features);
                }
                var (trained, features) = Protocol("given encoder");
                model.Parameters.Initialize(config.Seed);
                return (trained, Protocol("random init").Item1, features);
            });
        }
        catch (OperationCanceledException) when (ctx.Cancel.IsCancellationRequested)
        {
            ctx.Output.WriteLine("evaluation stopped (Ctrl-C)");
            return (int)ExitCode.Interrupted;
        }
        string title = kind == EvalKind.Linear ? "linear evaluation" : Invariant($"kNN (k={config.KnnK}, τ={config.KnnTemperature})");
        ctx.Output.WriteLine(Invariant($"{title}: SimCLR top-1 {a.Top1:P2} top-5 {a.Top5:P2} | random-init encoder top-1 {b.Top1:P2} top-5 {b.Top5:P2}"));
        var summary = EvaluationOutput.Header(command, source, data);
        EvaluationOutput.AddScores(summary, kind == EvalKind.Linear ? "linear" : "knn", a, b);
        summary["protocol"] = kind == EvalKind.Linear
            ? new JsonObject
            {
                ["name"] = "linear probe on frozen, standardized features h (multinomial logistic regression)",
                ["epochs"] = probe.Epochs,
                ["learning_rate"] = probe.LearningRate,
                ["schedule"] = "cosine, no warmup",
                ["optimizer"] = "SGD with Nesterov momentum",
                ["momentum"] = probe.Momentum,
                ["weight_decay"] = probe.WeightDecay,
                ["batch_size"] = probe.BatchSize,
                ["seed"] = config.Seed,
            }
            : new JsonObject
            {
                ["name"] = "weighted kNN vote on frozen features h (cosine similarity, weights exp(s/τ))",
                ["k"] = config.KnnK,
                ["temperature"] = config.KnnTemperature,
                ["seed"] = config.Seed,
            };
        output?.Finish(summary, given.Train, given.Test, data.Test.ClassNames, "SimCLR encoder features h", ctx.Output);
        return (int)ExitCode.Ok;
    }
}

/// <summary>The folder an evaluation command writes its results into.</summary>
internal sealed class EvaluationOutput
{
    private EvaluationOutput(string root, string command)
    {
        Root = root;
        Command = command;
    }

    public string Root { get; }
    public string Command { get; }
    public string SummaryPath => Path.Combine(Root, "summary.json");
    public string EmbeddingPath => Path.Combine(Root, "embedding.png");

    /// <summary>The folder for <paramref name="command"/>'s results, created; null when <paramref name="dir"/> is.</summary>
    public static EvaluationOutput? Open(string? dir, string command)
    {
        if (dir is null) return null;
        if (dir.Length == 0) throw UserError.Option("--out", "must name a folder, got an empty string");
        var output = new EvaluationOutput(Path.GetFullPath(dir), command);
        if (File.Exists(output.Root)) throw UserError.Option("--out", $"{output.Root} is a file, not a folder");
        if (File.Exists(Path.Combine(output.Root, "config.json")))
            throw UserError.Option("--out", $"{output.Root} holds a pretraining run (its config.json); choose another folder");
        if (File.Exists(output.SummaryPath))
        {
            string? other = null;
            try { other = JsonNode.Parse(SafeFile.ReadText(output.SummaryPath, 1 << 20))?["command"]?.GetValue<string>(); }
            catch (Exception e) when (e is JsonException or InvalidOperationException or UserError) { }
            if (other != command)
                throw UserError.Option("--out", $"{output.Root} already holds the summary.json of {(other is null ? "a pretraining run" : $"a {other} run")}; choose another folder");
        }
        try
        {
            Directory.CreateDirectory(output.Root);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw UserError.Option("--out", $"cannot create {output.Root} ({e.Message})");
        }
        return output;
    }

    /// <summary>What every evaluation summary starts with: the command, the encoder and the data.</summary>
    public static JsonObject Header(string command, EncoderSource source, DatasetSplits data) => new()
    {
        ["command"] = command,
        ["checkpoint"] = Path.GetFullPath(source.Path),
        ["encoder"] = source.Description,
        ["arch"] = CliEnumConverter.Name(source.Config.Arch),
        ["width"] = source.Config.Width,
        ["input_size"] = source.Config.ImageSize,
        ["pretrained_on"] = CliEnumConverter.Name(source.Config.Dataset),
        ["dataset"] = data.Train.Name,
        ["train_images"] = data.Train.Count,
        ["test_images"] = data.Test.Count,
        ["classes"] = data.Train.ClassCount,
    };

    /// <summary>Adds the given and the random-init encoder's scores as <paramref name="key"/>_top1, <paramref name="key"/>_top5,
    /// random_<paramref name="key"/>_top1 and random_<paramref name="key"/>_top5.</summary>
    public static void AddScores(JsonObject summary, string key, Accuracy given, Accuracy random)
    {
        summary[$"{key}_top1"] = given.Top1;
        summary[$"{key}_top5"] = given.Top5;
        summary[$"random_{key}_top1"] = random.Top1;
        summary[$"random_{key}_top5"] = random.Top5;
    }

    /// <summary>Writes summary.json and embedding.png (of <paramref name="test"/>, with discriminants fit on
    /// <paramref name="train"/>) and says where.</summary>
    public void Finish(JsonObject summary, FeatureSet train, FeatureSet test, IReadOnlyList<string> classNames, string title, TextWriter output)
    {
        EmbeddingPlot.Write(EmbeddingPath, test.Features, test.Labels, classNames, title, train.Features, train.Labels);
        try
        {
            AtomicFile.WriteText(SummaryPath, summary.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw UserError.File(SummaryPath, $"cannot be written ({e.Message})");
        }
        output.WriteLine($"wrote {SummaryPath} and {EmbeddingPath}");
    }
}
