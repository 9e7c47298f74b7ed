// Everything a run is configured by, as one serializable record. The CLI fills it, Validate() rejects
// impossible values naming the option, and Resolve() turns "auto" choices (temperature, augmentation
// preset, stem, learning rate) into concrete values once the image size is known. The resolved record is
// what config.json and every checkpoint store, so a checkpoint rebuilds its own model.
using System.Text.Json;
using System.Text.Json.Serialization;
using SimClr.Kernels;
using SimClr.Training.Cli;
using SimClr.Training.Data;

namespace SimClr.Training.Config;

public enum Architecture { ResNet18, ResNet34, ResNet50 }

/// <summary>CIFAR stem: 3×3 stride-1 conv, no max-pool (the paper's choice for 32 px); ImageNet stem: 7×7/2 + max-pool.</summary>
public enum StemChoice { Auto, Cifar, ImageNet }

/// <summary>How the peak learning rate grows with the batch: base·B/256 or base·√B (paper appendix B.1).</summary>
public enum LrScaling { Linear, Sqrt }

public enum AugmentPreset { Auto, Cifar, Paper }

/// <summary>The augmentation knobs; a null field keeps the preset's value.</summary>
public sealed record AugmentOverrides
{
    public double? ColorStrength { get; init; }
    public double? CropAreaMin { get; init; }
    public double? CropAreaMax { get; init; }
    public double? AspectMin { get; init; }
    public double? AspectMax { get; init; }
    public double? Flip { get; init; }
    public double? Jitter { get; init; }
    public double? Brightness { get; init; }
    public double? Contrast { get; init; }
    public double? Saturation { get; init; }
    public double? Hue { get; init; }
    public double? Grayscale { get; init; }
    public double? Blur { get; init; }
    public double? BlurSigmaMin { get; init; }
    public double? BlurSigmaMax { get; init; }
}

public sealed record RunConfig
{
    public const int FormatVersion = 1;

    // data
    public DatasetKind Dataset { get; init; } = DatasetKind.Shapes;
    public string? DataPath { get; init; }
    /// <summary>Use only the first N training images (0 = all); keeps CPU runs and tests short.</summary>
    public int TrainSubset { get; init; }
    /// <summary>Use only the first N test images for evaluation (0 = all).</summary>
    public int TestSubset { get; init; }
    /// <summary>Images in the built-in shapes set (train; the test split is a fifth of it).</summary>
    public int ShapesCount { get; init; } = 2000;
    /// <summary>Side length image folders are resized to.</summary>
    public int ImageSize { get; init; } = 32;
    /// <summary>Whether an image folder's sub-folders are its classes (auto: when no image sits at its top level).</summary>
    public FolderLabels FolderLabels { get; init; } = FolderLabels.Auto;
    /// <summary>STL-10 unlabeled images added to pretraining (0 = none; capped at what fits in memory).</summary>
    public int Stl10Unlabeled { get; init; }
    /// <summary>Labelled data for the kNN monitor and the final evaluation when it is not the pretraining set
    /// (null = the pretraining dataset's own train/test splits).</summary>
    public DatasetKind? EvalDataset { get; init; }
    public string? EvalDataPath { get; init; }

    // model
    public Architecture Arch { get; init; } = Architecture.ResNet18;
    public double Width { get; init; } = 1.0;
    public StemChoice Stem { get; init; } = StemChoice.Auto;
    /// <summary>Hidden width of the projection head (0 = the encoder's feature width, as in the paper).</summary>
    public int HeadHidden { get; init; }
    public int HeadOut { get; init; } = 128;
    /// <summary>A torchvision ResNet state_dict (safetensors) the encoder starts from instead of a random init.</summary>
    public string? InitFrom { get; init; }

    // optimization
    public int Epochs { get; init; } = 100;
    public int BatchSize { get; init; } = 256;
    public ulong Seed { get; init; } = 1;
    public double? Temperature { get; init; }
    public LrScaling LrScaling { get; init; } = LrScaling.Linear;
    /// <summary>null = the paper's base: 0.3 for linear scaling, 0.075 for square-root scaling.</summary>
    public double? BaseLr { get; init; }
    public double WarmupEpochs { get; init; } = 10;
    public double WeightDecay { get; init; } = 1e-6;
    public double Momentum { get; init; } = 0.9;
    public double TrustCoefficient { get; init; } = 1e-3;
    /// <summary>Batch norm statistics over the global batch of every rank (on; what auto means with more than one rank)
    /// or each rank's slice (off; what auto means for one process).</summary>
    public SyncBnMode SyncBn { get; init; } = SyncBnMode.Auto;

