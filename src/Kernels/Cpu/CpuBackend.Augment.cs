// CPU twin of the augmentation op: validates the arguments, then runs AugmentReference on each image in
// parallel into per-thread planar float scratch and writes the normalized view. The pixel math is float
// for every T (double views receive the float results converted), so the CUDA kernel can match it.
using System.Numerics;

namespace SimClr.Kernels.Cpu;

public sealed partial class CpuBackend<T> where T : unmanaged, IFloatingPointIeee754<T>
{
    [ThreadStatic] private static float[]? t_augmentScratch;

    public void AugmentViews(Tensor<T> views, Tensor<byte> images, Tensor<int> sampleIndices, in ImageSetShape set, in AugmentSpec spec, in AugmentKey key)
    {
        AugmentArguments.Validate(views.Length, images.Length, sampleIndices.Length, set, spec);
        // Copies: `in` parameters cannot be captured by the parallel body.
        var s = spec;
        var k = key;
        var shape = set;
        int batch = (int)sampleIndices.Length, plane = s.OutHeight * s.OutWidth;
        long imageSize = (long)shape.Height * shape.Width * shape.Channels;
        var indices = sampleIndices.Span;
        for (int i = 0; i < indices.Length; i++)
            if ((uint)indices[i] >= (uint)shape.Count)
                throw new ArgumentOutOfRangeException(nameof(sampleIndices), $"sample index {indices[i]} at position {i} is outside the image set of {shape.Count}");
        Parallel.For(0, batch, i =>
        {
            int index = sampleIndices.Span[i];
            var scratch = t_augmentScratch;
            int need = 3 * plane + AugmentReference.ScratchLength(s.OutHeight, s.OutWidth);
            if (scratch is null || scratch.Length < need) t_augmentScratch = scratch = new float[need];
            var r = scratch.AsSpan(0, plane);
            var g = scratch.AsSpan(plane, plane);
            var b = scratch.AsSpan(2 * plane, plane);
            var line = scratch.AsSpan(3 * plane);
            var draw = AugmentReference.Draw(s, shape.Height, shape.Width, k, index);
            var image = images.Storage.HostSpan(images.Offset + index * imageSize, imageSize);
            AugmentReference.Augment(r, g, b, line, image, shape.Width, shape.Channels, s, draw);

            var dst = views.Span.Slice(i * 3 * plane, 3 * plane);
            Normalize(dst[..plane], r, s.MeanR, s.StdR);
            Normalize(dst.Slice(plane, plane), g, s.MeanG, s.StdG);
            Normalize(dst.Slice(2 * plane, plane), b, s.MeanB, s.StdB);
        });
    }

    private static void Normalize(Span<T> dst, ReadOnlySpan<float> src, float mean, float std)
    {
        for (int i = 0; i < src.Length; i++) dst[i] = T.CreateTruncating((src[i] - mean) / std);
    }
}
