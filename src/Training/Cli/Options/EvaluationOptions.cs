// The evaluation protocols' options. kNN and the linear probe run on frozen encoder features: pretrain offers
// both (it ends with both and runs the kNN monitor during training) with the presets' defaults; knn and
// linear-eval each offer their own with the checkpoint's stored values as defaults, so evaluating a checkpoint
// repeats the evaluation its run ended with unless told otherwise. Fine-tuning has its own settings (the
// paper's semi-supervised protocol), the labelled data for pretraining's evaluation can be named separately
// (--eval-dataset), and the evaluation commands write their results where --out says.
using System.CommandLine;
using SimClr.Training.Config;
using SimClr.Training.Evaluation;

namespace SimClr.Training.Cli.Options;

internal sealed class KnnOptions : OptionGroup
{
    public KnnOptions(DefaultsFrom from = DefaultsFrom.Presets)
    {
        Bound(new Option<int>("--knn-k") { Description = $"kNN neighbours {DefaultText.Of(c => c.KnnK, from)}" }, (c, v) => c with { KnnK = v });
        Bound(new Option<double>("--knn-temperature") { Description = $"kNN vote temperature {DefaultText.Of(c => c.KnnTemperature, from)}" }, (c, v) => c with { KnnTemperature = v });
    }
}

internal sealed class LinearEvalOptions : OptionGroup
{
    public LinearEvalOptions(DefaultsFrom from = DefaultsFrom.Presets)
    {
        Bound(new Option<int>("--linear-epochs") { Description = $"Linear evaluation epochs {DefaultText.Of(c => c.LinearEpochs, from)}" }, (c, v) => c with { LinearEpochs = v });
        Bound(new Option<double>("--linear-lr") { Description = $"Linear evaluation learning rate, Nesterov momentum 0.9, cosine decay {DefaultText.Of(c => c.LinearLr, from)}" }, (c, v) => c with { LinearLr = v });
        Bound(new Option<double>("--linear-weight-decay") { Description = $"Linear evaluation weight decay {DefaultText.Of(c => c.LinearWeightDecay, from)}" }, (c, v) => c with { LinearWeightDecay = v });
        Bound(new Option<int>("--linear-batch-size") { Description = $"Linear evaluation batch size {DefaultText.Of(c => c.LinearBatchSize, from)}" }, (c, v) => c with { LinearBatchSize = v });
    }
}

/// <summary>pretrain's labelled evaluation data when the pretraining images are not it (an unlabeled folder, or
/// transfer: pretrain on one set, monitor and evaluate on another).</summary>
internal sealed class EvalDataOptions : OptionGroup
{
    public EvalDataOptions()
    {
        Bound(Choice("--eval-dataset", "Labelled dataset for the kNN monitor and the final evaluation (default: the pretraining dataset's own splits; "
            + "needed for an unlabeled folder, else evaluation is skipped): cifar10, cifar100, stl10, fashion-mnist, folder, shapes",
            [.. CliEnumConverter.Names<Data.DatasetKind>()]),
            (c, v) => c with { EvalDataset = DataOptions.ParseDataset(v) });
        Bound(new Option<string>("--eval-data") { Description = "Location of --eval-dataset (defaults as --data does)" }, (c, v) => c with { EvalDataPath = v });
    }
}

/// <summary>Where linear-eval, knn and finetune write their results; without it linear-eval and knn only print, and finetune writes to a new ./runs folder.</summary>
internal sealed class EvalOutputOption : OptionGroup
{
    public readonly Option<string> Out;

    public EvalOutputOption(string description) =>
        Out = Unbound(new Option<string>("--out") { Description = description });
}

/// <summary>The fine-tuning protocol (paper appendix B.5); values a command line leaves out follow the paper.</summary>
internal sealed class FinetuneOptions : OptionGroup
{
    public readonly Option<double> LabelFraction = new("--label-fraction")
    { Description = "Share of each class's training labels used, drawn class-balanced from --seed (default 0.1, the paper's 10 % setting; 0.01 is its 1 %)" };
    public readonly Option<int> LabelsPerClass = new("--labels-per-class") { Description = "Use exactly K labelled images of each class instead of a fraction" };
    public readonly Option<string> LabelSubset = new("--label-subset")
    { Description = "Use the training indices listed in this file (a run's label-subset.txt) instead of drawing a subset" };
    public readonly Option<int> Epochs = new("--epochs")
    { Description = $"Fine-tuning epochs (default: the paper's 60 for 1 % of the labels and 30 for 10 %: 60 below a labelled share of {(100 * FineTuneSettings.OnePercentSettingBelow).ToString("0.0", System.Globalization.CultureInfo.InvariantCulture)} %, else 30)" };
    public readonly Option<int> BatchSize = new("--batch-size")
    { Description = "Images per step (default 256, or the number of labelled images when fewer; the paper uses 4096 with BN over the whole batch)" };
    public readonly Option<double> BaseLr = new("--base-lr")
    { Description = $"Base learning rate; the peak is base·B/256, decayed by a cosine to zero, no warmup (default {FineTuneSettings.PaperBaseLearningRate}, the paper's)" };

    public FinetuneOptions()
    {
        Unbound(LabelFraction);
        Unbound(LabelsPerClass);
        Unbound(LabelSubset);
        Unbound(Epochs);
        Unbound(BatchSize);
        Unbound(BaseLr);
    }

    /// <summary>How the labelled subset is chosen: exactly one of the three, or the 10 % default.</summary>
    public (double? Fraction, int? PerClass, string? File) SubsetRule(ParseResult r)
    {
        var given = new Option[] { LabelFraction, LabelsPerClass, LabelSubset }.Where(o => Given(r, o)).Select(o => o.Name).ToArray();
        if (given.Length > 1) throw UserError.Option(given[1], $"cannot be combined with {given[0]}: choose one way to pick the labelled images");
        if (Given(r, LabelsPerClass))
        {
            int k = r.GetValue(LabelsPerClass);
            return k >= 1 ? (null, k, null) : throw UserError.Option("--labels-per-class", $"must be at least 1, got {k}");
        }
        if (Given(r, LabelSubset)) return (null, null, CommandLineValues.Required(r, LabelSubset));
        double f = Given(r, LabelFraction) ? r.GetValue(LabelFraction) : 0.1;
        return f > 0 && f <= 1 ? (f, null, null) : throw UserError.Option("--label-fraction", $"must lie in (0, 1], got {f}");
    }

    /// <summary>The settings for a subset holding <paramref name="labelledShare"/> of the training labels.</summary>
    public FineTuneSettings Settings(ParseResult r, double labelledShare, int labelled, ulong seed)
    {
        int epochs = Given(r, Epochs) ? r.GetValue(Epochs) : FineTuneSettings.PaperEpochs(labelledShare);
        if (epochs < 1) throw UserError.Option("--epochs", $"must be at least 1, got {epochs}");
        int batch = Given(r, BatchSize) ? r.GetValue(BatchSize) : Math.Min(256, labelled);
        if (batch < 2) throw UserError.Option("--batch-size", $"must be at least 2 (BN normalizes over the batch), got {batch}");
        if (batch > labelled) throw UserError.Option("--batch-size", $"{batch} exceeds the {labelled} labelled images");
        double lr = Given(r, BaseLr) ? r.GetValue(BaseLr) : FineTuneSettings.PaperBaseLearningRate;
        if (!(lr > 0) || !double.IsFinite(lr)) throw UserError.Option("--base-lr", $"must be a finite number > 0, got {lr}");
        return new FineTuneSettings(epochs, batch, lr, seed);
    }
}
