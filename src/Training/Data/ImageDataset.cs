// The in-memory dataset every reader produces: uint8 images [Count, H, W, C] (HWC per image) in one
// array, int32 labels (−1 where a sample has none), class names and the set's shape. The trainer
// uploads Images once (ResidentImages) and draws batches by index; nothing here touches a device.
using SimClr.Kernels;

namespace SimClr.Training.Data;

/// <summary>A dataset that cannot be read: the message names the file and what is wrong, in one line.</summary>
public sealed class DatasetException(string message, Exception? inner = null) : Exception(message, inner);

public sealed class ImageDataset
{
    public const int Unlabeled = -1;

    public ImageDataset(string name, ImageSetShape shape, byte[] images, int[]? labels, IReadOnlyList<string> classNames)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (shape.Channels is not (1 or 3)) throw new ArgumentException($"{name}: {shape.Channels} channels; expected 1 or 3", nameof(shape));
        if (images.LongLength != shape.Elements)
            throw new ArgumentException($"{name}: {images.LongLength} image bytes for shape {shape.Count}x{shape.Height}x{shape.Width}x{shape.Channels} ({shape.Elements})", nameof(images));
        labels ??= Enumerable.Repeat(Unlabeled, shape.Count).ToArray();
        if (labels.Length != shape.Count) throw new ArgumentException($"{name}: {labels.Length} labels for {shape.Count} images", nameof(labels));
        foreach (int l in labels)
            if (l != Unlabeled && (uint)l >= (uint)classNames.Count)
                throw new ArgumentException($"{name}: label {l} outside the {classNames.Count} classes", nameof(labels));
        Name = name;
        Shape = shape;
        Images = images;
        Labels = labels;
        ClassNames = classNames;
    }

    public string Name { get; }
    public ImageSetShape Shape { get; }
    /// <summary>[Count, Height, Width, Channels], HWC per image.</summary>
    public byte[] Images { get; }
    /// <summary>One per image; <see cref="Unlabeled"/> where the sample has no label.</summary>
    public int[] Labels { get; }
    public IReadOnlyList<string> ClassNames { get; }
    /// <summary>For a set read from image files, each sample's file in row order; null otherwise.</summary>
    public IReadOnlyList<string>? Files { get; init; }

    public int Count => Shape.Count;
    public int ClassCount => ClassNames.Count;
    public int ImageBytes => Shape.Height * Shape.Width * Shape.Channels;
    public bool IsLabeled => Array.IndexOf(Labels, Unlabeled) < 0 && ClassCount > 0;

    public ReadOnlySpan<byte> Image(int index) => Images.AsSpan(checked(index * ImageBytes), ImageBytes);

    /// <summary>A copy holding the samples at <paramref name="indices"/>, in that order.</summary>
    public ImageDataset Subset(ReadOnlySpan<int> indices, string? name = null)
    {
        var images = new byte[(long)indices.Length * ImageBytes];
        var labels = new int[indices.Length];
        var files = Files is null ? null : new string[indices.Length];
        for (int i = 0; i < indices.Length; i++)
        {
            Image(indices[i]).CopyTo(images.AsSpan(i * ImageBytes, ImageBytes));
            labels[i] = Labels[indices[i]];
            if (files is not null) files[i] = Files![indices[i]];
        }
        return new ImageDataset(name ?? Name, Shape with { Count = indices.Length }, images, labels, ClassNames) { Files = files };
    }

    /// <summary>The first <paramref name="count"/> samples (or all when there are fewer).</summary>
    public ImageDataset Take(int count)
    {
        if (count >= Count) return this;
        var idx = new int[count];
        for (int i = 0; i < count; i++) idx[i] = i;
        return Subset(idx);
    }

    /// <summary>The samples of <paramref name="first"/> followed by those of <paramref name="second"/> (same image
    /// size and channels; labels kept, so labeled + unlabeled gives a set with some −1 labels).</summary>
    public static ImageDataset Concat(ImageDataset first, ImageDataset second, string? name = null)
    {
        if (first.Shape with { Count = 0 } != second.Shape with { Count = 0 })
            throw new ArgumentException($"cannot join {first} with {second}: image sizes differ", nameof(second));
        var images = new byte[first.Images.LongLength + second.Images.LongLength];
        first.Images.CopyTo(images, 0);
        second.Images.CopyTo(images, first.Images.LongLength);
        var names = first.ClassCount >= second.ClassCount ? first.ClassNames : second.ClassNames;
        return new ImageDataset(name ?? $"{first.Name}+{second.Name}", first.Shape with { Count = first.Count + second.Count },
            images, [.. first.Labels, .. second.Labels], names)
        {
            Files = first.Files is not null && second.Files is not null ? [.. first.Files, .. second.Files] : null,
        };
    }

    public override string ToString() => $"{Name}: {Count} images {Shape.Height}x{Shape.Width}x{Shape.Channels}, {ClassCount} classes";
}

/// <summary>A dataset's splits: Train is what the linear probe and the kNN bank fit, Test what they are scored on.
/// Pretrain is what SimCLR trains on: Train unless the reader adds unlabeled images (STL-10's unlabeled_X.bin) or
/// the set has no labels at all (an unlabeled image folder, whose Test is empty). Notes are lines the reader wants
/// the user to see (a class folder skipped, a subset taken to fit in memory).</summary>
public sealed record DatasetSplits(ImageDataset Train, ImageDataset Test)
{
    public ImageDataset Pretrain { get; init; } = Train;
    public IReadOnlyList<string> Notes { get; init; } = [];

    /// <summary>Whether the splits can be evaluated on: both labeled and the test split non-empty.</summary>
    public bool IsLabeled => Train.IsLabeled && Test.IsLabeled && Test.Count > 0;
}
