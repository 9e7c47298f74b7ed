// Every command-line option, declared once and shared between the commands that accept it. Values that
// were not given keep RunConfig's defaults, so the defaults live in one place (RunConfig), and the help text
// states them. Enumerated choices are parsed here into RunConfig's enums.
using System.CommandLine;
using SimClr.Training.Config;
using SimClr.Training.Data;

namespace SimClr.Training.Cli;

internal sealed class CliOptions
{
    private readonly List<Func<ParseResult, RunConfig, RunConfig>> _binders = [];

    // data
    public readonly Option<string> Dataset = Choice("--dataset", "Dataset: shapes (built-in), cifar10, cifar100, stl10, fashion-mnist, folder", "shapes", "cifar10", "cifar100", "stl10", "fashion-mnist", "folder");
    public readonly Option<string> Data = new("--data") { Description = "Dataset location (folder or file); defaults per dataset (fashion-mnist: /usr/share/datasets/fashion-mnist)" };
    public readonly Option<int> TrainSubset = new("--train-subset") { Description = "Use only the first N training images (0 = all)" };
    public readonly Option<int> TestSubset = new("--test-subset") { Description = "Evaluate on only the first N test images (0 = all)" };
    public readonly Option<int> ShapesCount = new("--shapes-count") { Description = "Training images generated for the built-in shapes set (default 2000)" };
    public readonly Option<int> ImageSize = new("--image-size") { Description = "Side length of generated shapes and of resized image-folder images (default 32)" };

    // model
    public readonly Option<string> Arch = Choice("--arch", "Encoder: resnet18, resnet34, resnet50", "resnet18", "resnet34", "resnet50");
    public readonly Option<double> Width = new("--width") { Description = "ResNet width multiplier (1 = torchvision widths)" };
    public readonly Option<string> Stem = Choice("--stem", "auto (CIFAR stem for ≤ 32 px), cifar, imagenet", "auto", "cifar", "imagenet");
    public readonly Option<int> HeadHidden = new("--head-hidden") { Description = "Projection head hidden width (0 = encoder feature width)" };
    public readonly Option<int> HeadOut = new("--head-out") { Description = "Projection head output width (default 128)" };

    // optimization
    public readonly Option<int> Epochs = new("--epochs") { Description = "Pretraining epochs (default 100)" };
    public readonly Option<int> BatchSize = new("--batch-size") { Description = "Images per step; each gives two views (default 256)" };
    public readonly Option<ulong> Seed = new("--seed") { Description = "Seed of initialization, data order and augmentation (default 1)" };
    public readonly Option<double> Temperature = new("--temperature") { Description = "NT-Xent temperature (default 0.5 for ≤ 32 px, 0.1 for ≥ 96 px)" };
    public readonly Option<string> LrScaling = Choice("--lr-scaling", "Peak lr = base·B/256 (linear) or base·√B (sqrt)", "linear", "sqrt");
    public readonly Option<double> BaseLr = new("--base-lr") { Description = "Base learning rate (default 0.3 linear, 0.075 sqrt)" };
    public readonly Option<double> WarmupEpochs = new("--warmup-epochs") { Description = "Linear warmup epochs before the cosine decay (default 10; clipped to a tenth of a shorter run)" };
    public readonly Option<double> WeightDecay = new("--weight-decay") { Description = "LARS weight decay, not applied to BN and biases (default 1e-6)" };
    public readonly Option<double> Momentum = new("--momentum") { Description = "LARS momentum (default 0.9)" };
    public readonly Option<double> Trust = new("--trust-coefficient") { Description = "LARS trust coefficient η (default 0.001)" };
    public readonly Option<string> SyncBn = Choice("--sync-bn", "Batch norm statistics over the global batch of all ranks (on) or each rank's slice (off); auto (default) is on with more than one rank (mpirun/srun)", "auto", "on", "off");

