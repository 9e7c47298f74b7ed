// embed: a checkpoint's encoder in inference mode over a dataset split, written as one safetensors file that
// numpy alone can read (README, "Using the encoder elsewhere"):
//   features     float32 [N, F]  the encoder output h
//   labels       int64 [N]       when every row has a label
//   projections  float32 [N, P]  z = g(h), with --head
// and JSON strings in __metadata__: format, format_version, checkpoint, position, config (the checkpoint's),
// dataset, split, splits (row ranges per split), mean and std (the normalization applied), image_size,
// classes, feature_dim, projection_dim, and either files (folder datasets: each row's image, relative to
// root) or indices (each row's index inside its split). The model comes from the checkpoint as linear-eval
// builds it; the data are the checkpoint's own (dataset, location, subsets, image size) except where the
// data options say otherwise.
using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using SimClr.Kernels;
using SimClr.Training.Checkpoints;
using SimClr.Training.Cli.Options;
using SimClr.Training.Config;
using SimClr.Training.Data;
using SimClr.Training.Interop;
using SimClr.Training.Pretraining;
using SimClr.Training.Runs;

namespace SimClr.Training.Cli.Commands;

/// <summary>Which split embed reads: one, or train then test.</summary>
internal enum EmbedSplit { Train, Test, All }

internal static class EmbedCommand
{
    public const string Format = "simclr-native-embedding";

    public static Command Create(CliContext ctx)
    {
        var command = new Command("embed", "Write a checkpoint's encoder features (and with --head its projections) for a dataset split as safetensors");
        var checkpoint = new CheckpointOption("Checkpoint whose encoder embeds the images (a safetensors file written by pretrain)");
        var output = new OutputOption("safetensors file to write (features, labels, projections; metadata says how each row was made)");
        var data = new DataOptions();
        var split = new Option<string>("--split") { Description = "Which split to embed: train, test, or all (train rows, then test rows)", DefaultValueFactory = _ => "all" };
        split.AcceptOnlyFromAmong("train", "test", "all");
        var head = new Option<bool>("--head") { Description = "Also write the projection head's output z as 'projections'" };
        var options = new OptionSet(data, new DeviceOptions(), new ProgressOptions());
        checkpoint.AddTo(command);
        output.AddTo(command);
        options.AddTo(command);
        command.Add(split);
        command.Add(head);
        command.SetAction(r =>
        {
            string checkpointPath = checkpoint.Required(r);
            var (file, info) = Checkpoint.Read(checkpointPath);
            // The checkpoint's own data, except what the command line gives; how this session runs is its own.
            var fresh = new RunConfig();
            var config = options.Apply(r, info.Config with { Device = fresh.Device, Progress = fresh.Progress });
            if (config.Dataset != info.Config.Dataset && config.DataPath == info.Config.DataPath) config = config with { DataPath = null };
            return Run(file, info, config, checkpointPath, CommandLineValues.Required(r, output.Output),
                r.GetValue(split) switch { "train" => EmbedSplit.Train, "test" => EmbedSplit.Test, _ => EmbedSplit.All },
                r.GetValue(head) ? ProjectionOutput.With : ProjectionOutput.Without, ctx);
        });
        return command;
    }

