// The image-folder reader beyond decoding: unlabeled folders (flat and nested), strict containers (truncated,
// zeroed and CRC-damaged files refused with the file named and no raw control characters), empty class folders,
// links that loop, test classes missing from train, FIFOs, the memory limit, and the resizing used for transfer.
using System.Diagnostics;
using SimClr.Training.Data;
using StbImageWriteSharp;

namespace SimClr.Tests.Data;

public class FolderLayoutTests
{
    private static byte[] Png(int w, int h, byte shade)
    {
        var px = new byte[w * h * 3];
        for (int i = 0; i < px.Length; i++) px[i] = (byte)(shade + i % 7);
        using var ms = new MemoryStream();
        new ImageWriter().WritePng(px, w, h, ColorComponents.RedGreenBlue, ms);
        return ms.ToArray();
    }

    private static byte[] Jpeg(int w, int h)
    {
        var px = new byte[w * h * 3];
        for (int i = 0; i < px.Length; i++) px[i] = (byte)(i * 13);
        using var ms = new MemoryStream();
        new ImageWriter().WriteJpg(px, w, h, ColorComponents.RedGreenBlue, ms, 90);
        return ms.ToArray();
    }

    private static string Write(string dir, string name, byte[] bytes)
    {
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Fact]
    public void AFlatFolderOfImagesIsUnlabeledAndAllOfItIsForPretraining()
    {
        using var tmp = new TempDir();
        for (int i = 0; i < 5; i++) Write(tmp.Path, $"img{i}.png", Png(12, 10, (byte)(40 * i)));
        Write(tmp.Path, "readme.txt", [1, 2, 3]);
        var s = ImageFolderReader.Load(tmp.Path, 8);
        Assert.Equal(5, s.Train.Count);
        Assert.Equal(0, s.Test.Count);
        Assert.Same(s.Train, s.Pretrain);
        Assert.False(s.IsLabeled);
        Assert.All(s.Train.Labels, l => Assert.Equal(ImageDataset.Unlabeled, l));
        Assert.Contains(s.Notes, n => n.Contains("skipped 1 file") && n.Contains("readme.txt"));
    }

    [Fact]
    public void NestedFoldersAreReadRecursivelyAndNoneForcesUnlabeled()
    {
        using var tmp = new TempDir();
        Write(Path.Combine(tmp.Path, "2019", "01"), "a.png", Png(8, 8, 10));
        Write(Path.Combine(tmp.Path, "2019", "02"), "b.png", Png(8, 8, 20));
        Write(Path.Combine(tmp.Path, "2020"), "c.jpg", Jpeg(9, 9));
        Write(tmp.Path, "top.png", Png(8, 8, 30));
        var auto = ImageFolderReader.Load(tmp.Path, 8);
        Assert.Equal(4, auto.Train.Count);
        Assert.False(auto.IsLabeled);

        File.Delete(Path.Combine(tmp.Path, "top.png"));
        // Without an image at the top level, the sub-folders are classes unless told otherwise.
        var classes = ImageFolderReader.Load(tmp.Path, 8, testFraction: 0);
        Assert.Equal(new[] { "2019", "2020" }, classes.Train.ClassNames);
        Assert.Equal(new[] { 0, 0, 1 }, classes.Train.Labels.Order());
        var none = ImageFolderReader.Load(tmp.Path, 8, labels: FolderLabels.None);
        Assert.Equal(3, none.Train.Count);
        Assert.False(none.IsLabeled);
    }

    [Fact]
    public void TruncatedZeroedAndDamagedImagesAreRefusedNamingTheFile()
    {
        using var tmp = new TempDir();
        var png = Png(16, 16, 50);
        var jpg = Jpeg(64, 64);
        var cases = new (string Name, byte[] Bytes, string Why)[]
        {
            ("cut.png", png[..(png.Length - 20)], "truncated"),
            ("zero.png", new byte[png.Length], "not a PNG, JPEG or BMP"),
            ("crc.png", Flip(png, png.Length / 2), "CRC"),
            ("cut.jpg", jpg[..(jpg.Length * 2 / 3)], "truncated"),
            ("zero.jpg", new byte[jpg.Length], "not a PNG, JPEG or BMP"),
            ("tail.jpg", [.. jpg[..(jpg.Length * 3 / 4)], .. new byte[jpg.Length - jpg.Length * 3 / 4]], "no end-of-image marker"),
        };
        foreach (var (name, bytes, why) in cases)
        {
            string dir = Path.Combine(tmp.Path, Path.GetFileNameWithoutExtension(name) + "-" + Path.GetExtension(name)[1..]);
            string bad = Write(dir, name, bytes);
            Write(dir, "good.png", png);
            var e = Assert.Throws<DatasetException>(() => ImageFolderReader.Load(dir, 8));
            Assert.Contains(bad, e.Message);
            Assert.True(e.Message.Contains(why), e.Message);
        }
    }

