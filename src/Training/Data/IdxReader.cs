// The idx format of MNIST and Fashion-MNIST (raw or gzipped): a big-endian header of magic
// (2051 = 0x803 for uint8 images of rank 3, 2049 = 0x801 for uint8 labels of rank 1), then one int32
// per dimension, then the data, whose length must match the dimensions exactly. The header is read first and
// its claim is bounded (by the file's size, or by what a gzip file of that size can inflate to) before the data
// is allocated; data past the claim is refused. Train and test images must have the same size.
using System.Buffers.Binary;
using SimClr.Kernels;

namespace SimClr.Training.Data;

public static class IdxReader
{
    public const int ImagesMagic = 2051, LabelsMagic = 2049;
    public const string FashionMnistDefaultPath = "/usr/share/datasets/fashion-mnist";

    public static readonly string[] FashionMnistClasses =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    /// <summary>Fashion-MNIST from <paramref name="root"/>: {train,t10k}-{images-idx3,labels-idx1}-ubyte, each raw or .gz.</summary>
    public static DatasetSplits LoadFashionMnist(string? root = null)
    {
        root ??= FashionMnistDefaultPath;
        DataFiles.RequireDirectory(root, "Fashion-MNIST");
        string trainImages = Find(root, "train-images-idx3-ubyte"), testImages = Find(root, "t10k-images-idx3-ubyte");
        var train = Load("fashion-mnist-train", trainImages, Find(root, "train-labels-idx1-ubyte"), FashionMnistClasses);
        var test = Load("fashion-mnist-test", testImages, Find(root, "t10k-labels-idx1-ubyte"), FashionMnistClasses);
        if ((test.Shape.Height, test.Shape.Width) != (train.Shape.Height, train.Shape.Width))
            throw new DatasetException($"{testImages}: images are {test.Shape.Height}x{test.Shape.Width} but the training images ({trainImages}) are {train.Shape.Height}x{train.Shape.Width}; both splits must have one image size");
        return new DatasetSplits(train, test);
    }

    private static string Find(string root, string stem)
    {
        string raw = Path.Combine(root, stem), gz = raw + ".gz";
        if (Path.Exists(raw)) return raw;
        if (Path.Exists(gz)) return gz;
        throw new DatasetException($"{gz}: file not found (nor {raw})");
    }

    /// <summary>One split from an images file and a labels file (labels ∈ [0, classNames.Count)).</summary>
    public static ImageDataset Load(string name, string imagesPath, string labelsPath, IReadOnlyList<string> classNames)
    {
        var (images, count, rows, cols) = ReadImages(imagesPath);
        var labels = ReadLabels(labelsPath);
        if (labels.Length != count)
            throw new DatasetException($"{labelsPath}: {labels.Length} labels but {imagesPath} holds {count} images");
        for (int i = 0; i < labels.Length; i++)
            if ((uint)labels[i] >= (uint)classNames.Count)
                throw new DatasetException($"{labelsPath}: label {labels[i]} at item {i} is outside 0..{classNames.Count - 1}");
        return new ImageDataset(name, new ImageSetShape(count, rows, cols, 1), images, labels, classNames);
    }

    public static (byte[] Pixels, int Count, int Rows, int Cols) ReadImages(string path)
    {
        var (pixels, dims) = ReadIdx(path, ImagesMagic, 3);
        return (pixels, dims[0], dims[1], dims[2]);
    }

    public static int[] ReadLabels(string path)
    {
        var (data, _) = ReadIdx(path, LabelsMagic, 1);
        var labels = new int[data.Length];
        for (int i = 0; i < labels.Length; i++) labels[i] = data[i];
        return labels;
    }

    /// <summary>The data of a rank-<paramref name="rank"/> uint8 idx file and its dimensions.</summary>
    private static (byte[] Data, int[] Dims) ReadIdx(string path, int magic, int rank)
    {
        using var input = DataFiles.OpenMaybeGzip(path, out long stored, out bool compressed);
        int headerBytes = 4 + 4 * rank;
        var header = new byte[headerBytes];
        int got = ReadUpTo(path, input, header);
        if (got < headerBytes) throw new DatasetException($"{path}: {got} bytes is shorter than the {headerBytes}-byte idx header; the file is truncated");
        var dims = Header(path, header, magic, rank);
        Int128 claimed = 1;
        foreach (int d in dims) claimed *= d;
        DataFiles.RequirePlausible(path, (long)Int128.Min(claimed, long.MaxValue), stored, compressed, headerBytes);
        long expected = (long)claimed;
        if (!compressed && stored - headerBytes != expected)
        {
            long found = stored - headerBytes;
            throw new DatasetException($"{path}: {found} data bytes after the header, expected {expected} from its dimensions{(found < expected ? "; the file is truncated" : "")}");
        }
        var data = new byte[expected];
        DataFiles.Read(path, input, data, $"{expected} data bytes from its dimensions {string.Join("x", dims)}");
        DataFiles.RequireEnd(path, input, expected);
        return (data, dims);
    }

    private static int ReadUpTo(string path, Stream input, byte[] buffer)
    {
        try { return input.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false); }
        catch (InvalidDataException e) { throw new DatasetException($"{path}: corrupt gzip stream ({e.Message})", e); }
        catch (IOException e) { throw new DatasetException($"{path}: cannot be read ({e.Message})", e); }
    }

    private static int[] Header(string path, byte[] header, int magic, int rank)
    {
        int found = BinaryPrimitives.ReadInt32BigEndian(header);
        if (found != magic) throw new DatasetException($"{path}: bad magic {found} (0x{found:x8}), expected {magic} (0x{magic:x8}) for a rank-{rank} uint8 idx file");
        var dims = new int[rank];
        for (int d = 0; d < rank; d++)
        {
            dims[d] = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(4 + 4 * d));
            if (dims[d] <= 0) throw new DatasetException($"{path}: dimension {d} is {dims[d]}, expected a positive size");
        }
        return dims;
    }
}
