// The procedural shapes dataset (determinism, balance, colour independent of class), the epoch order,
// the device upload and the dataset catalog.
using SimClr.Kernels;
using SimClr.Kernels.Cpu;
using SimClr.Training.Data;

namespace SimClr.Tests.Data;

public class ShapesAndOrderTests
{
    [Fact]
    public void ShapesAreDeterministicBalancedAndSeedDependent()
    {
        var a = ShapesDataset.Generate(240, 48, seed: 5);
        var b = ShapesDataset.Generate(240, 48, seed: 5);
        var c = ShapesDataset.Generate(240, 48, seed: 6);
        Assert.Equal(a.Train.Images, b.Train.Images);
        Assert.Equal(a.Test.Images, b.Test.Images);
        Assert.NotEqual(a.Train.Images, c.Train.Images);
        Assert.NotEqual(a.Train.Image(0).ToArray(), a.Test.Image(0).ToArray());
        Assert.True(ShapesDataset.Classes.Length >= 10);
        int k = ShapesDataset.Classes.Length;
        Assert.All(Enumerable.Range(0, k), cls => Assert.Equal(240 / k, a.Train.Labels.Count(l => l == cls)));
        Assert.Equal((32, 32, 3), (a.Train.Shape.Height, a.Train.Shape.Width, a.Train.Shape.Channels));
        // A prefix reproduces without the rest.
        Assert.Equal(a.Train.Images.AsSpan(0, 10 * 3072).ToArray(), ShapesDataset.Generate(10, 0, 5).Train.Images);
    }

    [Fact]
    public void EdgesAreAntiAliased()
    {
        // On a flat background, pixels strictly between background and foreground exist only where
        // supersampling found partial coverage; a hard-edged renderer would produce none.
        var s = ShapesDataset.Generate(240, 0, seed: 9).Train;
        int images = 0;
        for (int i = 0; i < s.Count; i++)
        {
            var img = s.Image(i);
            var counts = new Dictionary<int, int>();
            for (int p = 0; p < img.Length; p += 3)
            {
                int colour = img[p] << 16 | img[p + 1] << 8 | img[p + 2];
                counts[colour] = counts.GetValueOrDefault(colour) + 1;
            }
            var top = counts.Values.OrderDescending().ToArray();
            if (top[0] < 0.4 * img.Length / 3) continue; // gradient or noise background
            images++;
            int blended = top.Skip(2).Sum();
            Assert.True(blended > 0, $"image {i} holds only its two colours: edges are not blended");
        }
        Assert.True(images > 20, $"only {images} flat-background images to check");
    }

    [Fact]
    public void MeanColourDoesNotPredictTheClass()
    {
        int k = ShapesDataset.Classes.Length;
        var s = ShapesDataset.Generate(100 * k, 100 * k, seed: 3);
        static double[] MeanColour(ImageDataset d, int i)
        {
            var img = d.Image(i);
            var m = new double[3];
            for (int p = 0; p < img.Length; p++) m[p % 3] += img[p];
            for (int c = 0; c < 3; c++) m[c] /= img.Length / 3.0;
            return m;
        }
        var centroids = new double[k][];
        for (int c = 0; c < k; c++) centroids[c] = new double[3];
        for (int i = 0; i < s.Train.Count; i++)
        {
            var m = MeanColour(s.Train, i);
            for (int ch = 0; ch < 3; ch++) centroids[s.Train.Labels[i]][ch] += m[ch] / 100;
        }
        int correct = 0;
        for (int i = 0; i < s.Test.Count; i++)
        {
            var m = MeanColour(s.Test, i);
            int best = Enumerable.Range(0, k).MinBy(c => Enumerable.Range(0, 3).Sum(ch => Math.Pow(m[ch] - centroids[c][ch], 2)));
            if (best == s.Test.Labels[i]) correct++;
        }
        double accuracy = correct / (double)s.Test.Count;
        Assert.True(accuracy < 1.0 / k + 0.06, $"nearest mean colour classifies {accuracy:P1} (chance {1.0 / k:P1})");
    }

    [Fact]
    public void EpochOrderIsAPermutationOfSeedAndEpoch()
    {
        var p = EpochOrder.Permutation(7, 3, 1000);
        Assert.Equal(Enumerable.Range(0, 1000), p.Order());
        Assert.Equal(p, EpochOrder.Permutation(7, 3, 1000));
        Assert.NotEqual(p, EpochOrder.Permutation(7, 4, 1000));
        Assert.NotEqual(p, EpochOrder.Permutation(8, 3, 1000));
        Assert.Equal(3, EpochOrder.StepsPerEpoch(1000, 300));
        Assert.Equal(p.AsSpan(600, 300).ToArray(), EpochOrder.Batch(p, 2, 300).ToArray());
    }

    [Fact]
    public void ResidentImagesHoldTheDatasetBytes()
    {
        var d = ShapesDataset.Generate(12, 0, 1).Train;
        using var cpu = new CpuBackend<float>();
        using var resident = ResidentImages.Upload(cpu, d);
        Assert.Equal(d.Shape, resident.Shape);
        Assert.Equal(new Shape(12, 32, 32, 3), resident.Images.Shape);
        var back = new byte[d.Images.Length];
        cpu.Download<byte>(back, resident.Images);
        Assert.Equal(d.Images, back);
    }

    [Fact]
    public void CatalogParsesNamesAndExplainsMissingPaths()
    {
        Assert.Equal(DatasetKind.FashionMnist, DatasetCatalog.Parse("Fashion-MNIST"));
        var e = Assert.Throws<DatasetException>(() => DatasetCatalog.Parse("imagenet"));
        Assert.Contains("imagenet", e.Message);
        Assert.Contains("cifar10", e.Message);
        e = Assert.Throws<DatasetException>(() => DatasetCatalog.Load(new DatasetOptions(DatasetKind.Cifar10)));
        Assert.Contains("path", e.Message);
        var shapes = DatasetCatalog.Load(new DatasetOptions(DatasetKind.Shapes, ShapesTrain: 24, ShapesTest: 12, ImageSize: 16));
        Assert.Equal((24, 12, 16), (shapes.Train.Count, shapes.Test.Count, shapes.Train.Shape.Height));
    }
}
