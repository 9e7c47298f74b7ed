// Runs AugmentViews on a backend from host arrays, for the augmentation tests.
using System.Numerics;
using SimClr.Kernels;

namespace SimClr.Tests.Augmentation;

internal static class AugmentHarness
{
    public static T[] Run<T>(IBackend<T> backend, byte[] images, ImageSetShape set, int[] indices, AugmentSpec spec, AugmentKey key)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        using var img = backend.Allocate<byte>(images.Length);
        using var idx = backend.Allocate<int>(indices.Length);
        using var views = backend.Allocate<T>((long)indices.Length * 3 * spec.OutHeight * spec.OutWidth);
        backend.Upload(img.AsTensor(), images);
        backend.Upload(idx.AsTensor(), indices);
        var v = views.AsTensor(new Shape(indices.Length, 3, spec.OutHeight, spec.OutWidth), Layout.NCHW);
        backend.AugmentViews(v, img.AsTensor(), idx.AsTensor(), set, spec, key);
        backend.Synchronize();
        var result = new T[v.Length];
        backend.Download(result, v);
        return result;
    }

    public static byte[] RandomImages(ImageSetShape set, int seed)
    {
        var bytes = new byte[set.Elements];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    /// <summary>No randomness at all: the whole image, no flip, jitter, grayscale or blur.</summary>
    public static AugmentSpec Identity(int height, int width) => AugmentSpec.Cifar(height) with
    {
        OutHeight = height, OutWidth = width,
        CropAreaMin = 1f, CropAreaMax = 1f,
        AspectMin = (float)width / height, AspectMax = (float)width / height,
        FlipProbability = 0f, JitterProbability = 0f, GrayscaleProbability = 0f, BlurProbability = 0f,
    };

    /// <summary>The normalized value of channel c of a pixel, computed here independently.</summary>
    public static float Normalized(float v, int c, in AugmentSpec s) =>
        (v - (c == 0 ? s.MeanR : c == 1 ? s.MeanG : s.MeanB)) / (c == 0 ? s.StdR : c == 1 ? s.StdG : s.StdB);

    public static float Denormalized(float v, int c, in AugmentSpec s) =>
        v * (c == 0 ? s.StdR : c == 1 ? s.StdG : s.StdB) + (c == 0 ? s.MeanR : c == 1 ? s.MeanG : s.MeanB);
}
