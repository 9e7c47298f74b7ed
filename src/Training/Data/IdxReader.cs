// The idx format of MNIST and Fashion-MNIST (raw or gzipped): a big-endian header of magic
// (2051 = 0x803 for uint8 images of rank 3, 2049 = 0x801 for uint8 labels of rank 1), then one int32
// per dimension, then the data, whose length must match the dimensions exactly.
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
        var train = Load("fashion-mnist-train", Find(root, "train-images-idx3-ubyte"), Find(root, "train-labels-idx1-ubyte"), FashionMnistClasses);
        var test = Load("fashion-mnist-test", Find(root, "t10k-images-idx3-ubyte"), Find(root, "t10k-labels-idx1-ubyte"), FashionMnistClasses);
        return new DatasetSplits(train, test);
    }

    private static string Find(string root, string stem)
    {
        string raw = Path.Combine(root, stem), gz = raw + ".gz";
        if (File.Exists(raw)) return raw;
        if (File.Exists(gz)) return gz;
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
        var data = DataFiles.ReadMaybeGzip(DataFiles.RequireFile(path));
        var dims = Header(path, data, ImagesMagic, 3);
        long expected = (long)dims[0] * dims[1] * dims[2];
        CheckLength(path, data, 16, expected);
        return (data.AsSpan(16).ToArray(), dims[0], dims[1], dims[2]);
    }

    public static int[] ReadLabels(string path)
    {
        var data = DataFiles.ReadMaybeGzip(DataFiles.RequireFile(path));
        var dims = Header(path, data, LabelsMagic, 1);
        CheckLength(path, data, 8, dims[0]);
        var labels = new int[dims[0]];
        for (int i = 0; i < labels.Length; i++) labels[i] = data[8 + i];
        return labels;
    }

    private static int[] Header(string path, byte[] data, int magic, int rank)
    {
        int headerBytes = 4 + 4 * rank;
        if (data.Length < headerBytes) throw new DatasetException($"{path}: {data.Length} bytes is shorter than the {headerBytes}-byte idx header; the file is truncated");
        int found = BinaryPrimitives.ReadInt32BigEndian(data);
        if (found != magic) throw new DatasetException($"{path}: bad magic {found} (0x{found:x8}), expected {magic} (0x{magic:x8}) for a rank-{rank} uint8 idx file");
        var dims = new int[rank];
        for (int d = 0; d < rank; d++)
        {
            dims[d] = BinaryPrimitives.ReadInt32BigEndian(data.AsSpan(4 + 4 * d));
            if (dims[d] <= 0) throw new DatasetException($"{path}: dimension {d} is {dims[d]}, expected a positive size");
        }
        return dims;
    }

    private static void CheckLength(string path, byte[] data, int header, long expected)
    {
        long found = data.LongLength - header;
        if (found != expected)
            throw new DatasetException($"{path}: {found} data bytes after the header, expected {expected} from its dimensions{(found < expected ? "; the file is truncated" : "")}");
    }
}