    // augmentation
    public readonly Option<string> Augment = Choice("--augment", "Preset: auto (cifar for ≤ 32 px, else paper), cifar (s=0.5, no blur), paper", "auto", "cifar", "paper");
    public readonly Option<double> ColorStrength = new("--color-strength") { Description = "Colour jitter strength s (brightness/contrast/saturation 0.8s, hue 0.2s)" };
    public readonly Option<double> CropMin = new("--crop-min") { Description = "Random resized crop: smallest area fraction (0.08)" };
    public readonly Option<double> CropMax = new("--crop-max") { Description = "Random resized crop: largest area fraction (1)" };
    public readonly Option<double> AspectMin = new("--aspect-min") { Description = "Random resized crop: smallest aspect ratio (3/4)" };
    public readonly Option<double> AspectMax = new("--aspect-max") { Description = "Random resized crop: largest aspect ratio (4/3)" };
    public readonly Option<double> Flip = new("--flip") { Description = "Horizontal flip probability (0.5)" };
    public readonly Option<double> Jitter = new("--jitter") { Description = "Colour jitter probability (0.8)" };
    public readonly Option<double> Brightness = new("--brightness") { Description = "Brightness jitter (overrides 0.8s)" };
    public readonly Option<double> Contrast = new("--contrast") { Description = "Contrast jitter (overrides 0.8s)" };
    public readonly Option<double> Saturation = new("--saturation") { Description = "Saturation jitter (overrides 0.8s)" };
    public readonly Option<double> Hue = new("--hue") { Description = "Hue jitter (overrides 0.2s)" };
    public readonly Option<double> Grayscale = new("--grayscale") { Description = "Random grayscale probability (0.2)" };
    public readonly Option<double> Blur = new("--blur") { Description = "Gaussian blur probability (0.5 paper, 0 cifar)" };
    public readonly Option<double> BlurSigmaMin = new("--blur-sigma-min") { Description = "Blur sigma lower bound (0.1)" };
    public readonly Option<double> BlurSigmaMax = new("--blur-sigma-max") { Description = "Blur sigma upper bound (2.0)" };

    // evaluation
    public readonly Option<int> KnnEvery = new("--knn-every") { Description = "Run the kNN monitor every E epochs (0 = only at the end; default 10)" };
    public readonly Option<int> KnnK = new("--knn-k") { Description = "kNN neighbours (default 200)" };
    public readonly Option<double> KnnTemperature = new("--knn-temperature") { Description = "kNN vote temperature (default 0.1)" };
    public readonly Option<int> LinearEpochs = new("--linear-epochs") { Description = "Linear evaluation epochs (default 100)" };
    public readonly Option<double> LinearLr = new("--linear-lr") { Description = "Linear evaluation learning rate (default 0.1, Nesterov momentum 0.9, cosine)" };
    public readonly Option<double> LinearWeightDecay = new("--linear-weight-decay") { Description = "Linear evaluation weight decay (default 1e-6)" };
    public readonly Option<int> LinearBatchSize = new("--linear-batch-size") { Description = "Linear evaluation batch size (default 256)" };
    public readonly Option<string> Eval = Choice("--eval", "What pretraining ends with: full (linear + kNN, SimCLR and random encoder) or none", "full", "none");

    // run
    public readonly Option<string> Device = new("--device") { Description = "auto (CUDA when available, else CPU), cpu, cuda, cuda:N" };
    public readonly Option<string> Out = new("--out") { Description = "Run directory (default ./runs/<name or timestamp>)" };
    public readonly Option<string> Name = new("--name") { Description = "Run name under ./runs when --out is not given" };
    public readonly Option<string> Resume = new("--resume") { Description = "Continue exactly from this checkpoint" };
    public readonly Option<int> KeepLast = new("--keep-last") { Description = "Checkpoints kept besides the best (default 2)" };
    public readonly Option<int> LossEvery = new("--loss-every") { Description = "Read the loss back every k steps (default 10)" };
    public readonly Option<int> StopAfter = new("--stop-after") { Description = "Pause after N epochs with a checkpoint; --resume continues the same schedule (0 = run to the end)" };
    public readonly Option<string> Progress = Choice("--progress", "auto (bars on a terminal, lines otherwise), bars, plain, quiet", "auto", "bars", "plain", "quiet");

