// A training checkpoint: one safetensors file with every entry of the model's parameter store under its own
// name (the encoder's are torchvision's state_dict names, the projection head's start with "head.", BN
// counters are int64 scalars), the LARS momentum ("momentum." + the parameter's name) and metadata strings:
// format, format_version, config (the resolved RunConfig as JSON), epoch, step, epoch_step (data position),
// seed, loss, best_metric, epoch_loss_sum and epoch_loss_count (the loss readings of the interrupted epoch so
// far, so a resumed run reports that epoch's loss over all its steps). Reading validates the checkpoint as a
// whole before anything of it is used: the container (SafeTensors), the format, a stored config that is itself
// valid and resolved, metadata that agree with it (seed, position, partial sums), and, in RequireExactly and
// ReadFinite, names, dtypes and shapes against the model plus finite values in every float tensor.
using System.Globalization;
using SimClr.Training.Cli;
using SimClr.Training.Config;
using SimClr.Training.Io;

namespace SimClr.Training.Checkpoints;

/// <summary>A tensor a loader expects: name, dtype and shape.</summary>
public sealed record ExpectedTensor(string Name, SafeDType DType, int[] Shape);

/// <summary>Where a run stands: epochs completed, global step, and the step inside the current epoch.</summary>
public sealed record TrainingPosition(int Epoch, long Step, int EpochStep)
{
    public override string ToString() => EpochStep == 0 ? $"epoch {Epoch}, step {Step}" : $"epoch {Epoch} + {EpochStep} steps (step {Step})";
}

/// <summary>The loss readings taken so far in the current epoch: their sum and how many there were.</summary>
public readonly record struct EpochLoss(double Sum, int Count)
{
    public EpochLoss Add(double loss) => new(Sum + loss, Count + 1);
    public double Mean => Count > 0 ? Sum / Count : double.NaN;
}

public sealed record CheckpointInfo(RunConfig Config, TrainingPosition Position, double Loss, double BestMetric, EpochLoss PartialEpoch = default);

public static class Checkpoint
{
    public const string Format = "simclr-native-checkpoint";
    public const string EncoderFormat = "simclr-native-encoder";
    public const string HeadPrefix = "head.";
    public const string MomentumPrefix = "momentum.";

    /// <summary>The checkpoint's bytes: metadata from <paramref name="info"/>, tensors from <paramref name="addTensors"/>.</summary>
    public static byte[] ToBytes(CheckpointInfo info, Action<SafeTensorsWriter> addTensors)
    {
        var w = new SafeTensorsWriter();
        w.AddMetadata("format", Format);
        w.AddMetadata("format_version", RunConfig.FormatVersion.ToString(CultureInfo.InvariantCulture));
        w.AddMetadata("config", info.Config.ToJson());
        w.AddMetadata("epoch", info.Position.Epoch.ToString(CultureInfo.InvariantCulture));
        w.AddMetadata("step", info.Position.Step.ToString(CultureInfo.InvariantCulture));
        w.AddMetadata("epoch_step", info.Position.EpochStep.ToString(CultureInfo.InvariantCulture));
        w.AddMetadata("seed", info.Config.Seed.ToString(CultureInfo.InvariantCulture));
        w.AddMetadata("loss", info.Loss.ToString("R", CultureInfo.InvariantCulture));
        w.AddMetadata("best_metric", info.BestMetric.ToString("R", CultureInfo.InvariantCulture));
        w.AddMetadata("epoch_loss_sum", info.PartialEpoch.Sum.ToString("R", CultureInfo.InvariantCulture));
        w.AddMetadata("epoch_loss_count", info.PartialEpoch.Count.ToString(CultureInfo.InvariantCulture));
        addTensors(w);
        return w.ToBytes();
    }

    public static void Write(string path, CheckpointInfo info, Action<SafeTensorsWriter> addTensors) =>
        AtomicFile.Write(path, ToBytes(info, addTensors));

    /// <summary>Reads and validates a training checkpoint's container and metadata (not yet its tensors).</summary>
    public static (SafeTensorsFile File, CheckpointInfo Info) Read(string path)
    {
        var file = SafeTensorsFile.Load(path);
        string format = file.RequireMetadata("format");
        if (format != Format) throw UserError.File(path, $"is a '{format}' file, not a training checkpoint ('{Format}')");
        int version = MetaInt(file, "format_version");
        if (version != RunConfig.FormatVersion) throw UserError.File(path, $"checkpoint format version {version} is not supported (this program reads {RunConfig.FormatVersion})");
        var config = RunConfig.FromJson(file.RequireMetadata("config"), path);
        try
        {
            config.Validate();
            config.RequireResolved();
        }
        catch (UserError e) { throw UserError.File(path, $"the stored config is invalid ({e.Message})"); }
        if (!ulong.TryParse(file.RequireMetadata("seed"), NumberStyles.None, CultureInfo.InvariantCulture, out ulong seed) || seed != config.Seed)
            throw UserError.File(path, $"metadata seed '{file.RequireMetadata("seed")}' disagrees with the stored config's seed {config.Seed}");
        var position = new TrainingPosition(MetaInt(file, "epoch"), MetaLong(file, "step"), MetaInt(file, "epoch_step"));
        if (position.Epoch < 0 || position.Step < 0 || position.EpochStep < 0 || position.Epoch > config.Epochs
            || (position.Epoch == config.Epochs && position.EpochStep != 0) || position.Step < position.EpochStep)
            throw UserError.File(path, $"metadata position {position} is impossible for a {config.Epochs}-epoch run");
        var partial = new EpochLoss(MetaDouble(file, "epoch_loss_sum"), MetaInt(file, "epoch_loss_count"));
        if (partial.Count < 0 || partial.Count > position.EpochStep || !double.IsFinite(partial.Sum) || (partial.Count == 0 && partial.Sum != 0))
            throw UserError.File(path, $"metadata epoch_loss_sum {partial.Sum} over {partial.Count} readings is impossible at {position}");
        return (file, new CheckpointInfo(config, position, MetaDouble(file, "loss"), MetaDouble(file, "best_metric"), partial));
    }

