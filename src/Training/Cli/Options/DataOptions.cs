// Which images a command reads: the dataset, its location, subsets, and the generated/resized image size.
// The built-in shapes set (also what runs when --dataset is not given) starts from RunConfig.ShapesDefaults,
// a quick CPU preset; any other dataset starts from the paper defaults.
using System.CommandLine;
using SimClr.Training.Config;
using SimClr.Training.Data;

namespace SimClr.Training.Cli.Options;

internal sealed class DataOptions : OptionGroup
{
    public readonly Option<string> Dataset;

    public DataOptions()
    {
        Dataset = Bound(Choice("--dataset", "Dataset: shapes (built-in), cifar10, cifar100, stl10, fashion-mnist, folder", "shapes", "cifar10", "cifar100", "stl10", "fashion-mnist", "folder"),
            (c, v) => c with { Dataset = ParseDataset(v) });
        Bound(new Option<string>("--data") { Description = "Dataset location (folder or file); defaults per dataset (fashion-mnist: /usr/share/datasets/fashion-mnist)" },
            (c, v) => c with { DataPath = v });
        Bound(new Option<int>("--train-subset") { Description = "Use only the first N training images (0 = all)" }, (c, v) => c with { TrainSubset = v });
        Bound(new Option<int>("--test-subset") { Description = "Evaluate on only the first N test images (0 = all)" }, (c, v) => c with { TestSubset = v });
        Bound(new Option<int>("--shapes-count") { Description = "Training images generated for the built-in shapes set (default 2000)" }, (c, v) => c with { ShapesCount = v });
        Bound(new Option<int>("--image-size") { Description = "Side length of generated shapes and of resized image-folder images (default 32)" }, (c, v) => c with { ImageSize = v });
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