    // augmentation
    public AugmentPreset Augment { get; init; } = AugmentPreset.Auto;
    public AugmentOverrides AugmentOverrides { get; init; } = new();

    // evaluation
    /// <summary>Run the kNN monitor every E epochs (0 = only after the last epoch).</summary>
    public int KnnEvery { get; init; } = 10;
    public int KnnK { get; init; } = 200;
    public double KnnTemperature { get; init; } = 0.1;
    public int LinearEpochs { get; init; } = 100;
    public double LinearLr { get; init; } = 0.1;
    public double LinearWeightDecay { get; init; } = 1e-6;
    public int LinearBatchSize { get; init; } = 256;
    public EvalMode Eval { get; init; } = EvalMode.Full;

    // run
    public string Device { get; init; } = "auto";
    public string? Out { get; init; }
    public string? Name { get; init; }
    public string? Resume { get; init; }
    public int KeepLast { get; init; } = 2;
    /// <summary>Read the loss back every k steps (the GPU queue is never drained per step).</summary>
    public int LossEvery { get; init; } = 10;
    public ProgressMode Progress { get; init; } = ProgressMode.Auto;
    /// <summary>Pause after this many epochs (0 = run to the end): a checkpoint is written and --resume continues
    /// the same schedule, so a long run can be split into sessions.</summary>
    public int StopAfter { get; init; }
    /// <summary>The ranks (processes, one per device) the run trains on; set from the launcher (mpirun, srun), not an option.</summary>
    public int Ranks { get; init; } = 1;
    /// <summary>How much this session says about itself (not part of the run: never stored).</summary>
    [JsonIgnore] public Verbosity Verbosity { get; init; } = Verbosity.Normal;

    /// <summary>Preset shapes-cpu, the defaults of the built-in shapes dataset (what runs with no arguments): a ResNet-18 with the CIFAR
    /// stem at width 1/8, batch 64, a one-epoch warmup and a high LARS rate (√B scaling, peak 4.8), so pretraining
    /// plus evaluation fits in a few CPU minutes. Two choices differ from the 32 px paper defaults because they were
    /// measured to matter on this data at this budget: τ = 0.2 instead of 0.5, and crops of at least 50% of the
    /// image instead of 8% (a small crop of a 32 px shapes image often misses the shape, so the pair can only be
    /// matched by colour and background). Colour strength stays the CIFAR 0.5. Every value is still an option.</summary>
    public static RunConfig ShapesDefaults => new()
    {
        Dataset = DatasetKind.Shapes,
        ShapesCount = 2000,
        Width = 0.125,
        BatchSize = 64,
        Epochs = 12,
        WarmupEpochs = 1,
        LrScaling = LrScaling.Sqrt,
        BaseLr = 0.6,
        Temperature = 0.2,
        AugmentOverrides = new AugmentOverrides { CropAreaMin = 0.5 },
        KnnEvery = 4,
        LinearEpochs = 30,
    };

    /// <summary>Preset fashion-mnist-cpu: the shapes recipe (width 1/8, batch 64, √B scaling with base 0.6, a one-epoch
    /// warmup) on the first 2,000 Fashion-MNIST training images for 5 epochs, evaluated on the first 1,000 test
    /// images with a 30-epoch probe: a few CPU minutes, and the end-to-end test asserts it beats the random-init
    /// encoder. The crops and τ stay the 28 px (CIFAR) defaults. The README gives its measured margin.</summary>
    public static RunConfig FashionMnistCpu => new()
    {
        Dataset = DatasetKind.FashionMnist,
        TrainSubset = 2000,
        TestSubset = 1000,
        Width = 0.125,
        BatchSize = 64,
        Epochs = 5,
        WarmupEpochs = 1,
        LrScaling = LrScaling.Sqrt,
        BaseLr = 0.6,
        KnnEvery = 0,
        LinearEpochs = 30,
    };

    /// <summary>The starting config of a named preset (every option given on the command line still wins).</summary>
    public static RunConfig FromPreset(Preset preset) => preset switch
    {
        Preset.ShapesCpu => ShapesDefaults,
        Preset.FashionMnistCpu => FashionMnistCpu,
        _ => throw new ArgumentOutOfRangeException(nameof(preset)),
    };

