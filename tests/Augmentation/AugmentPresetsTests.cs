// Dataset presets: statistics computed independently, the CIFAR vs ImageNet recipe choice, and an
// evaluation spec that reproduces the normalized image.
using SimClr.Kernels;
using SimClr.Kernels.Cpu;
using SimClr.Training.Augmentation;
using SimClr.Training.Data;

namespace SimClr.Tests.Augmentation;

public class AugmentPresetsTests
{
    [Fact]
    public void ChannelStatisticsMatchADirectComputation()
    {
        var d = ShapesDataset.Generate(36, 0, seed: 2).Train;
        var (mean, std) = AugmentPresets.ChannelStatistics(d);
        for (int c = 0; c < 3; c++)
        {
            var values = Enumerable.Range(0, d.Images.Length / 3).Select(p => d.Images[3 * p + c] / 255.0).ToArray();
            double m = values.Average(), s = Math.Sqrt(values.Average(v => (v - m) * (v - m)));
            Assert.Equal(m, mean[c], 1e-5);
            Assert.Equal(s, std[c], 1e-5);
        }
    }

    [Fact]
    public void SmallImagesGetTheCifarRecipeAndLargeOnesBlur()
    {
        var small = AugmentPresets.Pretraining(ShapesDataset.Generate(12, 0, 1).Train);
        Assert.Equal((32, 32, 0f, 0.4f), (small.OutHeight, small.OutWidth, small.BlurProbability, small.Brightness));
        var large = AugmentPresets.Pretraining(ShapesDataset.Generate(12, 0, 1, size: 96).Train);
        Assert.Equal((96, 0.5f, 0.8f), (large.OutHeight, large.BlurProbability, large.Brightness));
        large.Validate();
    }

    [Fact]
    public void EvaluationSpecReproducesTheNormalizedImage()
    {
        var set = new ImageSetShape(2, 12, 9, 3);
        var images = AugmentHarness.RandomImages(set, 3);
        var spec = AugmentPresets.Evaluation(set, AugmentSpec.Paper(12) with { OutWidth = 9 });
        var views = AugmentHarness.Run(new CpuBackend<float>(), images, set, [1, 0], spec, new AugmentKey(4, 5, 1));
        for (int c = 0; c < 3; c++)
            for (int p = 0; p < 108; p++)
                Assert.Equal(AugmentHarness.Normalized(images[(108 + p) * 3 + c] / 255f, c, spec), views[c * 108 + p]);
    }
}