    // per-command
    public readonly Option<string> Checkpoint = new("--checkpoint") { Description = "Checkpoint to evaluate or export (a safetensors file written by pretrain)" };
    public readonly Option<string> Output = new("--output") { Description = "File to write" };
    public readonly Option<int> Count = new("--count") { Description = "Images in the preview grid (default 8)" };

    public CliOptions()
    {
        Bind(Dataset, (c, v) => c with { Dataset = ParseDataset(v) });
        Bind(Data, (c, v) => c with { DataPath = v });
        Bind(TrainSubset, (c, v) => c with { TrainSubset = v });
        Bind(TestSubset, (c, v) => c with { TestSubset = v });
        Bind(ShapesCount, (c, v) => c with { ShapesCount = v });
        Bind(ImageSize, (c, v) => c with { ImageSize = v });
        Bind(Arch, (c, v) => c with { Arch = v switch { "resnet18" => Architecture.ResNet18, "resnet34" => Architecture.ResNet34, _ => Architecture.ResNet50 } });
        Bind(Width, (c, v) => c with { Width = v });
        Bind(Stem, (c, v) => c with { Stem = v switch { "cifar" => StemChoice.Cifar, "imagenet" => StemChoice.ImageNet, _ => StemChoice.Auto } });
        Bind(HeadHidden, (c, v) => c with { HeadHidden = v });
        Bind(HeadOut, (c, v) => c with { HeadOut = v });
        Bind(Epochs, (c, v) => c with { Epochs = v });
        Bind(BatchSize, (c, v) => c with { BatchSize = v });
        Bind(Seed, (c, v) => c with { Seed = v });
        Bind(Temperature, (c, v) => c with { Temperature = v });
        Bind(LrScaling, (c, v) => c with { LrScaling = v == "sqrt" ? Config.LrScaling.Sqrt : Config.LrScaling.Linear });
        Bind(BaseLr, (c, v) => c with { BaseLr = v });
        Bind(WarmupEpochs, (c, v) => c with { WarmupEpochs = v });
        Bind(WeightDecay, (c, v) => c with { WeightDecay = v });
        Bind(Momentum, (c, v) => c with { Momentum = v });
        Bind(Trust, (c, v) => c with { TrustCoefficient = v });
        Bind(SyncBn, (c, v) => c with { SyncBn = v switch { "on" => SyncBnMode.On, "off" => SyncBnMode.Off, _ => SyncBnMode.Auto } });
        Bind(Augment, (c, v) => c with { Augment = v switch { "cifar" => AugmentPreset.Cifar, "paper" => AugmentPreset.Paper, _ => AugmentPreset.Auto } });
        BindAug(ColorStrength, (o, v) => o with { ColorStrength = v });
        BindAug(CropMin, (o, v) => o with { CropAreaMin = v });
        BindAug(CropMax, (o, v) => o with { CropAreaMax = v });
        BindAug(AspectMin, (o, v) => o with { AspectMin = v });
        BindAug(AspectMax, (o, v) => o with { AspectMax = v });
        BindAug(Flip, (o, v) => o with { Flip = v });
        BindAug(Jitter, (o, v) => o with { Jitter = v });
        BindAug(Brightness, (o, v) => o with { Brightness = v });
        BindAug(Contrast, (o, v) => o with { Contrast = v });
        BindAug(Saturation, (o, v) => o with { Saturation = v });
        BindAug(Hue, (o, v) => o with { Hue = v });
        BindAug(Grayscale, (o, v) => o with { Grayscale = v });
        BindAug(Blur, (o, v) => o with { Blur = v });
        BindAug(BlurSigmaMin, (o, v) => o with { BlurSigmaMin = v });
        BindAug(BlurSigmaMax, (o, v) => o with { BlurSigmaMax = v });
        Bind(KnnEvery, (c, v) => c with { KnnEvery = v });
        Bind(KnnK, (c, v) => c with { KnnK = v });
        Bind(KnnTemperature, (c, v) => c with { KnnTemperature = v });
        Bind(LinearEpochs, (c, v) => c with { LinearEpochs = v });
        Bind(LinearLr, (c, v) => c with { LinearLr = v });
        Bind(LinearWeightDecay, (c, v) => c with { LinearWeightDecay = v });
        Bind(LinearBatchSize, (c, v) => c with { LinearBatchSize = v });
        Bind(Eval, (c, v) => c with { Eval = v == "none" ? EvalMode.None : EvalMode.Full });
        Bind(Device, (c, v) => c with { Device = v });
        Bind(Out, (c, v) => c with { Out = v });
        Bind(Name, (c, v) => c with { Name = v });
        Bind(Resume, (c, v) => c with { Resume = v });
        Bind(KeepLast, (c, v) => c with { KeepLast = v });
        Bind(LossEvery, (c, v) => c with { LossEvery = v });
        Bind(StopAfter, (c, v) => c with { StopAfter = v });
        Bind(Progress, (c, v) => c with { Progress = v switch { "bars" => ProgressMode.Bars, "plain" => ProgressMode.Plain, "quiet" => ProgressMode.Quiet, _ => ProgressMode.Auto } });
    }

