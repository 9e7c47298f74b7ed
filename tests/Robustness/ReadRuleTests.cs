// The read rule (Io/SafeFile) on its own and through every reader: FIFOs, devices and folders are refused at
// once by name (a FIFO used to hang the open), links are measured by what they name (valid batches reached
// through a link used to be called truncated), an inflated size is bounded before allocation, and a file the
// process may not read is one line.
using SimClr.Tests.Data;
using SimClr.Tests.Training;
using SimClr.Training.Cli;
using SimClr.Training.Data;
using SimClr.Training.Io;

namespace SimClr.Tests.Robustness;

public class ReadRuleTests
{
    [Fact]
    public void SafeFileRefusesWhatIsNotARegularFileByName()
    {
        using var tmp = new TempDir();
        string fifo = Native.Fifo(tmp.File("pipe"));
        string Refusal(string path, long max = 1 << 20) => Assert.Throws<UserError>(() => Hostile.WithinAMinute(() => SafeFile.ReadAll(path, max))).Message;

        Assert.Contains("FIFO", Refusal(fifo));
        Assert.Contains(fifo, Refusal(fifo));
        Assert.Contains("device", Refusal("/dev/zero"));
        Assert.Contains("folder", Refusal(tmp.Path));
        Assert.Contains("not found", Refusal(tmp.File("absent")));
        Assert.Contains("empty path", Refusal(""));
        File.CreateSymbolicLink(tmp.File("a"), tmp.File("b"));
        File.CreateSymbolicLink(tmp.File("b"), tmp.File("a"));
        Assert.Contains("symbolic links", Refusal(tmp.File("a")));
        File.WriteAllBytes(tmp.File("eleven"), new byte[11]);
        Assert.Contains("more than the 10 bytes", Refusal(tmp.File("eleven"), 10));

        // A link is measured and read as what it names.
        File.WriteAllBytes(tmp.File("target"), [1, 2, 3, 4, 5]);
        File.CreateSymbolicLink(tmp.File("link"), tmp.File("target"));
        Assert.Equal(new byte[] { 1, 2, 3, 4, 5 }, SafeFile.ReadAll(tmp.File("link"), 5));
        Assert.True(SafeFile.SameFile(tmp.File("link"), tmp.File("target")));
        Assert.False(SafeFile.SameFile(tmp.File("link"), tmp.File("eleven")));
        Assert.Equal(FileKind.Fifo, SafeFile.KindOf(fifo));
    }

    public static TheoryData<string, string> FifoPlaces => new()
    {
        { "checkpoint", "ck.safetensors" },
        { "resume", "ck.safetensors" },
        { "config", "config.json" },
        { "fashion-mnist", "train-images-idx3-ubyte" },
        { "fashion-mnist", "t10k-labels-idx1-ubyte" },
        { "stl10", "train_y.bin" },
        { "stl10", "test_X.bin" },
        { "stl10", "class_names.txt" },
        { "cifar10", "data_batch_3.bin" },
        { "cifar10", "batches.meta.txt" },
        { "cifar100", "fine_label_names.txt" },
        { "folder", "cat/b.png" },
    };

    [Theory]
    [MemberData(nameof(FifoPlaces))]
    public void AFifoAnywhereAFileIsReadIsRefusedAtOnce(string where, string file)
    {
        using var tmp = new TempDir();
        string data = tmp.Sub("data"), outDir = tmp.File("out");
        string[] args;
        switch (where)
        {
            case "checkpoint": args = ["knn", "--checkpoint", Path.Combine(data, file)]; break;
            case "resume": args = ["pretrain", "--resume", Path.Combine(data, file), "--out", outDir]; break;
            case "config": args = ["pretrain", "--config", Path.Combine(data, file), "--out", outDir]; break;
            case "fashion-mnist":
                Fixtures.FashionMnist(data);
                File.Delete(Path.Combine(data, file));
                args = ["pretrain", "--dataset", "fashion-mnist", "--data", data, "--out", outDir];
                break;
            case "stl10":
                Fixtures.Stl10(data);
                File.Delete(Path.Combine(data, file));
                args = ["pretrain", "--dataset", "stl10", "--data", data, "--out", outDir];
                break;
            case "cifar10":
                Fixtures.Cifar10(data);
                File.Delete(Path.Combine(data, file));
                args = ["pretrain", "--dataset", "cifar10", "--data", data, "--out", outDir];
                break;
            case "folder":
                Directory.CreateDirectory(Path.Combine(data, "cat"));
                using (var png = File.Create(Path.Combine(data, "cat", "a.png")))
                    new StbImageWriteSharp.ImageWriter().WritePng(new byte[8 * 8 * 3], 8, 8, StbImageWriteSharp.ColorComponents.RedGreenBlue, png);
                args = ["pretrain", "--dataset", "folder", "--data", data, "--out", outDir];
                break;
            default:
                Fixtures.Cifar100(data);
                args = ["pretrain", "--dataset", "cifar100", "--data", data, "--out", outDir];
                break;
        }
        string fifo = Native.Fifo(Path.Combine(data, file));
        var r = Hostile.WithinAMinute(() => Cli.Run(args));
        Hostile.AssertOneLine(r, (int)ExitCode.BadInput, fifo, "FIFO");
        Assert.False(Directory.Exists(outDir));
    }

