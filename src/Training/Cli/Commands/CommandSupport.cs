// What several commands share once their options are bound: loading the dataset splits a config names (with
// the readers' errors as one line and their notes printed), describing a config in one line, and
// invariant-culture formatting.
using System.Globalization;
using SimClr.Training.Config;
using SimClr.Training.Data;

namespace SimClr.Training.Cli.Commands;

internal static class CommandSupport
{
    /// <summary>The splits of dataset <paramref name="kind"/> at <paramref name="path"/> with <paramref name="c"/>'s
    /// sizes and subsets (--train-subset cuts the training and the pretraining set, --test-subset the test set); the
    /// reader's notes go to <paramref name="output"/>.</summary>
    public static DatasetSplits LoadImages(RunConfig c, TextWriter output, DatasetKind kind, string? path, int stl10Unlabeled = 0)
    {
        DatasetSplits splits;
        try
        {
            splits = DatasetCatalog.Load(new DatasetOptions(kind, path, c.ImageSize, c.ShapesCount, Math.Max(c.ShapesCount / 4, 120), c.Seed,
                MaxUnlabeled: stl10Unlabeled, FolderLabels: c.FolderLabels));
        }
        catch (DatasetException e)
        {
            throw new UserError(e.Message, ExitCode.BadInput);
        }
        foreach (var note in splits.Notes) output.WriteLine(note);
        ImageDataset Cut(ImageDataset set, int n) => n > 0 ? set.Take(n) : set;
        var train = Cut(splits.Train, c.TrainSubset);
        return new DatasetSplits(train, Cut(splits.Test, c.TestSubset))
        {
            Pretrain = ReferenceEquals(splits.Pretrain, splits.Train) ? train : Cut(splits.Pretrain, c.TrainSubset),
        };
    }

    /// <summary>The images the config's own dataset holds (for pretraining and previews; labels not needed).</summary>
    public static DatasetSplits LoadImages(RunConfig c, TextWriter output) => LoadImages(c, output, c.Dataset, c.DataPath, c.Stl10Unlabeled);

    /// <summary>The labeled train and test splits <paramref name="c"/> names, subsets applied, for evaluation.</summary>
    public static DatasetSplits LoadData(RunConfig c, TextWriter output) => RequireLabeled(LoadImages(c, output));

    public static DatasetSplits RequireLabeled(DatasetSplits s)
    {
        if (!s.IsLabeled)
            throw new UserError($"{s.Train.Name}: evaluation needs labeled train and test splits (an unlabeled folder can only be pretrained on; evaluate on labeled data)", ExitCode.BadInput);
        if (s.Train.Count == 0)
            throw new UserError($"{s.Train.Name}: the train and test splits must not be empty", ExitCode.BadInput);
        return s;
    }

    public static string Describe(RunConfig c) => Invariant(
        $"{CliEnumConverter.Name(c.Arch)} (width {c.Width}, {c.Stem} stem), batch {c.BatchSize}, {c.Epochs} epochs, τ {c.Temperature}, peak lr {c.PeakLearningRate():G4} ({c.LrScaling}), {c.Augment} augmentation");

    public static double Finite(double v) => double.IsFinite(v) ? v : 0;

    public static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