    /// <summary>Largest projection-head width accepted (a wider head is a typo, and its matrices would not fit).</summary>
    public const int MaxHeadWidth = 1 << 16;
    /// <summary>Largest batch accepted before the image size is known; RequireBatchFits checks the real need.</summary>
    public const int MaxBatchSize = 1 << 20;

    /// <summary>Rejects impossible values, naming the option: every number must be finite and inside the range
    /// that means something (NaN, ±Infinity and values that would overflow what they size are refused here, not
    /// later as a NaN loss or an overflow), paths must be usable, --name must stay inside runs/.</summary>
    public void Validate()
    {
        static void Require(bool ok, string option, string problem) { if (!ok) throw UserError.Option(option, problem); }
        Require(Epochs >= 1, "--epochs", $"must be at least 1, got {Epochs}");
        Require(BatchSize >= 2 && BatchSize <= MaxBatchSize, "--batch-size", $"must lie in [2, {MaxBatchSize}] (NT-Xent needs negatives), got {BatchSize}");
        Require(TrainSubset >= 0, "--train-subset", $"must be ≥ 0, got {TrainSubset}");
        Require(TestSubset >= 0, "--test-subset", $"must be ≥ 0, got {TestSubset}");
        Require(ImageSize >= 8 && ImageSize <= 512, "--image-size", $"must lie in [8, 512], got {ImageSize}");
        Require(ShapesCount >= 10, "--shapes-count", $"must be at least 10, got {ShapesCount}");
        long maxShapes = Array.MaxLength / (3L * ImageSize * ImageSize);
        Require(ShapesCount <= maxShapes, "--shapes-count",
            $"{ShapesCount} images of {ImageSize}x{ImageSize}x3 would need {(long)ShapesCount * 3 * ImageSize * ImageSize} bytes, more than one image array holds; at most {maxShapes}");
        In(Width, 0, 8, "--width", openLow: true);
        Require(Math.Abs(64 * Width - Math.Round(64 * Width)) < 1e-9, "--width", $"must make 64·width a whole number of channels, got {Width}");
        Require(HeadHidden >= 0 && HeadHidden <= MaxHeadWidth, "--head-hidden", $"must lie in [0, {MaxHeadWidth}], got {HeadHidden}");
        Require(HeadOut >= 1 && HeadOut <= MaxHeadWidth, "--head-out", $"must lie in [1, {MaxHeadWidth}], got {HeadOut}");
        if (Temperature is { } t) In(t, 1e-4, 100, "--temperature");
        if (BaseLr is { } lr) In(lr, 0, 1e4, "--base-lr", openLow: true);
        In(WarmupEpochs, 0, 1e6, "--warmup-epochs");
        In(WeightDecay, 0, 10, "--weight-decay");
        In(Momentum, 0, 1, "--momentum", openHigh: true);
        In(TrustCoefficient, 0, 100, "--trust-coefficient", openLow: true);
        Require(KnnEvery >= 0, "--knn-every", $"must be ≥ 0, got {KnnEvery}");
        Require(KnnK >= 1 && KnnK <= MaxBatchSize, "--knn-k", $"must lie in [1, {MaxBatchSize}], got {KnnK}");
        In(KnnTemperature, 1e-4, 100, "--knn-temperature");
        Require(LinearEpochs >= 1, "--linear-epochs", $"must be at least 1, got {LinearEpochs}");
        In(LinearLr, 0, 1e4, "--linear-lr", openLow: true);
        In(LinearWeightDecay, 0, 10, "--linear-weight-decay");
        Require(LinearBatchSize >= 1 && LinearBatchSize <= MaxBatchSize, "--linear-batch-size", $"must lie in [1, {MaxBatchSize}], got {LinearBatchSize}");
        Require(KeepLast >= 1, "--keep-last", $"must be at least 1, got {KeepLast}");
        Require(StopAfter >= 0, "--stop-after", $"must be ≥ 0, got {StopAfter}");
        Require(LossEvery >= 1, "--loss-every", $"must be at least 1, got {LossEvery}");
        Require(Dataset != DatasetKind.Folder || DataPath is not null, "--data", "is required with --dataset folder");
        Require(Stl10Unlabeled >= 0, "--stl10-unlabeled", $"must be ≥ 0, got {Stl10Unlabeled}");
        Require(Stl10Unlabeled == 0 || Dataset == DatasetKind.Stl10, "--stl10-unlabeled", "needs --dataset stl10");
        Require(EvalDataset != DatasetKind.Folder || EvalDataPath is not null, "--eval-data", "is required with --eval-dataset folder");
        Require(EvalDataPath is null || EvalDataset is not null, "--eval-data", "needs --eval-dataset");
        RequirePath(DataPath, "--data");
        RequirePath(EvalDataPath, "--eval-data");
        RequirePath(Out, "--out");
        RequirePath(Resume, "--resume");
        Require(Name is null || IsPlainName(Name), "--name", $"must be a plain folder name inside runs/ (no '/', no '..'), got '{Name}'; use --out for a folder elsewhere");
        Require(Device is not null, "--device", "is missing");
        DeviceRequest.Parse(Device!);
        ValidateOverrides();
    }