    private static byte[] Flip(byte[] b, int at)
    {
        var c = (byte[])b.Clone();
        c[at] ^= 0x5A;
        return c;
    }

    [Fact]
    public void ControlCharactersInMessagesAreEscaped()
    {
        using var tmp = new TempDir();
        var png = Png(8, 8, 1);
        string bad = Write(tmp.Path, "bad\u0001\nname.png", png[..40]);
        var e = Assert.Throws<DatasetException>(() => ImageFolderReader.Load(tmp.Path, 8));
        Assert.DoesNotContain(e.Message, char.IsControl);
        Assert.Contains("bad\\x01\\x0Aname.png", e.Message);

        // A container that is whole but whose compressed data is not: the decoder's own message is escaped too.
        File.Delete(bad);
        var broken = (byte[])png.Clone();
        int idat = IndexOf(broken, "IDAT"u8);
        for (int i = idat + 4; i < idat + 12; i++) broken[i] = 0;
        FixCrc(broken, idat - 4);
        string path = Write(tmp.Path, "zlib.png", broken);
        e = Assert.Throws<DatasetException>(() => ImageFolderReader.Load(tmp.Path, 8));
        Assert.Contains(path, e.Message);
        Assert.Contains("cannot decode", e.Message);
        Assert.DoesNotContain(e.Message, char.IsControl);
    }

    private static int IndexOf(byte[] hay, ReadOnlySpan<byte> needle) => hay.AsSpan().IndexOf(needle);

