// Augmentation settings per dataset: SimCLR's CIFAR recipe (colour strength 0.5, no blur) for small
// images, the paper's ImageNet recipe (strength 1, blur) for larger ones, normalized with the training
// set's own channel statistics; and the evaluation transform (the whole image, resized, normalized the
// same way, nothing random) that kNN and the linear probe feed through the same AugmentViews op.
using SimClr.Kernels;
using SimClr.Training.Data;

namespace SimClr.Training.Augmentation;

public static class AugmentPresets
{
    /// <summary>Images at most this side get the CIFAR recipe.</summary>
    public const int SmallImageSide = 64;

    /// <summary>The pretraining augmentation for <paramref name="train"/>: views of the dataset's own size
    /// (or <paramref name="size"/>), colour strength <paramref name="strength"/> (default 0.5 small, 1 large).</summary>
    public static AugmentSpec Pretraining(ImageDataset train, int? size = null, float? strength = null)
    {
        int side = size ?? Math.Max(train.Shape.Height, train.Shape.Width);
        bool small = side <= SmallImageSide;
        var spec = small
            ? AugmentSpec.Paper(side, strength ?? 0.5f) with { BlurProbability = 0f }
            : AugmentSpec.Paper(side, strength ?? 1.0f);
        return WithStatistics(spec, train);
    }

    /// <summary>Nothing random: the whole image resized to the views' size, normalized like <paramref name="train"/>.</summary>
    public static AugmentSpec Evaluation(in ImageSetShape set, in AugmentSpec train)
    {
        float aspect = (float)set.Width / set.Height;
        return train with
        {
            CropAreaMin = 1f, CropAreaMax = 1f, AspectMin = aspect, AspectMax = aspect,
            FlipProbability = 0f, JitterProbability = 0f, GrayscaleProbability = 0f, BlurProbability = 0f,
        };
    }

    /// <summary><paramref name="spec"/> normalized by the per-channel mean and std of <paramref name="dataset"/>.</summary>
    public static AugmentSpec WithStatistics(in AugmentSpec spec, ImageDataset dataset)
    {
        var (mean, std) = ChannelStatistics(dataset);
        return spec with { MeanR = mean[0], MeanG = mean[1], MeanB = mean[2], StdR = std[0], StdG = std[1], StdB = std[2] };
    }

    /// <summary>Per-channel mean and std of pixels in [0, 1] over up to <paramref name="maxImages"/> images
    /// spread evenly over the set (grayscale sets give three equal channels). A constant channel gets std 1.</summary>
    public static (float[] Mean, float[] Std) ChannelStatistics(ImageDataset dataset, int maxImages = 10_000)
    {
        int channels = dataset.Shape.Channels, count = Math.Min(maxImages, dataset.Count);
        var sum = new double[channels];
        var sumSq = new double[channels];
        long pixels = 0;
        for (int i = 0; i < count; i++)
        {
            var img = dataset.Image((int)((long)i * dataset.Count / count));
            for (int p = 0; p < img.Length; p++)
            {
                double v = img[p] / 255.0;
                sum[p % channels] += v;
                sumSq[p % channels] += v * v;
            }
            pixels += img.Length / channels;
        }
        var mean = new float[3];
        var std = new float[3];
        for (int c = 0; c < 3; c++)
        {
            int k = channels == 1 ? 0 : c;
            double m = sum[k] / Math.Max(pixels, 1), variance = sumSq[k] / Math.Max(pixels, 1) - m * m;
            mean[c] = (float)m;
            std[c] = variance > 1e-12 ? (float)Math.Sqrt(variance) : 1f;
        }
        return (mean, std);
    }
}
