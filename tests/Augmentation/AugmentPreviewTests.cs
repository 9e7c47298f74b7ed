// augment-preview writes a PNG of the expected size whose first cell is the original image.
using SimClr.Kernels;
using SimClr.Kernels.Cpu;
using SimClr.Training.Augmentation;
using SimClr.Training.Data;
using StbImageSharp;

namespace SimClr.Tests.Augmentation;

public class AugmentPreviewTests
{
    [Fact]
    public void WritesAGridOfOriginalsAndTwoViews()
    {
        var data = ShapesDataset.Generate(20, 0, seed: 4).Train;
        string path = Path.Combine(Path.GetTempPath(), $"simclr-preview-{Guid.NewGuid():N}.png");
        try
        {
            using var cpu = new CpuBackend<float>();
            AugmentPreview.Write(path, data, AugmentSpec.Cifar(32), seed: 1, count: 10, cpu);
            var png = ImageResult.FromMemory(File.ReadAllBytes(path), ColorComponents.RedGreenBlue);
            // 10 triplets: two columns of up to 8 rows; cells 96 px (32 upscaled by 3), gaps of 2 px.
            Assert.Equal(8 * 96 + 9 * 2, png.Height);
            Assert.Equal(2 * (3 * 96 + 4) + 3 * 8, png.Width);
            // The top-left cell is sample 0 upscaled: pixel (0, 0) of the image at canvas (8, 2).
            var original = data.Image(0);
            int o = (2 * png.Width + 8) * 3;
            Assert.Equal(original[..3].ToArray(), png.Data.AsSpan(o, 3).ToArray());
        }
        finally
        {
            File.Delete(path);
        }
    }
}