    /// <summary>Recomputes the CRC of the chunk whose length field starts at <paramref name="chunk"/>.</summary>
    private static void FixCrc(byte[] png, int chunk)
    {
        int length = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(chunk));
        uint crc = ImageFolderReader.Crc32(png.AsSpan(chunk + 4, 4 + length));
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(chunk + 8 + length), crc);
    }

    [Fact]
    public void TheCrcIsPngs()
    {
        // The CRC-32 check value of ISO 3309 / PNG for "123456789".
        Assert.Equal(0xCBF43926u, ImageFolderReader.Crc32("123456789"u8));
        var png = Png(4, 4, 9);
        Assert.Equal((4, 4), ImageFolderReader.CheckContainer("x.png", png));
    }

    [Fact]
    public void EmptyClassFoldersAreSkippedWithANoteAndLoopsAreErrors()
    {
        using var tmp = new TempDir();
        Write(Path.Combine(tmp.Path, "cat"), "a.png", Png(8, 8, 1));
        Write(Path.Combine(tmp.Path, "dog"), "b.png", Png(8, 8, 2));
        Directory.CreateDirectory(Path.Combine(tmp.Path, "empty"));
        var s = ImageFolderReader.Load(tmp.Path, 8, testFraction: 0);
        Assert.Equal(new[] { "cat", "dog" }, s.Train.ClassNames);
        Assert.Contains(s.Notes, n => n.Contains("empty") && n.Contains("skipped"));

        // A class folder that is a link to the root itself, and one nested deeper that links back up.
        Directory.CreateSymbolicLink(Path.Combine(tmp.Path, "loop"), tmp.Path);
        var e = Assert.Throws<DatasetException>(() => ImageFolderReader.Load(tmp.Path, 8));
        Assert.Contains("loop", e.Message);
        Assert.Contains("links back", e.Message);
        Directory.Delete(Path.Combine(tmp.Path, "loop"));
        Directory.CreateSymbolicLink(Path.Combine(tmp.Path, "dog", "up"), Path.Combine("..", "..", Path.GetFileName(tmp.Path)));
        e = Assert.Throws<DatasetException>(() => ImageFolderReader.Load(tmp.Path, 8));
        Assert.Contains(Path.Combine("dog", "up"), e.Message);
        Assert.Contains("links back", e.Message);
    }

    [Fact]
    public void ALinkedClassFolderThatDoesNotLoopIsRead()
    {
        using var tmp = new TempDir();
        using var elsewhere = new TempDir();
        Write(Path.Combine(elsewhere.Path, "real"), "x.png", Png(8, 8, 3));
        Write(Path.Combine(tmp.Path, "cat"), "a.png", Png(8, 8, 1));
        Directory.CreateSymbolicLink(Path.Combine(tmp.Path, "linked"), Path.Combine(elsewhere.Path, "real"));
        var s = ImageFolderReader.Load(tmp.Path, 8, testFraction: 0);
        Assert.Equal(new[] { "cat", "linked" }, s.Train.ClassNames);
        Assert.Equal(2, s.Train.Count);
    }

    [Fact]
    public void TestClassesMissingFromTrainAreAnError()
    {
        using var tmp = new TempDir();
        Write(Path.Combine(tmp.Path, "train", "cat"), "a.png", Png(8, 8, 1));
        Write(Path.Combine(tmp.Path, "test", "cat"), "b.png", Png(8, 8, 2));
        string bird = Path.Combine(tmp.Path, "test", "bird");
        Write(bird, "c.png", Png(8, 8, 3));
        var e = Assert.Throws<DatasetException>(() => ImageFolderReader.Load(tmp.Path, 8));
        Assert.Contains(bird, e.Message);
        Assert.Contains("no folder in", e.Message);
        File.Delete(Path.Combine(bird, "c.png"));
        var s = ImageFolderReader.Load(tmp.Path, 8);
        Assert.Equal(new[] { "cat" }, s.Train.ClassNames);
    }

    [Fact]
    public async Task AFifoAmongTheImagesIsRefusedWithoutBlocking()
    {
        if (!OperatingSystem.IsLinux()) Assert.Skip("mkfifo is a Linux test here");
        using var tmp = new TempDir();
        Write(Path.Combine(tmp.Path, "cat"), "a.png", Png(8, 8, 1));
        string fifo = Path.Combine(tmp.Path, "cat", "pipe.png");
        using (var p = Process.Start("mkfifo", fifo)) await p.WaitForExitAsync(TestContext.Current.CancellationToken);
        var load = Task.Run(() => Assert.Throws<DatasetException>(() => ImageFolderReader.Load(tmp.Path, 8, testFraction: 0)), TestContext.Current.CancellationToken);
        var e = await load.WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        Assert.Contains(fifo, e.Message);
        Assert.Contains("not a regular file", e.Message);
    }

    [Fact]
    public void AFolderPastTheMemoryLimitIsReadAsASeededSubsetWithANote()
    {
        using var tmp = new TempDir();
        for (int i = 0; i < 20; i++) Write(tmp.Path, $"i{i:D2}.png", Png(8, 8, (byte)i));
        long limit = 7L * 8 * 8 * 3;
        var a = ImageFolderReader.Load(tmp.Path, 8, seed: 3, maxImageBytes: limit);
        var b = ImageFolderReader.Load(tmp.Path, 8, seed: 3, maxImageBytes: limit);
        Assert.Equal(7, a.Train.Count);
        Assert.Equal(a.Train.Images, b.Train.Images);
        var note = Assert.Single(a.Notes);
        Assert.Contains("20 images", note);
        Assert.Contains("seeded subset of 7", note);
        Assert.Equal(20, ImageFolderReader.Load(tmp.Path, 8).Train.Count);
    }

    [Fact]
    public void OversizedDeclaredDimensionsAreRefusedBeforeDecoding()
    {
        using var tmp = new TempDir();
        var png = Png(8, 8, 1);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(16), 100_000);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(png.AsSpan(20), 100_000);
        FixCrc(png, 8);
        string path = Write(tmp.Path, "huge.png", png);
        var e = Assert.Throws<DatasetException>(() => ImageFolderReader.Load(tmp.Path, 8));
        Assert.Contains(path, e.Message);
        Assert.Contains("100000x100000", e.Message);
    }

    [Fact]
    public void ResizingForTransferKeepsChannelsAndLabels()
    {
        var gray = new byte[2 * 4 * 4];
        for (int i = 16; i < 32; i++) gray[i] = 200;
        var set = new ImageDataset("g", new SimClr.Kernels.ImageSetShape(2, 4, 4, 1), gray, [1, 0], ["a", "b"]);
        var up = DatasetResize.To(set, 8);
        Assert.Equal((8, 8, 1), (up.Shape.Height, up.Shape.Width, up.Shape.Channels));
        Assert.Equal(new[] { 1, 0 }, up.Labels);
        Assert.All(up.Image(0).ToArray(), v => Assert.Equal(0, v));
        Assert.All(up.Image(1).ToArray(), v => Assert.Equal(200, v));
        Assert.Same(set, DatasetResize.To(set, 4));
        var splits = DatasetResize.To(new DatasetSplits(set, set), 8, "test", out var note);
        Assert.Contains("from 4x4 to 8x8", note);
        Assert.Equal(8, splits.Pretrain.Shape.Height);
    }

    [Fact]
    public void SplitsOfDifferentImageSizesAreRefused()
    {
        var a = ShapesDataset.Generate(4, 4, 1, 16);
        var b = ShapesDataset.Generate(4, 4, 1, 20);
        var e = Assert.Throws<DatasetException>(() => DatasetCatalog.RequireOneImageSize(new DatasetSplits(a.Train, b.Test)));
        Assert.Contains("16x16x3", e.Message);
        Assert.Contains("20x20x3", e.Message);
        DatasetCatalog.RequireOneImageSize(a);
    }
}