    /// <summary>Demands that every "auto" choice has been resolved (what a checkpoint's stored config must be).</summary>
    public void RequireResolved()
    {
        string? open = Temperature is null ? "temperature" : BaseLr is null ? "base_lr" : Stem == StemChoice.Auto ? "stem" : Augment == AugmentPreset.Auto ? "augment" : null;
        if (open is not null) throw new UserError($"'{open}' was never resolved from 'auto'", ExitCode.BadInput);
    }

    /// <summary>Demands that one step's two view batches of <paramref name="height"/>×<paramref name="width"/>
    /// fit one buffer (the model's own buffers are checked when it is built).</summary>
    public void RequireBatchFits(int height, int width)
    {
        long elements = 2L * BatchSize * 3 * height * width;
        if (elements > Array.MaxLength)
            throw UserError.Option("--batch-size", $"{BatchSize} pairs of {height}x{width} views need {elements} floats, more than one buffer holds ({Array.MaxLength}); lower --batch-size");
    }

    /// <summary>A finite <paramref name="value"/> in the range [lo, hi] (or open at either end), else an error naming the option.</summary>
    private static void In(double value, double lo, double hi, string option, bool openLow = false, bool openHigh = false)
    {
        bool ok = double.IsFinite(value) && (openLow ? value > lo : value >= lo) && (openHigh ? value < hi : value <= hi);
        if (!ok) throw UserError.Option(option, $"must be a finite number in {(openLow ? "(" : "[")}{lo}, {hi}{(openHigh ? ")" : "]")}, got {value}");
    }

    internal static void RequirePath(string? path, string option)
    {
        if (path is null) return;
        if (string.IsNullOrWhiteSpace(path)) throw UserError.Option(option, "must not be empty");
        if (path.Contains('\0')) throw UserError.Option(option, "must not contain a NUL character");
    }

    private static bool IsPlainName(string name) =>
        !string.IsNullOrWhiteSpace(name) && name is not ("." or "..") && name.IndexOfAny(['/', '\\', '\0']) < 0;

    private void ValidateOverrides()
    {
        var o = AugmentOverrides ?? throw UserError.Option("--augment", "the augmentation overrides are missing");
        static void Probability(double? p, string option)
        {
            if (p is { } v && !(v >= 0 && v <= 1)) throw UserError.Option(option, $"is a probability and must lie in [0, 1], got {v}");
        }
        Probability(o.Flip, "--flip");
        Probability(o.Jitter, "--jitter");
        Probability(o.Grayscale, "--grayscale");
        Probability(o.Blur, "--blur");
        if (o.ColorStrength is { } s) In(s, 0, 4, "--color-strength");
        if (o.CropAreaMin is { } cmin) In(cmin, 0, 1, "--crop-min", openLow: true);
        if (o.CropAreaMax is { } cmax) In(cmax, 0, 1, "--crop-max", openLow: true);
        if (o.AspectMin is { } amin) In(amin, 0.01, 100, "--aspect-min");
        if (o.AspectMax is { } amax) In(amax, 0.01, 100, "--aspect-max");
        if (o.Brightness is { } b) In(b, 0, 10, "--brightness");
        if (o.Contrast is { } c) In(c, 0, 10, "--contrast");
        if (o.Saturation is { } sat) In(sat, 0, 10, "--saturation");
        if (o.Hue is { } h) In(h, 0, 0.5, "--hue");
        if (o.BlurSigmaMin is { } smin) In(smin, 0, 1000, "--blur-sigma-min", openLow: true);
        if (o.BlurSigmaMax is { } smax) In(smax, 0, 1000, "--blur-sigma-max", openLow: true);
    }

    /// <summary>The input side for which the CIFAR choices apply (32 px or less).</summary>
    public static bool IsSmallImage(int imageSize) => imageSize <= 32;

