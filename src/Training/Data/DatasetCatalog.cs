// One entry point from a dataset name (as the CLI spells it) and options to loaded splits, so the
// trainer's commands share the readers' defaults and error messages.
namespace SimClr.Training.Data;

public enum DatasetKind { Cifar10, Cifar100, FashionMnist, Stl10, Folder, Shapes }

/// <param name="Path">Dataset folder; Fashion-MNIST defaults to /usr/share/datasets/fashion-mnist, shapes needs none.</param>
/// <param name="ImageSize">Side of folder images after resizing, and of generated shapes.</param>
/// <param name="ShapesTrain">Generated training images (shapes).</param>
/// <param name="ShapesTest">Generated test images (shapes).</param>
/// <param name="Seed">Shapes generation and the folder train/test split.</param>
/// <param name="MaxUnlabeled">STL-10 unlabeled images to read (0: none).</param>
/// <param name="TestFraction">Held-out share of a folder without train/ and test/ sub-folders.</param>
public sealed record DatasetOptions(
    DatasetKind Kind,
    string? Path = null,
    int ImageSize = 32,
    int ShapesTrain = 10_000,
    int ShapesTest = 2_000,
    ulong Seed = 0,
    int MaxUnlabeled = 0,
    double TestFraction = 0.1);

public static class DatasetCatalog
{
    public static readonly IReadOnlyDictionary<string, DatasetKind> Names = new Dictionary<string, DatasetKind>(StringComparer.OrdinalIgnoreCase)
    {
        ["cifar10"] = DatasetKind.Cifar10,
        ["cifar100"] = DatasetKind.Cifar100,
        ["fashion-mnist"] = DatasetKind.FashionMnist,
        ["stl10"] = DatasetKind.Stl10,
        ["folder"] = DatasetKind.Folder,
        ["shapes"] = DatasetKind.Shapes,
    };

    public static DatasetKind Parse(string name) =>
        Names.TryGetValue(name, out var kind) ? kind
            : throw new DatasetException($"unknown dataset '{name}'; expected one of {string.Join(", ", Names.Keys)}");

    public static DatasetSplits Load(DatasetOptions o) => o.Kind switch
    {
        DatasetKind.Cifar10 => CifarReader.LoadCifar10(RequirePath(o)),
        DatasetKind.Cifar100 => CifarReader.LoadCifar100(RequirePath(o)),
        DatasetKind.FashionMnist => IdxReader.LoadFashionMnist(o.Path),
        DatasetKind.Stl10 => Stl10Reader.Load(RequirePath(o), o.MaxUnlabeled),
        DatasetKind.Folder => ImageFolderReader.Load(RequirePath(o), o.ImageSize, o.TestFraction, o.Seed),
        DatasetKind.Shapes => ShapesDataset.Generate(o.ShapesTrain, o.ShapesTest, o.Seed, o.ImageSize),
        _ => throw new ArgumentOutOfRangeException(nameof(o), o.Kind, "unknown dataset kind"),
    };

    private static string RequirePath(DatasetOptions o) =>
        o.Path ?? throw new DatasetException($"dataset {o.Kind} needs a path to its folder");
}