    public IEnumerable<Option> DataOptions => [Dataset, Data, TrainSubset, TestSubset, ShapesCount, ImageSize];
    public IEnumerable<Option> ModelOptions => [Arch, Width, Stem, HeadHidden, HeadOut];
    public IEnumerable<Option> TrainOptions => [Epochs, BatchSize, Seed, Temperature, LrScaling, BaseLr, WarmupEpochs, WeightDecay, Momentum, Trust];
    public IEnumerable<Option> AugmentOptions => [Augment, ColorStrength, CropMin, CropMax, AspectMin, AspectMax, Flip, Jitter, Brightness, Contrast, Saturation, Hue, Grayscale, Blur, BlurSigmaMin, BlurSigmaMax];
    public IEnumerable<Option> EvalOptions => [KnnK, KnnTemperature, LinearEpochs, LinearLr, LinearWeightDecay, LinearBatchSize];
    public IEnumerable<Option> RunOptions => [Device, Out, Name, Progress];

    /// <summary>The config the given command line asks for: RunConfig's defaults (the quick CPU preset for the
    /// built-in shapes set), overridden by each option given.</summary>
    public RunConfig Bind(ParseResult result)
    {
        bool shapes = result.GetResult(Dataset) is not { Implicit: false } || result.GetValue(Dataset) == "shapes";
        var config = shapes ? RunConfig.ShapesDefaults : new RunConfig();
        foreach (var bind in _binders) config = bind(result, config);
        return config;
    }

    public static DatasetKind ParseDataset(string v) => v switch
    {
        "shapes" => DatasetKind.Shapes,
        "cifar10" => DatasetKind.Cifar10,
        "cifar100" => DatasetKind.Cifar100,
        "stl10" => DatasetKind.Stl10,
        "fashion-mnist" => DatasetKind.FashionMnist,
        "folder" => DatasetKind.Folder,
        _ => throw UserError.Option("--dataset", $"unknown dataset '{v}'"),
    };

    private void Bind<T>(Option<T> option, Func<RunConfig, T, RunConfig> apply) =>
        _binders.Add((r, c) => r.GetResult(option) is { Implicit: false } ? apply(c, r.GetValue(option)!) : c);

    private void BindAug(Option<double> option, Func<AugmentOverrides, double, AugmentOverrides> apply) =>
        Bind(option, (c, v) => c with { AugmentOverrides = apply(c.AugmentOverrides, v) });

    private static Option<string> Choice(string name, string description, params string[] choices)
    {
        var o = new Option<string>(name) { Description = description };
        o.AcceptOnlyFromAmong(choices);
        return o;
    }
}