    [Fact]
    public void ADeviceGivenAsACheckpointIsRefusedNotStreamed()
    {
        var r = Hostile.WithinAMinute(() => Cli.Run("linear-eval", "--checkpoint", "/dev/zero"));
        Hostile.AssertOneLine(r, (int)ExitCode.BadInput, "/dev/zero", "device");
    }

    [Fact]
    public void BatchFilesReachedThroughLinksAreMeasuredByWhatTheyName()
    {
        using var tmp = new TempDir();
        string elsewhere = tmp.Sub("elsewhere");

        string cifar = Fixtures.Cifar10(tmp.Sub("cifar-10-batches-bin"));
        File.Move(Path.Combine(cifar, "data_batch_2.bin"), Path.Combine(elsewhere, "batch2"));
        File.CreateSymbolicLink(Path.Combine(cifar, "data_batch_2.bin"), Path.Combine(elsewhere, "batch2"));
        Assert.Equal(50000, CifarReader.LoadCifar10(tmp.Path).Train.Count);

        string stl = Fixtures.Stl10(tmp.Sub("stl10_binary"));
        File.Move(Path.Combine(stl, "train_X.bin"), Path.Combine(elsewhere, "train_X"));
        File.CreateSymbolicLink(Path.Combine(stl, "train_X.bin"), Path.Combine(elsewhere, "train_X"));
        Assert.Equal(3, Stl10Reader.Load(tmp.Path).Train.Count);

        // A link to a truncated batch is refused with the size of the file it names, not of the link.
        Fixtures.Sparse(Path.Combine(elsewhere, "batch2"), 3073L * 9999);
        var e = Assert.Throws<DatasetException>(() => CifarReader.LoadCifar10(tmp.Path));
        Assert.Contains($"{3073L * 9999} bytes", e.Message);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void GzipDataIsBoundedByItsHeaderBeforeItIsInflated()
    {
        using var tmp = new TempDir();
        string dir = Fixtures.FashionMnist(tmp.Sub("fm"), gzip: true);
        string images = Path.Combine(dir, "train-images-idx3-ubyte.gz");

        // The header claims 5×4×3 pixels but 64 MB of zeros follow: refused after reading one byte past the claim.
        var bomb = new byte[64 << 20];
        Fixtures.IdxImages(5, 4, 3).CopyTo(bomb, 0);
        File.WriteAllBytes(images, Fixtures.Gzip(bomb));
        Assert.True(new FileInfo(images).Length < 1 << 20);
        var e = Assert.Throws<DatasetException>(() => IdxReader.LoadFashionMnist(dir));
        Assert.Contains(images, e.Message);
        Assert.Contains("more than the 60 data bytes", e.Message);

        // A header claiming more than the file could ever inflate to is refused before anything is allocated.
        File.WriteAllBytes(images, Fixtures.Gzip(Fixtures.IdxImages(60000, 28, 28).AsSpan(0, 16)));
        e = Assert.Throws<DatasetException>(() => IdxReader.LoadFashionMnist(dir));
        Assert.Contains("can inflate to", e.Message);

        // And one claiming more than any array holds (here 2^31 · 2^31 · 2^31 pixels) is refused as such.
        var huge = Fixtures.IdxImages(1, 1, 1)[..16];
        for (int d = 0; d < 3; d++) System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(huge.AsSpan(4 + 4 * d), int.MaxValue);
        File.WriteAllBytes(images, huge);
        e = Assert.Throws<DatasetException>(() => IdxReader.LoadFashionMnist(dir));
        Assert.Contains("more than one array holds", e.Message);
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void AnUnreadableDatasetFileOrCheckpointIsOneLine()
    {
        var wrapper = Child.WithoutPermissionOverride(out string why);
        if (wrapper is null) Assert.Skip(why);
        using var tmp = new TempDir();
        string stl = Fixtures.Stl10(tmp.Sub("stl10_binary"));
        string x = Path.Combine(stl, "train_X.bin");
        File.SetUnixFileMode(x, UnixFileMode.None);
        var r = Child.Run(["pretrain", "--dataset", "stl10", "--data", tmp.Path, "--out", tmp.File("out"), "--device", "cpu"], wrapper);
        Hostile.AssertOneLine(r, (int)ExitCode.BadInput, x, "permission denied");

        string ck = tmp.File("ck.safetensors");
        File.WriteAllBytes(ck, [1, 2, 3]);
        File.SetUnixFileMode(ck, UnixFileMode.None);
        r = Child.Run(["knn", "--checkpoint", ck], wrapper);
        Hostile.AssertOneLine(r, (int)ExitCode.BadInput, ck, "permission denied");
    }
}
