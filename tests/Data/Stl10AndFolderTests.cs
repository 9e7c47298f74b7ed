// STL-10's transposed (column-major) layout, label shift and unlabeled images on files written here, and the
// image-folder reader on PNGs written here.
using SimClr.Training.Data;
using StbImageWriteSharp;

namespace SimClr.Tests.Data;

public class Stl10AndFolderTests
{
    private const int Side = 96, Plane = Side * Side, ImageBytes = 3 * Plane;

    /// <summary>STL-10 images where image i has value v at channel c, row y, column x: stored at c·9216 + x·96 + y.</summary>
    private static byte[] StlImages(int count, params (int Image, int C, int Y, int X, byte V)[] marks)
    {
        var data = new byte[count * ImageBytes];
        foreach (var (i, c, y, x, v) in marks) data[i * ImageBytes + c * Plane + x * Side + y] = v;
        return data;
    }

    private static string MakeStl(TempDir tmp)
    {
        var dir = tmp.Sub("stl10_binary");
        File.WriteAllBytes(Path.Combine(dir, "train_X.bin"), StlImages(3, (2, 0, 5, 80, 211), (2, 2, 5, 80, 7)));
        File.WriteAllBytes(Path.Combine(dir, "train_y.bin"), [1, 10, 4]);
        File.WriteAllBytes(Path.Combine(dir, "test_X.bin"), StlImages(2, (1, 1, 95, 0, 99)));
        File.WriteAllBytes(Path.Combine(dir, "test_y.bin"), [2, 3]);
        File.WriteAllBytes(Path.Combine(dir, "unlabeled_X.bin"), StlImages(4, (3, 0, 0, 1, 55)));
        return dir;
    }

    [Fact]
    public void Stl10TransposesColumnMajorImagesAndShiftsLabels()
    {
        using var tmp = new TempDir();
        MakeStl(tmp);
        var s = Stl10Reader.Load(tmp.Path, maxUnlabeled: 10);
        Assert.Equal((3, 2), (s.Train.Count, s.Test.Count));
        Assert.Equal(new[] { 0, 9, 3 }, s.Train.Labels);
        Assert.Equal(new[] { 1, 2 }, s.Test.Labels);
        var img = s.Train.Image(2);
        Assert.Equal(211, img[(5 * Side + 80) * 3 + 0]);
        Assert.Equal(7, img[(5 * Side + 80) * 3 + 2]);
        Assert.Equal(218, img.ToArray().Sum(v => v));
        Assert.Equal(99, s.Test.Image(1)[(95 * Side + 0) * 3 + 1]);
        // The pretraining set is the training images followed by the unlabeled ones, in one array.
        Assert.Equal(3 + 4, s.Pretrain.Count);
        Assert.Equal(new[] { 0, 9, 3, -1, -1, -1, -1 }, s.Pretrain.Labels);
        Assert.Equal(s.Train.Image(2).ToArray(), s.Pretrain.Image(2).ToArray());
        Assert.Equal(55, s.Pretrain.Image(6)[(0 * Side + 1) * 3]);
        Assert.False(s.Pretrain.IsLabeled);
        Assert.Empty(s.Notes);
        var plain = Stl10Reader.Load(tmp.Path);
        Assert.Same(plain.Train, plain.Pretrain);
        Assert.Equal(3 + 2, Stl10Reader.Load(tmp.Path, maxUnlabeled: 2).Pretrain.Count);
        Assert.Throws<ArgumentException>(() => ImageDataset.Concat(s.Train, ShapesDataset.Generate(2, 0, 1).Train));
    }

    [Fact]
    public void Stl10UnlabeledImagesPastTheMemoryLimitAreCutWithANote()
    {
        using var tmp = new TempDir();
        MakeStl(tmp);
        // Train (3) twice and test (2) take 8 images' worth; a limit of 10 leaves room for 2 of the 4 unlabeled.
        var s = Stl10Reader.Load(tmp.Path, maxUnlabeled: 100, maxImageBytes: 10L * ImageBytes);
        Assert.Equal(3 + 2, s.Pretrain.Count);
        var note = Assert.Single(s.Notes);
        Assert.Contains("unlabeled_X.bin", note);
        Assert.Contains("4 unlabeled images", note);
        Assert.Contains("adds the first 2", note);
    }

