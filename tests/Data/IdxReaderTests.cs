// Fashion-MNIST idx files written here (raw and gzipped) and the refusals, plus the real dataset where
// Debian's dataset-fashion-mnist installed it.
using System.Buffers.Binary;
using System.IO.Compression;
using SimClr.Training.Data;

namespace SimClr.Tests.Data;

public class IdxReaderTests
{
    private static byte[] ImagesFile(int count, int rows, int cols, Func<int, int, int, byte> pixel, int magic = IdxReader.ImagesMagic, int extra = 0)
    {
        var data = new byte[16 + count * rows * cols + extra];
        BinaryPrimitives.WriteInt32BigEndian(data, magic);
        BinaryPrimitives.WriteInt32BigEndian(data.AsSpan(4), count);
        BinaryPrimitives.WriteInt32BigEndian(data.AsSpan(8), rows);
        BinaryPrimitives.WriteInt32BigEndian(data.AsSpan(12), cols);
        for (int i = 0; i < count; i++)
            for (int y = 0; y < rows; y++)
                for (int x = 0; x < cols; x++)
                    data[16 + (i * rows + y) * cols + x] = pixel(i, y, x);
        return data;
    }

    private static byte[] LabelsFile(params byte[] labels)
    {
        var data = new byte[8 + labels.Length];
        BinaryPrimitives.WriteInt32BigEndian(data, IdxReader.LabelsMagic);
        BinaryPrimitives.WriteInt32BigEndian(data.AsSpan(4), labels.Length);
        labels.CopyTo(data, 8);
        return data;
    }

    private static void Write(string path, byte[] data, bool gzip)
    {
        if (!gzip) { File.WriteAllBytes(path, data); return; }
        using var f = File.Create(path + ".gz");
        using var gz = new GZipStream(f, CompressionLevel.Fastest);
        gz.Write(data);
    }

    private static byte Pixel(int i, int y, int x) => (byte)(i * 31 + y * 7 + x);

    private static void WriteSet(TempDir tmp, bool gzip)
    {
        Write(tmp.File("train-images-idx3-ubyte"), ImagesFile(5, 4, 3, Pixel), gzip);
        Write(tmp.File("train-labels-idx1-ubyte"), LabelsFile(0, 9, 3, 3, 1), gzip);
        Write(tmp.File("t10k-images-idx3-ubyte"), ImagesFile(2, 4, 3, Pixel), gzip);
        Write(tmp.File("t10k-labels-idx1-ubyte"), LabelsFile(5, 6), gzip);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void LoadsRawAndGzippedIdx(bool gzip)
    {
        using var tmp = new TempDir();
        WriteSet(tmp, gzip);
        var s = IdxReader.LoadFashionMnist(tmp.Path);
        Assert.Equal((5, 4, 3, 1), (s.Train.Count, s.Train.Shape.Height, s.Train.Shape.Width, s.Train.Shape.Channels));
        Assert.Equal(new[] { 0, 9, 3, 3, 1 }, s.Train.Labels);
        Assert.Equal(new[] { 5, 6 }, s.Test.Labels);
        Assert.Equal(Pixel(4, 2, 1), s.Train.Image(4)[2 * 3 + 1]);
        Assert.Equal(Pixel(1, 3, 2), s.Test.Image(1)[3 * 3 + 2]);
        Assert.Equal("Ankle boot", s.Train.ClassNames[9]);
    }

    [Fact]
    public void RefusesBadMagicTruncationCountMismatchBadLabelsAndMissingFiles()
    {
        using var tmp = new TempDir();
        WriteSet(tmp, gzip: false);
        string images = tmp.File("train-images-idx3-ubyte"), labels = tmp.File("train-labels-idx1-ubyte");

        File.WriteAllBytes(images, ImagesFile(5, 4, 3, Pixel, magic: 2049));
        var e = Assert.Throws<DatasetException>(() => IdxReader.LoadFashionMnist(tmp.Path));
        Assert.Contains(images, e.Message);
        Assert.Contains("bad magic 2049", e.Message);

        File.WriteAllBytes(images, ImagesFile(5, 4, 3, Pixel)[..^1]);
        e = Assert.Throws<DatasetException>(() => IdxReader.LoadFashionMnist(tmp.Path));
        Assert.Contains(images, e.Message);
        Assert.Contains("truncated", e.Message);

        File.WriteAllBytes(images, ImagesFile(5, 4, 3, Pixel, extra: 3));
        e = Assert.Throws<DatasetException>(() => IdxReader.LoadFashionMnist(tmp.Path));
        Assert.Contains("63 data bytes", e.Message);

        File.WriteAllBytes(images, new byte[10]);
        e = Assert.Throws<DatasetException>(() => IdxReader.LoadFashionMnist(tmp.Path));
        Assert.Contains("header", e.Message);

        File.WriteAllBytes(images, ImagesFile(5, 4, 3, Pixel));
        File.WriteAllBytes(labels, LabelsFile(0, 1, 2, 3));
        e = Assert.Throws<DatasetException>(() => IdxReader.LoadFashionMnist(tmp.Path));
        Assert.Contains(labels, e.Message);
        Assert.Contains("4 labels", e.Message);

        File.WriteAllBytes(labels, LabelsFile(0, 1, 12, 3, 4));
        e = Assert.Throws<DatasetException>(() => IdxReader.LoadFashionMnist(tmp.Path));
        Assert.Contains(labels, e.Message);
        Assert.Contains("label 12", e.Message);

        File.Delete(labels);
        e = Assert.Throws<DatasetException>(() => IdxReader.LoadFashionMnist(tmp.Path));
        Assert.Contains("train-labels-idx1-ubyte.gz", e.Message);
        Assert.Contains("not found", e.Message);

        e = Assert.Throws<DatasetException>(() => IdxReader.LoadFashionMnist(tmp.File("absent")));
        Assert.Contains("absent", e.Message);
    }

    [Fact]
    public void CorruptGzipNamesTheFile()
    {
        using var tmp = new TempDir();
        WriteSet(tmp, gzip: true);
        string path = tmp.File("t10k-images-idx3-ubyte.gz");
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..12]);
        var e = Assert.Throws<DatasetException>(() => IdxReader.LoadFashionMnist(tmp.Path));
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void RealFashionMnistLoads()
    {
        if (!Directory.Exists(IdxReader.FashionMnistDefaultPath))
            Assert.Skip($"{IdxReader.FashionMnistDefaultPath} is absent (Debian package dataset-fashion-mnist)");
        var s = IdxReader.LoadFashionMnist();
        Assert.Equal((60000, 10000), (s.Train.Count, s.Test.Count));
        Assert.Equal((28, 28, 1), (s.Train.Shape.Height, s.Train.Shape.Width, s.Train.Shape.Channels));
        Assert.All(Enumerable.Range(0, 10), c => Assert.Equal(6000, s.Train.Labels.Count(l => l == c)));
        Assert.True(s.Train.IsLabeled);
    }
}
