// Datasets validated as a whole (the image-folder reader has its own tests): train and test images must have
// one size, and every label field is range-checked, CIFAR-100's coarse label as well as its fine one.
using SimClr.Tests.Data;
using SimClr.Tests.Training;
using SimClr.Training.Cli;
using SimClr.Training.Data;

namespace SimClr.Tests.Robustness;

public class DatasetValidationTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TrainAndTestImagesMustHaveOneSize(bool gzip)
    {
        using var tmp = new TempDir();
        string dir = Fixtures.FashionMnist(tmp.Sub("fm"), gzip, testRows: 5, testCols: 3);
        string test = Path.Combine(dir, "t10k-images-idx3-ubyte" + (gzip ? ".gz" : ""));
        var e = Assert.Throws<DatasetException>(() => IdxReader.LoadFashionMnist(dir));
        Assert.Contains(test, e.Message);
        Assert.Contains("5x3", e.Message);
        Assert.Contains("4x3", e.Message);
        Hostile.AssertOneLine(Cli.Run("pretrain", "--dataset", "fashion-mnist", "--data", dir, "--out", tmp.File("out")), (int)ExitCode.BadInput, test, "one image size");
    }

    [Fact]
    public void Cifar100CoarseLabelsAreRangeChecked()
    {
        using var tmp = new TempDir();
        string dir = Fixtures.Cifar100(tmp.Sub("cifar-100-binary"), record: 321, coarse: 20, fine: 5);
        var e = Assert.Throws<DatasetException>(() => CifarReader.LoadCifar100(tmp.Path));
        Assert.Contains(Path.Combine(dir, "train.bin"), e.Message);
        Assert.Contains("record 321 has coarse label 20, expected 0..19", e.Message);

        Fixtures.Cifar100(dir, record: 321, coarse: 19, fine: 99);
        var ok = CifarReader.LoadCifar100(tmp.Path);
        Assert.Equal(99, ok.Train.Labels[321]);
    }
}