    public static int Run(SafeTensorsFile file, CheckpointInfo info, RunConfig config, string checkpointPath, string outputPath, EmbedSplit split, ProjectionOutput head, CliContext ctx)
    {
        OutputPaths.RequireDistinct(outputPath, "--output", checkpointPath, "--checkpoint");
        config.Validate();
        var parts = LoadSplits(config, split, ctx.Output);
        var set = parts.Count == 1 ? parts[0].Set : ImageDataset.Concat(parts[0].Set, parts[1].Set, $"{parts[0].Set.Name}+{parts[1].Set.Name}");
        if (set.Count == 0) throw new UserError($"{set.Name}: the {split.ToString().ToLowerInvariant()} split holds no images", ExitCode.BadInput);
        if (set.Shape.Height != info.Config.ImageSize || set.Shape.Width != info.Config.ImageSize)
            ctx.Output.WriteLine($"note: the encoder was pretrained on {info.Config.ImageSize} px images; embedding {set.Shape.Height}x{set.Shape.Width}");
        config = config with { ImageSize = set.Shape.Height };

        using var backend = BackendFactory.Create(config, ctx.Output);
        using var model = ModelState.Build(backend, config, set.Shape.Height, set.Shape.Width, Math.Min(config.BatchSize, 128));
        ModelState.Load(file, model.Parameters, momentum: null);
        var spec = config.AugmentSpec();
        var embedding = ProgressView.RunCounted(config.Progress, ctx.Output, "embed", "images", set.Count,
            progress => Embedder.Run(backend, model, spec, config.Seed, set, head, progress));

        var w = new SafeTensorsWriter();
        w.Add<float>("features", embedding.Features, [set.Count, embedding.FeatureDim]);
        bool labeled = set.ClassCount > 0 && Array.IndexOf(set.Labels, ImageDataset.Unlabeled) < 0;
        if (labeled) w.Add<long>("labels", set.Labels.Select(l => (long)l).ToArray(), [set.Count]);
        if (embedding.Projections is { } z) w.Add<float>("projections", z, [set.Count, embedding.ProjectionDim]);
        w.AddMetadata("format", Format);
        w.AddMetadata("format_version", RunConfig.FormatVersion.ToString(CultureInfo.InvariantCulture));
        w.AddMetadata("checkpoint", Path.GetFullPath(checkpointPath));
        w.AddMetadata("position", info.Position.ToString());
        w.AddMetadata("config", info.Config.ToJson());
        w.AddMetadata("dataset", set.Name);
        w.AddMetadata("split", split.ToString().ToLowerInvariant());
        var ranges = new Dictionary<string, int[]>();
        int row = 0;
        foreach (var (name, part) in parts)
        {
            ranges[name] = [row, row + part.Count];
            row += part.Count;
        }
        w.AddMetadata("splits", JsonSerializer.Serialize(ranges));
        w.AddMetadata("mean", JsonSerializer.Serialize(new[] { spec.MeanR, spec.MeanG, spec.MeanB }));
        w.AddMetadata("std", JsonSerializer.Serialize(new[] { spec.StdR, spec.StdG, spec.StdB }));
        w.AddMetadata("image_size", set.Shape.Height.ToString(CultureInfo.InvariantCulture));
        w.AddMetadata("classes", JsonSerializer.Serialize(set.ClassNames));
        w.AddMetadata("feature_dim", embedding.FeatureDim.ToString(CultureInfo.InvariantCulture));
        w.AddMetadata("projection_dim", (embedding.Projections is null ? 0 : embedding.ProjectionDim).ToString(CultureInfo.InvariantCulture));
        if (set.Files is { } files && config.DataPath is { } root)
        {
            string full = Path.GetFullPath(root);
            w.AddMetadata("root", full);
            w.AddMetadata("files", JsonSerializer.Serialize(files.Select(f => Path.GetRelativePath(full, f).Replace(Path.DirectorySeparatorChar, '/'))));
        }
        else
        {
            w.AddMetadata("indices", JsonSerializer.Serialize(parts.SelectMany(p => Enumerable.Range(0, p.Set.Count))));
        }
        try { w.WriteAtomic(outputPath); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw UserError.File(outputPath, $"cannot be written ({e.Message})");
        }
        ctx.Output.WriteLine($"wrote {outputPath}: {set.Count} rows of {embedding.FeatureDim} features"
            + (embedding.Projections is null ? "" : $" and {embedding.ProjectionDim} projections")
            + (labeled ? " with labels" : "") + $" ({set.Name}) from {checkpointPath} at {info.Position}");
        return (int)ExitCode.Ok;
    }

    /// <summary>The requested split(s) of the config's dataset, subsets applied, each with its name.</summary>
    private static List<(string Name, ImageDataset Set)> LoadSplits(RunConfig c, EmbedSplit split, TextWriter output)
    {
        var splits = CommandSupport.LoadImages(c, output, c.Dataset, c.DataPath);
        return split switch
        {
            EmbedSplit.Train => [("train", splits.Train)],
            EmbedSplit.Test => [("test", splits.Test)],
            _ => [("train", splits.Train), ("test", splits.Test)],
        };
    }
}
