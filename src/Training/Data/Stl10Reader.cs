// STL-10 binary (stl10_binary/): train_X.bin/train_y.bin (5000), test_X.bin/test_y.bin (8000) and
// unlabeled_X.bin (100000), 96x96x3. Each image is stored channel-planar and column-major within a
// channel (byte (c, x, y) at c·9216 + x·96 + y, the MATLAB order), converted here to HWC. Labels are
// 1..10 on disk and 0..9 in memory. The unlabeled split is 2.7 GB, more than one array can hold, so only
// the first maxUnlabeled images are read. Files are read under the program's read rule: sizes are those of
// what links name, a FIFO or folder in place of a file is refused, an unreadable file is one line.
using SimClr.Kernels;
using SimClr.Training.Io;

namespace SimClr.Training.Data;

public static class Stl10Reader
{
    public const int Side = 96, ImageBytes = Side * Side * 3;

    public static readonly string[] Classes =
        ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"];

    /// <summary>STL-10 from <paramref name="root"/> (stl10_binary or a folder holding it); reads up to
    /// <paramref name="maxUnlabeled"/> unlabeled images (0: none).</summary>
    public static DatasetSplits Load(string root, int maxUnlabeled = 0)
    {
        string dir = DataFiles.ResolveFolder(root, "test_X.bin", "", "stl10_binary");
        var names = DataFiles.ReadNames(Path.Combine(dir, "class_names.txt"), 10) ?? Classes;
        var train = ReadLabeled("stl10-train", Path.Combine(dir, "train_X.bin"), Path.Combine(dir, "train_y.bin"), names);
        var test = ReadLabeled("stl10-test", Path.Combine(dir, "test_X.bin"), Path.Combine(dir, "test_y.bin"), names);
        ImageDataset? unlabeled = null;
        if (maxUnlabeled > 0)
        {
            string path = Path.Combine(dir, "unlabeled_X.bin");
            int count = ImageCount(path);
            count = Math.Min(count, Math.Min(maxUnlabeled, Array.MaxLength / ImageBytes));
            var images = ReadImages(path, count);
            unlabeled = new ImageDataset("stl10-unlabeled", new ImageSetShape(count, Side, Side, 3), images, null, names);
        }
        return new DatasetSplits(train, test, unlabeled);
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
        return new ImageDataset(name, new ImageSetShape(count, Side, Side, 3), ReadImages(imagesPath, count), labels, names);
    }

    private static int ImageCount(string path)
    {
        long length;
        using (var file = DataFiles.Open(path, long.MaxValue)) length = file.Length;
        if (length == 0 || length % ImageBytes != 0)
            throw new DatasetException($"{path}: {length} bytes is not a whole number of {Side}x{Side}x3 images ({ImageBytes} bytes each); the file is truncated or not STL-10");
        return (int)Math.Min(length / ImageBytes, int.MaxValue);
    }

    private static byte[] ReadImages(string path, int count)
    {
        var images = new byte[(long)count * ImageBytes];
        const int chunkImages = 256;
        var buffer = new byte[chunkImages * ImageBytes];
        using var stream = DataFiles.Open(path, long.MaxValue);
        for (int start = 0; start < count; start += chunkImages)
        {
            int n = Math.Min(chunkImages, count - start);
            DataFiles.Read(path, stream, buffer.AsSpan(0, n * ImageBytes), $"{count} images of {ImageBytes} bytes");
            int first = start;
            Parallel.For(0, n, i => ColumnMajorToHwc(images.AsSpan((first + i) * ImageBytes, ImageBytes), buffer.AsSpan(i * ImageBytes, ImageBytes)));
        }
        return images;
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
