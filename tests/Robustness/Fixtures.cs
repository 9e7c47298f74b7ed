// Small valid datasets and checkpoints written here, in the exact on-disk layouts, for the hostile-input tests
// to break one piece at a time: Fashion-MNIST idx (raw or gzipped), STL-10 binaries, CIFAR batches (sparse,
// full size, so they load fast), and a checkpoint rewritten with edited tensors or metadata.
using System.Buffers.Binary;
using System.IO.Compression;
using SimClr.Training.Checkpoints;

namespace SimClr.Tests.Robustness;

internal static class Fixtures
{
    public const int StlSide = 96, StlImageBytes = StlSide * StlSide * 3;

    public static byte[] IdxImages(int count, int rows, int cols)
    {
        var data = new byte[16 + count * rows * cols];
        BinaryPrimitives.WriteInt32BigEndian(data, 2051);
        BinaryPrimitives.WriteInt32BigEndian(data.AsSpan(4), count);
        BinaryPrimitives.WriteInt32BigEndian(data.AsSpan(8), rows);
        BinaryPrimitives.WriteInt32BigEndian(data.AsSpan(12), cols);
        for (int i = 16; i < data.Length; i++) data[i] = (byte)(i * 7);
        return data;
    }

    public static byte[] IdxLabels(params byte[] labels)
    {
        var data = new byte[8 + labels.Length];
        BinaryPrimitives.WriteInt32BigEndian(data, 2049);
        BinaryPrimitives.WriteInt32BigEndian(data.AsSpan(4), labels.Length);
        labels.CopyTo(data, 8);
        return data;
    }

    public static byte[] Gzip(ReadOnlySpan<byte> data)
    {
        using var ms = new MemoryStream();
        using (var gz = new GZipStream(ms, CompressionLevel.Fastest)) gz.Write(data);
        return ms.ToArray();
    }

    /// <summary>Fashion-MNIST's four files in <paramref name="dir"/>: 5 train and 2 test images.</summary>
    public static string FashionMnist(string dir, bool gzip = false, int testRows = 4, int testCols = 3)
    {
        Directory.CreateDirectory(dir);
        void Write(string name, byte[] data) =>
            File.WriteAllBytes(Path.Combine(dir, gzip ? name + ".gz" : name), gzip ? Gzip(data) : data);
        Write("train-images-idx3-ubyte", IdxImages(5, 4, 3));
        Write("train-labels-idx1-ubyte", IdxLabels(0, 9, 3, 3, 1));
        Write("t10k-images-idx3-ubyte", IdxImages(2, testRows, testCols));
        Write("t10k-labels-idx1-ubyte", IdxLabels(5, 6));
        return dir;
    }

    /// <summary>STL-10's labeled files in <paramref name="dir"/>: 3 train and 2 test images.</summary>
    public static string Stl10(string dir)
    {
        Directory.CreateDirectory(dir);
        File.WriteAllBytes(Path.Combine(dir, "train_X.bin"), Pattern(3 * StlImageBytes));
        File.WriteAllBytes(Path.Combine(dir, "train_y.bin"), [1, 10, 4]);
        File.WriteAllBytes(Path.Combine(dir, "test_X.bin"), Pattern(2 * StlImageBytes));
        File.WriteAllBytes(Path.Combine(dir, "test_y.bin"), [2, 3]);
        return dir;
    }

    /// <summary>CIFAR-10's six batches in <paramref name="dir"/>, full size and sparse (all label 0, black).</summary>
    public static string Cifar10(string dir)
    {
        Directory.CreateDirectory(dir);
        foreach (var name in new[] { "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin" })
            Sparse(Path.Combine(dir, name), 10000L * 3073);
        return dir;
    }

    /// <summary>CIFAR-100's two files in <paramref name="dir"/>, sparse, with one record's labels set.</summary>
    public static string Cifar100(string dir, int record = -1, byte coarse = 0, byte fine = 0)
    {
        Directory.CreateDirectory(dir);
        Sparse(Path.Combine(dir, "train.bin"), 50000L * 3074);
        Sparse(Path.Combine(dir, "test.bin"), 10000L * 3074);
        if (record >= 0)
        {
            using var f = new FileStream(Path.Combine(dir, "train.bin"), FileMode.Open);
            f.Position = (long)record * 3074;
            f.Write([coarse, fine]);
        }
        return dir;
    }

    public static void Sparse(string path, long length)
    {
        using var f = File.Create(path);
        f.SetLength(length);
    }

    public static byte[] Pattern(int length)
    {
        var b = new byte[length];
        for (int i = 0; i < length; i++) b[i] = (byte)(i * 31 + (i >> 8));
        return b;
    }

    /// <summary>Copies checkpoint <paramref name="from"/> to <paramref name="to"/>, passing every float tensor
    /// through <paramref name="floats"/> and every metadata entry through <paramref name="metadata"/>.</summary>
    public static string Rewrite(string from, string to, Func<string, float[], float[]>? floats = null, Func<string, string, string>? metadata = null)
    {
        var file = SafeTensorsFile.Load(from);
        var w = new SafeTensorsWriter();
        foreach (var (k, v) in file.Metadata) w.AddMetadata(k, metadata?.Invoke(k, v) ?? v);
        foreach (var t in file.Tensors.Values.OrderBy(t => t.Begin))
        {
            if (t.DType == SafeDType.I64) w.Add<long>(t.Name, file.Read<long>(t.Name), t.Shape);
            else w.Add<float>(t.Name, floats?.Invoke(t.Name, file.Read<float>(t.Name)) ?? file.Read<float>(t.Name), t.Shape);
        }
        w.WriteAtomic(to);
        return to;
    }

    /// <summary>A snapshot of every file under <paramref name="dir"/>, to show that a refusal changed nothing.</summary>
    public static Dictionary<string, byte[]> Snapshot(string dir) =>
        Directory.GetFiles(dir, "*", SearchOption.AllDirectories).ToDictionary(p => p, File.ReadAllBytes);

    public static void AssertUnchanged(Dictionary<string, byte[]> before, string dir)
    {
        Assert.Equal(before.Keys.Order(), Directory.GetFiles(dir, "*", SearchOption.AllDirectories).Order());
        foreach (var (path, content) in before)
            Assert.True(content.AsSpan().SequenceEqual(File.ReadAllBytes(path)), $"{path} changed");
    }
}