    /// <summary>Demands that <paramref name="info"/>'s position is one this run's data can reach: every epoch
    /// is <paramref name="stepsPerEpoch"/> steps, so the global step follows from the epoch and the step within it.</summary>
    public static void RequirePosition(string path, CheckpointInfo info, int stepsPerEpoch)
    {
        var p = info.Position;
        if (p.EpochStep >= stepsPerEpoch || p.Step != (long)p.Epoch * stepsPerEpoch + p.EpochStep)
            throw UserError.File(path, $"metadata position {p} does not fit this run: with {stepsPerEpoch} steps per epoch it would be step {(long)p.Epoch * stepsPerEpoch + p.EpochStep}"
                + (p.EpochStep >= stepsPerEpoch ? $" and the step within the epoch must be below {stepsPerEpoch}" : "")
                + " (was the checkpoint written for another dataset, subset or batch size?)");
    }

    /// <summary>Tensor <paramref name="name"/> as floats, refused when any value is NaN or infinite (a diverged
    /// or corrupt checkpoint would otherwise evaluate as garbage).</summary>
    public static float[] ReadFinite(SafeTensorsFile file, string name)
    {
        var values = file.Read<float>(name);
        for (int i = 0; i < values.Length; i++)
            if (!float.IsFinite(values[i]))
                throw UserError.File(file.Path, $"tensor '{name}' holds {values[i]} at element {i}: the checkpoint is corrupt or comes from a diverged run");
        return values;
    }

    /// <summary>Demands that the file holds exactly <paramref name="expected"/> (same names, dtypes and shapes),
    /// reporting the first difference. Names <paramref name="ignored"/> accepts may be present besides.</summary>
    public static void RequireExactly(SafeTensorsFile file, IReadOnlyList<ExpectedTensor> expected, Func<string, bool>? ignored = null)
    {
        var want = expected.ToDictionary(e => e.Name, StringComparer.Ordinal);
        foreach (var e in expected)
        {
            if (!file.Tensors.TryGetValue(e.Name, out var t))
                throw UserError.File(file.Path, $"tensor '{e.Name}' is missing: the checkpoint does not match this model");
            if (!t.Shape.SequenceEqual(e.Shape))
                throw UserError.File(file.Path, $"tensor '{e.Name}' has shape {t.ShapeText}, the model expects [{string.Join(", ", e.Shape)}]");
            if (t.DType != e.DType)
                throw UserError.File(file.Path, $"tensor '{e.Name}' has dtype {t.DType}, the model expects {e.DType}");
        }
        foreach (var name in file.Tensors.Keys)
            if (!want.ContainsKey(name) && ignored?.Invoke(name) != true)
                throw UserError.File(file.Path, $"tensor '{name}' is not part of this model: the checkpoint does not match it");
    }

    private static int MetaInt(SafeTensorsFile f, string key) =>
        int.TryParse(f.RequireMetadata(key), NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v : throw UserError.File(f.Path, $"metadata '{key}' is not an integer");

    private static long MetaLong(SafeTensorsFile f, string key) =>
        long.TryParse(f.RequireMetadata(key), NumberStyles.Integer, CultureInfo.InvariantCulture, out long v) ? v : throw UserError.File(f.Path, $"metadata '{key}' is not an integer");

    private static double MetaDouble(SafeTensorsFile f, string key) =>
        double.TryParse(f.RequireMetadata(key), NumberStyles.Float, CultureInfo.InvariantCulture, out double v) ? v : throw UserError.File(f.Path, $"metadata '{key}' is not a number");
}

/// <summary>The checkpoints folder of a run: step-NNNNNNNN.safetensors files (the last K kept) and best.safetensors.</summary>
public sealed class CheckpointStore(string directory, int keepLast)
{
    public string Directory { get; } = directory;

    public string PathFor(long step) => Path.Combine(Directory, $"step-{step:D8}.safetensors");
    public string BestPath => Path.Combine(Directory, "best.safetensors");

    /// <summary>Saves at <paramref name="info"/>'s position, copies to best when <paramref name="isBest"/>, then
    /// drops the oldest beyond K: each file is replaced atomically and only after the new one is complete, so a
    /// failure (a full disk) leaves every earlier checkpoint as it was.</summary>
    public string Save(CheckpointInfo info, Action<SafeTensorsWriter> addTensors, bool isBest)
    {
        string path = PathFor(info.Position.Step);
        var bytes = Checkpoint.ToBytes(info, addTensors);
        AtomicFile.Write(path, bytes);
        if (isBest) AtomicFile.Write(BestPath, bytes);
        foreach (var old in System.IO.Directory.EnumerateFiles(Directory, "step-*.safetensors").Order(StringComparer.Ordinal).SkipLast(keepLast).ToList())
        {
            try { File.Delete(old); }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw WriteFailure.For(old, e); }
        }
        return path;
    }

    /// <summary>The newest step checkpoint, if any.</summary>
    public string? Latest() =>
        System.IO.Directory.Exists(Directory) ? System.IO.Directory.EnumerateFiles(Directory, "step-*.safetensors").Order(StringComparer.Ordinal).LastOrDefault() : null;
}
