// One entry point from a dataset name (as the CLI spells it) and options to loaded splits, so the
// trainer's commands share the readers' defaults and error messages. Every set is held in memory as decoded
// uint8 pixels (and uploaded whole to the device), so the catalog also owns the memory limit the readers fit
// under (ImageMemory), and checks what no single reader can: that train and test images have one size.
using System.Text.Json.Serialization;

namespace SimClr.Training.Data;

public enum DatasetKind
{
    Cifar10,
    Cifar100,
    [JsonStringEnumMemberName("fashion-mnist")] FashionMnist,
    Stl10,
    Folder,
    Shapes,
}

/// <param name="Path">Dataset folder; Fashion-MNIST defaults to /usr/share/datasets/fashion-mnist, shapes needs none.</param>
/// <param name="ImageSize">Side of folder images after resizing, and of generated shapes.</param>
/// <param name="ShapesTrain">Generated training images (shapes).</param>
/// <param name="ShapesTest">Generated test images (shapes).</param>
/// <param name="Seed">Shapes generation, the folder train/test split and the subset a too-large folder keeps.</param>
/// <param name="MaxUnlabeled">STL-10 unlabeled images to add to pretraining (0: none).</param>
/// <param name="TestFraction">Held-out share of a folder without train/ and test/ sub-folders.</param>
/// <param name="FolderLabels">Whether an image folder's sub-folders are classes.</param>
/// <param name="MaxImageBytes">The image memory limit (null: <see cref="ImageMemory.DefaultBudget"/>).</param>
public sealed record DatasetOptions(
    DatasetKind Kind,
    string? Path = null,
    int ImageSize = 32,
    int ShapesTrain = 10_000,
    int ShapesTest = 2_000,
    ulong Seed = 0,
    int MaxUnlabeled = 0,
    double TestFraction = 0.1,
    FolderLabels FolderLabels = FolderLabels.Auto,
    long? MaxImageBytes = null);

/// <summary>How many decoded image bytes one load may hold. Two limits apply: one .NET array holds at most
/// <see cref="Array.MaxLength"/> bytes (2 GiB: 699,050 images of 32×32×3, 77,672 of STL-10's 96×96×3), and all
/// sets of a load together at most <see cref="DefaultBudget"/>. A reader that would pass either keeps what fits
/// (a seeded subset of a folder, the first images of STL-10's unlabeled file) and says so in a note.</summary>
public static class ImageMemory
{
    /// <summary>A quarter of the memory this process may use (the GC's view: physical memory or the container
    /// limit). The rest is for the model, the augmented views, the features of evaluation and the device copy.</summary>
    public static long DefaultBudget => GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 4;

    public static string Describe(long bytes) => bytes >= 1L << 30 ? $"{bytes / (double)(1L << 30):F2} GiB" : $"{bytes / (double)(1L << 20):F1} MiB";
}

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

    public static DatasetSplits Load(DatasetOptions o)
    {
        long budget = o.MaxImageBytes ?? ImageMemory.DefaultBudget;
        var splits = o.Kind switch
        {
            DatasetKind.Cifar10 => CifarReader.LoadCifar10(RequirePath(o)),
            DatasetKind.Cifar100 => CifarReader.LoadCifar100(RequirePath(o)),
            DatasetKind.FashionMnist => IdxReader.LoadFashionMnist(o.Path),
            DatasetKind.Stl10 => Stl10Reader.Load(RequirePath(o), o.MaxUnlabeled, budget),
            DatasetKind.Folder => ImageFolderReader.Load(RequirePath(o), o.ImageSize, o.TestFraction, o.Seed, o.FolderLabels, budget),
            DatasetKind.Shapes => ShapesDataset.Generate(o.ShapesTrain, o.ShapesTest, o.Seed, o.ImageSize),
            _ => throw new ArgumentOutOfRangeException(nameof(o), o.Kind, "unknown dataset kind"),
        };
        RequireOneImageSize(splits);
        return splits;
    }

    /// <summary>Train, test and pretraining images must share height, width and channels: the encoder is planned
    /// for one input size and the features of the splits are compared with each other.</summary>
    public static void RequireOneImageSize(DatasetSplits s)
    {
        foreach (var other in new[] { s.Test, s.Pretrain })
        {
            if (other.Count == 0 || other.Shape with { Count = 0 } == s.Train.Shape with { Count = 0 }) continue;
            throw new DatasetException($"{s.Train.Name} holds {Size(s.Train)} images but {other.Name} holds {Size(other)}: every split of a dataset must have one image size");
        }
    }

    private static string Size(ImageDataset d) => $"{d.Shape.Height}x{d.Shape.Width}x{d.Shape.Channels}";

    private static string RequirePath(DatasetOptions o) =>
        o.Path ?? throw new DatasetException($"dataset {o.Kind} needs a path to its folder");
}

/// <summary>Resizing whole sets to another square size, for transfer (evaluating an encoder on images of another size
/// than it was pretrained on) and for evaluation data given beside a pretraining set of another size.</summary>
public static class DatasetResize
{
    /// <summary><paramref name="set"/> with every image centre-cropped to a square and resampled to
    /// <paramref name="size"/> px (area averaging when shrinking, bilinear when enlarging), channels and labels kept;
    /// the set itself when it already has that size.</summary>
    public static ImageDataset To(ImageDataset set, int size)
    {
        var shape = set.Shape;
        if (shape.Height == size && shape.Width == size) return set;
        int outBytes = size * size * shape.Channels;
        var images = new byte[(long)set.Count * outBytes];
        Parallel.For(0, set.Count, i =>
            ImageFolderReader.ResizeSquare(images.AsSpan(i * outBytes, outBytes), size, set.Image(i), shape.Height, shape.Width, shape.Channels));
        return new ImageDataset(set.Name, shape with { Height = size, Width = size }, images, set.Labels, set.ClassNames);
    }

    /// <summary>Train, test and pretraining sets resized to <paramref name="size"/>; <paramref name="note"/> says what
    /// changed (null when nothing did).</summary>
    public static DatasetSplits To(DatasetSplits s, int size, string why, out string? note)
    {
        var shape = s.Train.Shape;
        note = shape.Height == size && shape.Width == size ? null
            : $"note: resizing {s.Train.Name} and {s.Test.Name} from {shape.Height}x{shape.Width} to {size}x{size} ({why})";
        if (note is null) return s;
        var train = To(s.Train, size);
        return new DatasetSplits(train, To(s.Test, size)) { Pretrain = ReferenceEquals(s.Pretrain, s.Train) ? train : To(s.Pretrain, size), Notes = s.Notes };
    }
}
