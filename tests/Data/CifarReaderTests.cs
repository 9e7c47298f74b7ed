// CIFAR-10/100 readers on files written here in the exact binary layout (full-size files, created sparse
// so the test stays fast), plus every refusal: truncated, oversized, bad label, missing file or folder.
using SimClr.Training.Data;

namespace SimClr.Tests.Data;

public class CifarReaderTests
{
    private const int Record10 = 1 + 3072, Record100 = 2 + 3072;

    /// <summary>A file of <paramref name="records"/> zero records (label 0, black) with a few written ones.</summary>
    private static void WriteSparse(string path, int records, int recordBytes, params (int Record, byte[] Bytes)[] written)
    {
        using var f = File.Create(path);
        f.SetLength((long)records * recordBytes);
        foreach (var (r, bytes) in written)
        {
            f.Position = (long)r * recordBytes;
            f.Write(bytes);
        }
    }

    /// <summary>One record: labels, then planar R, G, B with pixel (y, x) set to (r, g, b).</summary>
    private static byte[] Record(byte[] labels, int y, int x, byte r, byte g, byte b)
    {
        var rec = new byte[labels.Length + 3072];
        labels.CopyTo(rec, 0);
        rec[labels.Length + y * 32 + x] = r;
        rec[labels.Length + 1024 + y * 32 + x] = g;
        rec[labels.Length + 2048 + y * 32 + x] = b;
        return rec;
    }

    private static string MakeCifar10(TempDir tmp)
    {
        var dir = tmp.Sub("cifar-10-batches-bin");
        for (int i = 1; i <= 5; i++)
            WriteSparse(Path.Combine(dir, $"data_batch_{i}.bin"), 10000, Record10, (i == 2 ? 17 : 0, Record([(byte)(i == 2 ? 9 : 0)], 3, 30, 200, 100, 50)));
        WriteSparse(Path.Combine(dir, "test_batch.bin"), 10000, Record10, (9999, Record([4], 31, 0, 1, 2, 3)));
        return dir;
    }

    [Fact]
    public void Cifar10LoadsAllBatchesAndConvertsPlanarToHwc()
    {
        using var tmp = new TempDir();
        var dir = MakeCifar10(tmp);
        Assert.Equal(30_730_000, new FileInfo(Path.Combine(dir, "test_batch.bin")).Length);
        var splits = CifarReader.LoadCifar10(tmp.Path);
        Assert.Equal(50000, splits.Train.Count);
        Assert.Equal(10000, splits.Test.Count);
        Assert.Equal((32, 32, 3), (splits.Train.Shape.Height, splits.Train.Shape.Width, splits.Train.Shape.Channels));
        Assert.Equal("truck", splits.Train.ClassNames[9]);

        int sample = 10000 + 17; // record 17 of data_batch_2
        Assert.Equal(9, splits.Train.Labels[sample]);
        var img = splits.Train.Image(sample);
        int p = (3 * 32 + 30) * 3;
        Assert.Equal(new byte[] { 200, 100, 50 }, img.Slice(p, 3).ToArray());
        Assert.Equal(350, img.ToArray().Sum(v => v));
        Assert.Equal(new byte[] { 200, 100, 50 }, splits.Train.Image(0).Slice(p, 3).ToArray());

        Assert.Equal(4, splits.Test.Labels[9999]);
        Assert.Equal(new byte[] { 1, 2, 3 }, splits.Test.Image(9999).Slice((31 * 32 + 0) * 3, 3).ToArray());
    }

    [Fact]
    public void Cifar10RefusesTruncatedOversizedBadLabelAndMissingFiles()
    {
        using var tmp = new TempDir();
        var dir = MakeCifar10(tmp);
        string batch1 = Path.Combine(dir, "data_batch_1.bin");

        WriteSparse(batch1, 9999, Record10);
        var e = Assert.Throws<DatasetException>(() => CifarReader.LoadCifar10(dir));
        Assert.Contains(batch1, e.Message);
        Assert.Contains("truncated", e.Message);
        Assert.Contains("30730000", e.Message);

        WriteSparse(batch1, 10000, Record10);
        using (var f = File.OpenWrite(batch1)) { f.SetLength(30_730_001); }
        e = Assert.Throws<DatasetException>(() => CifarReader.LoadCifar10(dir));
        Assert.Contains(batch1, e.Message);
        Assert.Contains("30730001 bytes", e.Message);

        WriteSparse(batch1, 10000, Record10, (123, Record([10], 0, 0, 0, 0, 0)));
        e = Assert.Throws<DatasetException>(() => CifarReader.LoadCifar10(dir));
        Assert.Contains(batch1, e.Message);
        Assert.Contains("record 123 has label 10", e.Message);

        File.Delete(batch1);
        e = Assert.Throws<DatasetException>(() => CifarReader.LoadCifar10(dir));
        Assert.Contains(batch1, e.Message);
        Assert.Contains("not found", e.Message);

        string missing = Path.Combine(tmp.Path, "nowhere");
        e = Assert.Throws<DatasetException>(() => CifarReader.LoadCifar10(missing));
        Assert.Contains(missing, e.Message);
        Assert.Contains("not found", e.Message);
    }

    [Fact]
    public void Cifar100UsesTheFineLabelAndItsNames()
    {
        using var tmp = new TempDir();
        var dir = tmp.Sub("cifar-100-binary");
        WriteSparse(Path.Combine(dir, "train.bin"), 50000, Record100, (49999, Record([19, 99], 0, 1, 7, 8, 9)));
        WriteSparse(Path.Combine(dir, "test.bin"), 10000, Record100, (5, Record([3, 42], 16, 16, 250, 0, 5)));
        File.WriteAllLines(Path.Combine(dir, "fine_label_names.txt"), Enumerable.Range(0, 100).Select(i => $"fine{i}"));
        var splits = CifarReader.LoadCifar100(tmp.Path);
        Assert.Equal((50000, 10000), (splits.Train.Count, splits.Test.Count));
        Assert.Equal(99, splits.Train.Labels[49999]);
        Assert.Equal(new byte[] { 7, 8, 9 }, splits.Train.Image(49999).Slice(3, 3).ToArray());
        Assert.Equal(42, splits.Test.Labels[5]);
        Assert.Equal(new byte[] { 250, 0, 5 }, splits.Test.Image(5).Slice((16 * 32 + 16) * 3, 3).ToArray());
        Assert.Equal("fine42", splits.Test.ClassNames[42]);

        string train = Path.Combine(dir, "train.bin");
        WriteSparse(train, 50000, Record100, (7, Record([0, 100], 0, 0, 0, 0, 0)));
        var e = Assert.Throws<DatasetException>(() => CifarReader.LoadCifar100(dir));
        Assert.Contains(train, e.Message);
        Assert.Contains("label 100", e.Message);

        WriteSparse(train, 50000, Record10);
        e = Assert.Throws<DatasetException>(() => CifarReader.LoadCifar100(dir));
        Assert.Contains(train, e.Message);
        Assert.Contains("153700000", e.Message);
    }
}
