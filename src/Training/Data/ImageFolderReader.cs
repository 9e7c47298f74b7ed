// An image folder: one sub-folder per class holding PNG/JPEG/BMP/TGA files, decoded with StbImageSharp
// in parallel and resized once to size x size RGB. When the root holds train/ and test/ folders they are
// the splits (class names from train/); otherwise the class folders are split by a seeded shuffle.
// Resizing first centre-crops to a square (aspect kept), then resamples separably: area averaging when
// shrinking, bilinear with half-pixel centres when enlarging.
using SimClr.Kernels;
using StbImageSharp;

namespace SimClr.Training.Data;

public static class ImageFolderReader
{
    private static readonly HashSet<string> Extensions = new(StringComparer.OrdinalIgnoreCase) { ".png", ".jpg", ".jpeg", ".bmp", ".tga" };

    public static DatasetSplits Load(string root, int size, double testFraction = 0.1, ulong seed = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        DataFiles.RequireDirectory(root, "image");
        string train = Path.Combine(root, "train"), test = Path.Combine(root, "test");
        if (Directory.Exists(train) && Directory.Exists(test))
        {
            var classes = ClassFolders(train);
            return new DatasetSplits(Read("folder-train", train, classes, size), Read("folder-test", test, classes, size));
        }
        if (testFraction is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(testFraction), $"test fraction {testFraction} must lie in [0, 1)");
        var all = Read("folder", root, ClassFolders(root), size);
        var order = new PhiloxStream(seed).Permutation(all.Count);
        int testCount = (int)Math.Round(all.Count * testFraction);
        return new DatasetSplits(all.Subset(order.AsSpan(testCount), "folder-train"), all.Subset(order.AsSpan(0, testCount), "folder-test"));
    }

    private static string[] ClassFolders(string dir)
    {
        var classes = Directory.GetDirectories(dir).Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal).ToArray();
        if (classes.Length == 0) throw new DatasetException($"{dir}: no class sub-folders (expected one folder of images per class)");
        return classes;
    }

    private static ImageDataset Read(string name, string dir, string[] classes, int size)
    {
        var files = new List<(string Path, int Label)>();
        for (int c = 0; c < classes.Length; c++)
        {
            string classDir = Path.Combine(dir, classes[c]);
            if (!Directory.Exists(classDir)) throw new DatasetException($"{classDir}: class folder not found (it exists in the training split)");
            foreach (var f in Directory.EnumerateFiles(classDir).Where(f => Extensions.Contains(Path.GetExtension(f))).Order(StringComparer.Ordinal))
                files.Add((f, c));
        }
        if (files.Count == 0) throw new DatasetException($"{dir}: no images ({string.Join(", ", Extensions)}) in its class folders");
        int imageBytes = size * size * 3;
        var images = new byte[(long)files.Count * imageBytes];
        var labels = files.Select(f => f.Label).ToArray();
        var failures = new DatasetException?[files.Count];
        Parallel.For(0, files.Count, i =>
        {
            string path = files[i].Path;
            try
            {
                var decoded = ImageResult.FromMemory(Io.SafeFile.ReadAll(path, Io.SafeFile.MaxBytes), ColorComponents.RedGreenBlue);
                ResizeSquare(images.AsSpan(i * imageBytes, imageBytes), size, decoded.Data, decoded.Height, decoded.Width);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                failures[i] = new DatasetException($"{path}: cannot decode image ({e.Message})", e);
            }
        });
        if (failures.FirstOrDefault(f => f is not null) is { } failure) throw failure;
        return new ImageDataset(name, new ImageSetShape(files.Count, size, size, 3), images, labels, classes) { Files = files.Select(f => f.Path).ToArray() };
    }

    /// <summary>Centre-crops an RGB HWC image to a square and resamples it to size x size.</summary>
    public static void ResizeSquare(Span<byte> dst, int size, ReadOnlySpan<byte> src, int height, int width)
    {
        int side = Math.Min(height, width), top = (height - side) / 2, left = (width - side) / 2;
        var taps = Taps(side, size);
        var rows = new float[side * size * 3];
        for (int y = 0; y < side; y++)
            for (int x = 0; x < size; x++)
                foreach (var (index, weight) in taps[x])
                {
                    int s = ((top + y) * width + left + index) * 3, d = (y * size + x) * 3;
                    rows[d] += weight * src[s];
                    rows[d + 1] += weight * src[s + 1];
                    rows[d + 2] += weight * src[s + 2];
                }
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
                for (int c = 0; c < 3; c++)
                {
                    float acc = 0;
                    foreach (var (index, weight) in taps[y]) acc += weight * rows[(index * size + x) * 3 + c];
                    dst[(y * size + x) * 3 + c] = (byte)Math.Clamp((int)MathF.Round(acc), 0, 255);
                }
    }

    /// <summary>For each output index, the source indices and weights (summing to 1) of a 1-d resample.</summary>
    internal static (int Index, float Weight)[][] Taps(int source, int output)
    {
        var taps = new (int, float)[output][];
        double scale = (double)source / output;
        for (int o = 0; o < output; o++)
        {
            var list = new List<(int, float)>();
            if (scale > 1)
            {
                double lo = o * scale, hi = (o + 1) * scale;
                for (int i = (int)lo; i < Math.Min(source, (int)Math.Ceiling(hi)); i++)
                {
                    double cover = Math.Min(hi, i + 1) - Math.Max(lo, i);
                    if (cover > 0) list.Add((i, (float)(cover / scale)));
                }
            }
            else
            {
                double s = Math.Max(0, (o + 0.5) * scale - 0.5);
                int i0 = Math.Min((int)s, source - 1), i1 = Math.Min(i0 + 1, source - 1);
                float f = (float)(s - i0);
                list.Add((i0, 1 - f));
                if (f > 0) list.Add((i1, f));
            }
            taps[o] = list.ToArray();
        }
        return taps;
    }
}
