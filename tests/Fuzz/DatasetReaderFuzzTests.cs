// A smaller fuzz of each dataset reader (the image-folder reader has its own): seeded mutations of valid idx
// files (raw and gzipped), CIFAR record files, STL-10 binaries and class-name lists, plus swaps of a file for
// a FIFO, a folder, a link or nothing. Every outcome is a dataset that satisfies its invariants (labels within
// the classes, one image size, counts that agree) or the readers' own error (DatasetException, one line);
// anything else fails with the case number.
using System.Buffers.Binary;
using SimClr.Tests.Data;
using SimClr.Tests.Robustness;
using SimClr.Training.Data;

namespace SimClr.Tests.Fuzz;

public class DatasetReaderFuzzTests
{
    private static byte[] MutateBytes(Random rng, byte[] valid)
    {
        var b = (byte[])valid.Clone();
        if (b.Length == 0) return b;
        switch (rng.Next(7))
        {
            case 0: { int i = rng.Next(b.Length); b[i] ^= (byte)(1 << rng.Next(8)); return b; }
            case 1: { int i = rng.Next(Math.Min(b.Length, 24)); b[i] = (byte)rng.Next(256); return b; }
            case 2: return b[..rng.Next(b.Length)];
            case 3: return [.. b, .. new byte[rng.Next(1, 100)]];
            case 4:
                {
                    if (b.Length >= 8) BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(4 * rng.Next(1, Math.Min(4, b.Length / 4))), rng.Next(2) == 0 ? rng.Next(-5, 70) : rng.Next());
                    return b;
                }
            case 5: { int i = rng.Next(b.Length); b[i] = (byte)rng.Next(256); return b; }
            default: return [];
        }
    }

    /// <summary>Replaces <paramref name="path"/> by something that is not a regular file with data, or returns false.</summary>
    private static bool SwapForOddThing(Random rng, string path)
    {
        if (rng.Next(10) != 0) return false;
        File.Delete(path);
        switch (rng.Next(4))
        {
            case 0: Native.Fifo(path); break;
            case 1: Directory.CreateDirectory(path); break;
            case 2: File.CreateSymbolicLink(path, path + ".nowhere"); break;
            default: break;
        }
        return true;
    }

    private static void Run(string reader, int cases, Action<Random, TempDir> arrange, Func<TempDir, DatasetSplits> load)
    {
        int accepted = 0, refused = 0;
        for (int i = 0; i < cases; i++)
        {
            using var tmp = new TempDir();
            var rng = new Random(104_729 * i + reader.Length);
            arrange(rng, tmp);
            try
            {
                var s = Hostile.WithinAMinute(() => load(tmp));
                foreach (var set in new[] { s.Train, s.Test })
                {
                    Assert.All(set.Labels, l => Assert.InRange(l, 0, set.ClassCount - 1));
                    Assert.Equal((long)set.Count * set.ImageBytes, set.Images.LongLength);
                }
                Assert.Equal((s.Train.Shape.Height, s.Train.Shape.Width), (s.Test.Shape.Height, s.Test.Shape.Width));
                accepted++;
            }
            catch (DatasetException e)
            {
                Assert.DoesNotContain('\n', e.Message);
                refused++;
            }
            catch (Exception e) when (e is not Xunit.Sdk.XunitException)
            {
                Assert.Fail($"{reader} case {i} threw {e.GetType().Name}, not the readers' own error: {e}");
            }
        }
        TestContext.Current.SendDiagnosticMessage($"{reader} fuzz: {cases} cases, {accepted} accepted, {refused} refused");
        Assert.True(accepted > 0 && refused > cases / 4, $"{reader}: {accepted} accepted, {refused} refused");
    }

    [Fact]
    public void IdxFilesRawAndGzipped()
    {
        string[] names = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];
        Run("idx", 1500, (rng, tmp) =>
        {
            bool gzip = rng.Next(2) == 0;
            Fixtures.FashionMnist(tmp.Path, gzip);
            string path = Path.Combine(tmp.Path, names[rng.Next(names.Length)] + (gzip ? ".gz" : ""));
            if (SwapForOddThing(rng, path)) return;
            var raw = gzip ? Gunzip(File.ReadAllBytes(path)) : File.ReadAllBytes(path);
            var mutated = MutateBytes(rng, raw);
            var stored = gzip ? Fixtures.Gzip(mutated) : mutated;
            if (gzip && rng.Next(4) == 0) stored = MutateBytes(rng, stored);
            File.WriteAllBytes(path, stored);
        }, tmp => IdxReader.LoadFashionMnist(tmp.Path));
    }

    private static byte[] Gunzip(byte[] gz)
    {
        using var s = new System.IO.Compression.GZipStream(new MemoryStream(gz), System.IO.Compression.CompressionMode.Decompress);
        using var ms = new MemoryStream();
        s.CopyTo(ms);
        return ms.ToArray();
    }

    [Fact]
    public void CifarRecordFiles()
    {
        const int records = 6;
        Run("cifar", 600, (rng, tmp) =>
        {
            int labelBytes = rng.Next(1, 3);
            for (int f = 0; f < 2; f++)
            {
                var bytes = new byte[records * (labelBytes + 3072)];
                for (int r = 0; r < records; r++)
                    for (int b = 0; b < labelBytes; b++) bytes[r * (labelBytes + 3072) + b] = (byte)rng.Next(labelBytes == 1 ? 10 : 20);
                string path = tmp.File($"batch{f}.bin");
                File.WriteAllBytes(path, bytes);
                if (f == 1 && !SwapForOddThing(rng, path)) File.WriteAllBytes(path, MutateBytes(rng, bytes));
            }
            File.WriteAllText(tmp.File("layout"), labelBytes.ToString());
        }, tmp =>
        {
            bool hundred = File.ReadAllText(tmp.File("layout")) == "2";
            var layout = hundred ? CifarReader.Cifar100Labels : CifarReader.Cifar10Labels;
            var names = Enumerable.Range(0, hundred ? 100 : 10).Select(c => $"c{c}").ToArray();
            var train = CifarReader.ReadRecords("train", [tmp.File("batch0.bin"), tmp.File("batch1.bin")], records, layout, names);
            return new DatasetSplits(train, train);
        });
    }

    [Fact]
    public void Stl10Binaries()
    {
        string[] names = ["train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin", "class_names.txt"];
        Run("stl10", 300, (rng, tmp) =>
        {
            Fixtures.Stl10(tmp.Path);
            File.WriteAllLines(tmp.File("class_names.txt"), Enumerable.Range(0, 10).Select(c => $"class {c}"));
            string path = tmp.File(names[rng.Next(names.Length)]);
            if (SwapForOddThing(rng, path)) return;
            var bytes = File.ReadAllBytes(path);
            File.WriteAllBytes(path, rng.Next(3) == 0 ? bytes[..rng.Next(bytes.Length)] : MutateBytes(rng, bytes));
        }, tmp => Stl10Reader.Load(tmp.Path));
    }
}
