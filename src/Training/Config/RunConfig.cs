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

    /// <summary>The defaults of the built-in shapes dataset (what runs with no arguments): a ResNet-18 with the CIFAR
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

    /// <summary>Rejects impossible values, naming the option.</summary>
    public void Validate()
    {
        static void Require(bool ok, string option, string problem) { if (!ok) throw UserError.Option(option, problem); }
        Require(Epochs >= 1, "--epochs", $"must be at least 1, got {Epochs}");
        Require(BatchSize >= 2, "--batch-size", $"must be at least 2 (NT-Xent needs negatives), got {BatchSize}");
        Require(TrainSubset >= 0, "--train-subset", $"must be ≥ 0, got {TrainSubset}");
        Require(TestSubset >= 0, "--test-subset", $"must be ≥ 0, got {TestSubset}");
        Require(ShapesCount >= 10, "--shapes-count", $"must be at least 10, got {ShapesCount}");
        Require(ImageSize >= 8 && ImageSize <= 512, "--image-size", $"must lie in [8, 512], got {ImageSize}");
        Require(Width > 0 && Width <= 8 && double.IsFinite(Width), "--width", $"must lie in (0, 8], got {Width}");
        Require(Math.Abs(64 * Width - Math.Round(64 * Width)) < 1e-9, "--width", $"must make 64·width a whole number of channels, got {Width}");
        Require(HeadHidden >= 0, "--head-hidden", $"must be ≥ 0, got {HeadHidden}");
        Require(HeadOut >= 1, "--head-out", $"must be at least 1, got {HeadOut}");
        Require(Temperature is null || (Temperature > 0 && double.IsFinite(Temperature.Value)), "--temperature", $"must be > 0, got {Temperature}");
        Require(BaseLr is null || (BaseLr > 0 && double.IsFinite(BaseLr.Value)), "--base-lr", $"must be > 0, got {BaseLr}");
        Require(WarmupEpochs >= 0 && double.IsFinite(WarmupEpochs), "--warmup-epochs", $"must be ≥ 0, got {WarmupEpochs}");
        Require(WeightDecay >= 0 && double.IsFinite(WeightDecay), "--weight-decay", $"must be ≥ 0, got {WeightDecay}");
        Require(Momentum >= 0 && Momentum < 1, "--momentum", $"must lie in [0, 1), got {Momentum}");
        Require(TrustCoefficient > 0 && double.IsFinite(TrustCoefficient), "--trust-coefficient", $"must be > 0, got {TrustCoefficient}");
        Require(KnnEvery >= 0, "--knn-every", $"must be ≥ 0, got {KnnEvery}");
        Require(KnnK >= 1, "--knn-k", $"must be at least 1, got {KnnK}");
        Require(KnnTemperature > 0 && double.IsFinite(KnnTemperature), "--knn-temperature", $"must be > 0, got {KnnTemperature}");
        Require(LinearEpochs >= 1, "--linear-epochs", $"must be at least 1, got {LinearEpochs}");
        Require(LinearLr > 0 && double.IsFinite(LinearLr), "--linear-lr", $"must be > 0, got {LinearLr}");
        Require(LinearWeightDecay >= 0 && double.IsFinite(LinearWeightDecay), "--linear-weight-decay", $"must be ≥ 0, got {LinearWeightDecay}");
        Require(LinearBatchSize >= 1, "--linear-batch-size", $"must be at least 1, got {LinearBatchSize}");
        Require(KeepLast >= 1, "--keep-last", $"must be at least 1, got {KeepLast}");
        Require(StopAfter >= 0, "--stop-after", $"must be ≥ 0, got {StopAfter}");
        Require(LossEvery >= 1, "--loss-every", $"must be at least 1, got {LossEvery}");
        Require(Dataset != DatasetKind.Folder || DataPath is not null, "--data", "is required with --dataset folder");
        Require(Stl10Unlabeled >= 0, "--stl10-unlabeled", $"must be ≥ 0, got {Stl10Unlabeled}");
        Require(Stl10Unlabeled == 0 || Dataset == DatasetKind.Stl10, "--stl10-unlabeled", "needs --dataset stl10");
        Require(EvalDataset != DatasetKind.Folder || EvalDataPath is not null, "--eval-data", "is required with --eval-dataset folder");
        Require(EvalDataPath is null || EvalDataset is not null, "--eval-data", "needs --eval-dataset");
        DeviceRequest.Parse(Device);
        ValidateOverrides();
    }

    private void ValidateOverrides()
    {
        var o = AugmentOverrides;
        static void Probability(double? p, string option)
        {
            if (p is { } v && !(v >= 0 && v <= 1)) throw UserError.Option(option, $"is a probability and must lie in [0, 1], got {v}");
        }
        Probability(o.Flip, "--flip");
        Probability(o.Jitter, "--jitter");
        Probability(o.Grayscale, "--grayscale");
        Probability(o.Blur, "--blur");
        if (o.ColorStrength is { } s && !(s >= 0 && s <= 4)) throw UserError.Option("--color-strength", $"must lie in [0, 4], got {s}");
        if (o.CropAreaMin is { } cmin && !(cmin > 0 && cmin <= 1)) throw UserError.Option("--crop-min", $"must lie in (0, 1], got {cmin}");
        if (o.CropAreaMax is { } cmax && !(cmax > 0 && cmax <= 1)) throw UserError.Option("--crop-max", $"must lie in (0, 1], got {cmax}");
        if (o.Hue is { } h && !(h >= 0 && h <= 0.5)) throw UserError.Option("--hue", $"must lie in [0, 0.5], got {h}");
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
        catch (JsonException e)
        {
            throw UserError.File(source, $"the stored config is not valid JSON ({e.Message})");
        }
    }
}

/// <summary>What evaluation a pretraining run ends with.</summary>
public enum EvalMode { Full, None }

/// <summary>How progress is shown: live bars on a terminal, plain lines when redirected.</summary>
public enum ProgressMode { Auto, Bars, Plain, Quiet }
