// What several commands share once their options are bound: loading the dataset splits a config names (with
// the readers' errors as one line), describing a config in one line, and invariant-culture formatting.
using System.Globalization;
using SimClr.Training.Config;
using SimClr.Training.Data;

namespace SimClr.Training.Cli.Commands;

internal static class CommandSupport
{
    /// <summary>The labelled train and test splits <paramref name="c"/> names, subsets applied.</summary>
    public static DatasetSplits LoadData(RunConfig c)
    {
        DatasetSplits splits;
        try
        {
            splits = DatasetCatalog.Load(new DatasetOptions(c.Dataset, c.DataPath, c.ImageSize, c.ShapesCount, Math.Max(c.ShapesCount / 4, 120), c.Seed));
        }
        catch (DatasetException e)
        {
            throw new UserError(e.Message, ExitCode.BadInput);
        }
        var train = c.TrainSubset > 0 ? splits.Train.Take(c.TrainSubset) : splits.Train;
        var test = c.TestSubset > 0 ? splits.Test.Take(c.TestSubset) : splits.Test;
        if (!train.IsLabeled || !test.IsLabeled)
            throw new UserError($"{train.Name}: evaluation needs labeled train and test splits", ExitCode.BadInput);
        if (train.Count == 0 || test.Count == 0)
            throw new UserError($"{train.Name}: the train and test splits must not be empty", ExitCode.BadInput);
        return new DatasetSplits(train, test, splits.Unlabeled);
    }

    public static string Describe(RunConfig c) => Invariant(
        $"{c.Arch.ToString().ToLowerInvariant()} (width {c.Width}, {c.Stem} stem), batch {c.BatchSize}, {c.Epochs} epochs, τ {c.Temperature}, peak lr {c.PeakLearningRate():G4} ({c.LrScaling}), {c.Augment} augmentation");

    public static double Finite(double v) => double.IsFinite(v) ? v : 0;

    public static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
