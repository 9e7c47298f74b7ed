// Which images a command reads: the dataset, its location, subsets, and the generated/resized image size.
// The built-in shapes set (also what runs when --dataset is not given) starts from RunConfig.ShapesDefaults,
// a quick CPU preset; any other dataset starts from the paper defaults. Evaluation commands take the image size
// from the checkpoint (their images are resized to the encoder's input) and default to the data the checkpoint's
// run evaluated on; they offer --image-size only for --init-from weights, which bring no input size, and never
// the pretraining-only --stl10-unlabeled.
using System.CommandLine;
using SimClr.Training.Config;
using SimClr.Training.Data;

namespace SimClr.Training.Cli.Options;

/// <summary>What the images are for: pretraining (sizes and extra unlabeled images are options) or evaluating a checkpoint.</summary>
internal enum DataRole { Pretraining, Evaluation }

internal sealed class DataOptions : OptionGroup
{
    public readonly Option<string> Dataset;
    public readonly Option<int> ImageSize;

    public DataOptions(DataRole role = DataRole.Pretraining)
    {
        var from = role == DataRole.Evaluation ? DefaultsFrom.Checkpoint : DefaultsFrom.Presets;
        string datasetDefault = role == DataRole.Evaluation ? "(default: the data the checkpoint's run evaluated on)" : DefaultText.Of(c => c.Dataset);
        Dataset = Bound(Choice("--dataset", $"Dataset: shapes (built-in), cifar10, cifar100, stl10, fashion-mnist, folder {datasetDefault}", [.. CliEnumConverter.Names<DatasetKind>()]),
            (c, v) => c with { Dataset = ParseDataset(v) });
        Bound(new Option<string>("--data") { Description = "Dataset location (folder or file); defaults per dataset (fashion-mnist: /usr/share/datasets/fashion-mnist)" },
            (c, v) => c with { DataPath = v });
        Bound(new Option<int>("--train-subset") { Description = $"Use only the first N training images, 0 = all {DefaultText.Of(c => c.TrainSubset, from)}" }, (c, v) => c with { TrainSubset = v });
        Bound(new Option<int>("--test-subset") { Description = $"Evaluate on only the first N test images, 0 = all {DefaultText.Of(c => c.TestSubset, from)}" }, (c, v) => c with { TestSubset = v });
        Bound(new Option<int>("--shapes-count") { Description = $"Training images generated for the built-in shapes set; the test split is a quarter of it, at least 120 {DefaultText.Of(c => c.ShapesCount, from)}" }, (c, v) => c with { ShapesCount = v });
        Bound(Choice("--folder-labels", $"--dataset folder: auto (train/ + test/, else one class per sub-folder unless images sit at the top level, which makes the folder unlabeled), subfolders, none {DefaultText.Of(c => c.FolderLabels, from)}",
            [.. CliEnumConverter.Names<FolderLabels>()]), (c, v) => c with { FolderLabels = Enum.Parse<FolderLabels>(v, ignoreCase: true) });
        string sizeText = role == DataRole.Evaluation
            ? $"With --init-from: the encoder's input side, to which shapes are generated and folder images resized {DefaultText.Of(c => c.ImageSize)}; a checkpoint keeps its own"
            : $"Side length of generated shapes and of resized image-folder images {DefaultText.Of(c => c.ImageSize)}";
        ImageSize = Bound(new Option<int>("--image-size") { Description = sizeText }, (c, v) => c with { ImageSize = v });
        if (role == DataRole.Evaluation) return;
        Bound(new Option<int>("--stl10-unlabeled") { Description = $"--dataset stl10: add the first N of unlabeled_X.bin's 100,000 images to pretraining, as many as fit in memory (at most 72,672 beside the labeled splits: one array holds 2 GiB) {DefaultText.Of(c => c.Stl10Unlabeled)}" },
            (c, v) => c with { Stl10Unlabeled = v });
    }

    /// <summary>The config a command starts from: the shapes preset unless another dataset is named.</summary>
    public RunConfig Defaults(ParseResult result) =>
        !Given(result, Dataset) || result.GetValue(Dataset) == "shapes" ? RunConfig.ShapesDefaults : new RunConfig();

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
}
