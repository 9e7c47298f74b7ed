// STL-10 binary (stl10_binary/): train_X.bin/train_y.bin (5000), test_X.bin/test_y.bin (8000) and
// unlabeled_X.bin (100000), 96x96x3. Each image is stored channel-planar and column-major within a
// channel (byte (c, x, y) at c·9216 + x·96 + y, the MATLAB order), converted here to HWC. Labels are
// 1..10 on disk and 0..9 in memory. The unlabeled images are read only when asked for, straight into one
// pretraining array after the labeled training images (the standard STL-10 SimCLR setup pretrains on
// train + unlabeled). All 100,000 are 2.6 GiB, more than one array holds (ImageMemory), so a load keeps the
// first ones that fit and says how many in a note. Files are read under the program's read rule: sizes are
// those of what links name, a FIFO or folder in place of a file is refused, an unreadable file is one line.
using SimClr.Kernels;
using SimClr.Training.Io;

namespace SimClr.Training.Data;

public static class Stl10Reader
{
    public const int Side = 96, ImageBytes = Side * Side * 3;

    public static readonly string[] Classes =
        ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"];

    /// <summary>STL-10 from <paramref name="root"/> (stl10_binary or a folder holding it). With
    /// <paramref name="maxUnlabeled"/> &gt; 0 the pretraining set is the training images followed by up to that many
    /// unlabeled ones, as many as fit in <paramref name="maxImageBytes"/> together with train and test.</summary>
    public static DatasetSplits Load(string root, int maxUnlabeled = 0, long maxImageBytes = long.MaxValue)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxUnlabeled);
        string dir = DataFiles.ResolveFolder(root, "test_X.bin", "", "stl10_binary");
        var names = DataFiles.ReadNames(Path.Combine(dir, "class_names.txt"), 10) ?? Classes;
        var train = ReadLabeled("stl10-train", Path.Combine(dir, "train_X.bin"), Path.Combine(dir, "train_y.bin"), names);
        var test = ReadLabeled("stl10-test", Path.Combine(dir, "test_X.bin"), Path.Combine(dir, "test_y.bin"), names);
        if (maxUnlabeled == 0) return new DatasetSplits(train, test);

        string path = Path.Combine(dir, "unlabeled_X.bin");
        int available = ImageCount(path), wanted = Math.Min(available, maxUnlabeled);
        long room = Math.Min(Array.MaxLength - train.Images.LongLength, maxImageBytes - train.Images.LongLength * 2 - test.Images.LongLength);
        int count = (int)Math.Clamp(room / ImageBytes, 0, wanted);
        var notes = new List<string>();
        if (count < wanted)
            notes.Add($"note: {path}: {wanted} unlabeled images need {ImageMemory.Describe((long)wanted * ImageBytes)} beside the labeled splits, past the image memory limit "
                + $"({ImageMemory.Describe(Math.Min(Array.MaxLength, maxImageBytes))}); pretraining adds the first {count}");
        var images = new byte[train.Images.LongLength + (long)count * ImageBytes];
        train.Images.CopyTo(images, 0);
        ReadImages(images, train.Images.Length, path, count);
        var labels = new int[train.Count + count];
        train.Labels.CopyTo(labels, 0);
        Array.Fill(labels, ImageDataset.Unlabeled, train.Count, count);
        var pretrain = new ImageDataset("stl10-train+unlabeled", new ImageSetShape(train.Count + count, Side, Side, 3), images, labels, names);
        return new DatasetSplits(train, test) { Pretrain = pretrain, Notes = notes };
    }

    private static ImageDataset ReadLabeled(string name, string imagesPath, string labelsPath, IReadOnlyList<string> names)
    {
        int count = ImageCount(imagesPath);
        if ((long)count * ImageBytes > Array.MaxLength)
            throw new DatasetException($"{imagesPath}: {count} images are more than one image array holds ({Array.MaxLength / ImageBytes}); this is not STL-10's {name} split");
        byte[] raw;
        using (var labelsFile = DataFiles.Open(labelsPath, SafeFile.MaxBytes))
        {
            if (labelsFile.Length != count)
                throw new DatasetException($"{labelsPath}: {labelsFile.Length} labels but {imagesPath} holds {count} images of {ImageBytes} bytes");
            raw = new byte[count];
            DataFiles.Read(labelsPath, labelsFile, raw, $"{count} label bytes");
        }
        var labels = new int[count];
        for (int i = 0; i < count; i++)
        {
            if (raw[i] is < 1 or > 10) throw new DatasetException($"{labelsPath}: label {raw[i]} at item {i}, expected 1..10");
            labels[i] = raw[i] - 1;
        }
        var images = new byte[(long)count * ImageBytes];
        ReadImages(images, 0, imagesPath, count);
        return new ImageDataset(name, new ImageSetShape(count, Side, Side, 3), images, labels, names);
    }

    private static int ImageCount(string path)
    {
        long length;
        using (var file = DataFiles.Open(path, long.MaxValue)) length = file.Length;
        if (length == 0 || length % ImageBytes != 0)
            throw new DatasetException($"{path}: {length} bytes is not a whole number of {Side}x{Side}x3 images ({ImageBytes} bytes each); the file is truncated or not STL-10");
        return (int)Math.Min(length / ImageBytes, int.MaxValue);
    }

    /// <summary>The first <paramref name="count"/> images of <paramref name="path"/>, converted to HWC into
    /// <paramref name="dst"/> from byte <paramref name="offset"/> on.</summary>
    private static void ReadImages(byte[] dst, int offset, string path, int count)
    {
        const int chunkImages = 256;
        var buffer = new byte[chunkImages * ImageBytes];
        using var stream = DataFiles.Open(path, long.MaxValue);
        for (int start = 0; start < count; start += chunkImages)
        {
            int n = Math.Min(chunkImages, count - start);
            DataFiles.Read(path, stream, buffer.AsSpan(0, n * ImageBytes), $"{count} images of {ImageBytes} bytes");
            int first = offset + start * ImageBytes;
            Parallel.For(0, n, i => ColumnMajorToHwc(dst.AsSpan(first + i * ImageBytes, ImageBytes), buffer.AsSpan(i * ImageBytes, ImageBytes)));
        }
    }

    /// <summary>One image: channel-planar, column-major (c, x, y) to HWC (y, x, c).</summary>
    internal static void ColumnMajorToHwc(Span<byte> dst, ReadOnlySpan<byte> src)
    {
        const int plane = Side * Side;
        for (int c = 0; c < 3; c++)
            for (int x = 0; x < Side; x++)
                for (int y = 0; y < Side; y++)
                    dst[(y * Side + x) * 3 + c] = src[c * plane + x * Side + y];
    }
}