    /// <summary>Fills the "auto" choices for images of <paramref name="imageSize"/> px.</summary>
    public RunConfig Resolve(int imageSize)
    {
        bool small = IsSmallImage(imageSize);
        return this with
        {
            ImageSize = imageSize,
            Temperature = Temperature ?? (small ? 0.5 : imageSize >= 96 ? 0.1 : 0.2),
            BaseLr = BaseLr ?? (LrScaling == LrScaling.Linear ? 0.3 : 0.075),
            Stem = Stem != StemChoice.Auto ? Stem : small ? StemChoice.Cifar : StemChoice.ImageNet,
            Augment = Augment != AugmentPreset.Auto ? Augment : small ? AugmentPreset.Cifar : AugmentPreset.Paper,
        };
    }

    /// <summary>The augmentation the resolved config asks for (preset, then each override).</summary>
    public AugmentSpec AugmentSpec()
    {
        if (Augment == AugmentPreset.Auto) throw new InvalidOperationException("resolve the config before building the augmentation");
        var o = AugmentOverrides;
        var spec = Augment == AugmentPreset.Cifar
            ? Kernels.AugmentSpec.Cifar(ImageSize)
            : Kernels.AugmentSpec.Paper(ImageSize);
        if (o.ColorStrength is { } s)
            spec = spec with { Brightness = (float)(0.8 * s), Contrast = (float)(0.8 * s), Saturation = (float)(0.8 * s), Hue = (float)(0.2 * s) };
        spec = spec with
        {
            CropAreaMin = (float)(o.CropAreaMin ?? spec.CropAreaMin),
            CropAreaMax = (float)(o.CropAreaMax ?? spec.CropAreaMax),
            AspectMin = (float)(o.AspectMin ?? spec.AspectMin),
            AspectMax = (float)(o.AspectMax ?? spec.AspectMax),
            FlipProbability = (float)(o.Flip ?? spec.FlipProbability),
            JitterProbability = (float)(o.Jitter ?? spec.JitterProbability),
            Brightness = (float)(o.Brightness ?? spec.Brightness),
            Contrast = (float)(o.Contrast ?? spec.Contrast),
            Saturation = (float)(o.Saturation ?? spec.Saturation),
            Hue = (float)(o.Hue ?? spec.Hue),
            GrayscaleProbability = (float)(o.Grayscale ?? spec.GrayscaleProbability),
            BlurProbability = (float)(o.Blur ?? spec.BlurProbability),
            BlurSigmaMin = (float)(o.BlurSigmaMin ?? spec.BlurSigmaMin),
            BlurSigmaMax = (float)(o.BlurSigmaMax ?? spec.BlurSigmaMax),
        };
        try { spec.Validate(); }
        catch (ArgumentException e) { throw new UserError($"augmentation options: {e.Message}", ExitCode.BadOption); }
        return spec;
    }

    /// <summary>Peak learning rate after batch scaling.</summary>
    public double PeakLearningRate()
    {
        double baseLr = BaseLr ?? throw new InvalidOperationException("resolve the config before asking for the learning rate");
        return LrScaling == LrScaling.Linear ? baseLr * BatchSize / 256.0 : baseLr * Math.Sqrt(BatchSize);
    }

    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        Converters = { new CliEnumConverter() },
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static RunConfig FromJson(string json, string source)
    {
        try
        {
            return JsonSerializer.Deserialize<RunConfig>(json, Json) ?? throw UserError.File(source, "the stored config is empty");
        }
        catch (Exception e) when (e is JsonException or NotSupportedException or ArgumentException or InvalidOperationException)
        {
            throw UserError.File(source, $"the stored config is not a valid config ({e.Message})");
        }
    }
}

/// <summary>--sync-bn. On with one process runs the synchronized code path over a group of one: the arithmetic of a
/// multi-rank job, for comparing runs across world sizes.</summary>
public enum SyncBnMode { Auto, On, Off }
/// <summary>The named starting configs of `--preset`: shapes-cpu (also what runs with no arguments) and fashion-mnist-cpu.</summary>
public enum Preset { ShapesCpu, FashionMnistCpu }

/// <summary>What evaluation a pretraining run ends with.</summary>
public enum EvalMode { Full, None }

/// <summary>How progress is shown: live bars on a terminal, plain lines when redirected.</summary>
public enum ProgressMode { Auto, Bars, Plain, Quiet }

/// <summary>Normal: one short line per fact; Verbose: also the details (where each CUDA library was looked for).</summary>
public enum Verbosity { Normal, Verbose }