    [Fact]
    public void Stl10RefusesPartialImagesBadLabelsAndMismatchedCounts()
    {
        using var tmp = new TempDir();
        var dir = MakeStl(tmp);
        string x = Path.Combine(dir, "train_X.bin"), y = Path.Combine(dir, "train_y.bin");

        File.WriteAllBytes(x, StlImages(3)[..^5]);
        var e = Assert.Throws<DatasetException>(() => Stl10Reader.Load(dir));
        Assert.Contains(x, e.Message);
        Assert.Contains("not a whole number", e.Message);

        File.WriteAllBytes(x, StlImages(3));
        File.WriteAllBytes(y, [1, 11, 2]);
        e = Assert.Throws<DatasetException>(() => Stl10Reader.Load(dir));
        Assert.Contains(y, e.Message);
        Assert.Contains("label 11", e.Message);

        File.WriteAllBytes(y, [1, 2]);
        e = Assert.Throws<DatasetException>(() => Stl10Reader.Load(dir));
        Assert.Contains(y, e.Message);
        Assert.Contains("2 labels", e.Message);

        File.Delete(y);
        e = Assert.Throws<DatasetException>(() => Stl10Reader.Load(dir));
        Assert.Contains(y, e.Message);
    }

    private static void WritePng(string path, int w, int h, byte r, byte g, byte b)
    {
        var px = new byte[w * h * 3];
        for (int i = 0; i < w * h; i++) { px[3 * i] = r; px[3 * i + 1] = g; px[3 * i + 2] = b; }
        using var f = File.Create(path);
        new ImageWriter().WritePng(px, w, h, ColorComponents.RedGreenBlue, f);
    }

    [Fact]
    public void ImageFolderDecodesResizesAndLabelsByFolder()
    {
        using var tmp = new TempDir();
        var cats = tmp.Sub(Path.Combine("train", "cat"));
        var dogs = tmp.Sub(Path.Combine("train", "dog"));
        WritePng(Path.Combine(cats, "a.png"), 40, 30, 255, 0, 0);
        WritePng(Path.Combine(cats, "b.png"), 5, 9, 10, 20, 30);
        WritePng(Path.Combine(dogs, "c.png"), 16, 16, 0, 0, 255);
        File.WriteAllText(Path.Combine(dogs, "notes.txt"), "not an image");
        WritePng(Path.Combine(tmp.Sub(Path.Combine("test", "dog")), "d.png"), 8, 8, 0, 255, 0);
        tmp.Sub(Path.Combine("test", "cat"));

        var s = ImageFolderReader.Load(tmp.Path, size: 8);
        Assert.Equal(new[] { "cat", "dog" }, s.Train.ClassNames);
        Assert.Equal(new[] { 0, 0, 1 }, s.Train.Labels);
        Assert.Equal((8, 8, 3), (s.Train.Shape.Height, s.Train.Shape.Width, s.Train.Shape.Channels));
        Assert.All(Enumerable.Range(0, 64), p => Assert.Equal(new byte[] { 255, 0, 0 }, s.Train.Image(0).Slice(3 * p, 3).ToArray()));
        Assert.All(Enumerable.Range(0, 64), p => Assert.Equal(new byte[] { 10, 20, 30 }, s.Train.Image(1).Slice(3 * p, 3).ToArray()));
        Assert.Equal(new[] { 1 }, s.Test.Labels);
        Assert.Equal(255, s.Test.Image(0)[1]);
    }

    [Fact]
    public void AreaResizeAveragesBlocks()
    {
        // 4x4 image of two vertical halves 0 | 200 shrunk to 2x2 keeps the halves; to 1x1 it averages them.
        var src = new byte[4 * 4 * 3];
        for (int y = 0; y < 4; y++) for (int x = 2; x < 4; x++) for (int c = 0; c < 3; c++) src[(y * 4 + x) * 3 + c] = 200;
        var two = new byte[2 * 2 * 3];
        ImageFolderReader.ResizeSquare(two, 2, src, 4, 4);
        Assert.Equal(new byte[] { 0, 0, 0, 200, 200, 200, 0, 0, 0, 200, 200, 200 }, two);
        var one = new byte[3];
        ImageFolderReader.ResizeSquare(one, 1, src, 4, 4);
        Assert.Equal(new byte[] { 100, 100, 100 }, one);
    }

    [Fact]
    public void ImageFolderRefusesEmptyFoldersAndUndecodableFiles()
    {
        using var tmp = new TempDir();
        var e = Assert.Throws<DatasetException>(() => ImageFolderReader.Load(tmp.Path, 8));
        Assert.Contains(tmp.Path, e.Message);
        Assert.Contains("no images", e.Message);
        e = Assert.Throws<DatasetException>(() => ImageFolderReader.Load(tmp.Path, 8, labels: FolderLabels.Subfolders));
        Assert.Contains("no class sub-folders", e.Message);

        var cls = tmp.Sub("only");
        string bad = Path.Combine(cls, "broken.png");
        File.WriteAllBytes(bad, [1, 2, 3, 4, 5]);
        e = Assert.Throws<DatasetException>(() => ImageFolderReader.Load(tmp.Path, 8));
        Assert.Contains(bad, e.Message);
        Assert.Contains("not a PNG, JPEG or BMP", e.Message);

        e = Assert.Throws<DatasetException>(() => ImageFolderReader.Load(tmp.File("missing"), 8));
        Assert.Contains("missing", e.Message);
    }
}
