// CIFAR-10 and CIFAR-100 in their binary distributions. A record is label byte(s) followed by 3072
// pixels stored planar (1024 R, 1024 G, 1024 B, each row-major 32x32); records are converted to HWC.
//   CIFAR-10  cifar-10-batches-bin/: data_batch_1..5.bin (train), test_batch.bin; each file exactly
//             10000 records of 1 + 3072 bytes; label ∈ [0, 9]; names in batches.meta.txt when present.
//   CIFAR-100 cifar-100-binary/: train.bin (50000 records), test.bin (10000); records of coarse label,
//             fine label, 3072 pixels; fine ∈ [0, 99] is the label (coarse ∈ [0, 19] is checked too);
//             names in fine_label_names.txt.
// Files are read under the program's read rule (a batch reached through a link is measured by what it names).
using SimClr.Kernels;

namespace SimClr.Training.Data;

public static class CifarReader
{
    public const int Side = 32, Pixels = Side * Side * 3;
    public const int Cifar10RecordsPerFile = 10000;

    public static readonly string[] Cifar10Classes =
        ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

    /// <summary>CIFAR-10 from <paramref name="root"/> (the cifar-10-batches-bin folder or a folder holding it).</summary>
    public static DatasetSplits LoadCifar10(string root)
    {
        string dir = DataFiles.ResolveFolder(root, "test_batch.bin", "", "cifar-10-batches-bin");
        var names = DataFiles.ReadNames(Path.Combine(dir, "batches.meta.txt"), 10) ?? Cifar10Classes;
        var trainFiles = Enumerable.Range(1, 5).Select(i => Path.Combine(dir, $"data_batch_{i}.bin")).ToArray();
        var train = ReadRecords("cifar10-train", trainFiles, Cifar10RecordsPerFile, Cifar10Labels, names);
        var test = ReadRecords("cifar10-test", [Path.Combine(dir, "test_batch.bin")], Cifar10RecordsPerFile, Cifar10Labels, names);
        return new DatasetSplits(train, test);
    }

    /// <summary>CIFAR-100 (fine labels) from <paramref name="root"/> (cifar-100-binary or a folder holding it).</summary>
    public static DatasetSplits LoadCifar100(string root)
    {
        string dir = DataFiles.ResolveFolder(root, "test.bin", "", "cifar-100-binary");
        var names = DataFiles.ReadNames(Path.Combine(dir, "fine_label_names.txt"), 100)
            ?? Enumerable.Range(0, 100).Select(i => $"class_{i}").ToArray();
        var train = ReadRecords("cifar100-train", [Path.Combine(dir, "train.bin")], 50000, Cifar100Labels, names);
        var test = ReadRecords("cifar100-test", [Path.Combine(dir, "test.bin")], 10000, Cifar100Labels, names);
        return new DatasetSplits(train, test);
    }

    /// <summary>The label bytes that open each record: their names and ranges, in record order. The last one is
    /// the label the dataset uses.</summary>
    internal sealed record LabelLayout(params (string Name, int Classes)[] Fields);

    internal static readonly LabelLayout Cifar10Labels = new(("label", 10));
    internal static readonly LabelLayout Cifar100Labels = new(("coarse label", 20), ("fine label", 100));

    internal static ImageDataset ReadRecords(string name, string[] files, int recordsPerFile, LabelLayout layout, IReadOnlyList<string> names)
    {
        int labelBytes = layout.Fields.Length, record = labelBytes + Pixels;
        int count = files.Length * recordsPerFile;
        var images = new byte[(long)count * Pixels];
        var labels = new int[count];
        for (int f = 0; f < files.Length; f++)
        {
            var bytes = DataFiles.ReadExact(files[f], (long)recordsPerFile * record, $"{recordsPerFile} records of {labelBytes} label byte(s) + {Pixels} pixels");
            int baseIndex = f * recordsPerFile;
            for (int r = 0; r < recordsPerFile; r++)
            {
                for (int b = 0; b < labelBytes; b++)
                {
                    int value = bytes[r * record + b];
                    var (what, classes) = layout.Fields[b];
                    if (value >= classes)
                        throw new DatasetException($"{files[f]}: record {r} has {(labelBytes == 1 ? "label" : what)} {value}, expected 0..{classes - 1}");
                }
                labels[baseIndex + r] = bytes[r * record + labelBytes - 1];
            }
            Parallel.For(0, recordsPerFile, r =>
            {
                var src = bytes.AsSpan(r * record + labelBytes, Pixels);
                var dst = images.AsSpan((baseIndex + r) * Pixels, Pixels);
                PlanarToInterleaved(dst, src, Side * Side);
            });
        }
        return new ImageDataset(name, new ImageSetShape(count, Side, Side, 3), images, labels, names);
    }

    /// <summary>CHW planar (3 planes of <paramref name="plane"/>) to HWC interleaved.</summary>
    internal static void PlanarToInterleaved(Span<byte> dst, ReadOnlySpan<byte> src, int plane)
    {
        for (int p = 0; p < plane; p++)
        {
            dst[3 * p] = src[p];
            dst[3 * p + 1] = src[plane + p];
            dst[3 * p + 2] = src[2 * plane + p];
        }
    }
}
