// augment-preview writes a PNG laid out as its PreviewLayout says: the caption and the column headers are
// drawn (ink in their bands), and each triplet's first cell is the original image, upscaled.
using SimClr.Kernels;
using SimClr.Kernels.Cpu;
using SimClr.Training.Augmentation;
using SimClr.Training.Data;
using StbImageSharp;

namespace SimClr.Tests.Augmentation;

public class AugmentPreviewTests
{
    private static int DarkPixels(ImageResult png, int top, int bottom)
    {
        int dark = 0;
        for (int y = top; y < bottom; y++)
            for (int x = 0; x < png.Width; x++)
            {
                int o = (y * png.Width + x) * 3;
                if (png.Data[o] < 128 && png.Data[o + 1] < 128 && png.Data[o + 2] < 128) dark++;
            }
        return dark;
    }

    [Theory]
    [InlineData(0, 3)]
    [InlineData(2, 2)]
    public void WritesTheGridWithHeadersACaptionAndTheOriginalsUpscaled(int scale, int expectedScale)
    {
        var data = ShapesDataset.Generate(20, 0, seed: 4).Train;
        string path = Path.Combine(Path.GetTempPath(), $"simclr-preview-{Guid.NewGuid():N}.png");
        try
        {
            using var cpu = new CpuBackend<float>();
            var layout = AugmentPreview.Write(path, data, AugmentSpec.Cifar(32), seed: 1, count: 10, cpu, scale: scale);
            var png = ImageResult.FromMemory(File.ReadAllBytes(path), ColorComponents.RedGreenBlue);
            Assert.Equal((layout.Width, layout.Height), (png.Width, png.Height));
            Assert.Equal(expectedScale, layout.Scale);
            Assert.Equal(32 * expectedScale, layout.CellWidth);
            // 10 triplets: two columns of up to 8 rows, below the caption and the header band.
            Assert.Equal(layout.GridTop + 8 * layout.CellHeight + 7 * PreviewLayout.Gap + PreviewLayout.Margin, png.Height);
            Assert.True(DarkPixels(png, PreviewLayout.Margin, PreviewLayout.Margin + layout.CaptionHeight) > 200, "the caption band is blank");
            Assert.True(DarkPixels(png, layout.HeaderTop, layout.GridTop) > 100, "the header band is blank");
            foreach (int i in new[] { 0, 9 })
            {
                // Each cell of the original is the image pixel repeated scale × scale times.
                var original = data.Image(i * data.Count / 10);
                var (x, y) = layout.Cell(i, 0);
                for (int dy = 0; dy < expectedScale; dy++)
                {
                    int o = ((y + dy) * png.Width + x + expectedScale - 1) * 3;
                    Assert.Equal(original[..3].ToArray(), png.Data.AsSpan(o, 3).ToArray());
                }
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void TheCaptionStatesTheSettings()
    {
        var data = ShapesDataset.Generate(20, 0, seed: 4).Train;
        var spec = AugmentSpec.Cifar(32) with { CropAreaMin = 0.5f, FlipProbability = 0.25f };
        string caption = AugmentPreview.Caption(data, spec, seed: 7, epoch: 0, count: 4, scale: 3);
        Assert.Contains("seed 7", caption);
        Assert.Contains("Crop 0.5–1 of the area", caption);
        Assert.Contains("flip p 0.25", caption);
        Assert.Contains("×3", caption);
    }
}
